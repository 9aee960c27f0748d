/**
 * Reads a stored record's top-level `name` and `seq` from the head of its canonical JSON bytes, without decoding
 * the rest (docs/design.md §3.18: attach's reclaim proves a baseline stored once per baseline, and a baseline's
 * `snapshot` field, the large one, sorts after both). Layer 2 (tier).
 */
import { jsonCodec } from "../codec/json.js";
import { bigintJsonCodec } from "../codec/bigint.js";
import type { Codec } from "../codec/types.js";

/** A stored snapshot record's top-level `name` and `seq`, each undefined when absent or not a string / safe integer. */
export interface SnapshotHead {
  name: string | undefined;
  seq: number | undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Codecs whose bytes are canonical JSON (RFC 8785: keys sorted, no duplicates), so the head can be read alone. */
export function writesCanonicalJson(codec: Codec<unknown>): boolean {
  return codec === (jsonCodec as Codec<unknown>) || codec === (bigintJsonCodec as Codec<unknown>);
}

/** `name` and `seq` of a decoded record (the fallback for every other codec). */
export function headOf(record: unknown): SnapshotHead {
  if (typeof record !== "object" || record === null) return { name: undefined, seq: undefined };
  const { name, seq } = record as { name?: unknown; seq?: unknown };
  return {
    name: typeof name === "string" ? name : undefined,
    seq: typeof seq === "number" && Number.isSafeInteger(seq) ? seq : undefined,
  };
}

/**
 * The head of canonical JSON object bytes, read up to the first member sorting after "seq"; undefined when these
 * bytes do not allow it (not an object, keys out of order, a value before that member that is not a plain string
 * or number, a truncated end): the caller then decodes the whole record.
 */
export function canonicalJsonHead(bytes: Uint8Array): SnapshotHead | undefined {
  const head = scanHead(bytes, true);
  return head === MORE ? undefined : head;
}

/** What `canonicalJsonHeadOfPrefix` answers when the prefix ends before the head does: read the whole value. */
export const MORE = "more";

/**
 * `canonicalJsonHead` of the record whose first bytes are `prefix` (a backend's readPrefix), the rest unread: MORE
 * when the prefix ends before the head is known (cut inside or right after a token, or before a member sorting
 * after "seq"), so a cut never passes for a shorter number or string. The record's end is not seen, so a record
 * whose head fits in the prefix is vouched for without its closing brace.
 */
export function canonicalJsonHeadOfPrefix(prefix: Uint8Array): SnapshotHead | undefined | typeof MORE {
  return scanHead(prefix, false);
}

function scanHead(bytes: Uint8Array, whole: boolean): SnapshotHead | undefined | typeof MORE {
  let end = bytes.length;
  if (whole) {
    while (end > 0 && isSpace(bytes[end - 1] as number)) end--;
    if (end < 2 || bytes[end - 1] !== 0x7d) return undefined; // "}": a cut-off record is decoded (and refused) whole
  }
  // What running into the end means: a malformed record when it is whole, the rest unread when it is a prefix.
  const cut = whole ? undefined : MORE;
  let i = skipSpace(bytes, 0);
  if (i >= end) return cut;
  if (bytes[i] !== 0x7b) return undefined; // "{"
  i = skipSpace(bytes, i + 1);
  const head: SnapshotHead = { name: undefined, seq: undefined };
  let previous: string | undefined;
  for (;;) {
    if (i >= end) return cut;
    if (bytes[i] !== QUOTE) return undefined;
    const keyEnd = stringEnd(bytes, i, end);
    if (keyEnd < 0) return cut;
    const key = parseToken(bytes, i, keyEnd);
    if (typeof key !== "string" || (previous !== undefined && !(previous < key))) return undefined;
    // Sorted: neither field can follow. A head missing either is left to a full decode: bytes not written sorted
    // may still carry them further on (a record a foreign tool wrote), and a wrong "no seq" would reuse seqs.
    if (key > "seq") return vouched(head);
    previous = key;
    i = skipSpace(bytes, keyEnd);
    if (i >= end) return cut;
    if (bytes[i] !== 0x3a) return undefined; // ":"
    i = skipSpace(bytes, i + 1);
    if (i >= end) return cut;
    const valueEnd = bytes[i] === QUOTE ? stringEnd(bytes, i, end) : numberEnd(bytes, i, end);
    // A string without its closing quote, or a number running into the end (its last digits may be unread).
    if (valueEnd < 0 || (valueEnd >= end && bytes[i] !== QUOTE)) return cut;
    if (valueEnd <= i) return undefined; // an object, array or literal: left to a full decode
    const value = parseToken(bytes, i, valueEnd);
    if (value === undefined) return undefined;
    if (key === "name") head.name = typeof value === "string" ? value : undefined;
    else if (key === "seq") head.seq = typeof value === "number" && Number.isSafeInteger(value) ? value : undefined;
    i = skipSpace(bytes, valueEnd);
    if (i >= end) return cut;
    if (bytes[i] === 0x2c) i = skipSpace(bytes, i + 1); // ","
    // "}": the whole record was its head. In a prefix, bytes past it are unread: the caller reads the record whole.
    else if (bytes[i] === 0x7d) return whole ? (i === end - 1 ? vouched(head) : undefined) : MORE;
    else return undefined;
  }
}

/** The head when it names both fields, else undefined (decode the record). */
function vouched(head: SnapshotHead): SnapshotHead | undefined {
  return head.name !== undefined && head.seq !== undefined ? head : undefined;
}

/** Index just past the JSON string starting at `start` (a quote), or -1 when it does not end before `end`. */
function stringEnd(bytes: Uint8Array, start: number, end: number): number {
  // UTF-8 continuation bytes are >= 0x80, so a quote or backslash byte is always that character.
  for (let i = start + 1; i < end; i++) {
    const b = bytes[i] as number;
    if (b === BACKSLASH) i++;
    else if (b === QUOTE) return i + 1;
  }
  return -1;
}

/** Index just past the number token at `start` (its syntax JSON.parse checks), `start` when there is none. */
function numberEnd(bytes: Uint8Array, start: number, end: number): number {
  let i = start;
  while (i < end) {
    const b = bytes[i] as number;
    // digits, "-", "+", ".", "e", "E"
    if ((b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2b || b === 0x2e || b === 0x65 || b === 0x45) i++;
    else break;
  }
  return i;
}

function parseToken(bytes: Uint8Array, start: number, end: number): unknown {
  try {
    return JSON.parse(utf8.decode(bytes.subarray(start, end))) as unknown;
  } catch {
    return undefined;
  }
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

function skipSpace(bytes: Uint8Array, at: number): number {
  let i = at;
  while (i < bytes.length && isSpace(bytes[i] as number)) i++;
  return i;
}
