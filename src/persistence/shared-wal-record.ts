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
import { StorageError } from "../errors.js";
import { parseJsonBytes } from "../codec/json.js";
import { isRecord } from "../base/records.js";
import { graphWalPrefix } from "../wal/keys.js";
import { parseWalFrame, type WALFrame } from "../wal/frame.js";
import { sealWalFrame } from "../wal/codec.js";

/** The envelope's `structure` and payload `kind` that mark the record. */
const STRUCTURE = "graphrefly.shared-wal";
const KIND = "sharedWal.stores";

/** The key of graph `graphName`'s record. */
export function sharedWalRecordKey(graphName: string): string {
  return `${graphWalPrefix(graphName)}/\u001f${"0".repeat(20)}`;
}

/** Store id (a lasting one: tier/store-identity.ts) → the baseline seq that store still needs from the WAL. */
export type SharedWalStores = ReadonlyMap<string, number>;

/** The record naming `stores`, as a WAL frame. */
export function sharedWalRecordFrame(graphName: string, stores: SharedWalStores): WALFrame {
  const now = Date.now() * 1_000_000;
  const payload: Record<string, number> = {};
  for (const [id, seq] of stores) payload[id] = seq;
  return sealWalFrame({
    t: "c",
    lifecycle: "ownership",
    path: graphName,
    change: { structure: STRUCTURE, version: 1, t_ns: now, lifecycle: "ownership", change: { kind: KIND, stores: payload } },
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
  if (bytes === undefined) return undefined;
  const key = sharedWalRecordKey(graphName);
  const refuse = (why: string): never => {
    throw new StorageError(
      "corrupt-store",
      `graph "${graphName}": the record of snapshot stores sharing its WAL (key ${JSON.stringify(key)}) ${why}; nothing is deleted until it is fixed`,
      { key, graphName },
    );
  };
  let frame: WALFrame;
  try {
    frame = parseWalFrame(parseJsonBytes(bytes));
  } catch {
    return refuse("does not decode");
  }
  const payload = frame.change.change as { kind?: unknown; stores?: unknown } | null;
  if (frame.change.structure !== STRUCTURE || !isRecord(payload) || payload.kind !== KIND || !isRecord(payload.stores)) {
    return refuse("holds another value");
  }
  const stores = new Map<string, number>();
  for (const [id, seq] of Object.entries(payload.stores)) {
    if (!Number.isSafeInteger(seq) || (seq as number) < 0) return refuse(`gives store ${JSON.stringify(id)} a seq that is not an integer >= 0`);
    stores.set(id, seq as number);
  }
  return stores;
}

/** The lowest seq in `stores` (Infinity: none). */
export function lowestNeeded(stores: SharedWalStores | undefined): number {
  let low = Number.POSITIVE_INFINITY;
  for (const seq of stores?.values() ?? []) if (seq < low) low = seq;
  return low;
}
