/**
 * A model of one store's tiers (docs/design.md §3.5, §3.16, §3.30; docs/api.md Tiers), run against the real tiers
 * by store-model*.property tests. Six tiers of ONE store: three kv tiers (sync-through, a 2 ms debounce, 60 s held),
 * two append-logs sharing one bucket (sync-through, held) and a held snapshot tier whose records share the kv keys
 * (one pending record per key, task 270).
 *
 * The documented semantics the model keeps:
 * - the store takes writes in call order: a sync-through tier's write lands at its save, a debounced tier's pending
 *   writes land at its flush() call (its batch is taken then), a delete at its call (it also drops its own tier's
 *   pending value of the key), the last landing wins per key across tiers, and a shared bucket's entries keep the
 *   order their batches landed in;
 * - rollback() drops that tier's pending (un-flushed) writes, never what a flush called before it took;
 * - close() flushes what is pending (tiers closed one by one, in a fixed order), so after close + reopen every read
 *   sees exactly the model's state;
 * - the 2 ms tier's timer may fire at any await: the model keeps every possible world (fired or not) and an
 *   observation keeps the worlds it matches;
 * - a resolved flush stored every value its tier offered before the call (or a value that landed after it);
 * - saveMany is its saves in order; a close joins the flushes and deletes still running (reopenNow);
 * - a failed flush (targets with faults: `failFlush` of the held kv tier or the snapshot tier) rejects and puts its
 *   values back, each keeping its place in call order: its tier's retry (a flush, a close) lands it unless a write
 *   of the key landed since the failure (another tier's save, flush or delete: design §3.30), or the tier wrote the
 *   key again (its newer value replaces it, a delete drops it);
 * - a job's write of a key (targets with faults: `job`, what a compaction's commit does, through the backend's write
 *   lane) lands at its call like a delete, and a put-back value of the key is stale after it (design §3.30).
 * Not modelled, as the docs promise neither outcome: rolling back a tier whose write is in flight on an asynchronous
 * backend ("a flush that started before it writes nothing more": it may be on the wire, or still listing its
 * bucket). The runner lets such a tier's writes settle first (Target.asyncBackend).
 * Observations are made when nothing the test started is unsettled: every flush and delete awaited, the
 * sync-through tiers flushed (a no-op for the model: their writes already landed).
 */
import fc from "fast-check";
import type { AppendLogStorageTier, BaseStorageTier, KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";

export const KEYS = ["a", "b", "c"] as const;
export type Key = (typeof KEYS)[number];
export const BUCKET = "log";

export type KvTier = "kvS" | "kvB" | "kvC";
export type LogTier = "logS" | "logC";
export type TierId = KvTier | LogTier | "snap";
export const KV_TIERS: readonly KvTier[] = ["kvS", "kvB", "kvC"];
export const LOG_TIERS: readonly LogTier[] = ["logS", "logC"];
/** Creation and close order. */
export const TIER_IDS: readonly TierId[] = ["kvS", "kvB", "kvC", "logS", "logC", "snap"];
/** The 2 ms debounce tier: its timer may fire at any await. */
export const SHORT_DEBOUNCE_MS = 2;
export const HELD_MS = 60_000;

export type Op =
  | { t: "save"; tier: KvTier; key: Key }
  | { t: "saveMany"; tier: KvTier; keys: Key[] }
  | { t: "snapSave"; key: Key }
  | { t: "append"; tier: LogTier; n: number }
  | { t: "delete"; tier: KvTier; key: Key }
  | { t: "rollback"; tier: TierId }
  | { t: "flushNow"; tier: TierId }
  | { t: "flushLater"; tier: TierId }
  | { t: "tick" }
  | { t: "settle" }
  | { t: "readConsistent" }
  | { t: "reopen" }
  /** close + reopen without awaiting the flushes and deletes still running first (a close joins them). */
  | { t: "reopenNow" }
  /** flush() of a held tier whose write fails once (targets with `failNext`); nothing pending: no op. */
  | { t: "failFlush"; tier: HeldTier }
  /** A job (no tier) writes a kv value of `key` in its place on the write lane and reports it (targets with `job`). */
  | { t: "job"; key: Key };

/** The tiers a failFlush op fails: held (60 s) ones, whose values stay pending between explicit flushes. */
export type HeldTier = "kvC" | "snap";

export interface SnapRecord {
  name: string;
  v: number;
}

/** The tiers of one store, as a target opens them. */
export interface StoreTiers {
  kvS: KvStorageTier<unknown>;
  kvB: KvStorageTier<unknown>;
  kvC: KvStorageTier<unknown>;
  logS: AppendLogStorageTier<number>;
  logC: AppendLogStorageTier<number>;
  snap: SnapshotStorageTier<SnapRecord>;
}

export interface OpenStore {
  readonly tiers: StoreTiers;
  /** Read-only tiers of the same store whose reads run inside readConsistent (engine SQLite / PostgreSQL only). */
  readonly consistent?: { kv: KvStorageTier<unknown>; log: AppendLogStorageTier<number> };
  /** Closes every tier (in TIER_IDS order) and opens the same store again, as a fresh process would. */
  reopen(): Promise<OpenStore>;
  /** Closes everything (tiers, backend / engine); the store's files stay for the target's cleanup. */
  close(): Promise<void>;
  /** Targets with faults: the next backend call `op` fails once; `failures()` counts the failures injected so far. */
  failNext?(op: "write" | "writeBatch"): void;
  failures?(): number;
  /** Drops an injected failure no call met. */
  heal?(): void;
  /**
   * Targets with faults: a job writes `value` (a kv value) under `key` as a compaction's commit does: in its place on
   * the backend's write lane, telling the tiers holding put-back values (WriteLane.exclusive, landedNow).
   */
  job?(key: Key, value: number): Promise<void>;
}

export interface Target {
  readonly name: string;
  /** Engine targets of a read-only-capable store: the readConsistent op runs there. */
  readonly hasConsistent: boolean;
  /**
   * The backend answers asynchronously (PostgreSQL): a tier's write may still be in flight when it is rolled back,
   * and "a flush that started before it writes nothing more" (api rollback) may then land it or not (an append-log
   * lists its bucket before it writes). Not a promise the docs make either way, so the runner lets the tier's
   * writes settle before it rolls it back there.
   */
  readonly asyncBackend: boolean;
  /** Its stores fail writes on demand (OpenStore.failNext): the ops include failFlush. */
  readonly faults?: boolean;
  open(): Promise<OpenStore>;
  /** Removes what the target made for its stores (temporary directories). */
  cleanup?(): Promise<void>;
}

/** Tier options per id (the target adds what its mode needs). */
export function tierOptions(): {
  kvS: { name: string; debounceMs?: number };
  kvB: { name: string; debounceMs: number };
  kvC: { name: string; debounceMs: number; retry: typeof HELD_RETRY };
  logS: { name: string; keyOf: () => string };
  logC: { name: string; debounceMs: number; keyOf: () => string };
  snap: { name: string; debounceMs: number; retry: typeof HELD_RETRY };
} {
  return {
    kvS: { name: "kvS" },
    kvB: { name: "kvB", debounceMs: SHORT_DEBOUNCE_MS },
    kvC: { name: "kvC", debounceMs: HELD_MS, retry: HELD_RETRY },
    logS: { name: "logS", keyOf: () => BUCKET },
    logC: { name: "logC", debounceMs: HELD_MS, keyOf: () => BUCKET },
    snap: { name: "snap", debounceMs: HELD_MS, retry: HELD_RETRY },
  };
}

/** The tiers failFlush fails retry only when flushed (or closed): a retry timer would land them at any await. */
const HELD_RETRY = { initialMs: HELD_MS, maxMs: HELD_MS } as const;

// ------------------------------------------------------------------------------------------------- model

/** A value as the store holds it, JSON: a kv number or a snapshot record. */
type Token = string;

interface World {
  store: Map<Key, Token>;
  log: number[];
  kvB: Map<Key, Token>;
  kvC: Map<Key, Token>;
  logC: number[];
  /** The snapshot tier's pending records, one per key (task 270), in the order of their keys' latest saves. */
  snap: Map<Key, Token>;
  /** Landings counted in this world, and the count at each key's last landing (a save, a flush's value, a delete). */
  seq: number;
  landedAt: Map<Key, number>;
  /** Pending values a failed flush put back: the count of landings at the failure (see failFlush). */
  kvCHeld: Map<Key, number>;
  snapHeld: Map<Key, number>;
}

const kvToken = (n: number): Token => JSON.stringify(n);
const snapToken = (key: Key, n: number): Token => JSON.stringify({ name: key, v: n });

function cloneWorld(w: World): World {
  return {
    store: new Map(w.store),
    log: [...w.log],
    kvB: new Map(w.kvB),
    kvC: new Map(w.kvC),
    logC: [...w.logC],
    snap: new Map(w.snap),
    seq: w.seq,
    landedAt: new Map(w.landedAt),
    kvCHeld: new Map(w.kvCHeld),
    snapHeld: new Map(w.snapHeld),
  };
}

function worldId(w: World): string {
  const m = (x: ReadonlyMap<Key, Token | number>): string => JSON.stringify([...x].sort());
  const held = `${m(w.kvCHeld)}|${m(w.snapHeld)}|${m(w.landedAt)}`;
  return `${m(w.store)}|${w.log.join(",")}|${m(w.kvB)}|${m(w.kvC)}|${w.logC.join(",")}|${m(w.snap)}|${held}`;
}

/** `key` lands in `w` (`v` undefined: deleted). */
function landKey(w: World, key: Key, v: Token | undefined): void {
  if (v === undefined) w.store.delete(key);
  else w.store.set(key, v);
  w.landedAt.set(key, ++w.seq);
}

/** Whether a put-back value of `key`, held since `heldAt` landings, is stale: a write of the key landed since. */
function stale(w: World, key: Key, heldAt: number | undefined): boolean {
  return heldAt !== undefined && (w.landedAt.get(key) ?? 0) > heldAt;
}

function stateId(store: ReadonlyMap<Key, Token>, log: readonly number[]): string {
  return `${JSON.stringify([...store].sort())}|${log.join(",")}`;
}

/** Lands a tier's pending writes in a world (its flush was called, or its timer fired, or it closed). */
function land(w: World, tier: TierId): void {
  switch (tier) {
    case "kvB":
      for (const [k, v] of w.kvB) landKey(w, k, v);
      w.kvB.clear();
      return;
    case "kvC":
      for (const [k, v] of w.kvC) if (!stale(w, k, w.kvCHeld.get(k))) landKey(w, k, v);
      w.kvC.clear();
      w.kvCHeld.clear();
      return;
    case "logC":
      w.log.push(...w.logC);
      w.logC = [];
      return;
    case "snap":
      for (const [k, v] of w.snap) if (!stale(w, k, w.snapHeld.get(k))) landKey(w, k, v);
      w.snap.clear();
      w.snapHeld.clear();
      return;
    case "kvS":
    case "logS":
      return; // sync-through: nothing pending
  }
}

/** What a resolved flush must find: the values of its batch, or a value of the key landed later. */
interface FlushClaim {
  readonly what: string;
  readonly kv: Array<[Key, Token]>;
  readonly entries: number[];
  /** Landing index at the call: landings after it may have replaced the batch's values. */
  readonly at: number;
}

export class Model {
  private worlds: World[] = [
    {
      store: new Map(),
      log: [],
      kvB: new Map(),
      kvC: new Map(),
      logC: [],
      snap: new Map(),
      seq: 0,
      landedAt: new Map(),
      kvCHeld: new Map(),
      snapHeld: new Map(),
    },
  ];
  /** Every landing on a key in call order (undefined: a delete), for the claims of resolved flushes. */
  private readonly landings: Array<[Key, Token | undefined]> = [];
  /** Every kvB save (its timer may land any of them at a time the model does not know). */
  private readonly kvBSaves: Array<[Key, Token]> = [];
  private next = 0;

  value(): number {
    return ++this.next;
  }

  private each(f: (w: World) => void): void {
    for (const w of this.worlds) f(w);
  }

  save(tier: KvTier, key: Key, n: number): void {
    const v = kvToken(n);
    if (tier === "kvS") {
      this.each((w) => landKey(w, key, v));
      this.landings.push([key, v]);
    } else {
      this.each((w) => {
        w[tier].set(key, v);
        if (tier === "kvC") w.kvCHeld.delete(key); // its newer value replaces the put-back one
      });
      if (tier === "kvB") this.kvBSaves.push([key, v]);
    }
  }

  snapSave(key: Key, n: number): void {
    const v = snapToken(key, n);
    this.each((w) => {
      // Replaces the key's pending record only (its put-back one too); other keys' records stay (task 270).
      w.snap.delete(key);
      w.snap.set(key, v);
      w.snapHeld.delete(key);
    });
  }

  append(tier: LogTier, entries: number[]): void {
    if (tier === "logS") this.each((w) => w.log.push(...entries));
    else this.each((w) => w.logC.push(...entries));
  }

  /** A job's write of `key` (see Op "job"): it lands at its call, after what was called before it. */
  job(key: Key, n: number): void {
    const v = kvToken(n);
    this.each((w) => landKey(w, key, v));
    this.landings.push([key, v]);
  }

  delete(tier: KvTier, key: Key): void {
    this.each((w) => {
      landKey(w, key, undefined);
      if (tier !== "kvS") w[tier].delete(key);
      if (tier === "kvC") w.kvCHeld.delete(key);
    });
    this.landings.push([key, undefined]);
  }

  rollback(tier: TierId): void {
    this.each((w) => {
      if (tier === "kvB") w.kvB.clear();
      else if (tier === "kvC") {
        w.kvC.clear();
        w.kvCHeld.clear();
      } else if (tier === "logC") w.logC = [];
      else if (tier === "snap") {
        w.snap.clear();
        w.snapHeld.clear();
      }
    });
  }

  /**
   * How many backend ops a flush of `tier` writes now (one: a `write`, more: a `writeBatch`): its pending values
   * not stale. Undefined when the worlds disagree (whether a put-back value is stale may depend on kvB's timer).
   */
  flushOps(tier: HeldTier): number | undefined {
    const count = (w: World): number =>
      tier === "kvC"
        ? [...w.kvC.keys()].filter((k) => !stale(w, k, w.kvCHeld.get(k))).length
        : [...w.snap.keys()].filter((k) => !stale(w, k, w.snapHeld.get(k))).length;
    const n = count(this.worlds[0]!);
    return this.worlds.every((w) => count(w) === n) ? n : undefined;
  }

  /**
   * flush() of `tier` failed (its write failed once): its values are put back, each keeping the count of landings at
   * its first failure, so its retry knows what landed since (`stale`).
   */
  failFlush(tier: HeldTier): void {
    this.each((w) => {
      if (tier === "kvC") {
        for (const k of w.kvC.keys()) if (!w.kvCHeld.has(k)) w.kvCHeld.set(k, w.seq);
      } else for (const k of w.snap.keys()) if (!w.snapHeld.has(k)) w.snapHeld.set(k, w.seq);
    });
  }

  /**
   * flush() of `tier` called now: its pending lands. Returns what the flush claims once resolved (from the first
   * world: every world holds the same pending for a tier other than kvB, whose claims are checked loosely).
   */
  flush(tier: TierId, what: string): FlushClaim {
    const w0 = this.worlds[0]!;
    // A put-back value made stale by a later landing is not written: the claim leaves it out.
    const kv: Array<[Key, Token]> =
      tier === "kvB" || tier === "kvC"
        ? [...w0[tier]].filter(([k]) => tier === "kvB" || !stale(w0, k, w0.kvCHeld.get(k)))
        : tier === "snap"
          ? [...w0.snap].filter(([k]) => !stale(w0, k, w0.snapHeld.get(k)))
          : [];
    const entries = tier === "logC" ? [...w0.logC] : [];
    const claim: FlushClaim = { what, kv: tier === "kvB" ? [] : kv, entries, at: this.landings.length };
    for (const [k, v] of claim.kv) this.landings.push([k, v]);
    this.each((w) => land(w, tier));
    this.dedupe();
    return claim;
  }

  /** close() of every tier, in TIER_IDS order: each lands its pending. */
  closeAll(): void {
    for (const tier of TIER_IDS) {
      const w0 = this.worlds[0]!;
      if (tier === "kvC") for (const kv of w0.kvC) if (!stale(w0, kv[0], w0.kvCHeld.get(kv[0]))) this.landings.push(kv);
      if (tier === "snap") for (const kv of w0.snap) if (!stale(w0, kv[0], w0.snapHeld.get(kv[0]))) this.landings.push(kv);
      this.each((w) => land(w, tier));
    }
    this.dedupe();
  }

  /** An await: kvB's timer may fire now (its pending lands) or not. */
  awaitPoint(): void {
    const more: World[] = [];
    for (const w of this.worlds) {
      if (w.kvB.size === 0) continue;
      const fired = cloneWorld(w);
      land(fired, "kvB");
      more.push(fired);
    }
    if (more.length === 0) return;
    this.worlds.push(...more);
    this.dedupe();
  }

  private dedupe(): void {
    const seen = new Map<string, World>();
    for (const w of this.worlds) seen.set(worldId(w), w);
    this.worlds = [...seen.values()];
  }

  /** Keeps the worlds whose store reads as observed; returns a description of the mismatch when none does. */
  observe(store: ReadonlyMap<Key, Token>, log: readonly number[]): string | undefined {
    const got = stateId(store, log);
    const matching = this.worlds.filter((w) => stateId(w.store, w.log) === got);
    if (matching.length > 0) {
      this.worlds = matching;
      return undefined;
    }
    const expected = [...new Set(this.worlds.map((w) => stateId(w.store, w.log)))];
    return `observed ${got}; the model allows ${expected.join("  OR  ")}`;
  }

  /** Whether a resolved flush's claim holds for what was read after it resolved. */
  checkClaim(claim: FlushClaim, store: ReadonlyMap<Key, Token | undefined>, log: readonly number[]): string | undefined {
    const problems: string[] = [];
    for (const [k, v] of claim.kv) {
      const allowed = new Set<Token | undefined>([v]);
      for (let i = claim.at; i < this.landings.length; i++) if (this.landings[i]![0] === k) allowed.add(this.landings[i]![1]);
      for (const [bk, bv] of this.kvBSaves) if (bk === k) allowed.add(bv);
      const got = store.get(k);
      if (!allowed.has(got)) problems.push(`${k}: stored ${String(got)}, expected one of ${[...allowed].map(String).join(", ")}`);
    }
    let from = 0;
    for (const e of claim.entries) {
      const i = log.indexOf(e, from);
      if (i < 0) {
        problems.push(`entry ${e} missing from [${log.join(",")}] (claimed [${claim.entries.join(",")}])`);
        break;
      }
      from = i + 1;
    }
    return problems.length === 0 ? undefined : `${claim.what} resolved but ${problems.join("; ")}`;
  }
}

// ------------------------------------------------------------------------------------------------ runner

async function readState(
  kv: KvStorageTier<unknown>,
  log: AppendLogStorageTier<number>,
): Promise<{ store: Map<Key, Token>; log: number[] }> {
  const store = new Map<Key, Token>();
  const values = await Promise.all(KEYS.map((k) => kv.load(k)));
  KEYS.forEach((k, i) => {
    if (values[i] !== undefined) store.set(k, JSON.stringify(values[i]));
  });
  const { entries } = await log.loadEntries({ keyFilter: BUCKET });
  return { store, log: entries };
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `ops` on a fresh store of `target` beside the model; returns every discrepancy found (empty: none). A
 * call that throws or a flush that rejects is a discrepancy too (nothing here is refused or fails).
 */
export async function runOps(target: Target, ops: readonly Op[]): Promise<string[]> {
  const found: string[] = [];
  const model = new Model();
  let s = await target.open();
  /** Promises the test started and has not awaited yet, per tier (flushes and deletes). */
  const outstanding = new Map<TierId, Promise<void>[]>();
  const track = (tier: TierId, p: Promise<void>): void => {
    const list = outstanding.get(tier);
    if (list) list.push(p);
    else outstanding.set(tier, [p]);
  };
  /** Sync-through tiers that wrote since they were last flushed (their write may be in flight). */
  const dirty = new Set<TierId>();
  const fail = (what: string) => (err: unknown) => {
    found.push(`${what} rejected: ${err instanceof Error ? `${(err as { code?: string }).code ?? err.name}: ${err.message}` : String(err)}`);
  };
  const awaitTier = async (tier: TierId): Promise<void> => {
    const list = outstanding.get(tier) ?? [];
    outstanding.delete(tier);
    if (dirty.delete(tier)) list.push(s.tiers[tier].flush().catch(fail(`flush of sync-through ${tier}`)));
    if (list.length === 0) return;
    await Promise.all(list);
    model.awaitPoint();
  };
  const awaitAll = async (): Promise<void> => {
    for (const tier of TIER_IDS) await awaitTier(tier);
  };
  /** Set while the store closes and opens again: a claim's read waits for the new tiers. */
  let reopening: Promise<unknown> | undefined;
  const claimCheck = (claim: FlushClaim) => async () => {
    for (;;) {
      await reopening;
      const read = s;
      let state: Awaited<ReturnType<typeof readState>>;
      try {
        state = await readState(read.tiers.kvC, read.tiers.logC);
      } catch (err) {
        // A reopen began while it read (no earlier write of the runner's to wait for): the new tiers hold the claim too.
        if (read !== s || reopening !== undefined) continue;
        throw err;
      }
      const problem = model.checkClaim(claim, state.store, state.log);
      if (problem !== undefined) found.push(problem);
      return;
    }
  };
  const observe = async (what: string, read: () => Promise<{ store: Map<Key, Token>; log: number[] }>): Promise<void> => {
    const state = await read();
    model.awaitPoint(); // the 2 ms tier's timer may have fired before the read
    const problem = model.observe(state.store, state.log);
    if (problem !== undefined) found.push(`${what}: ${problem}`);
  };

  try {
    for (const [i, o] of ops.entries()) {
      if (found.length > 0) break;
      const at = `op ${i} ${JSON.stringify(o)}`;
      try {
        switch (o.t) {
          case "save": {
            const n = model.value();
            s.tiers[o.tier].save(o.key, n);
            model.save(o.tier, o.key, n);
            if (o.tier === "kvS") dirty.add("kvS");
            break;
          }
          case "saveMany": {
            const entries = o.keys.map((k) => [k, model.value()] as const);
            s.tiers[o.tier].saveMany!(entries);
            for (const [k, n] of entries) model.save(o.tier, k, n);
            if (o.tier === "kvS") dirty.add("kvS");
            break;
          }
          case "snapSave": {
            const n = model.value();
            s.tiers.snap.save({ name: o.key, v: n });
            model.snapSave(o.key, n);
            break;
          }
          case "append": {
            const entries = Array.from({ length: o.n }, () => model.value());
            s.tiers[o.tier].appendEntries(entries);
            model.append(o.tier, entries);
            if (o.tier === "logS") dirty.add("logS");
            break;
          }
          case "delete":
            track(o.tier, s.tiers[o.tier].delete(o.key).catch(fail(at)));
            model.delete(o.tier, o.key);
            break;
          case "rollback":
            if (target.asyncBackend) await awaitTier(o.tier);
            s.tiers[o.tier].rollback();
            model.rollback(o.tier);
            break;
          case "flushNow":
          case "flushLater": {
            const claim = model.flush(o.tier, at);
            const p = s.tiers[o.tier].flush().then(claimCheck(claim), fail(at));
            if (o.tier === "kvS" || o.tier === "logS") dirty.delete(o.tier);
            if (o.t === "flushLater") track(o.tier, p);
            else {
              await p;
              model.awaitPoint();
            }
            break;
          }
          case "failFlush": {
            const store = s;
            if (store.failNext === undefined || store.failures === undefined || store.heal === undefined) break;
            // Nothing in flight and nothing of kvB's timer to come: the one failure is this flush's write.
            await awaitAll();
            const kvB = model.flush("kvB", `${at} (kvB first)`);
            await s.tiers.kvB.flush().then(claimCheck(kvB), fail(`${at} (kvB first)`));
            model.awaitPoint();
            const ops = model.flushOps(o.tier);
            if (ops === undefined || ops === 0) break;
            const before = store.failures();
            store.failNext(ops > 1 ? "writeBatch" : "write");
            const failed = await s.tiers[o.tier].flush().then(
              () => false,
              () => true,
            );
            store.heal();
            if (!failed || store.failures() !== before + 1) found.push(`${at}: the flush did not fail (${store.failures() - before} failures)`);
            model.failFlush(o.tier);
            model.awaitPoint();
            break;
          }
          case "job": {
            const job = s.job;
            if (job === undefined) break;
            const n = model.value();
            const p = job(o.key, n);
            model.job(o.key, n);
            await p.catch(fail(at));
            model.awaitPoint();
            break;
          }
          case "tick":
            await pause(SHORT_DEBOUNCE_MS + 1);
            model.awaitPoint();
            break;
          case "settle":
            await awaitAll();
            await observe(at, () => readState(s.tiers.kvC, s.tiers.logC));
            model.awaitPoint();
            break;
          case "readConsistent": {
            await awaitAll();
            const c = s.consistent;
            if (c === undefined) break;
            await observe(at, () => c.kv.readConsistent!(() => readState(c.kv, c.log)));
            model.awaitPoint();
            break;
          }
          case "reopen":
          case "reopenNow":
            if (o.t === "reopen") await awaitAll();
            model.closeAll();
            dirty.clear(); // close flushed them
            reopening = s.reopen();
            s = (await reopening) as OpenStore;
            reopening = undefined;
            await awaitAll(); // reopenNow: what the close joined settled with it
            await observe(`${at} (after close + reopen)`, () => readState(s.tiers.kvC, s.tiers.logC));
            break;
        }
      } catch (err) {
        fail(at)(err);
      }
    }
    if (found.length === 0) {
      await awaitAll();
      model.closeAll();
      s = await s.reopen();
      await observe("end (after close + reopen)", () => readState(s.tiers.kvC, s.tiers.logC));
    }
  } finally {
    for (const list of outstanding.values()) await Promise.allSettled(list);
    await s.close().catch(fail("closing the store"));
  }
  return found;
}

/** Closes tiers one by one in TIER_IDS order (close() flushes what is pending). */
export async function closeTiers(tiers: StoreTiers, extra: readonly BaseStorageTier[] = []): Promise<void> {
  for (const id of TIER_IDS) await tiers[id].close();
  for (const t of extra) await t.close();
}

// ------------------------------------------------------------------------------------------------ ops

const keyArb = fc.constantFrom(...KEYS);

/** Random op sequences; `consistent`: the target runs readConsistent. */
export function opsArb(consistent: boolean, maxLength = 24, faults = false): fc.Arbitrary<Op[]> {
  const tierArb = fc.constantFrom(...TIER_IDS);
  const failFlush = fc.record({ t: fc.constant("failFlush" as const), tier: fc.constantFrom<HeldTier>("kvC", "snap") });
  // Only where the target fails writes: the other targets' sequences for their seeds stay as they were.
  const job = fc.record({ t: fc.constant("job" as const), key: keyArb });
  const faulty = faults
    ? [
        { weight: 3, arbitrary: failFlush as fc.Arbitrary<Op> },
        { weight: 2, arbitrary: job as fc.Arbitrary<Op> },
      ]
    : [];
  const op: fc.Arbitrary<Op> = fc.oneof(
    ...faulty,
    { weight: 8, arbitrary: fc.record({ t: fc.constant("save" as const), tier: fc.constantFrom(...KV_TIERS), key: keyArb }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant("snapSave" as const), key: keyArb }) },
    {
      weight: 2,
      arbitrary: fc.record({ t: fc.constant("saveMany" as const), tier: fc.constantFrom(...KV_TIERS), keys: fc.array(keyArb, { minLength: 2, maxLength: 3 }) }),
    },
    { weight: 4, arbitrary: fc.record({ t: fc.constant("append" as const), tier: fc.constantFrom(...LOG_TIERS), n: fc.integer({ min: 1, max: 2 }) }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant("delete" as const), tier: fc.constantFrom(...KV_TIERS), key: keyArb }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant("rollback" as const), tier: tierArb }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant("flushNow" as const), tier: tierArb }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant("flushLater" as const), tier: tierArb }) },
    { weight: 2, arbitrary: fc.constant({ t: "tick" as const }) },
    { weight: 2, arbitrary: fc.constant({ t: consistent ? ("readConsistent" as const) : ("settle" as const) }) },
    { weight: 1, arbitrary: fc.constant({ t: "settle" as const }) },
    { weight: 1, arbitrary: fc.constant({ t: "reopen" as const }) },
    { weight: 1, arbitrary: fc.constant({ t: "reopenNow" as const }) },
  );
  return fc.array(op, { minLength: 1, maxLength });
}
