/**
 * The WAL groups of live attach handles (pairs of one attach sharing a WAL tier, docs/design.md §3.7), as
 * compaction sees them (§3.10): a compaction folds the WAL into the baseline of the store it runs on, and the other
 * pairs' baselines, in other stores, still need every frame above them. Three ways keep those frames:
 * - the lasting record in the WAL's store (shared-wal-record.ts), for every compaction in any process: written at
 *   attach (each store at 0) and moved on as the pairs' stored baselines move; it outlives the handle;
 * - compactions in this process ask `sharedWalFloor` (covers stores with no lasting name too, while the handle lives);
 * - the store actor of an engine WAL tier is pinned (the wal-growth watcher's `keepAboveSeq` config), which also
 *   ends a size-rule fold of the graph there.
 * Layer 4 (persistence).
 */
import { StorageError } from "../errors.js";
import type { KvStorageTier, SnapshotStorageTier } from "../tier/types.js";
import { configureStoreWatcher } from "../engine/commit-watchers.js";
import { headOf } from "../tier/json-head.js";
import { tierStore, type TierStore } from "../tier/store-identity.js";
import type { WALFrame } from "../wal/frame.js";
import type { GraphCheckpointRecord } from "./storage-types.js";
import type { WalGroup } from "./attach-outbox.js";
import { attachRecord, passedMarks, sharedWalRecordFrame, sharedWalRecordKey, type PriorRecord } from "./shared-wal-record.js";
import { WAL_GROWTH_WATCHER, type KeepAboveConfig } from "./wal-growth-watcher.js";
import { floorStoreOfTier, ownSharedWalFloors, publishSharedWalFloor } from "./shared-wal-floors.js";

/**
 * A registered group. Held weakly (as attach's claims are): a handle dropped with its graph, never disposed, leaves
 * nothing alive here; its entry goes once its group is collected.
 */
interface LiveGroup {
  readonly graphName: string;
  readonly wal: WeakRef<KvStorageTier<WALFrame>>;
  readonly group: WeakRef<WalGroup>;
  /** Per member (in group order): whether its baseline is in another store than the WAL's, and that store's lasting id. */
  readonly others: readonly boolean[];
  readonly ids: ReadonlyArray<string | undefined>;
  /**
   * A member's baseline is in another store that no record names (a memory store): the lowest such baseline seq
   * read (0 until read), published to the engines' actors (shared-wal-floors.ts) for the folds they start by
   * themselves, under the WAL's store (`floorStore`) and the graph name. Undefined: no such member, or a WAL store
   * no actor can open (`floorStore` undefined: only folds of this thread reach it, and they read `sharedWalFloor`).
   */
  unnamedFloor: number | undefined;
  /** The WAL's store as the floors name it (floorStoreOfTier); undefined: an inline memory or custom backend. */
  readonly floorStore: string | undefined;
  /** Seqs last saved in the WAL store's record, by store id; undefined: no member has a lasting id (no record). */
  readonly recorded: Map<string, number> | undefined;
  /**
   * The record's forgotten marks (carried over from the record an earlier session left, and the stores it named that
   * this session leaves out), each until the seq recorded for that store reaches it.
   */
  forgotten: Map<string, number>;
  /** The record an earlier session left was read and this session's written (saves wait for it). */
  opened: boolean;
  /** Last `keepAboveSeq` sent to the actor of an engine WAL tier (-1: none yet); pins only rise. */
  pinned: number;
  /** A pin update runs; `again`: a baseline moved meanwhile, so it runs once more. */
  pinning: boolean;
  again: boolean;
  /** A record save waits for the WAL tier to drain (it refused with backpressure). */
  saveWaits: boolean;
  /** When (Date.now()) the record was last saved: an idle group saves it again SEEN_REFRESH_MS later. */
  savedAt: number;
  /** The timer that looks for that (`refreshSeen`); undefined once ended. */
  refresher: ReturnType<typeof setInterval> | undefined;
}

/**
 * How long a live group's stores go without a record save while its baselines stay put (an idle handle): then the
 * record is saved again, its `seen` times now. A store a live handle holds thus never looks older than this to
 * forgetStores' live window (FORGET_LIVE_WINDOW_MS, an hour): the window counts from the handle's last sign of life,
 * not from its last baseline move (until 2026-12-06 an idle handle's stores counted as not live after the hour, and a
 * forget right after its process crashed was accepted without force). One record write (~300 bytes) per idle group
 * per period; a group whose baselines move saves it anyway.
 */
export const SEEN_REFRESH_MS = 15 * 60 * 1_000;
/** How often a live group looks whether its record is due again (a quarter of SEEN_REFRESH_MS: at most 4 wakes). */
const SEEN_CHECK_MS = SEEN_REFRESH_MS / 4;

const live = new Set<LiveGroup>();

/**
 * Each group's `report`, held as long as the group is: attach's callback holds its graph (its closure's scope), and a
 * `live` entry holding it kept every handle dropped undisposed, its graph and its floor for good (task 207).
 */
const reporters = new WeakMap<WalGroup, (err: unknown) => void>();

/** Tells the group's handle (nothing once the group was collected: no one is left to hear it). */
function reportOf(entry: LiveGroup, err: unknown): void {
  const group = entry.group.deref();
  if (group !== undefined) reporters.get(group)?.(err);
}

/** A group with a floor collected without dispose: its floor is published again (publishFloor drops the group). */
const floorHolderCollected = new FinalizationRegistry<{ readonly store: string; readonly graphName: string }>((k) =>
  publishFloor(k.store, k.graphName),
);

/**
 * A compaction job of an engine (it runs in the store actor's thread, which sees none of this thread's groups) of
 * `graphName` on the store `isStore` matches that forgets stores, watched from here while it runs
 * (`watchSharedWalJob`): the groups attaching one of those stores meanwhile are told to it through `cell`, memory
 * both threads share. What the groups registering meanwhile need of the WAL is not told here: a store with a lasting
 * id is in the record the job reads again once it listed its frames, a memory store's pair in this thread's floors
 * (shared-wal-floors.ts), which go with the job too.
 */
interface JobWatch {
  readonly graphName: string;
  readonly isStore: (store: TierStore) => boolean;
  /** The job's forgetStores, in order: cell[i] says forget[i] was attached meanwhile. */
  readonly forget: readonly string[];
  readonly cell: Int32Array;
}

const watched = new Set<JobWatch>();

/** What a job reads from its cell (SharedWalJobWatch, in the actor's thread). */
export interface SharedWalJobWatch {
  /** The job's forgetStores that a group of the watching thread attached since the job was asked (empty: none). */
  attachedForgotten(): string[];
}

/**
 * Watches, from this thread, an engine's compaction job of `graphName` on the store `isStore` matches that forgets
 * the stores `forget` (at least one) while it runs in the store's actor: a WAL group of this thread registering on a
 * WAL tier of that store from now on (inline tiers, any engine's) that attaches one of them is told to the job through
 * the returned `cell` (a SharedArrayBuffer: it crosses to the actor's thread shared, not copied), which the job reads
 * with `readSharedWalJobWatch`. Call `end()` once the job settled. Until 2026-12-06 a forced forget of a store a
 * group attached meanwhile went through (docs/design.md §3.10). Until task 207 the cell also said that any group of
 * the graph registered, and the job then kept every frame: under attaches per request no fold deleted any.
 */
export function watchSharedWalJob(
  graphName: string,
  isStore: (store: TierStore) => boolean,
  forget: readonly string[],
): { readonly cell: SharedArrayBuffer; end(): void } {
  const cell = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * forget.length);
  const watch: JobWatch = { graphName, isStore, forget: [...forget], cell: new Int32Array(cell) };
  watched.add(watch);
  return { cell, end: () => void watched.delete(watch) };
}

/**
 * The job's view of its cell (`watchSharedWalJob`), read where the job runs; undefined for anything else (the job's
 * args crossed by structured clone: any value may arrive).
 */
export function readSharedWalJobWatch(cell: unknown, forget: readonly string[]): SharedWalJobWatch | undefined {
  if (!(cell instanceof SharedArrayBuffer) || cell.byteLength !== Int32Array.BYTES_PER_ELEMENT * forget.length) return undefined;
  const flags = new Int32Array(cell);
  return { attachedForgotten: () => forget.filter((_id, i) => Atomics.load(flags, i) !== 0) };
}

/** Tells the watched jobs on `walStore` of `graphName` which of their forgotten stores a group of `ids` attaches. */
function tellWatchedJobs(graphName: string, walStore: TierStore, ids: ReadonlyArray<string | undefined>): void {
  for (const watch of watched) {
    if (watch.graphName !== graphName || !watch.isStore(walStore)) continue;
    watch.forget.forEach((id, i) => {
      if (ids.includes(id)) Atomics.store(watch.cell, i, 1);
    });
  }
}

/**
 * Registers `group` (the pairs of one attach sharing tier `wal`) until the returned call. Before any frame of the
 * group can reach the WAL tier (once their seq bootstrap read the record an earlier session left, before it ends):
 * the record in the WAL's store names every other store with a lasting id at seq 0 (keep every frame), replacing the
 * earlier one but keeping its forgotten marks, and marking forgotten the stores it named that this session leaves
 * out (they no longer restore from this WAL once it writes: its attach seq is a hole in their changes); an engine
 * WAL tier's actor is pinned at 0 at once. The group's `baselineMoved` moves both on. `report` hears a record that
 * could not be saved, or an earlier one that did not decode (overwritten).
 */
export function registerWalGroup(
  graphName: string,
  wal: KvStorageTier<WALFrame>,
  group: WalGroup,
  report: (err: unknown) => void,
): () => Promise<void> {
  const walStore = storeOf(wal);
  const others = group.members.map((m) => storeOf(m.snapshot).id !== walStore.id);
  // Only a store another process can find again is named: a memory store's pair is covered while this handle lives.
  const ids = group.members.map((m, i) => {
    const id = storeOf(m.snapshot).id;
    return others[i] === true && typeof id === "string" ? id : undefined;
  });
  const named = ids.filter((id): id is string => id !== undefined);
  const floorStore = floorStoreOfTier(walStore);
  const entry: LiveGroup = {
    graphName,
    wal: new WeakRef(wal),
    group: new WeakRef(group),
    others,
    ids,
    unnamedFloor: floorStore !== undefined && ids.some((id, i) => id === undefined && others[i] === true) ? 0 : undefined,
    floorStore,
    recorded: named.length > 0 ? new Map(named.map((id) => [id, 0])) : undefined,
    forgotten: new Map(),
    opened: false,
    pinned: -1,
    pinning: false,
    again: false,
    saveWaits: false,
    savedAt: 0,
    refresher: undefined,
  };
  live.add(entry);
  reporters.set(group, report);
  // Dropped without dispose: its floor goes once it is collected, not at the next change of its slot (maybe never).
  if (floorStore !== undefined && entry.unnamedFloor !== undefined) floorHolderCollected.register(group, { store: floorStore, graphName }, entry);
  // Before the group's record is saved (its tiers' writes go out once this call returns): a forced forget of one of
  // its stores, rewriting the record after this, is refused.
  if (watched.size > 0) tellWatchedJobs(graphName, walStore, ids);
  // Before any frame of the group is written: a fold that lists one reads the floors after listing, so it keeps it
  // (the folds an engine's actor starts by itself, autoCompact and fold rules, and compactGraphInEngine's jobs).
  if (floorStore !== undefined && entry.unnamedFloor !== undefined) publishFloor(floorStore, graphName);
  if (entry.recorded !== undefined) {
    // Unref'd: a live handle's refresh never keeps the process alive. It holds the entry (weak references only).
    entry.refresher = setInterval(() => refreshSeen(entry), SEEN_CHECK_MS);
    entry.refresher.unref?.();
  }
  // A record the tier refuses for good (a codec of one's own that refuses it) is heard whoever flushes: the pairs'
  // flushes take a refusal of a key that is not a frame for another writer's.
  const unwatch = entry.recorded === undefined ? undefined : wal.watchRefusals?.(sharedWalRecordKey(graphName), (_key, err) => reportOf(entry, err));
  if (entry.recorded !== undefined) {
    // Written once the pairs' seq bootstrap read the record an earlier session left (and before it resolves, so
    // before any frame of the group): its forgotten marks carry over and the stores it named that this session
    // leaves out are marked forgotten (written blind, the record lost them: restore of such a store then returned
    // its baseline's older state once compactions deleted the frames above it).
    group.recordFound = (prior: PriorRecord, top: number) => {
      if (entry.opened) return; // a rebaseline's bootstrap: the record is this session's already
      entry.opened = true;
      if (prior.corrupt !== undefined) report(prior.corrupt); // overwritten: what it said cannot be read anyway
      entry.forgotten = new Map(attachRecord(prior.record, named, top, 0).forgotten);
      saveRecord(entry, wal);
    };
  } else if (group.members[0] !== undefined) group.members[0].endsSharedRecord = true; // no store to name: an old record ends
  pin(entry, wal, 0);
  group.baselineMoved = () => void repin(entry);
  return async () => {
    group.baselineMoved = undefined;
    live.delete(entry);
    floorHolderCollected.unregister(entry);
    if (floorStore !== undefined && entry.unnamedFloor !== undefined) publishFloor(floorStore, graphName); // its memory store restores from the WAL no more
    stopRefresh(entry);
    detach(entry, wal);
    // The record and the pin stay: a compaction after this must not delete what the other stores need. A later
    // attach of the graph on the store replaces them (its record or its deletion of it; a fold rule, or `unpinSharedWal`).
    // A record saved after the handle's last flush (its baselines moved with it) is flushed now: left pending, a later
    // flush of the tier would bring it back over a later session's (or be lost with a store's worker).
    if (entry.recorded === undefined || !entry.opened) return;
    try {
      if (entry.saveWaits) {
        await wal.drained?.();
        entry.saveWaits = false;
        saveRecord(entry, wal);
      }
      await wal.flush();
    } catch {
      // the handle's own flush reported what fails the tier (a refusal of the record: the watch)
    } finally {
      unwatch?.();
    }
  };
}

/**
 * Lifts the pin of `graphName` in the actor of engine WAL tier `wal` (a later attach that writes the graph's WAL
 * through one pair: stores left out of it no longer restore from this WAL anyway, their own-baseline seqs are holes).
 */
export function unpinSharedWal(graphName: string, wal: KvStorageTier<WALFrame>): void {
  const config: KeepAboveConfig = { keepAboveSeq: Number.POSITIVE_INFINITY, floors: ownSharedWalFloors() };
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

/**
 * The lasting ids of the stores whose pairs a live group of this process has on a WAL tier of the store `isStore`
 * matches, for `graphName`: they restore from that WAL now (compactGraph's forgetStores refuses them).
 */
export function attachedSharedWalStores(graphName: string, isStore: (store: TierStore) => boolean): Set<string> {
  const ids = new Set<string>();
  for (const entry of live) {
    const wal = entry.wal.deref();
    if (entry.graphName !== graphName || wal === undefined || entry.group.deref() === undefined || !isStore(storeOf(wal))) continue;
    for (const id of entry.ids) if (id !== undefined) ids.add(id);
  }
  return ids;
}

/**
 * Publishes the lowest `unnamedFloor` of the live groups of `graphName` on a WAL of store `store` (shared-wal-floors.ts)
 * to the actors of the engines of this thread: the folds of that graph on that store read it, no other's (until task
 * 213 it was published per graph-name slot, and held every store's folds of the graph). A group collected without
 * dispose is dropped here.
 */
function publishFloor(store: string, graphName: string): void {
  let floor: number | undefined;
  for (const entry of live) {
    if (entry.unnamedFloor === undefined || entry.floorStore !== store || entry.graphName !== graphName) continue;
    if (entry.group.deref() === undefined || entry.wal.deref() === undefined) {
      live.delete(entry);
      continue;
    }
    floor = Math.min(floor ?? Number.POSITIVE_INFINITY, entry.unnamedFloor);
  }
  publishSharedWalFloor(store, graphName, floor);
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
  // The stores attached here are never reported as stale pins: their baselines follow their own rule.
  const config: KeepAboveConfig = { keepAboveSeq: seq, attached: attachedIds(entry), floors: ownSharedWalFloors() };
  try {
    if (wal.configureCommitWatcher?.(WAL_GROWTH_WATCHER, entry.graphName, config) === true) entry.pinned = seq;
  } catch {
    // a closed tier: nothing more is written through it
  }
}

/** The record ids of `entry`'s stores. */
function attachedIds(entry: LiveGroup): string[] {
  return entry.ids.filter((id): id is string => id !== undefined);
}

/** The handle ended: its pin stays, but its stores no longer count as attached (a stale pin of theirs is reported). */
function detach(entry: LiveGroup, wal: KvStorageTier<WALFrame>): void {
  if (entry.pinned < 0) return;
  const config: KeepAboveConfig = { keepAboveSeq: entry.pinned, attached: [], floors: ownSharedWalFloors() };
  try {
    wal.configureCommitWatcher?.(WAL_GROWTH_WATCHER, entry.graphName, config);
  } catch {
    // A closed tier: its store's actor may outlive it (the pin keeps it open), so through the store (review r231).
    void configureStoreWatcher(wal, WAL_GROWTH_WATCHER, entry.graphName, config)?.catch(() => undefined);
  }
}

/**
 * Saves the record (entry.recorded) through the WAL tier: it commits in call order with the group's frames, so the
 * first one lands no later than the first frame. Under backpressure it is saved again once the tier drained (that
 * wait was asked before any frame of the group could wait for room: first come, first served).
 */
function saveRecord(entry: LiveGroup, wal: KvStorageTier<WALFrame>, refreshing = false): void {
  if (entry.saveWaits || entry.recorded === undefined || !entry.opened) return;
  entry.forgotten = passedMarks(entry.recorded, entry.forgotten);
  // Every store of the group is seen now: forgetStores refuses them for a while (FORGET_LIVE_WINDOW_MS).
  const now = Date.now();
  const seen = new Map([...entry.recorded.keys()].map((id) => [id, now]));
  try {
    wal.save(sharedWalRecordKey(entry.graphName), sharedWalRecordFrame(entry.graphName, entry.recorded, entry.forgotten, seen));
    entry.savedAt = now;
  } catch (err) {
    if (err instanceof StorageError && err.code === "closed") {
      stopRefresh(entry); // the tiers were closed under the handle: nothing more is written through them
      if (refreshing) return; // a refresh the handle never asked for: its own writes report the closed tier
    }
    if (err instanceof StorageError && err.code === "backpressure" && wal.drained !== undefined) {
      entry.saveWaits = true;
      wal.drained().then(
        () => {
          if (!live.has(entry)) return; // ended: its end saves and flushes it
          entry.saveWaits = false;
          saveRecord(entry, wal); // the latest seqs
        },
        (e: unknown) => reportOf(entry, e),
      );
      return;
    }
    reportOf(entry, err);
  }
}

/**
 * A live group's periodic look (SEEN_CHECK_MS): its record is saved again once SEEN_REFRESH_MS passed since its last
 * save (its `seen` times then now). Stops once the handle ended or its group was collected (dropped without dispose).
 */
function refreshSeen(entry: LiveGroup): void {
  const wal = entry.wal.deref();
  if (!live.has(entry) || wal === undefined || entry.group.deref() === undefined) {
    live.delete(entry);
    stopRefresh(entry);
    return;
  }
  if (!entry.opened || entry.saveWaits) return; // the first save is the bootstrap's; a waiting one saves the latest
  if (Date.now() - entry.savedAt < SEEN_REFRESH_MS) return;
  saveRecord(entry, wal, true);
}

function stopRefresh(entry: LiveGroup): void {
  if (entry.refresher === undefined) return;
  clearInterval(entry.refresher);
  entry.refresher = undefined;
}

/**
 * Reads the pairs' stored baselines again; moves the record's seqs up to them (each only up: a head that could not
 * be read says 0) and the pin up to the lowest. One read at a time per group.
 */
async function repin(entry: LiveGroup): Promise<void> {
  // An inline WAL tier and no lasting store: sharedWalFloor reads its baselines. Not when a member is a memory store
  // (the floors): its floor stayed 0 while the group lived, and every fold of the graph kept every frame (task 207).
  if (entry.pinned < 0 && entry.recorded === undefined && entry.unnamedFloor === undefined) return;
  if (entry.pinning) {
    entry.again = true;
    return;
  }
  entry.pinning = true;
  try {
    do {
      entry.again = false;
      const wal = entry.wal.deref();
      const group = entry.group.deref();
      if (wal === undefined || group === undefined) return;
      const seqs = await Promise.all(
        group.members.map((m, i) => (entry.others[i] === true ? storedSeq(m.snapshot, entry.graphName) : Number.POSITIVE_INFINITY)),
      );
      if (!live.has(entry)) return;
      let moved = false;
      entry.ids.forEach((id, i) => {
        const seq = seqs[i] as number;
        if (id === undefined || entry.recorded === undefined || seq <= (entry.recorded.get(id) ?? 0)) return;
        entry.recorded.set(id, seq);
        moved = true;
      });
      if (moved) saveRecord(entry, wal);
      if (entry.unnamedFloor !== undefined) {
        // Only up, as the pin: a head that could not be read says 0.
        const unnamed = Math.min(...seqs.filter((_s, i) => entry.ids[i] === undefined && entry.others[i] === true));
        if (unnamed > entry.unnamedFloor && entry.floorStore !== undefined) {
          entry.unnamedFloor = unnamed;
          publishFloor(entry.floorStore, entry.graphName);
        }
      }
      if (entry.pinned >= 0) pin(entry, wal, Math.min(...seqs));
    } while (entry.again && live.has(entry));
  } finally {
    entry.pinning = false;
  }
}
