/**
 * Key rules shared by every backend: which strings are keys, and the one listing order.
 */
import { StorageError } from "../errors.js";
import type { BatchOp } from "./types.js";
import { compareCodePoints } from "../base/code-points.js";

// Node >= 20 ships String.prototype.isWellFormed (false exactly when a lone surrogate occurs); the ES2022 lib
// typings do not declare it. A regex test cost several times more on every tier write.
type WellFormedString = string & { isWellFormed(): boolean };

/**
 * Throws `StorageError("invalid-key")` unless `key` is a string that UTF-8 can carry.
 * Lone surrogates are rejected because every persistent form (file names, SQLite TEXT) is UTF-8,
 * where they would silently become U+FFFD and collide with other keys.
 * Where it runs on a tier write: once at the tier's public entry (src/tier/arguments.ts), and again in the backend's
 * own write/batch, because backends are public API that callers use without a tier. Tier cores do not repeat it.
 */
export function assertValidKey(key: unknown, what = "key"): asserts key is string {
  if (typeof key !== "string") {
    throw new StorageError("invalid-key", `${what} must be a string, got ${typeof key}`);
  }
  if (!(key as WellFormedString).isWellFormed()) {
    throw new StorageError("invalid-key", `${what} contains a lone surrogate (not representable in UTF-8)`, {
      key: JSON.stringify(key),
    });
  }
}

/** Throws `TypeError` unless `keys` is an array (`readMany`: each key is then checked as `read` checks it). */
export function assertKeyArray(keys: unknown): asserts keys is readonly unknown[] {
  if (!Array.isArray(keys)) throw new TypeError("keys must be an array");
}

/** Throws StorageError("invalid-argument") unless `maxBytes` (readPrefix) is a safe integer >= 0. */
export function assertPrefixLength(maxBytes: unknown): asserts maxBytes is number {
  if (typeof maxBytes !== "number" || !Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new StorageError("invalid-argument", `maxBytes must be a safe integer >= 0, got ${String(maxBytes)}`);
  }
}

/** Throws `TypeError` unless `bytes` is a Uint8Array (Buffer included). */
export function assertBytes(bytes: unknown, name = "bytes"): asserts bytes is Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array`);
}

/** Store keys list in the project's one string order, by code point (../base/code-points.ts). */
export { compareCodePoints as compareKeys } from "../base/code-points.js";

/** Sorted copy in code point order. */
export function sortKeys(keys: Iterable<string>): string[] {
  return Array.from(keys).sort(compareCodePoints);
}

/** Validates a batch up front so a bad op anywhere means nothing is applied (every backend's writeBatch: public API). */
export function assertValidBatch(ops: unknown): asserts ops is readonly BatchOp[] {
  if (!Array.isArray(ops)) throw new TypeError("ops must be an array");
  ops.forEach((op: unknown, i) => {
    const o = op as { op?: unknown; key?: unknown; value?: unknown } | null;
    if (typeof o !== "object" || o === null) throw new TypeError(`ops[${i}] must be an object`);
    // The names are built only for the error: a batch of thousands of valid ops built two strings an op.
    if (typeof o.key !== "string" || !(o.key as WellFormedString).isWellFormed()) assertValidKey(o.key, `ops[${i}].key`);
    if (o.op === "put") {
      if (!(o.value instanceof Uint8Array)) assertBytes(o.value, `ops[${i}].value`);
    } else if (o.op !== "delete") throw new TypeError(`ops[${i}].op must be "put" or "delete"`);
  });
}

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

/**
 * The smallest string above every string that starts with `prefix`, in code point order, so that
 * "starts with prefix" is the range `prefix <= k < bound` (what an index can scan). `undefined`
 * when no bound exists (the prefix is empty or only U+10FFFF).
 */
export function prefixUpperBound(prefix: string): string | undefined {
  for (let end = prefix.length; end > 0; ) {
    const pair = end >= 2 && isLowSurrogate(prefix.charCodeAt(end - 1)) && isHighSurrogate(prefix.charCodeAt(end - 2));
    const start = pair ? end - 2 : end - 1;
    const cp = prefix.codePointAt(start) as number;
    if (cp < 0x10ffff) {
      // Surrogate code points are not characters; the next one after U+D7FF is U+E000.
      return prefix.slice(0, start) + String.fromCodePoint(cp === 0xd7ff ? 0xe000 : cp + 1);
    }
    end = start;
  }
  return undefined;
}
