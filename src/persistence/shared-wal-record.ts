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

/**
 * The record naming `stores`, as a WAL frame. `forgotten`: stores compactGraph's forgetStores dropped, each with the
 * highest frame seq the WAL held then (restore of such a store below it, with no frame above its baseline, is refused:
 * wal-compacted-past-baseline). Readers before it ignore the field.
 */
export function sharedWalRecordFrame(graphName: string, stores: SharedWalStores, forgotten?: SharedWalStores): WALFrame {
  const now = Date.now() * 1_000_000;
  const payload: Record<string, number> = {};
  for (const [id, seq] of stores) payload[id] = seq;
  const gone: Record<string, number> = {};
  for (const [id, seq] of forgotten ?? []) gone[id] = seq;
  const change = { kind: KIND, stores: payload, ...(forgotten !== undefined && forgotten.size > 0 ? { forgotten: gone } : {}) };
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
 * The stores recorded for `graphName` in stored bytes `bytes` (undefined: no record). Throws StorageError
 * `corrupt-store` (details.key) for anything else under the key: frames those stores need must not be deleted on a
 * guess, so a compaction stops with nothing changed.
 */
export function parseSharedWalRecord(graphName: string, bytes: Uint8Array | undefined): SharedWalStores | undefined {
  return parseSharedWalRecordAll(graphName, bytes)?.stores;
}

/** The record's stores and the stores it says were forgotten (empty when none), as parseSharedWalRecord throws. */
export function parseSharedWalRecordAll(
  graphName: string,
  bytes: Uint8Array | undefined,
): { stores: SharedWalStores; forgotten: SharedWalStores } | undefined {
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

/** The record held by `frame` (the WAL tier's decoded value of its key). */
function recordOfFrame(graphName: string, frame: WALFrame): { stores: SharedWalStores; forgotten: SharedWalStores } {
  const refuse = refuser(graphName);
  const payload = frame.change.change as { kind?: unknown; stores?: unknown; forgotten?: unknown } | null;
  if (frame.change.structure !== STRUCTURE || !isRecord(payload) || payload.kind !== KIND || !isRecord(payload.stores)) {
    return refuse("holds another value");
  }
  if (payload.forgotten !== undefined && !isRecord(payload.forgotten)) return refuse("holds another value");
  const seqs = (entries: Record<string, unknown>): Map<string, number> => {
    const out = new Map<string, number>();
    for (const [id, seq] of Object.entries(entries)) {
      if (!Number.isSafeInteger(seq) || (seq as number) < 0) return refuse(`gives store ${JSON.stringify(id)} a seq that is not an integer >= 0`);
      out.set(id, seq as number);
    }
    return out;
  };
  return { stores: seqs(payload.stores), forgotten: seqs(payload.forgotten ?? {}) };
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

/** The lowest seq in `stores` (Infinity: none). */
export function lowestNeeded(stores: SharedWalStores | undefined): number {
  let low = Number.POSITIVE_INFINITY;
  for (const seq of stores?.values() ?? []) if (seq < low) low = seq;
  return low;
}
