/**
 * What a write weighs against `maxPendingBytes` (docs/design.md §3.19), one formula for inline tiers and engine
 * stores so both refuse at the same point. A record's heap cost is more than its value: 1 M pending kv saves of
 * `null` under 7-character keys held ~83 B each (map entries, the key string), so a weight of the value alone let
 * a 4 MiB bound hold 42× itself. The figures were measured with `heapUsed` over 1 M pending writes.
 */

/** A pending record's fixed cost (pending map entry, its weight entry, op slots): measured ~60 B, rounded up. */
export const RECORD_OVERHEAD = 64;
/** One append call's chunk per bucket (its object and entries array): measured ~74 B for a 1-entry call. */
export const CHUNK_OVERHEAD = 64;
/** An appended entry's slot in its chunk's array. */
export const ENTRY_OVERHEAD = 8;
/**
 * A flush() call posted after writes (one joining an earlier call costs nothing, §3.19 "Flush calls"): its waiter,
 * op, promises and its place in the actor's chain until answered. Measured against a locked SQLite file through the
 * engine: ~1.5 KB of main-thread heap each (50,000 save + flush pairs: +76 MB heap, +256 MB RSS under a 4 MiB bound).
 */
export const FLUSH_CALL_WEIGHT = 2048;

/**
 * What a tier's flush() call posted now weighs, `due` of its calls being unanswered already: the first nothing (one
 * per tier, bounded anyway; weighed, a bound under FLUSH_CALL_WEIGHT refused every write while any flush was due on a
 * healthy store), each further one FLUSH_CALL_WEIGHT.
 */
export function flushCallWeight(due: number): number {
  return due === 0 ? 0 : FLUSH_CALL_WEIGHT;
}
/** Floor under the average committed write that weighs a value nothing walked (1 B for tiny values otherwise). */
export const MIN_VALUE_ESTIMATE = 16;

/** A key's heap: 2 bytes per UTF-16 unit (V8 stores ASCII in one, so this errs on the heavy side). O(1). */
export function keyWeight(key: string): number {
  return 2 * key.length;
}

/** A kv or snapshot record: overhead + key + value (`valueBytes`: exact, or the value check's estimate). */
export function recordWeight(key: string, valueBytes: number): number {
  return RECORD_OVERHEAD + keyWeight(key) + Math.ceil(valueBytes);
}

/** One append call: a chunk per bucket, and each entry's slot and bytes (`entryBytes`: per entry). */
export function entriesWeight(chunks: number, entries: number, entryBytes: number): number {
  return chunks * CHUNK_OVERHEAD + Math.ceil(entries * (ENTRY_OVERHEAD + entryBytes));
}
