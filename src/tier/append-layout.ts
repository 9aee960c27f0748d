/**
 * Physical layout of append-log buckets (docs/design.md §3.11). A bucket `K` is its base value under `K` (the
 * reference layout: one encoded array) followed by segments `K\u001f<20-digit n>`, one per flush, so a flush
 * writes only its own entries. Readers concatenate base + segments in order; a store written in the
 * reference layout (base only) reads unchanged.
 */
import { StorageError } from "../errors.js";
import { assertValidKey, compareKeys } from "../backend/keys.js";
import { hasWalFrameKeyShape } from "../wal/keys.js";
import type { AppendCursor, AppendLoadOptions, AppendLoadResult } from "./types.js";

export const SEGMENT_SEPARATOR = "\u001f";
const SEGMENT_DIGITS = 20;

export function segmentKey(bucket: string, n: number): string {
  return bucket + SEGMENT_SEPARATOR + String(n).padStart(SEGMENT_DIGITS, "0");
}

export function segmentPrefix(bucket: string): string {
  return bucket + SEGMENT_SEPARATOR;
}

/** The bucket and segment number of a key; `segment` 0 = the base value. */
export function parseBucketKey(key: string): { bucket: string; segment: number } {
  const i = key.lastIndexOf(SEGMENT_SEPARATOR);
  if (i >= 0 && key.length - i - 1 === SEGMENT_DIGITS) {
    const digits = key.slice(i + 1);
    if (/^\d+$/.test(digits)) return { bucket: key.slice(0, i), segment: Number(digits) };
  }
  return { bucket: key, segment: 0 };
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

/** Orders keys bucket by bucket (buckets in code-point order), base first, then segments ascending. */
export function orderBucketKeys(keys: readonly string[]): string[] {
  const parsed = keys.map((key) => ({ key, ...parseBucketKey(key) }));
  parsed.sort((a, b) => compareKeys(a.bucket, b.bucket) || a.segment - b.segment);
  return parsed.map((p) => p.key);
}

/** Highest segment number among `keys` of one bucket (0 if none). */
export function maxSegment(keys: readonly string[], bucket: string): number {
  let max = 0;
  for (const k of keys) {
    const p = parseBucketKey(k);
    if (p.bucket === bucket && p.segment > max) max = p.segment;
  }
  return max;
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
