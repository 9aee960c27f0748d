/**
 * The lasting record, in a WAL's own store, of the other snapshot stores that restore from that WAL (pairs of one
 * attach sharing a WAL tier, docs/design.md §3.7, §3.10): per store, the baseline seq it still needs. Every
 * compaction of the graph there, in any process (compactGraph, the engine's folds, the CLI), keeps the frames above
 * the lowest. Attach writes it through the WAL tier (shared-wal.ts); it ends with a later attach of the graph on that
 * WAL store, or explicitly (compactGraph's `forgetStores`, the CLI's `compact --forget-store`).
 *
 * Key `<graph>/wal/` U+001F + 20 zeros: under the graph's WAL prefix (so an attach's listing of its frames finds it
 * at no extra cost), never a frame key (our readers take exactly 20 digits after `<graph>/wal/`), never a graph's
 * baseline key (a name ending in U+001F + 20 digits is refused, §3.27), and no append-log segment (their numbers
 * start at 1). The value is a well-formed WAL frame (seq 0, lifecycle "ownership", a change kind no replay applies),
 * so the WAL tier's own codec stores it, and a reference reader listing `<graph>/wal` skips it as a frame at seq 0,
 * below any baseline. Layer 4 (persistence).
 */
import { RestoreError, StorageError } from "../errors.js";
import { parseJsonBytes } from "../codec/json.js";
import { isRecord } from "../base/records.js";
import { graphWalPrefix } from "../wal/keys.js";
import { parseWalFrame, type WALFrame } from "../wal/frame.js";
import { sealWalFrame } from "../wal/codec.js";
import { tierStore } from "../tier/store-identity.js";
import type { KvStorageTier } from "../tier/types.js";

/** The envelope's `structure` and payload `kind` that mark the record. */
const STRUCTURE = "graphrefly.shared-wal";
const KIND = "sharedWal.stores";

/** The key of graph `graphName`'s record. */
export function sharedWalRecordKey(graphName: string): string {
  return `${graphWalPrefix(graphName)}/\u001f${"0".repeat(20)}`;
}

/** Store id (a lasting one: tier/store-identity.ts) → the baseline seq that store still needs from the WAL. */
export type SharedWalStores = ReadonlyMap<string, number>;

/** A record's contents: the stores it names and the stores it says were forgotten. */
export interface SharedWalRecord {
  /** Store id → the baseline seq that store still needs (these pin frames). */
  readonly stores: SharedWalStores;
  /** Store id → the highest WAL frame seq when the store was dropped (forgetStores, or left out of a later attach). */
  readonly forgotten: SharedWalStores;
  /**
   * Store id → when (ms since the epoch) a live attach handle last wrote the record naming it. Absent in records
   * written before 2026-12-06 (task 172): the record's own time stands for every store then (`recordSeenAt`).
   */
  readonly seen: SharedWalStores;
  /** When the record was written (ms since the epoch). */
  readonly writtenAt: number;
}

/**
 * The record naming `stores`, as a WAL frame. `forgotten`: stores dropped from it (compactGraph's forgetStores, or
 * left out of a later attach), each with the highest frame seq the WAL held then (restore of such a store below it,
 * with no frame above its baseline, is refused: wal-compacted-past-baseline). `seen`: when a live handle last named
 * each store (forgetStores refuses one seen within FORGET_LIVE_WINDOW_MS unless forced). Readers before them ignore
 * both fields.
 */
export function sharedWalRecordFrame(graphName: string, stores: SharedWalStores, forgotten?: SharedWalStores, seen?: SharedWalStores): WALFrame {
  const now = Date.now() * 1_000_000;
  const map = (m: SharedWalStores | undefined): Record<string, number> | undefined => {
    if (m === undefined || m.size === 0) return undefined;
    const out: Record<string, number> = {};
    for (const [id, seq] of m) out[id] = seq;
    return out;
  };
  const gone = map(forgotten);
  const at = map(seen);
  const change = { kind: KIND, stores: map(stores) ?? {}, ...(gone !== undefined ? { forgotten: gone } : {}), ...(at !== undefined ? { seen: at } : {}) };
  return sealWalFrame({
    t: "c",
    lifecycle: "ownership",
    path: graphName,
    change: { structure: STRUCTURE, version: 1, t_ns: now, lifecycle: "ownership", change },
    frame_seq: 0,
    frame_t_ns: now,
  });
}

/**
 * How long after a live handle last named a store in the record compactGraph's forgetStores refuses to forget it
 * without `forceForget` (StorageError `store-live`): the handle's process may still write it, or be restarting.
 */
export const FORGET_LIVE_WINDOW_MS = 60 * 60 * 1_000;

/**
 * How far ahead of this process's clock a `seen` time may lie and still count as a live handle's: clocks of hosts
 * sharing a store (PostgreSQL) differ by this much at most when kept in sync. A time further ahead was written by a
 * clock that ran ahead (a VM clock stepped back since, a host out of sync): how long ago it was written is not known,
 * so it is no evidence that a handle is live (else it would count as live until this clock caught up, days maybe).
 */
export const FORGET_CLOCK_AHEAD_MS = 5 * 60 * 1_000;

/** When a live handle last named `id` in `record` (the record's own time for a record without per-store times). */
export function recordSeenAt(record: SharedWalRecord, id: string): number {
  return record.seen.get(id) ?? record.writtenAt;
}

/**
 * Whether `id` counts as live in `record` at `now` (ms): a live handle named it within FORGET_LIVE_WINDOW_MS before
 * `now`, or up to FORGET_CLOCK_AHEAD_MS after it (clock skew); a time further ahead is not counted (see there).
 */
export function seenLive(record: SharedWalRecord, id: string, now: number): boolean {
  const age = now - recordSeenAt(record, id);
  return age < FORGET_LIVE_WINDOW_MS && age >= -FORGET_CLOCK_AHEAD_MS;
}

/**
 * The `seen` a rewrite of `record` that names `kept` writes (a forget's): each kept store with the time `record` gave
 * it (recordSeenAt), so a store the record had no time for (a record written before 2026-12-06) keeps that record's
 * time, not the rewrite's. A rewrite names nothing afresh: no store may look seen later than a live handle named it.
 */
export function carriedSeen(record: SharedWalRecord, kept: Iterable<string>): Map<string, number> {
  return new Map([...kept].map((id) => [id, recordSeenAt(record, id)]));
}

/**
 * The record an attach writes (docs/design.md §3.10), from the record it found (`prior`, undefined: none) and the
 * WAL's highest frame seq then (`top`): names `ids` (the attach's other stores with a lasting id) at seq 0, seen
 * `now`; keeps every forgotten mark `prior` holds (a store named again keeps its mark until its seq passes it:
 * `passedMarks`); and marks forgotten, at the highest of `top` and its seq, every store `prior` names that `ids`
 * leaves out (this session's writes are a hole in its changes; once compactions delete the frames above its
 * baseline its restore must fail, not return that baseline's older state). Undefined `ids` (no store to name):
 * the record only says what was forgotten.
 */
export function attachRecord(prior: SharedWalRecord | undefined, ids: readonly string[], top: number, now: number): SharedWalRecord {
  const forgotten = new Map(prior?.forgotten ?? []);
  for (const [id, seq] of prior?.stores ?? []) {
    if (ids.includes(id)) continue;
    forgotten.set(id, Math.max(top, seq, forgotten.get(id) ?? 0));
  }
  return {
    stores: new Map(ids.map((id) => [id, 0])),
    forgotten,
    seen: new Map(ids.map((id) => [id, now])),
    writtenAt: now,
  };
}

/** `forgotten` without the marks of stores whose seq in `stores` reached them (their baseline covers the mark). */
export function passedMarks(stores: SharedWalStores, forgotten: SharedWalStores): Map<string, number> {
  return new Map([...forgotten].filter(([id, mark]) => !((stores.get(id) ?? -1) >= mark)));
}

/** Whether two records hold the same stores and marks (times aside): rewriting one as the other changes nothing. */
export function sameRecord(a: SharedWalRecord, b: SharedWalRecord): boolean {
  const same = (x: SharedWalStores, y: SharedWalStores): boolean => x.size === y.size && [...x].every(([id, seq]) => y.get(id) === seq);
  return same(a.stores, b.stores) && same(a.forgotten, b.forgotten);
}

/**
 * The stores recorded for `graphName` in stored bytes `bytes` (undefined: no record). Throws StorageError
 * `corrupt-store` (details.key) for anything else under the key: frames those stores need must not be deleted on a
 * guess, so a compaction stops with nothing changed.
 */
export function parseSharedWalRecord(graphName: string, bytes: Uint8Array | undefined): SharedWalStores | undefined {
  return parseSharedWalRecordAll(graphName, bytes)?.stores;
}

/** The record's stores and the stores it says were forgotten (empty when none), as parseSharedWalRecord throws. */
export function parseSharedWalRecordAll(graphName: string, bytes: Uint8Array | undefined): SharedWalRecord | undefined {
  if (bytes === undefined) return undefined;
  const refuse = refuser(graphName);
  let frame: WALFrame;
  try {
    frame = parseWalFrame(parseJsonBytes(bytes));
  } catch {
    return refuse("does not decode");
  }
  return recordOfFrame(graphName, frame);
}

function refuser(graphName: string): (why: string) => never {
  const key = sharedWalRecordKey(graphName);
  return (why) => {
    throw new StorageError(
      "corrupt-store",
      `graph "${graphName}": the record of snapshot stores sharing its WAL (key ${JSON.stringify(key)}) ${why}; nothing is deleted until it is fixed`,
      { key, graphName },
    );
  };
}

/**
 * The record held by `frame` (the WAL tier's decoded value of its key). Throws as parseSharedWalRecord for anything
 * else.
 */
export function recordOfFrame(graphName: string, frame: WALFrame): SharedWalRecord {
  const refuse = refuser(graphName);
  const payload = frame.change.change as { kind?: unknown; stores?: unknown; forgotten?: unknown; seen?: unknown } | null;
  if (frame.change.structure !== STRUCTURE || !isRecord(payload) || payload.kind !== KIND || !isRecord(payload.stores)) {
    return refuse("holds another value");
  }
  if (payload.forgotten !== undefined && !isRecord(payload.forgotten)) return refuse("holds another value");
  if (payload.seen !== undefined && !isRecord(payload.seen)) return refuse("holds another value");
  const seqs = (entries: Record<string, unknown>): Map<string, number> => {
    const out = new Map<string, number>();
    for (const [id, seq] of Object.entries(entries)) {
      if (!Number.isSafeInteger(seq) || (seq as number) < 0) return refuse(`gives store ${JSON.stringify(id)} a seq that is not an integer >= 0`);
      out.set(id, seq as number);
    }
    return out;
  };
  const t = Number(frame.frame_t_ns);
  return {
    stores: seqs(payload.stores),
    forgotten: seqs(payload.forgotten ?? {}),
    seen: seqs(payload.seen ?? {}),
    writtenAt: Number.isFinite(t) ? Math.floor(t / 1_000_000) : 0,
  };
}

/**
 * Throws forgottenPastBaseline's error for a restore of graph `graphName` from `snapshot`'s baseline at
 * `baselineSeq` with `framesAbove` frames of `wal` above it, when `snapshot` is another store than the WAL's (the
 * record is read only then, and only when no frame is above the baseline: one read more, on that path alone).
 */
export async function refuseForgottenPast(
  snapshot: object,
  wal: KvStorageTier<WALFrame>,
  graphName: string,
  baselineSeq: number,
  framesAbove: number,
): Promise<void> {
  if (framesAbove > 0) return;
  const id = tierStore(snapshot)?.id;
  if (typeof id !== "string" || id === tierStore(wal)?.id) return;
  const err = forgottenPastBaseline(graphName, await wal.load(sharedWalRecordKey(graphName)), id, baselineSeq, framesAbove);
  if (err !== undefined) throw err;
}

/**
 * RestoreError `wal-compacted-past-baseline` when the WAL store's record of graph `graphName` (`frame`: the WAL
 * tier's value of its key) says store `storeId` was forgotten while the WAL held frames up to a seq above
 * `baselineSeq`, the baseline that store restores from, and no frame above that baseline is left (`framesAbove`
 * 0): the compactions after the forget deleted them, so the baseline alone is an older state, not the stored one.
 * (A frame above it that is left but not baselineSeq + 1 is the reader's wal-gap.) Undefined otherwise.
 */
export function forgottenPastBaseline(
  graphName: string,
  frame: WALFrame | undefined,
  storeId: string,
  baselineSeq: number,
  framesAbove: number,
): RestoreError | undefined {
  if (frame === undefined || framesAbove > 0) return undefined;
  const forgottenAt = recordOfFrame(graphName, frame).forgotten.get(storeId);
  if (forgottenAt === undefined || forgottenAt <= baselineSeq) return undefined;
  return new RestoreError(
    "wal-compacted-past-baseline",
    `graph "${graphName}": store ${storeId} restores from its baseline at seq ${baselineSeq}, but it was forgotten from the record of stores sharing the WAL while the WAL held frames up to seq ${forgottenAt}, and no frame above its baseline is left: the changes above seq ${baselineSeq} were compacted away`,
    { graphName, store: storeId, baselineSeq, forgottenAtSeq: forgottenAt },
  );
}

/**
 * The record an earlier session left in the WAL's store, as the seq bootstrap of a later attach finds it
 * (loadPriorRecord): `record` undefined when there is none; `corrupt` (StorageError corrupt-store) when something
 * else is stored under its key.
 */
export interface PriorRecord {
  readonly record: SharedWalRecord | undefined;
  readonly corrupt?: Error;
}

/** Reads the record of `graphName` through WAL tier `wal`. A failed read throws (the bootstrap fails with it). */
export async function loadPriorRecord(graphName: string, wal: KvStorageTier<WALFrame>): Promise<PriorRecord> {
  const frame = await wal.load(sharedWalRecordKey(graphName));
  if (frame === undefined) return { record: undefined };
  try {
    return { record: recordOfFrame(graphName, frame) };
  } catch (err) {
    return { record: undefined, corrupt: err instanceof Error ? err : new Error(String(err)) };
  }
}

/**
 * Ends the record an earlier session left (`prior`), for an attach that names no store in it (a WAL of one pair, or
 * pairs with no lasting store id), whose frames went up to `top` when it started: every store it named is marked
 * forgotten (at the highest of `top` and its seq), earlier marks kept; the record then pins nothing. Saved through
 * `wal` (before the pair deletes dead frames: in call order, so no frame goes before the mark is stored); nothing
 * is saved when it says that already, or when it did not decode (compactions refuse it, restore of a store in it
 * fails corrupt-store: nothing is restored silently). Throws what the tier's save throws.
 */
export function endSharedWalRecord(graphName: string, wal: KvStorageTier<WALFrame>, prior: PriorRecord, top: number): void {
  if (prior.record === undefined) return;
  const next = attachRecord(prior.record, [], top, Date.now());
  if (sameRecord(prior.record, next)) return;
  wal.save(sharedWalRecordKey(graphName), sharedWalRecordFrame(graphName, next.stores, next.forgotten));
}

/** The lowest seq in `stores` (Infinity: none). */
export function lowestNeeded(stores: SharedWalStores | undefined): number {
  let low = Number.POSITIVE_INFINITY;
  for (const seq of stores?.values() ?? []) if (seq < low) low = seq;
  return low;
}
