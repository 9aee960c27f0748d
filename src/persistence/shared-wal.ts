/**
 * The WAL groups of live attach handles (pairs of one attach sharing a WAL tier, docs/design.md §3.7), as
 * compaction sees them (§3.10): a compaction folds the WAL into the baseline of the store it runs on, and the other
 * pairs' baselines, in other stores, still need every frame above them. Compactions in this process ask
 * `sharedWalFloor` how far they may delete; the store actor of an engine WAL tier (autoCompact) is told it by a
 * pin (the wal-growth watcher's `keepAboveSeq` config), moved on as the pairs' baselines are stored.
 * A WAL shared with pairs this process does not know (another process, a handle disposed) is not seen here.
 * Layer 4 (persistence).
 */
import type { KvStorageTier, SnapshotStorageTier } from "../tier/types.js";
import { headOf } from "../tier/json-head.js";
import { tierStore, type TierStore } from "../tier/store-identity.js";
import type { WALFrame } from "../wal/frame.js";
import type { GraphCheckpointRecord } from "./storage-types.js";
import type { WalGroup } from "./attach-outbox.js";
import { WAL_GROWTH_WATCHER, type KeepAboveConfig } from "./wal-growth-watcher.js";

/**
 * A registered group. Held weakly (as attach's claims are): a handle dropped with its graph, never disposed, leaves
 * nothing alive here; its entry goes once its group is collected.
 */
interface LiveGroup {
  readonly graphName: string;
  readonly wal: WeakRef<KvStorageTier<WALFrame>>;
  readonly group: WeakRef<WalGroup>;
  /** Last `keepAboveSeq` sent to the actor of an engine WAL tier (-1: none yet); pins only rise. */
  pinned: number;
  /** A pin update runs; `again`: a baseline moved meanwhile, so it runs once more. */
  pinning: boolean;
  again: boolean;
}

const live = new Set<LiveGroup>();

/**
 * Registers `group` (the pairs of one attach sharing tier `wal`) until the returned call. An engine WAL tier's actor
 * is pinned at once, before any frame of the group reaches it: it deletes none of the graph's frames (no fold) until
 * the other pairs' stored baselines are known. The group's `baselineMoved` moves the pin on.
 */
export function registerWalGroup(graphName: string, wal: KvStorageTier<WALFrame>, group: WalGroup): () => void {
  const refs = { wal: new WeakRef(wal), group: new WeakRef(group) };
  const entry: LiveGroup = { graphName, ...refs, pinned: -1, pinning: false, again: false };
  live.add(entry);
  pin(entry, wal, 0);
  group.baselineMoved = () => void repin(entry);
  return () => {
    group.baselineMoved = undefined;
    live.delete(entry);
    // The pin stays in the actor: a fold retried after this must not delete what the other stores need. A later
    // attach of the graph on the store replaces it (a fold rule, or `unpinSharedWal`).
  };
}

/**
 * Lifts the pin of `graphName` in the actor of engine WAL tier `wal` (a later attach that writes the graph's WAL
 * through one pair: stores left out of it no longer restore from this WAL anyway, their own-baseline seqs are holes).
 */
export function unpinSharedWal(graphName: string, wal: KvStorageTier<WALFrame>): void {
  const config: KeepAboveConfig = { keepAboveSeq: Number.POSITIVE_INFINITY };
  try {
    wal.configureCommitWatcher?.(WAL_GROWTH_WATCHER, graphName, config);
  } catch {
    // a closed tier: attach's own writes report it
  }
}

/**
 * The highest seq up to which a compaction of `graphName` on the store `isStore` matches may delete WAL frames: the
 * lowest baseline seq stored by a pair of a live group whose WAL tier is on that store (0 when one has none or it
 * cannot be read), leaving out pairs whose baseline is that store's (the compaction replaces it). Undefined: no
 * live group shares that WAL.
 */
export async function sharedWalFloor(graphName: string, isStore: (store: TierStore) => boolean): Promise<number | undefined> {
  const reads: Array<Promise<number>> = [];
  for (const entry of live) {
    if (entry.graphName !== graphName) continue;
    const wal = entry.wal.deref();
    const group = entry.group.deref();
    if (wal === undefined || group === undefined) {
      live.delete(entry); // dropped without dispose
      continue;
    }
    if (!isStore(storeOf(wal))) continue;
    for (const m of group.members) {
      if (!isStore(storeOf(m.snapshot))) reads.push(storedSeq(m.snapshot, graphName));
    }
    if (reads.length === 0) reads.push(Promise.resolve(Number.POSITIVE_INFINITY)); // every baseline is that store's
  }
  if (reads.length === 0) return undefined;
  return Math.min(...(await Promise.all(reads)));
}

/** The store of `tier`: a tier no factory made is its own store. */
function storeOf(tier: object): TierStore {
  return tierStore(tier) ?? { id: tier };
}

/** Seq of the baseline of `graphName` stored in `snapshot`: 0 when there is none or it cannot be read. */
async function storedSeq(snapshot: SnapshotStorageTier<GraphCheckpointRecord>, graphName: string): Promise<number> {
  try {
    const head = snapshot.loadHead !== undefined ? await snapshot.loadHead(graphName) : headOf(await snapshot.load(graphName));
    return head !== undefined && head.name === graphName && head.seq !== undefined ? head.seq : 0;
  } catch {
    return 0;
  }
}

/** Tells the actor of engine WAL tier `wal` to keep the graph's frames above `seq` (no-op for an inline tier). */
function pin(entry: LiveGroup, wal: KvStorageTier<WALFrame>, seq: number): void {
  if (seq <= entry.pinned) return;
  const config: KeepAboveConfig = { keepAboveSeq: seq };
  try {
    if (wal.configureCommitWatcher?.(WAL_GROWTH_WATCHER, entry.graphName, config) === true) entry.pinned = seq;
  } catch {
    // a closed tier: nothing more is written through it
  }
}

/** Reads the pairs' stored baselines again and moves the pin up to the lowest (one read at a time per group). */
async function repin(entry: LiveGroup): Promise<void> {
  if (entry.pinned < 0) return; // an inline WAL tier: compactions in this process ask sharedWalFloor
  if (entry.pinning) {
    entry.again = true;
    return;
  }
  entry.pinning = true;
  try {
    do {
      entry.again = false;
      const wal = entry.wal.deref();
      if (wal === undefined) return;
      const store = storeOf(wal);
      const floor = await sharedWalFloor(entry.graphName, (s) => s.id === store.id);
      if (floor !== undefined && live.has(entry)) pin(entry, wal, floor);
    } while (entry.again && live.has(entry));
  } finally {
    entry.pinning = false;
  }
}
