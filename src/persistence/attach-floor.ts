/**
 * What a later attach of a graph must number above, kept in process memory by store and graph name (task 252,
 * review r248). An outbox that ended (disposed, or retired once its graph was collected) may leave frames its WAL
 * tier still holds pending after a failed last flush: the tier retries them on its own timer, after a new attach
 * listed the store without them. Without a floor the new attach reused their seqs and they landed above its
 * baseline, over what its flush() had acknowledged. With it the new baseline goes above every seq they carry, so
 * they land below it, where every reader ignores them (stored-graph.ts: frames at or below the baseline's seq).
 * Also the retirements in flight, so an attach waits for them whether or not it found the dropped handle's claim
 * (an attach that took the claim over and then threw released it). Layer: persistence (tier identities only).
 */
import { StorageError } from "../errors.js";
import { tierStore } from "../tier/store-identity.js";
import type { KvStorageTier, SnapshotStorageTier } from "../tier/types.js";
import { writesEndedBy } from "../tier/write-verdict.js";

/** Per store (a path, or a store object held weakly) and graph name. */
class ByStore<V> {
  readonly #byPath = new Map<string, Map<string, V>>();
  readonly #byObject = new WeakMap<object, Map<string, V>>();

  get(id: string | object, name: string): V | undefined {
    return (typeof id === "string" ? this.#byPath.get(id) : this.#byObject.get(id))?.get(name);
  }

  set(id: string | object, name: string, value: V): void {
    let names = typeof id === "string" ? this.#byPath.get(id) : this.#byObject.get(id);
    if (names === undefined) {
      names = new Map();
      if (typeof id === "string") this.#byPath.set(id, names);
      else this.#byObject.set(id, names);
    }
    names.set(name, value);
  }

  delete(id: string | object, name: string): void {
    const names = typeof id === "string" ? this.#byPath.get(id) : this.#byObject.get(id);
    names?.delete(name);
    if (names?.size !== 0) return;
    if (typeof id === "string") this.#byPath.delete(id);
    else this.#byObject.delete(id);
  }
}

function storeId(tier: object): string | object {
  return tierStore(tier)?.id ?? tier;
}

interface Floor {
  readonly seq: number;
}

const floors = new ByStore<Floor>();
const retirements = new ByStore<Set<Retiring>>();

/** The seq a new attach of `graphName` over `wal`'s store numbers above (0: none held). */
export function floorOf(wal: object, graphName: string): number {
  return floors.get(storeId(wal), graphName)?.seq ?? 0;
}

/** Retry bounds of the check that an ended outbox's frames left the tier (unref'd timers: they keep no process). */
const FIRST_CHECK_MS = 100;
const MAX_CHECK_MS = 30_000;

/**
 * Holds `seq` (the highest seq an ended outbox handed `wal`, some of it maybe still pending there) as the floor of
 * `graphName` on `wal`'s store, until the tier wrote what it held (writePending resolves: a listing counts those
 * frames now) or closed (what it held is gone). Bounded: one number per store and graph name, dropped then; a
 * hand-written tier without writePending keeps its number (it cannot say when its writes landed).
 */
export function holdFloor(wal: KvStorageTier<unknown>, graphName: string, seq: number): void {
  const id = storeId(wal);
  const held = floors.get(id, graphName);
  if (held !== undefined && held.seq >= seq) return; // a higher one stands (and is checked by its own writer)
  const floor: Floor = { seq };
  floors.set(id, graphName, floor);
  if (wal.writePending === undefined) return;
  let wait = FIRST_CHECK_MS;
  const check = (): void => {
    if (floors.get(id, graphName) !== floor) return; // a higher floor replaced it
    (wal.writePending as () => Promise<void>).call(wal).then(
      () => {
        if (floors.get(id, graphName) === floor) floors.delete(id, graphName);
      },
      (err: unknown) => {
        if ((err as { code?: unknown } | null)?.code === "closed") {
          if (floors.get(id, graphName) === floor) floors.delete(id, graphName);
          return;
        }
        wait = Math.min(wait * 2, MAX_CHECK_MS);
        setTimeout(check, wait).unref?.();
      },
    );
  };
  check();
}

/**
 * Snapshot tiers of ended outboxes (held weakly), by store and graph name: each may still hold the outbox's last
 * baseline, put back after a failed flush, and retry it on its own timer (task 254). A tier over another backend
 * object than a later attach's is on another write lane (src/tier/write-lane.ts), so the later attach's write of the
 * key does not make that record stale: its retry landed the older baseline over the newer one (measured: restore
 * refused with wal-gap, or gave the ended handle's unacknowledged a=5 instead of the new handle's acknowledged
 * a=100). Cleared by the next attach of the name over the store. Only outboxes that ended with writes they never saw
 * durable are noted (the others left nothing to land), and an entry goes once its tier was collected or, for a tier
 * without `discard`, once it settled (it has nothing left to drop): an app that attaches graphs of ever new names
 * over one file keeps no entry per name (review r264 F3).
 * `unsettled`: a tier without `discard` (hand-written) whose outbox ended with writes it never saw durable, until
 * that tier's flush succeeded or its store took no more writes (task 260).
 */
interface Ended {
  readonly ref: WeakRef<SnapshotStorageTier<unknown>>;
  unsettled: boolean;
  /** Checks the tier again now (set while unsettled). */
  recheck?: () => void;
}
const endedSnapshots = new ByStore<Ended[]>();

/** Where an entry is listed: its store id (a path, or the store object held weakly) and graph name. */
interface EntryPlace {
  readonly id: string | WeakRef<object>;
  readonly name: string;
  readonly entry: Ended;
}

/** Removes `entry` from its list (the list too once empty). */
function removeEntry(id: string | object, graphName: string, entry: Ended): void {
  const ended = endedSnapshots.get(id, graphName);
  const i = ended?.indexOf(entry) ?? -1;
  if (ended === undefined || i < 0) return;
  ended.splice(i, 1);
  if (ended.length === 0) endedSnapshots.delete(id, graphName);
}

/** A noted tier collected: its entry goes (it can land nothing more). The store object, if any, is held weakly. */
const collectedTiers = new FinalizationRegistry<EntryPlace>(({ id, name, entry }) => {
  const store = typeof id === "string" ? id : id.deref();
  if (store !== undefined) removeEntry(store, name, entry);
});

/** How many ended snapshot tiers are noted for `graphName` on `tier`'s store (for tests: the entries stay bounded). */
export function endedSnapshotsNoted(tier: object, graphName: string): number {
  return endedSnapshots.get(storeId(tier), graphName)?.length ?? 0;
}

/**
 * Notes `snapshot`, the snapshot tier of an outbox of `graphName` that ended (disposed, or retired); `unacknowledged`:
 * it handed out writes it never saw durable (its last baseline may be pending there).
 */
export function noteEndedSnapshot(snapshot: SnapshotStorageTier<unknown>, graphName: string, unacknowledged: boolean): void {
  if (!unacknowledged) return; // all it handed out is durable: nothing of it is left to land
  const id = storeId(snapshot);
  let ended = endedSnapshots.get(id, graphName);
  if (ended === undefined) endedSnapshots.set(id, graphName, (ended = []));
  let entry = ended.find((e) => e.ref.deref() === snapshot);
  if (entry === undefined) {
    ended.push((entry = { ref: new WeakRef(snapshot), unsettled: false }));
    collectedTiers.register(snapshot, { id: typeof id === "string" ? id : new WeakRef(id), name: graphName, entry });
  }
  if (typeof snapshot.discard === "function" || entry.unsettled) return;
  entry.unsettled = true;
  settleWhenWritten(snapshot, entry, () => removeEntry(id, graphName, entry));
}

/**
 * A hand-written tier (no `discard`) cannot drop the ended outbox's baseline: the entry stays unsettled until the
 * tier wrote what it held (writePending, else flush, resolves: nothing of the outbox is left to land later) or its
 * store takes no writes for good (writesEndedBy: closed, not-owner, read-only, corrupt-store; also a close() that
 * rejected so, which closed the tier and dropped what it held): nothing of it can land then (review r264 F2: such a
 * store refused every later attach, for good). A passing failure (a full disk, EIO) keeps it: the tier retries and
 * may land the baseline once the store recovers (docs/api.md names the way out: the tier's rollback()). Checked
 * again with backoff (unref'd timers) like a floor, and at once when an attach was refused. `settled`: the entry
 * is dropped then (it has nothing left to drop).
 */
function settleWhenWritten(tier: SnapshotStorageTier<unknown>, entry: Ended, settled: () => void): void {
  let wait = FIRST_CHECK_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running = false;
  const ref = new WeakRef(tier);
  const check = (): void => {
    const t = ref.deref();
    if (t === undefined || !entry.unsettled || running) return;
    if (timer !== undefined) clearTimeout(timer); // one chain of checks: a recheck replaces the timer's
    timer = undefined;
    running = true;
    let written: Promise<void>;
    try {
      written = t.writePending !== undefined ? t.writePending() : t.flush();
    } catch (err) {
      written = Promise.reject(err);
    }
    written.then(
      () => {
        running = false;
        if (entry.unsettled) settled();
        entry.unsettled = false;
      },
      (err: unknown) => {
        running = false;
        if (writesEndedBy(err) || (err as { code?: unknown } | null)?.code === "closed") {
          if (entry.unsettled) settled();
          entry.unsettled = false;
          return;
        }
        wait = Math.min(wait * 2, MAX_CHECK_MS);
        timer = setTimeout(check, wait);
        timer.unref?.();
      },
    );
  };
  entry.recheck = check;
  check();
}

/**
 * Throws StorageError("predecessor-pending") when a new attach of `graphName` over `snapshot`'s store would start
 * while an ended handle's hand-written snapshot tier (no `discard`) there may still hold that handle's
 * unacknowledged baseline: its retry would land below-seq over the new baseline, and the tier offers no way to drop
 * it (docs/api.md). Called before the attach takes anything (its claims), and again once it took them and ended the
 * retirements in flight of a dropped handle of the graph (cedeRetiring: their tiers are noted only then, review r264
 * F6), inside attach's `released` so a refusal gives the claims back.
 */
export function refuseUnsettledBaselines(graphName: string, snapshot: object): void {
  const id = storeId(snapshot);
  const ended = endedSnapshots.get(id, graphName);
  for (const e of ended ?? []) {
    const tier = e.ref.deref();
    // The new attach's own tier: its save of the key comes after the ended one's through the same tier (api.md).
    if (tier === undefined || tier === snapshot || !e.unsettled) continue;
    e.recheck?.(); // a flush of it that succeeded since lets the next attempt through
    throw new StorageError(
      "predecessor-pending",
      `attachSnapshotStorage: an ended handle of graph "${graphName}" left its last baseline unwritten in snapshot tier ` +
        `"${tier.name}" of ${typeof id === "string" ? `store "${id}"` : "this store"}, which has no discard(key) to ` +
        "drop it: attach again once that tier's flush() resolved (or it was closed, or rolled back), or give the tier " +
        "discard(key)",
      typeof id === "string" ? { graph: graphName, tier: tier.name, store: id } : { graph: graphName, tier: tier.name },
    );
  }
}

/**
 * A new attach of `graphName` writes its baseline through `snapshot`: what the ended outboxes' snapshot tiers over
 * its store still hold of the graph's baseline key (its name) for a retry is discarded (`discard`), as a later
 * landing of the key on their own lane would drop it. Their flush() failed, so no one was told it was durable, and
 * the new attach baseline is the live graph above every seq they carry. Only that key: a user's saves of other keys
 * in the same tier stay pending and are written (design §3.7: tiers may be shared; task 260: a rollback dropped
 * them). No live outbox writes the key (claims refuse a second handle of the graph on the store), and the new
 * attach's own record of it is saved after this call.
 */
export function dropEndedBaselines(graphName: string, snapshot: object): void {
  const id = storeId(snapshot);
  const ended = endedSnapshots.get(id, graphName);
  if (ended === undefined) return;
  endedSnapshots.delete(id, graphName);
  for (const e of ended) {
    const tier = e.ref.deref();
    e.unsettled = false; // no longer checked: a new attach went ahead
    if (tier === undefined || typeof tier.discard !== "function") continue;
    try {
      tier.discard(graphName);
    } catch {
      // closed: what it held is gone already
    }
  }
}

/** A retirement in flight: `cede` ends it at once (its outbox disposed: nothing more is numbered or deleted). */
interface Retiring {
  readonly done: Promise<void>;
  readonly cede: () => void;
}

/** Notes a retirement in flight of an outbox of `graphName` over these tiers' stores, until it settled. */
export function noteRetiring(graphName: string, tiers: readonly object[], done: Promise<void>, cede: () => void): void {
  const ids = tiers.map(storeId);
  const r: Retiring = { done, cede };
  for (const id of ids) {
    let set = retirements.get(id, graphName);
    if (set === undefined) retirements.set(id, graphName, (set = new Set()));
    set.add(r);
  }
  const settled = (): void => {
    for (const id of ids) {
      const set = retirements.get(id, graphName);
      set?.delete(r);
      if (set?.size === 0) retirements.delete(id, graphName);
    }
  };
  done.then(settled, settled);
}

/**
 * Ends the retirements in flight of outboxes of `graphName` over the stores of `tiers` (a new attach of the graph
 * there): each is disposed, which holds its highest seq as the floor, so the new attach numbers above whatever they
 * handed out and need not wait for their last flush, which a dead or full store may never settle (review r248
 * finding 3: the new handle's flush stayed unsettled and its onError silent). What they held unnumbered is dropped:
 * no one was told it was durable, and the new baseline is the live graph.
 */
export function cedeRetiring(graphName: string, tiers: ReadonlyArray<object | undefined>): void {
  for (const tier of tiers) {
    if (tier === undefined) continue;
    for (const r of retirements.get(storeId(tier), graphName) ?? []) r.cede();
  }
}
