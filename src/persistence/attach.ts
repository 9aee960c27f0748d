/**
 * attachSnapshotStorage (docs/protocol.md §7.5, docs/design.md §3.7–§3.8, §3.14–§3.15, §3.18): a full baseline at
 * attach, then one diff per settled wave, computed on the wave's paths only against a mirror of the last persisted
 * state, written as WAL frames. The main thread builds frame objects and hands them to the tiers; encoding,
 * checksums (for sealing codecs) and I/O happen where the tier runs.
 * Seqs (docs/design.md §3.7): frames are consecutive. A baseline of the live graph (attach, `rebaseline()`) takes
 * a seq of its own and is durable before any later frame is written; a periodic baseline is the sum of the frames
 * before it and carries the last one's seq, so one that never lands leaves no hole. Periodic baselines come from
 * the store's actor in the background (engine tiers), else from here when the WAL outgrows a ratio of the last
 * baseline, or every `compactEvery` waves when asked; a burst writes one per pair.
 * A write refused for good stops its pair at that seq until `rebaseline()` (docs/design.md §3.16).
 * Layer 4 (graph).
 */
import { StorageError } from "../errors.js";
import { isPermanent } from "../tier/core.js";
import type { KvStorageTier, SnapshotStorageTier } from "../tier/types.js";
import { walFrameCodec } from "../wal/codec.js";
import type { WALFrame } from "../wal/frame.js";
import { graphWalPrefix, parseWalFrameKey, walFrameKey } from "../wal/keys.js";
import { diffFrames } from "./decompose.js";
import { SnapshotMirror, type DiffBuilder } from "./diff.js";
import { parentPath } from "../graph/paths.js";
import { diffBytes, snapshotBytes } from "./size-estimate.js";
import type {
  AttachOptions,
  AttachPair,
  GraphCheckpointRecord,
  GraphSnapshotDiff,
  GraphWALFrame,
  StorageHandle,
} from "./storage-types.js";
import { SNAPSHOT_VERSION, type Graph, type GraphPersistSnapshot, type GraphWave } from "../graph/types.js";

/**
 * Default baseline ratio: a new baseline once the WAL written since the last one exceeds this many times its size
 * (docs/design.md §3.18: chosen with bench/ratio-sweep.ts).
 */
const DEFAULT_BASELINE_RATIO = 2;
/**
 * Baselines smaller than this count as this big for the ratio: a small graph is not re-baselined every few
 * frames (each baseline is a backend write of its own). The disk bound is baseline + ratio × max(baseline, this).
 */
const BASELINE_MIN_BYTES = 64 * 1024;
/** Own-seq baselines remembered above the durable seq (a bound for handles that never flush; see PairState.holes). */
const MAX_TRACKED_BASELINES = 4096;
const noop = (): void => {};

/** Wall clock in ns (integer), as the references write it. */
const nowNs = (): number => Date.now() * 1_000_000;

/**
 * A baseline is `own` when it is the live graph rather than the sum of the frames before it (attach, rebaseline,
 * every baseline of a pair without a WAL): it takes a seq of its own. A periodic one carries the last frame's seq.
 */
type Item =
  | { kind: "baseline"; snapshot: GraphPersistSnapshot; timestampNs: number; own: boolean }
  | { kind: "frames"; diff: GraphSnapshotDiff; timestampNs: number; frames: GraphWALFrame[] | undefined; next: number };

/**
 * When a pair writes periodic baselines: every `waves` persisted waves (an explicit compactEvery; Infinity never),
 * when the estimated WAL since the last baseline exceeds `ratio` × its estimated size, or never from here because
 * the store's actor folds the WAL in the background.
 */
type Cadence = { kind: "waves"; waves: number } | { kind: "ratio"; ratio: number } | { kind: "background" };

/** Per-pair cursor and outbox. Items wait here until the seq bootstrap is done and leave once saved. */
class PairState {
  /** Last seq handed to a tier (after a stop: the highest seq ever numbered, so a rebaseline goes above it). */
  seq = 0;
  /** Highest seq known durable in both tiers. */
  durable = 0;
  ready = false;
  /**
   * Set when the pair stopped for good (a refused write, a failed bootstrap): nothing more is saved and flush()
   * rejects with the error this settles to, until rebaseline(). Set synchronously; settles once the refused seq
   * is known and nothing past it is left in the store.
   */
  stopped: Promise<Error> | undefined;
  /** The save that failed last (the outbox is stuck until it succeeds). */
  blocked: Error | undefined;
  /** While a tier refused a save with backpressure: resolves once both tiers drained (the outbox then moves on). */
  room: Promise<void> | undefined;
  /**
   * Set while an own baseline is being made durable: no frame leaves the outbox before it (a store never holds
   * frames above a missing own baseline). Stays set after a transient failure (`gateError`) until flush() retries.
   */
  gate: Promise<void> | undefined;
  gateError: Error | undefined;
  /**
   * Seqs of own baselines numbered above `durable`, ascending: the holes in the WAL's seqs that are not refused
   * frames. Capped: forgetting one only makes a later gap search stop earlier (more unacknowledged frames dropped).
   */
  holes: number[] = [];
  /** Seq of the last baseline saved (the one a refused snapshot flush refers to). */
  lastBaseline = 0;
  /** A periodic baseline is due at the end of this tick (see `emitDue`). */
  due = false;
  sinceBaseline = 0;
  /** Estimated bytes of the frames saved since the last baseline, and of that baseline (ratio cadence). */
  walBytes = 0;
  baselineBytes = 0;
  /** FIFO outbox: `queue[head]` is next (an index, not shift(): waves queued during the bootstrap can be many). */
  queue: Array<Item | undefined> = [];
  head = 0;
  /** Index in `queue` of the unsent baseline a newer one replaces (-1: none), so the outbox holds at most one. */
  replaceable = -1;
  /** False when the WAL tier's codec seals frames itself (checksum computed where it encodes: docs/design.md §3.14). */
  readonly seal: boolean;
  readonly prefix: string;
  bootstrap!: Promise<void>;

  constructor(
    readonly snapshot: SnapshotStorageTier<GraphCheckpointRecord>,
    readonly wal: KvStorageTier<WALFrame> | undefined,
    readonly cadence: Cadence,
    graphName: string,
  ) {
    this.seal = wal?.codecName !== walFrameCodec.name;
    this.prefix = graphWalPrefix(graphName);
  }
}

/**
 * Persists `graph` into every pair. Restore first, then attach: restoring into an attached graph writes the
 * replayed changes back as new frames. Throws TypeError / RangeError for bad arguments; storage failures go to
 * `onError` and reject `flush()`, never into the graph. Transient failures (backend errors) stay pending and are
 * retried; a write refused for good (a codec refusal, a key the store refuses, a closed tier) stops its pair at
 * that seq: no later seq is written or acknowledged, flush() rejects with StorageError `write-refused` until
 * `rebaseline()`, so the WAL never has a gap below an acknowledged seq.
 */
export function attachSnapshotStorage(graph: Graph, pairs: readonly AttachPair[], opts: AttachOptions = {}): StorageHandle {
  checkGraph(graph);
  const { paths, filter, onError, baselineRatio } = checkOptions(opts);
  if (!Array.isArray(pairs) || pairs.length === 0) {
    throw new TypeError("attachSnapshotStorage: pairs must be a non-empty array of { snapshot, wal? }");
  }
  const states = pairs.map((p, i) => {
    checkPair(p, i);
    return new PairState(p.snapshot, p.wal, cadenceOf(graph.name, p, opts.compactEvery, baselineRatio), graph.name);
  });

  const report = (err: unknown, pair: PairState): void => {
    const e = err instanceof Error ? err : new Error(String(err));
    try {
      onError?.(e, pair.snapshot);
    } catch {
      // a throwing handler must not break persistence
    }
  };

  /** Saves one item (throws what the tier throws); seqs advance only with what was saved. */
  const save = (pair: PairState, item: Item): void => {
    if (item.kind === "baseline") {
      const seq = item.own ? pair.seq + 1 : pair.seq;
      pair.snapshot.save({
        name: graph.name,
        mode: "full",
        snapshot: item.snapshot,
        seq,
        timestamp_ns: item.timestampNs,
        format_version: SNAPSHOT_VERSION,
      });
      pair.seq = seq;
      pair.lastBaseline = seq;
      if (item.own && pair.wal !== undefined) {
        if (pair.holes.push(seq) > MAX_TRACKED_BASELINES) pair.holes.shift();
        openGate(pair, seq);
      }
      return;
    }
    const wal = pair.wal as KvStorageTier<WALFrame>;
    // Numbered on first attempt and kept, so a retry re-saves the same seqs under the same keys.
    const frames = (item.frames ??= diffFrames(item.diff, item.timestampNs, pair.seq, pair.seal));
    for (; item.next < frames.length; item.next++) {
      const f = frames[item.next] as GraphWALFrame;
      wal.save(walFrameKey(pair.prefix, f.frame_seq), f);
    }
    if (frames.length > 0) pair.seq = (frames[frames.length - 1] as GraphWALFrame).frame_seq;
  };

  /**
   * Makes the own baseline just saved durable at once, whatever the snapshot tier's debounce, and holds every
   * frame back until it is: frames above a baseline that never landed would be a hole in the changes.
   */
  const openGate = (pair: PairState, seq: number): void => {
    const gate: Promise<void> = pair.snapshot.flush().then(
      () => {
        if (pair.gate !== gate) return;
        pair.gate = undefined;
        pair.gateError = undefined;
        drain(pair);
      },
      (err: unknown) => {
        if (pair.gate !== gate) return;
        if (cannotSucceed(err)) {
          pair.gate = undefined;
          void stop(pair, err, seq);
          return;
        }
        // The baseline stays pending in the tier; flush() retries it. Frames keep waiting.
        pair.gateError = err instanceof Error ? err : new Error(String(err));
        report(err, pair);
      },
    );
    pair.gate = gate;
    pair.gateError = undefined;
  };

  /**
   * Stops `pair` for good: nothing more is saved or acknowledged. `refused` is the refused seq, or a search for
   * it that also removes whatever the store holds past it (never rejects); onError hears the outcome once.
   */
  const stop = (pair: PairState, cause: Error, refused: number | Promise<number>): Promise<Error> => {
    if (pair.stopped !== undefined) return pair.stopped;
    clearQueue(pair); // superseded: a rebaseline writes the live graph
    pair.blocked = undefined;
    pair.gate = undefined;
    pair.gateError = undefined;
    pair.due = false;
    const settle = (seq: number): Error => {
      const err = refusedError(graph.name, seq, cause);
      report(err, pair);
      return err;
    };
    pair.stopped = typeof refused === "number" ? Promise.resolve(settle(refused)) : refused.then(settle);
    return pair.stopped;
  };

  /** Records a failed save: the outbox is stuck until a retry succeeds, or the pair stops when no retry can. */
  const fail = (pair: PairState, item: Item, err: unknown): void => {
    if (isBackpressure(err)) {
      // Not a failure: the store is behind. The item stays in the outbox and leaves once the tiers drained;
      // onError hears it once per spell (handle.drained() is the writer's signal).
      if (!isBackpressure(pair.blocked)) report(err, pair);
      pair.blocked = err;
      awaitRoom(pair);
      return;
    }
    if (!cannotSucceed(err)) {
      pair.blocked = err instanceof Error ? err : new Error(String(err));
      report(err, pair);
      return;
    }
    // The refused save is known exactly and nothing after it reached a tier: there is nothing to remove.
    let refused = item.kind === "baseline" && !item.own ? pair.seq : pair.seq + 1; // a baseline, or unbuildable frames
    let numbered = refused;
    if (item.kind === "frames" && item.frames !== undefined) {
      refused = item.frames[item.next]?.frame_seq ?? refused;
      numbered = item.frames[item.frames.length - 1]?.frame_seq ?? refused;
    }
    pair.seq = Math.max(pair.seq, numbered);
    void stop(pair, err, refused);
  };

  /** Drains the outbox again once the tiers that refused with backpressure drained. */
  const awaitRoom = (pair: PairState): Promise<void> => {
    // A custom tier without drained() that refuses with backpressure is retried after a pause, never in a loop.
    const pause = pair.wal?.drained === undefined && pair.snapshot.drained === undefined ? delay(10) : undefined;
    pair.room ??= Promise.all([pair.wal?.drained?.(), pair.snapshot.drained?.(), pause]).then(
      () => {
        pair.room = undefined;
        drain(pair);
      },
      () => {
        pair.room = undefined; // the tier failed (e.g. closed): the next save reports why
      },
    );
    return pair.room;
  };

  /** Resolves once no pair's outbox is held back by backpressure and every tier drained. */
  const drainedPair = async (pair: PairState): Promise<void> => {
    await pair.bootstrap;
    while (isBackpressure(pair.blocked) && pair.stopped === undefined) await awaitRoom(pair);
    await Promise.all([pair.wal?.drained?.(), pair.snapshot.drained?.()]);
  };

  /** Saves queued items in order until one fails or an own baseline holds the rest back. */
  const drain = (pair: PairState): void => {
    while (pair.ready && pair.stopped === undefined && pair.gate === undefined && pair.head < pair.queue.length) {
      const item = pair.queue[pair.head];
      if (item !== undefined) {
        try {
          save(pair, item);
        } catch (err) {
          fail(pair, item, err);
          return;
        }
        pair.blocked = undefined;
      }
      if (pair.replaceable === pair.head) pair.replaceable = -1;
      pair.queue[pair.head++] = undefined; // released for GC
    }
    if (pair.head === pair.queue.length) clearQueue(pair);
  };

  const clearQueue = (pair: PairState): void => {
    if (pair.queue.length !== 0) pair.queue.length = 0;
    pair.head = 0;
    pair.replaceable = -1;
  };

  /** Saves `item` now when nothing waits ahead of it (the steady state), else queues it behind the rest. */
  const submit = (pair: PairState, item: Item): void => {
    if (pair.stopped !== undefined) return; // nothing is written past a refused seq until rebaseline()
    if (!pair.ready || pair.gate !== undefined || pair.head !== pair.queue.length) {
      if (item.kind === "baseline" && (!item.own || pair.wal === undefined)) {
        // A newer baseline holds everything an unsent older one does: memory holds one baseline per pair.
        if (pair.replaceable >= pair.head) pair.queue[pair.replaceable] = undefined;
        pair.replaceable = pair.queue.length;
      }
      pair.queue.push(item);
      drain(pair);
      return;
    }
    try {
      save(pair, item);
      pair.blocked = undefined;
    } catch (err) {
      pair.queue.push(item);
      fail(pair, item, err);
    }
  };

  /** Learns the highest seq in the store, then saves what queued meanwhile. A failure stops the pair (again). */
  const startBootstrap = (pair: PairState): void => {
    pair.bootstrap = bootstrapSeq(pair, graph.name).then(
      (seq) => {
        pair.seq = Math.max(pair.seq, seq);
        pair.durable = Math.max(pair.durable, seq);
        pair.ready = true;
        drain(pair);
      },
      (err: unknown) => {
        // Never write at seqs that may already be taken: the pair stays silent.
        const e = err instanceof Error ? err : new Error(String(err));
        clearQueue(pair);
        pair.stopped = Promise.resolve(e);
        report(e, pair);
      },
    );
  };

  /**
   * Restarts the pair's cadence at a baseline; the ratio cadence also notes its size (`sizeOf`: an estimate, O(graph),
   * computed once per snapshot and only when some pair needs it).
   */
  const baselineTaken = (pair: PairState, sizeOf: () => number): void => {
    pair.sinceBaseline = 0;
    pair.walBytes = 0;
    pair.due = false;
    if (pair.cadence.kind === "ratio") pair.baselineBytes = sizeOf();
  };
  const sizer = (snapshot: GraphPersistSnapshot): (() => number) => {
    let bytes: number | undefined;
    return () => (bytes ??= snapshotBytes(snapshot));
  };

  // ---- attach baseline and seq bootstrap -------------------------------------------------------------------
  const initial = graph.snapshot();
  const mirror = new SnapshotMirror(initial);
  const attachedAt = nowNs();
  const initialSize = sizer(initial);
  for (const pair of states) {
    baselineTaken(pair, initialSize);
    pair.queue.push({ kind: "baseline", snapshot: initial, timestampNs: attachedAt, own: true });
    startBootstrap(pair);
  }

  // ---- per-wave persistence (hot path) ---------------------------------------------------------------------
  let disposed = false;
  const pendingNodes = new Set<string>();
  const pendingMounts = new Set<string>();
  const gated = paths !== undefined || filter !== undefined;
  const triggers = (path: string, removed: boolean): boolean => {
    if (paths !== undefined && !underPaths(path, paths)) return false;
    if (filter === undefined) return true;
    try {
      return filter(path, removed ? undefined : graph.describeNode(path)) !== false;
    } catch (err) {
      report(err, states[0] as PairState);
      return true;
    }
  };

  const onWave = (wave: GraphWave): void => {
    if (wave.cause === "destroy" || disposed) return;
    try {
      const signals = wave.signals;
      if (!gated && wave.topology.length === 0 && pendingNodes.size === 0 && pendingMounts.size === 0) {
        // Hot path: an ungated wave without topology and nothing carried over; its signals are the touched set.
        if (signals.length > 0) persist(mirror.updateSignals(graph, signals));
        return;
      }
      // O(size of the wave): touched paths accumulate until a wave passes the trigger gate.
      let fire = false;
      for (const s of signals) {
        pendingNodes.add(s.path);
        if (!fire && s.signal !== "teardown") fire = !gated || triggers(s.path, false);
      }
      for (const t of wave.topology) {
        if (t.op === "add" || t.op === "remove") pendingNodes.add(t.path);
        else pendingMounts.add(t.path);
        if (!fire) fire = !gated || triggers(t.path, t.op === "remove" || t.op === "unmount");
      }
      if (fire) persistPending();
    } catch (err) {
      report(err, states[0] as PairState);
    }
  };

  /** Persists every path touched since the last persisted wave. O(touched paths): describeNode is O(node). */
  const persistPending = (): void => {
    const diff = mirror.update(graph, pendingNodes, pendingMounts);
    pendingNodes.clear();
    pendingMounts.clear();
    persist(diff);
  };

  /** Saves the wave's frames in every pair (or queues what cannot go yet) and notes which baselines fall due. */
  const persist = (diff: DiffBuilder): void => {
    if (diff.empty) return;
    const timestampNs = nowNs();
    // `diff` is the mirror's scratch: an item that outlives this call before being numbered gets its own copy.
    let kept: GraphSnapshotDiff | undefined;
    let bytes = -1;
    for (const pair of states) {
      if (pair.stopped !== undefined) continue;
      if (pair.wal === undefined) {
        // Without a WAL every persisted wave is a full baseline: O(graph) by the caller's choice.
        markDue(pair);
        continue;
      }
      const item: Item = { kind: "frames", diff, timestampNs, frames: undefined, next: 0 };
      submit(pair, item);
      if (item.frames === undefined) item.diff = kept ??= diff.copy();
      if (pair.stopped !== undefined) continue;
      const cadence = pair.cadence;
      if (cadence.kind === "waves") {
        if (++pair.sinceBaseline >= cadence.waves) markDue(pair);
      } else if (cadence.kind === "ratio") {
        if (bytes < 0) bytes = diffBytes(diff);
        pair.walBytes += bytes;
        if (pair.walBytes > cadence.ratio * Math.max(pair.baselineBytes, BASELINE_MIN_BYTES)) markDue(pair);
      }
    }
  };

  // ---- periodic baselines ----------------------------------------------------------------------------------
  let emitScheduled = false;
  const markDue = (pair: PairState): void => {
    pair.due = true;
    if (!emitScheduled) {
      emitScheduled = true;
      queueMicrotask(emitDue);
    }
  };

  /**
   * Writes the baselines that fell due, once per tick (a burst of waves writes one per pair, not one per
   * boundary). The snapshot is the mirror: exactly the sum of the frames handed out so far, whatever a gate held
   * back since, so its seq is the last frame's. One snapshot serves every pair.
   */
  const emitDue = (): void => {
    if (!emitScheduled) return;
    emitScheduled = false;
    let snapshot: GraphPersistSnapshot | undefined;
    let size: (() => number) | undefined;
    const timestampNs = nowNs();
    for (const pair of states) {
      if (!pair.due) continue;
      if (pair.stopped !== undefined) {
        pair.due = false;
        continue;
      }
      snapshot ??= mirror.snapshot(graph.name);
      size ??= sizer(snapshot);
      baselineTaken(pair, size);
      submit(pair, { kind: "baseline", snapshot, timestampNs, own: pair.wal === undefined });
    }
  };

  const unsubscribe = graph.observe(onWave);

  /**
   * The WAL tier refused a frame saved since the last acknowledged seq (which one, its flush does not say). Once
   * everything else this pair handed it is written, the first frame seq the store lacks is the gap; every frame
   * above it is deleted, so restore and compaction see the changes up to the gap and none after. A store that
   * cannot be listed counts as holding nothing unacknowledged.
   */
  const dropPastGap = async (pair: PairState): Promise<number> => {
    const wal = pair.wal as KvStorageTier<WALFrame>;
    await wal.flush().catch(noop); // nothing new is saved any more: this writes the rest (or fails again)
    const holes = new Set(pair.holes);
    let gap = pair.durable + 1;
    try {
      const stored = new Set<number>();
      for (const key of await wal.list(`${pair.prefix}/`)) {
        const s = parseWalFrameKey(pair.prefix, key);
        if (s !== undefined && s > pair.durable) stored.add(s);
      }
      gap = pair.seq + 1; // every frame stored: the pair stops after its last one
      for (let s = pair.durable + 1; s <= pair.seq; s++) {
        if (!stored.has(s) && !holes.has(s)) {
          gap = s;
          break;
        }
      }
    } catch {
      // unreadable store: keep the conservative gap
    }
    const deletes: Array<Promise<void>> = [];
    for (let s = gap; s <= pair.seq; s++) {
      if (!holes.has(s)) deletes.push(wal.delete(walFrameKey(pair.prefix, s)).catch(noop));
    }
    await Promise.all(deletes);
    return gap;
  };

  /** A tier's flush rejected: a transient failure stays pending in the tier for the next flush; a refusal stops. */
  const flushFailed = (pair: PairState, err: unknown, tier: "wal" | "snapshot"): Error | Promise<Error> => {
    if (!cannotSucceed(err)) {
      report(err, pair);
      return err instanceof Error ? err : new Error(String(err));
    }
    if (tier === "wal") return stop(pair, err, dropPastGap(pair));
    // A snapshot tier holds one baseline per graph: the refused one is the latest. The WAL has every change.
    return stop(pair, err, pair.lastBaseline);
  };

  const flushPair = async (pair: PairState): Promise<number> => {
    await pair.bootstrap;
    drain(pair);
    // Everything handed out before this call is part of it: frames held back by backpressure first leave.
    while (isBackpressure(pair.blocked) && pair.stopped === undefined) await awaitRoom(pair);
    if (pair.stopped !== undefined) throw await pair.stopped;
    if (pair.blocked !== undefined) throw pair.blocked;
    if (pair.gateError !== undefined) openGate(pair, pair.lastBaseline); // retry the own baseline first
    // Frames held back by an own baseline leave once it is durable; they are part of this flush.
    while (pair.gate !== undefined) {
      await pair.gate;
      if (pair.stopped !== undefined) throw await pair.stopped;
      if (pair.gateError !== undefined) throw pair.gateError;
      if (pair.blocked !== undefined) throw pair.blocked;
    }
    const target = pair.seq;
    if (pair.wal !== undefined) {
      try {
        await pair.wal.flush(); // frames first: a baseline never lands before them
      } catch (err) {
        throw await flushFailed(pair, err, "wal");
      }
    }
    try {
      await pair.snapshot.flush();
    } catch (err) {
      throw await flushFailed(pair, err, "snapshot");
    }
    // Stopped while this flush ran (a later write was refused): nothing is acknowledged any more.
    if (pair.stopped !== undefined) throw await pair.stopped;
    if (target > pair.durable) {
      pair.durable = target;
      const h = pair.holes;
      let k = 0;
      while (k < h.length && (h[k] as number) <= target) k++;
      if (k > 0) h.splice(0, k);
    }
    return pair.durable;
  };

  const flush = (): Promise<number> => {
    emitDue(); // baselines due in this tick go with this flush
    return quiet(
      Promise.allSettled(states.map(flushPair)).then((results) => {
        let seq = Number.POSITIVE_INFINITY;
        for (const r of results) {
          if (r.status === "rejected") throw r.reason;
          seq = Math.min(seq, r.value);
        }
        return seq;
      }),
    );
  };

  const rebaseline = async (): Promise<number> => {
    if (disposed) {
      throw new StorageError("closed", `rebaseline: the storage handle of graph "${graph.name}" is disposed`, {
        graph: graph.name,
      });
    }
    await Promise.all(
      states.map(async (pair) => {
        await pair.bootstrap;
        if (pair.stopped !== undefined) await pair.stopped; // its gap search and deletes are done
        // The seq bootstrap failed: retry it. The pair stays stopped meanwhile (waves skipped now must not be
        // written before the baseline that holds them); a second failure replaces the error.
        if (!pair.ready) {
          startBootstrap(pair);
          await pair.bootstrap;
        }
      }),
    );
    // Synchronous from here: no wave can fall between the snapshot and the pairs resuming.
    if (pendingNodes.size > 0 || pendingMounts.size > 0) persistPending(); // gated changes: the mirror catches up
    const snapshot = graph.snapshot();
    mirror.reset(snapshot);
    const size = sizer(snapshot);
    const timestampNs = nowNs();
    for (const pair of states) {
      if (!pair.ready) continue;
      pair.stopped = undefined;
      baselineTaken(pair, size);
      submit(pair, { kind: "baseline", snapshot, timestampNs, own: true });
    }
    return flush();
  };

  let disposing: Promise<void> | undefined;
  return {
    flush,
    drained: () => quiet(Promise.all(states.map(drainedPair)).then(noop)),
    rebaseline: () => quiet(rebaseline()),
    dispose(): Promise<void> {
      if (disposing === undefined) {
        disposed = true;
        unsubscribe();
        disposing = quiet(flush().then(noop));
      }
      return disposing;
    },
    get seq(): number {
      let seq = Number.POSITIVE_INFINITY;
      for (const p of states) if (p.stopped === undefined) seq = Math.min(seq, p.seq);
      return seq === Number.POSITIVE_INFINITY ? 0 : seq;
    },
  };
}

/**
 * A pair's periodic-baseline cadence: an explicit `compactEvery` (the option, else the snapshot tier's) counts
 * waves, as in the references. By default the ratio rule applies; with engine tiers the store's actor applies it
 * in the background (no full snapshot on this thread after attach) when it can, else attach does.
 */
function cadenceOf(graphName: string, pair: AttachPair, compactEvery: number | undefined, ratio: number): Cadence {
  const waves = compactEvery ?? pair.snapshot.compactEvery;
  if (waves !== undefined) return { kind: "waves", waves };
  if (pair.wal === undefined) return { kind: "ratio", ratio };
  try {
    if (pair.wal.foldInBackground?.(graphName, pair.snapshot, { ratio, minBytes: BASELINE_MIN_BYTES }) === true) {
      return { kind: "background" };
    }
  } catch {
    // a closed tier: attach's own writes report it
  }
  return { kind: "ratio", ratio };
}

/**
 * Highest seq already used in the pair's store: the WAL's highest frame key (exactly `<name>/wal/<20 digits>`)
 * and the stored baseline's seq, so a re-attach never reuses a seq (docs/graph-model.md §6 item 15).
 */
async function bootstrapSeq(pair: PairState, graphName: string): Promise<number> {
  let seq = 0;
  if (pair.wal !== undefined) {
    for (const key of await pair.wal.list(`${pair.prefix}/`)) {
      const s = parseWalFrameKey(pair.prefix, key);
      if (s !== undefined && s > seq) seq = s;
    }
  }
  const record: unknown = await pair.snapshot.load(graphName);
  if (typeof record === "object" && record !== null) {
    const s = (record as { seq?: unknown }).seq;
    if (typeof s === "number" && Number.isSafeInteger(s) && s > seq) seq = s;
  }
  return seq;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isBackpressure(err: unknown): err is StorageError {
  return err instanceof StorageError && err.code === "backpressure";
}

/** Failures no retry can fix: the tier's refusals (an unencodable value, a key the store refuses), a closed tier. */
function cannotSucceed(err: unknown): err is Error {
  return isPermanent(err) || (err instanceof StorageError && err.code === "closed");
}

/** What flush() rejects with once a pair stopped: names the refused seq, carries the tier's error as `cause`. */
function refusedError(graphName: string, seq: number, cause: Error): StorageError {
  const code = (cause as { code?: unknown }).code;
  const what = `${cause.name}${typeof code === "string" ? ` ${code}` : ""}: ${cause.message}`;
  return new StorageError(
    "write-refused",
    `graph "${graphName}": the write at seq ${seq} was refused for good (${what}); nothing after it is written ` +
      "or acknowledged until handle.rebaseline()",
    { graph: graphName, seq },
    cause,
  );
}

/** True when `path` or one of its ancestor mounts is listed. O(depth). */
function underPaths(path: string, paths: ReadonlySet<string>): boolean {
  for (let p = path; p !== ""; p = parentPath(p)) if (paths.has(p)) return true;
  return false;
}

/** Marks a promise handled so an ignored rejection is never unhandled; callers that await still see it. */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(noop);
  return p;
}

function checkGraph(graph: Graph): void {
  const g = graph as Partial<Graph> | null;
  if (
    typeof g !== "object" ||
    g === null ||
    typeof g.name !== "string" ||
    typeof g.observe !== "function" ||
    typeof g.snapshot !== "function" ||
    typeof g.describeNode !== "function" ||
    typeof g.hasMount !== "function"
  ) {
    throw new TypeError(
      "attachSnapshotStorage: graph must implement Graph (name, observe, snapshot, describeNode, hasMount)",
    );
  }
}

function checkPair(pair: AttachPair, i: number): void {
  const s = pair?.snapshot as Partial<SnapshotStorageTier<GraphCheckpointRecord>> | undefined;
  if (typeof s?.save !== "function" || typeof s.load !== "function" || typeof s.flush !== "function") {
    throw new TypeError(`attachSnapshotStorage: pairs[${i}].snapshot must be a snapshot tier (save, load, flush)`);
  }
  if (pair.wal === undefined) return;
  const w = pair.wal as Partial<KvStorageTier<WALFrame>> | null;
  if (typeof w?.save !== "function" || typeof w.list !== "function" || typeof w.flush !== "function") {
    throw new TypeError(
      `attachSnapshotStorage: pairs[${i}].wal must be a kv tier exposing save(key, value), list and flush ` +
        "(use kvStorage(...))",
    );
  }
}

function checkOptions(opts: AttachOptions): {
  paths: ReadonlySet<string> | undefined;
  filter: AttachOptions["filter"];
  onError: AttachOptions["onError"];
  baselineRatio: number;
} {
  if (typeof opts !== "object" || opts === null) throw new TypeError("attachSnapshotStorage: opts must be an object");
  const { paths, filter, onError, compactEvery, baselineRatio = DEFAULT_BASELINE_RATIO } = opts;
  if (paths !== undefined && (!Array.isArray(paths) || !paths.every((p) => typeof p === "string"))) {
    throw new TypeError("attachSnapshotStorage: opts.paths must be an array of path strings");
  }
  if (filter !== undefined && typeof filter !== "function") {
    throw new TypeError("attachSnapshotStorage: opts.filter must be a function");
  }
  if (onError !== undefined && typeof onError !== "function") {
    throw new TypeError("attachSnapshotStorage: opts.onError must be a function");
  }
  const everyOk =
    compactEvery === Number.POSITIVE_INFINITY || (Number.isSafeInteger(compactEvery) && (compactEvery as number) >= 1);
  if (compactEvery !== undefined && !everyOk) {
    throw new RangeError(
      `attachSnapshotStorage: opts.compactEvery must be an integer >= 1 or Infinity, got ${String(compactEvery)}`,
    );
  }
  if (typeof baselineRatio !== "number" || !Number.isFinite(baselineRatio) || baselineRatio <= 0) {
    throw new RangeError(`attachSnapshotStorage: opts.baselineRatio must be a finite number > 0, got ${String(baselineRatio)}`);
  }
  return { paths: paths === undefined ? undefined : new Set(paths), filter, onError, baselineRatio };
}
