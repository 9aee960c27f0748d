/**
 * How keys and values of the PostgreSQL backend travel and rest. Layer 1.
 *
 * Keys are `text COLLATE "C"`: compared as UTF-8 bytes, which is code point order, the order of the backend
 * contract (keys.ts compareKeys). PostgreSQL text cannot hold U+0000, so U+0000 and U+0001 are written as two-unit
 * escapes (U+0001 U+0001 and U+0001 U+0002). That code keeps order and prefixes: each character maps to a sequence
 * that is prefix-free and increasing in the character, so comparing or prefix-matching stored keys is comparing or
 * prefix-matching the keys themselves. Every other key is stored exactly as given.
 */
import { StorageError } from "../errors.js";

/** Longest stored key in UTF-8 bytes: (store, key) must fit a B-tree index entry (~2.7 kB on 8 kB pages). */
export const MAX_KEY_BYTES = 2048;
/** Longest store name in UTF-8 bytes (shares the index entry with the key). */
export const MAX_STORE_BYTES = 256;
/**
 * Largest value: PostgreSQL holds at most 1 GiB - 1 byte in one field and in one protocol message, and the value
 * travels inside a message with the rest of its statement. The headroom covers that envelope.
 */
export const MAX_VALUE_BYTES = 0x3fffffff - 1024 * 1024;

const ESCAPED = /[\0\x01]/;

export function encodeKey(key: string): string {
  if (!ESCAPED.test(key)) return key;
  return key.replace(/\x01/g, "\x01\x02").replace(/\0/g, "\x01\x01");
}

/** Inverse of encodeKey; a stored key that no encodeKey output can be (another program wrote it) is corrupt. */
export function decodeKey(stored: string, backend: string): string {
  if (!stored.includes("\x01")) return stored;
  let out = "";
  for (let i = 0; i < stored.length; i++) {
    const c = stored[i];
    if (c !== "\x01") {
      out += c;
      continue;
    }
    const next = stored[++i];
    if (next === "\x01") out += "\0";
    else if (next === "\x02") out += "\x01";
    else {
      throw new StorageError(
        "corrupt-store",
        `${backend}: stored key ${JSON.stringify(stored)} has a U+0001 that graphrefly-storage did not write`,
        { backend, key: stored },
      );
    }
  }
  return out;
}

export function utf8Length(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/** bytea's type oid, the element type of a binary bytea[] parameter. */
const BYTEA_OID = 17;

/**
 * A `bytea[]` in PostgreSQL's binary array format. Passed as a Buffer, node-postgres sends it as a binary parameter,
 * so values cross the wire as raw bytes (the text form would double them as hex) and are copied exactly once.
 */
export function byteaArray(values: readonly Uint8Array[]): Buffer {
  if (values.length === 0) {
    // ndim 0: the empty array.
    const empty = Buffer.alloc(12);
    empty.writeUInt32BE(BYTEA_OID, 8);
    return empty;
  }
  let size = 20;
  for (const v of values) size += 4 + v.byteLength;
  const buf = Buffer.allocUnsafe(size);
  buf.writeInt32BE(1, 0); // dimensions
  buf.writeInt32BE(0, 4); // no NULLs
  buf.writeUInt32BE(BYTEA_OID, 8);
  buf.writeInt32BE(values.length, 12);
  buf.writeInt32BE(1, 16); // lower bound
  let at = 20;
  for (const v of values) {
    buf.writeInt32BE(v.byteLength, at);
    buf.set(v, at + 4);
    at += 4 + v.byteLength;
  }
  return buf;
}
