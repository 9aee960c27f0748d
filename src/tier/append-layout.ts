/**
 * Physical layout of append-log buckets (docs/design.md §3.11). A bucket `K` is its base value under `K` (the
 * reference layout: one encoded array) followed by segments `K\u001f<20-digit n>`, one per flush, so a flush
 * writes only its own entries. While a merge or overwrite is under way (or after one was cut short) the bucket
 * also has a fold, which stands for the base and the segments it names. Readers concatenate base (or fold) + the
 * other segments in order; a store written in the reference layout (base only) reads unchanged.
 */
import { StorageError } from "../errors.js";
import { assertValidKey, compareKeys } from "../backend/keys.js";
import { hasWalFrameKeyShape } from "../wal/keys.js";
import type { AppendCursor, AppendLoadOptions, AppendLoadResult } from "./types.js";

export const SEGMENT_SEPARATOR = "\u001f";
const SEGMENT_DIGITS = 20;

/** What a bucket's key is (design §3.11): its base value, a segment, or its fold. */
export type BucketKeyKind = "base" | "segment" | "fold";

/** The fold's key is `K\u001f\u001f` + these 20 digits: it ends like a segment key, so no graph name is shaped like it. */
const FOLD_SLOT = "0".repeat(SEGMENT_DIGITS);

/**
 * A segment's key. `n` must be a safe integer of at most 20 digits: a number past that would print as another
 * key (1e20 has 21 digits, outside the bucket's keys) or lose digits.
 */
export function segmentKey(bucket: string, n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`append-log segment number ${n} is not a safe integer`);
  return bucket + SEGMENT_SEPARATOR + String(n).padStart(SEGMENT_DIGITS, "0");
}

export function segmentPrefix(bucket: string): string {
  return bucket + SEGMENT_SEPARATOR;
}

/** The fold: the whole bucket as one value, standing for its base and the segments it names (design §3.11). */
export function foldKey(bucket: string): string {
  return bucket + SEGMENT_SEPARATOR + SEGMENT_SEPARATOR + FOLD_SLOT;
}

export interface ParsedBucketKey {
  bucket: string;
  kind: BucketKeyKind;
  /** A segment's 20 digits ("" for the others): compared as strings, exact past 2^53. */
  digits: string;
  /** `digits` as a number (0 for the others); inexact past 2^53, see `segmentNumber`. */
  segment: number;
}

/** The bucket and kind of a key; `segment` 0 = the base value (or the fold). */
export function parseBucketKey(key: string): ParsedBucketKey {
  const i = key.lastIndexOf(SEGMENT_SEPARATOR);
  if (i >= 0 && key.length - i - 1 === SEGMENT_DIGITS) {
    const digits = key.slice(i + 1);
    if (/^\d+$/.test(digits)) {
      if (i > 0 && key[i - 1] === SEGMENT_SEPARATOR && digits === FOLD_SLOT) {
        return { bucket: key.slice(0, i - 1), kind: "fold", digits: "", segment: 0 };
      }
      return { bucket: key.slice(0, i), kind: "segment", digits, segment: Number(digits) };
    }
  }
  return { bucket: key, kind: "base", digits: "", segment: 0 };
}

/**
 * A stored segment's number for numbering new ones: a number past Number.MAX_SAFE_INTEGER cannot be counted on
 * exactly (the next one would print as a 21-digit key, which is no segment of the bucket), so the store is refused.
 */
export function segmentNumber(key: string, digits: string): number {
  const n = Number(digits);
  if (!Number.isSafeInteger(n)) {
    throw new StorageError("corrupt-store", `append-log segment key "${key}" has a number past 2^53 - 1: no segment can follow it`, {
      key,
    });
  }
  return n;
}

export function assertBucketKey(bucket: string): void {
  if (typeof bucket !== "string") throw new TypeError(`append-log keyOf must return a string, got ${typeof bucket}`);
  assertValidKey(bucket, "append-log bucket key");
  if (bucket.includes(SEGMENT_SEPARATOR)) {
    throw new StorageError("invalid-key", "append-log bucket keys may not contain U+001F (segment separator)", {
      key: bucket,
    });
  }
  // Its base value (array layout, overwrite mode, compact()) would overwrite that graph's frame (design §3.27).
  if (hasWalFrameKeyShape(bucket)) {
    throw new StorageError("invalid-key", "append-log bucket keys may not be shaped like a WAL frame key (<graph>/wal/<20 digits>)", {
      key: bucket,
    });
  }
}

const KIND_ORDER: Record<BucketKeyKind, number> = { base: 0, fold: 1, segment: 2 };

/** Orders keys bucket by bucket (buckets in code-point order): base, fold, then segments ascending. */
export function orderBucketKeys(keys: readonly string[]): string[] {
  const parsed = keys.map((key) => ({ key, ...parseBucketKey(key) }));
  parsed.sort(
    (a, b) =>
      compareKeys(a.bucket, b.bucket) ||
      KIND_ORDER[a.kind] - KIND_ORDER[b.kind] ||
      (a.digits < b.digits ? -1 : a.digits > b.digits ? 1 : 0),
  );
  return parsed.map((p) => p.key);
}

/** One bucket's stored keys, by kind (segments ascending). */
export interface BucketKeys {
  bucket: string;
  base?: string;
  fold?: string;
  segments: Array<{ key: string; digits: string }>;
}

/** Groups keys (in any order) by bucket, buckets in code-point order. */
export function groupBucketKeys(keys: readonly string[]): BucketKeys[] {
  const out: BucketKeys[] = [];
  let cur: BucketKeys | undefined;
  for (const key of orderBucketKeys(keys)) {
    const p = parseBucketKey(key);
    if (cur?.bucket !== p.bucket) out.push((cur = { bucket: p.bucket, segments: [] }));
    if (p.kind === "segment") cur.segments.push({ key, digits: p.digits });
    else cur[p.kind] = key;
  }
  return out;
}

/** Highest segment number among `keys` of one bucket (0 if none); corrupt-store past 2^53 - 1 (`segmentNumber`). */
export function maxSegment(keys: readonly string[], bucket: string): number {
  let max = 0;
  for (const k of keys) {
    const p = parseBucketKey(k);
    if (p.bucket === bucket && p.kind === "segment") max = Math.max(max, segmentNumber(k, p.digits));
  }
  return max;
}

/**
 * A fold's value (design §3.11): a header line naming, as 20-digit strings, the segments it stands for, and the
 * byte length of each encoded array it holds, then those arrays. Several arrays when the flush that wrote it held
 * chunks the worker cannot decode (encoded on the main thread).
 */
export interface Fold {
  covers: string[];
  chunks: Uint8Array[];
}

const FOLD_MAGIC = "graphrefly-fold/1\n";

export function encodeFold(fold: Fold): Uint8Array {
  const header = new TextEncoder().encode(
    FOLD_MAGIC + JSON.stringify({ covers: fold.covers, chunks: fold.chunks.map((c) => c.byteLength) }) + "\n",
  );
  let size = header.byteLength;
  for (const c of fold.chunks) size += c.byteLength;
  const out = new Uint8Array(size);
  out.set(header, 0);
  let at = header.byteLength;
  for (const c of fold.chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** Decodes a fold's value; anything else under the fold's key is corrupt-store. */
export function decodeFold(key: string, bytes: Uint8Array): Fold {
  const bad = (why: string): never => {
    throw new StorageError("corrupt-store", `append-log fold "${key}" is damaged: ${why}`, { key });
  };
  const magic = new TextEncoder().encode(FOLD_MAGIC);
  if (bytes.byteLength < magic.byteLength || magic.some((b, i) => bytes[i] !== b)) bad("no fold header");
  const end = bytes.indexOf(0x0a, magic.byteLength);
  if (end < 0) bad("header not ended");
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(magic.byteLength, end)));
  } catch {
    bad("header is not JSON");
  }
  const h = header as { covers?: unknown; chunks?: unknown };
  const digitsOk = (d: unknown): boolean => typeof d === "string" && d.length === SEGMENT_DIGITS && /^\d+$/.test(d);
  if (!Array.isArray(h.covers) || !h.covers.every(digitsOk)) bad("covers is not a list of segment numbers");
  if (!Array.isArray(h.chunks) || !h.chunks.every((n) => Number.isSafeInteger(n) && (n as number) >= 0)) bad("chunk lengths");
  const chunks: Uint8Array[] = [];
  let at = end + 1;
  for (const n of h.chunks as number[]) {
    if (at + n > bytes.byteLength) bad("truncated");
    chunks.push(bytes.subarray(at, at + n));
    at += n;
  }
  if (at !== bytes.byteLength) bad("trailing bytes");
  return { covers: h.covers as string[], chunks };
}

export function pageSizeOf(opts: AppendLoadOptions | undefined): number | undefined {
  const n = opts?.pageSize;
  return typeof n === "number" && Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * Collects entries from decoded values in key order and cuts one page (docs/protocol.md §4.4). Stops reading
 * once a page plus one entry is known, so a paged read does not decode the whole log.
 */
export async function collectPage<T>(
  values: AsyncIterable<unknown>,
  opts: AppendLoadOptions | undefined,
): Promise<AppendLoadResult<T>> {
  const start = Math.max(0, Math.floor(opts?.cursor?.position ?? 0));
  const pageSize = pageSizeOf(opts);
  const all: T[] = [];
  for await (const value of values) {
    if (!Array.isArray(value)) continue; // another tier's record sharing the backend
    for (const e of value as T[]) all.push(e);
    if (pageSize !== undefined && all.length >= start + pageSize + 1) break;
  }
  if (pageSize === undefined) return { entries: all.slice(start), cursor: undefined };
  const entries = all.slice(start, start + pageSize);
  const cursor: AppendCursor | undefined =
    all.length > start + pageSize ? { position: start + pageSize } : undefined;
  return { entries, cursor };
}
