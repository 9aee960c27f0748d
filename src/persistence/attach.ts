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
 * What each pair still has to write, and when it goes out, is its AttachOutbox (attach-outbox.ts); this file wires
 * the graph's waves, the mirror and the baseline cadence to the outboxes.
 * Layer 4 (graph).
 */
import { refuseUnknownKeys } from "../base/options.js";
import { StorageError } from "../errors.js";
import { assertGraphName } from "../wal/keys.js";
import type { KvStorageTier, SnapshotStorageTier } from "../tier/types.js";
import type { WALFrame } from "../wal/frame.js";
import { AttachOutbox, WalGroup, type OutboxItem, type Reclaim } from "./attach-outbox.js";
import { cedeRetiring, refuseUnsettledBaselines } from "./attach-floor.js";
import { SnapshotMirror, type DiffBuilder } from "./diff.js";
import { parentPath } from "../graph/paths.js";
import { observeUnfrozen } from "../graph/graph.js";
import { diffBytes, snapshotBytes } from "./size-estimate.js";
import { foldInBackground, foldRuleReleaser, stopFoldingInBackground } from "./wal-growth-watcher.js";
import { registerWalGroup, unpinSharedWal } from "./shared-wal.js";
import { tierStore } from "../tier/store-identity.js";
import type {
  AttachOptions,
  AttachPair,
  GraphCheckpointRecord,
  GraphSnapshotDiff,
  StorageHandle,
} from "./storage-types.js";
import { type Graph, type GraphPersistSnapshot, type GraphWave } from "../graph/types.js";

/**
 * Default baseline ratio: a new baseline once the WAL written since the last one exceeds this many times its size
 * (docs/design.md §3.18: chosen with bench/ratio-sweep.ts).
 */
export const DEFAULT_BASELINE_RATIO = 2;
/**
 * Baselines smaller than this count as this big for the ratio: a small graph is not re-baselined every few
 * frames (each baseline is a backend write of its own). The disk bound is baseline + ratio × max(baseline, this).
 */
export const BASELINE_MIN_BYTES = 64 * 1024;
/**
 * Default bound on the estimated bytes of waves a pair's outbox holds while its store is behind (AttachOptions
 * maxQueuedBytes): the tiers' default maxPendingBytes, so the outbox holds no more than the tier in front of it.
 */
export const DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024;
const noop = (): void => {};

/**
 * How long dispose() waits for the reclaim running after its last flush (review r267): long enough for a cycle's few
 * deletes, short enough for a server's shutdown path. What is still running then stops after its current statement
 * (nothing new starts once the pair is disposed); the frames it leaves are the next attach's to delete.
 */
const DISPOSE_RECLAIM_WAIT_MS = 2_000;

/** Resolves once `work` settled or `ms` passed, whichever is first (the timer is cleared either way). */
async function settledWithin(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([work.then(noop, noop), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Wall clock in ns (integer), as the references write it. */
const nowNs = (): number => Date.now() * 1_000_000;

/**
 * When a pair writes periodic baselines: every `waves` persisted waves (an explicit compactEvery; Infinity never),
 * when the estimated WAL since the last baseline exceeds `ratio` × its estimated size, or never from here because
 * the store's actor folds the WAL in the background.
 */
type Cadence = { kind: "waves"; waves: number } | { kind: "ratio"; ratio: number } | { kind: "background" };

/** A pair's baseline cadence; what it still has to write, and when that is out, is its outbox's business. */
class PairState {
  /** A periodic baseline is due at the end of this tick (see `emitDue`). */
  due = false;
  sinceBaseline = 0;
  /** Estimated bytes of the frames saved since the last baseline, and of that baseline (ratio cadence). */
  walBytes = 0;
  baselineBytes = 0;
  /** Queued waves past this many estimated bytes are replaced by one baseline (see `boundQueues`). */
  queueLimit: number;

  constructor(
    readonly outbox: AttachOutbox,
    readonly cadence: Cadence,
    maxQueuedBytes: number,
  ) {
    this.queueLimit = maxQueuedBytes;
  }
}

/**
 * Persists `graph` into every pair. Restore first, then attach: restoring into an attached graph writes the
 * replayed changes back as new frames. Throws TypeError / RangeError for bad arguments, StorageError `invalid-name`
 * for a graph name shaped like another record's key (docs/design.md §3.27); storage failures go to
 * `onError` and reject `flush()`, never into the graph. Transient failures (backend errors) stay pending and are
 * retried; a write refused for good (a codec refusal, a key the store refuses, a closed tier) stops its pair at
 * that seq: no later seq is written or acknowledged, flush() rejects with StorageError `write-refused` until
 * `rebaseline()`, so the WAL never has a gap below an acknowledged seq.
 */
export function attachSnapshotStorage(graph: Graph, pairs: readonly AttachPair[], opts: AttachOptions = {}): StorageHandle {
  const handedOver: Array<KvStorageTier<WALFrame>> = [];
  try {
    return attach(graph, pairs, opts, handedOver);
  } catch (err) {
    // Thrown after a pair's fold rule went to its store's actor (graph.snapshot() or observe() failing, review r231
    // F3): taken back, or it would fold the graph's WAL for a later attach whose baselines are elsewhere.
    for (const wal of handedOver) void stopFoldingInBackground(wal, graph.name);
    collectedGraphs.unregister(handedOver); // its registration's token (retireWhenCollected)
    throw err;
  }
}

/** attachSnapshotStorage; `handedOver` gets each WAL tier whose store's actor was handed the graph's fold rule. */
function attach(graph: Graph, pairs: readonly AttachPair[], opts: AttachOptions, handedOver: Array<KvStorageTier<WALFrame>>): StorageHandle {
  checkGraph(graph);
  const { paths, filter, onError, baselineRatio, maxQueuedBytes } = checkOptions(opts);
  if (!Array.isArray(pairs) || pairs.length === 0) {
    throw new TypeError("attachSnapshotStorage: pairs must be a non-empty array of { snapshot, wal? }");
  }
  const report = (err: unknown, snapshot: SnapshotStorageTier<GraphCheckpointRecord>): void => {
    const e = err instanceof Error ? err : new Error(String(err));
    try {
      onError?.(e, snapshot);
    } catch {
      // a throwing handler must not break persistence
    }
  };
  // Long-lived tier state holds the outboxes (their refusal watches) and the WAL group: they reach onError only
  // through this WeakRef, which `report` outlives while the graph does (onWave holds it), not the graph (task 245).
  const reportRef = new WeakRef(report);
  pairs.forEach(checkPair);
  // Before anything is taken: an ended handle's baseline a hand-written snapshot tier may still land (task 260).
  for (const p of pairs) refuseUnsettledBaselines(graph.name, p.snapshot);
  // A claim whose graph was collected undisposed is taken over: its outboxes, if still retiring, are ended below,
  // and the new outboxes number above what they handed out (attach-floor.ts, task 252).
  const tiers = claimTiers(graph.name, pairs, graph);
  // Claiming started the retirement of a dropped handle's outboxes (Claims.has); ended here, they hold their floors
  // and note their snapshot tiers, which the refusal then sees: checked only before, a dropped handle's hand-written
  // tier was neither refused nor discarded, and its retried baseline landed over this one's (review r264 F6).
  cedeRetiring(graph.name, pairs.flatMap((p) => [p.snapshot, p.wal]));
  released(graph.name, tiers, () => {
    for (const p of pairs) refuseUnsettledBaselines(graph.name, p.snapshot);
  });
  // Pairs sharing a WAL tier write their frames under the same keys: one group numbering them alike (WalGroup).
  const groups = new Map<KvStorageTier<WALFrame>, WalGroup>();
  for (const { wal } of pairs) {
    if (wal !== undefined && !groups.has(wal) && pairs.filter((p) => p.wal === wal).length > 1) groups.set(wal, new WalGroup());
  }
  const checked = pairs.map((p) => {
    const group = p.wal === undefined ? undefined : groups.get(p.wal);
    const cadence = cadenceOf(graph.name, p, opts.compactEvery, baselineRatio, group !== undefined);
    if (cadence.kind === "background" && p.wal !== undefined) handedOver.push(p.wal);
    return { p, group, cadence };
  });
  for (const wal of handedOver) claimed.wal.onCollected(storeIdOf(wal), graph.name, foldRuleReleaser(wal, graph.name));

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
  /**
   * A baseline of the mirror; weighed while it is built when `weigh` (one pass over the nodes, not two). Weighed, of
   * the built-in graph, it is also frozen: `vouched` is then its size, which the tier's value check answers instead
   * of walking the record (tier/value-check.ts vouchBaseline). Unweighed (an explicit compactEvery), it is walked
   * there as before: the vouch needs the size, and weighing plus freezing cost about what the walk does.
   */
  const mirrorBaseline = (weigh: boolean): { snapshot: GraphPersistSnapshot; size: () => number; vouched?: number } => {
    if (ownGraph && weigh) {
      const { snapshot, bytes } = mirror.snapshotWithBytes(graph.name, true);
      return { snapshot, size: () => bytes, vouched: bytes };
    }
    if (!weigh) {
      const snapshot = mirror.snapshot(graph.name);
      return { snapshot, size: sizer(snapshot) };
    }
    const { snapshot, bytes } = mirror.snapshotWithBytes(graph.name);
    return { snapshot, size: () => bytes };
  };

  // ---- attach baseline and seq bootstrap -------------------------------------------------------------------
  // The built-in graph (its private observe hook, methods not replaced on the instance): its slices hold values,
  // meta and paths checked when they entered it, so the mirror starts from them (not snapshot()'s unmarked deep
  // copies) and attach vouches for the baselines it builds from them. Any other graph's are walked by the tier.
  const ownGraph =
    typeof (graph as { [observeUnfrozen]?: unknown })[observeUnfrozen] === "function" &&
    !["snapshot", "describeNode", "paths", "mounts"].some((m) => Object.prototype.hasOwnProperty.call(graph, m));
  const { mirror, initial, initialVouched } = released(graph.name, tiers, () => {
    if (!ownGraph) {
      const snapshot = graph.snapshot();
      return { mirror: new SnapshotMirror(snapshot), initial: snapshot, initialVouched: undefined };
    }
    const seeded = SnapshotMirror.ofGraph(graph);
    const { snapshot, bytes } = seeded.snapshotWithBytes(graph.name, true);
    return { mirror: seeded, initial: snapshot, initialVouched: bytes as number | undefined };
  });
  const attachedAt = nowNs();
  // Readers tell waves apart by frame_t_ns (a follower's hold: follow-hold.ts), and waves of one millisecond had the
  // same wall clock: each wave gets a stamp above the last. 1 µs, not 1 ns: a double near 2^60 steps by 256.
  let lastWaveNs = 0;
  const waveStamp = (): number => (lastWaveNs = Math.max(nowNs(), lastWaveNs + 1_000));
  const initialSize = initialVouched !== undefined ? () => initialVouched : sizer(initial);
  const states = checked.map(({ p, group, cadence }) => {
    const first: OutboxItem = { kind: "baseline", snapshot: initial, timestampNs: attachedAt, own: true, vouched: initialVouched };
    // A WAL tier several pairs share holds frames another pair's baseline may not cover yet: nothing is reclaimed.
    const reclaim: Reclaim = group !== undefined ? "none" : cadence.kind === "ratio" ? "all" : cadence.kind === "background" ? "stale" : "none";
    const outbox = new AttachOutbox(graph.name, p.snapshot, p.wal, weakReport(reportRef, p.snapshot), first, reclaim, group);
    outbox.onWorkerLost = weakResume(reportRef);
    // A WAL of one pair: a shared-WAL record an earlier session left there ends with this session (shared-wal.ts).
    outbox.endsSharedRecord = p.wal !== undefined && group === undefined;
    const pair = new PairState(outbox, cadence, maxQueuedBytes);
    baselineTaken(pair, initialSize);
    return pair;
  });
  retireWhenCollected(graph, tiers, states.map((pair) => pair.outbox), handedOver);

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
      report(err, (states[0] as PairState).outbox.snapshot);
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
      report(err, (states[0] as PairState).outbox.snapshot);
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
    const timestampNs = waveStamp();
    // `diff` is the mirror's scratch: an item that outlives this call before being numbered gets its own copy.
    let kept: GraphSnapshotDiff | undefined;
    let bytes = -1;
    let queued = false;
    for (const pair of states) {
      const outbox = pair.outbox;
      if (outbox.stopped) continue;
      if (outbox.wal === undefined) {
        // Without a WAL every persisted wave is a full baseline: O(graph) by the caller's choice.
        markDue(pair);
        continue;
      }
      const item: OutboxItem = { kind: "frames", diff, timestampNs, frames: undefined, next: 0 };
      outbox.submit(item);
      if (item.frames === undefined) {
        item.diff = kept ??= diff.copy();
        queued = true;
      }
      if (outbox.stopped) continue;
      const cadence = pair.cadence;
      if (cadence.kind === "waves") {
        if (++pair.sinceBaseline >= cadence.waves) markDue(pair);
      } else if (cadence.kind === "ratio") {
        if (bytes < 0) bytes = diffBytes(diff);
        pair.walBytes += bytes;
        if (pair.walBytes > cadence.ratio * Math.max(pair.baselineBytes, BASELINE_MIN_BYTES)) markDue(pair);
      }
    }
    if (queued) boundQueues(); // only when a store is behind: the paced path never gets here
  };

  /**
   * A store that is stuck, or slower than a writer not pacing on drained(), leaves every wave in the outbox: a pair
   * whose queued waves pass its limit gets them replaced by one own baseline of the mirror (docs/design.md §3.19),
   * which holds them all, so memory stays O(graph) and the store catches up with one write. The limit is
   * maxQueuedBytes, or the graph's estimated size once a collapse measured it (a baseline costs O(graph): it is
   * never taken more often than once per graph's worth of waves). Pairs sharing a WAL tier collapse together.
   */
  const boundQueues = (): void => {
    let baseline: ReturnType<typeof mirrorBaseline> | undefined;
    const timestampNs = nowNs();
    for (const pair of states) {
      const outbox = pair.outbox;
      if (outbox.stopped || outbox.queuedBytes <= pair.queueLimit) continue;
      baseline ??= mirrorBaseline(true); // the new queue limit is its size
      const { snapshot, size, vouched } = baseline;
      outbox.collapse({ kind: "baseline", snapshot, timestampNs, own: true, vouched });
      const group = checked[states.indexOf(pair)]?.group;
      for (const [i, other] of states.entries()) {
        if (other !== pair && (group === undefined || checked[i]?.group !== group)) continue;
        baselineTaken(other, size);
        other.queueLimit = Math.max(maxQueuedBytes, size());
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
    let baseline: ReturnType<typeof mirrorBaseline> | undefined;
    const timestampNs = nowNs();
    for (const pair of states) {
      if (!pair.due) continue;
      if (pair.outbox.stopped) {
        pair.due = false;
        continue;
      }
      // Weighed as it is built when a due pair keeps the ratio cadence (an explicit compactEvery never weighs it).
      baseline ??= mirrorBaseline(states.some((p) => p.due && !p.outbox.stopped && p.cadence.kind === "ratio"));
      const { snapshot, size, vouched } = baseline;
      baselineTaken(pair, size);
      pair.outbox.submit({ kind: "baseline", snapshot, timestampNs, own: pair.outbox.wal === undefined, vouched });
    }
  };

  // The built-in graph hands its waves over unfrozen (~0.1 µs a wave less): onWave neither keeps nor changes them.
  const observe = (graph as { [observeUnfrozen]?: Graph["observe"] })[observeUnfrozen];
  const unsubscribe = released(graph.name, tiers, () => (typeof observe === "function" ? observe.call(graph, onWave) : graph.observe(onWave)));
  // Compactions see the groups (what the other pairs' baselines still need: shared-wal.ts, which also records them in
  // the WAL's store for compactions elsewhere); a WAL of one pair now lifts a pin an earlier group left in its store's
  // actor (unless its fold rule replaced it already).
  const unregister = [...groups].map(([wal, group]) =>
    registerWalGroup(graph.name, wal, group, weakReport(reportRef, (group.members[0] as AttachOutbox).snapshot)),
  );
  for (const { p, cadence } of checked) {
    if (p.wal !== undefined && !groups.has(p.wal) && cadence.kind !== "background") unpinSharedWal(graph.name, p.wal);
  }

  const flush = (): Promise<number> => {
    emitDue(); // baselines due in this tick go with this flush
    return quiet(
      Promise.allSettled(states.map((pair) => pair.outbox.flush())).then((results) => {
        let seq = Number.POSITIVE_INFINITY;
        for (const r of results) {
          if (r.status === "rejected") throw r.reason;
          seq = Math.min(seq, r.value);
        }
        return seq;
      }),
    );
  };

  /**
   * Resumes the pairs `which` picks with an own baseline of the live graph (rebaseline(): every pair; a lost store
   * worker: the pairs it stopped, a WAL group's members together since they stopped together).
   */
  const resume = async (which: (pair: PairState) => boolean): Promise<void> => {
    const picked = states.map(which);
    // A pair whose seq bootstrap fails again stays stopped (a second failure replaces the error).
    const prepared = await Promise.all(states.map((pair, i) => picked[i] === true && pair.outbox.prepareRebaseline()));
    // Picked again: a pair resumed meanwhile (rebaseline() beside a lost worker's resume) takes no second baseline.
    const ready = prepared.map((ok, i) => ok && which(states[i] as PairState));
    // Synchronous from here: no wave can fall between the snapshot and the pairs resuming.
    if (pendingNodes.size > 0 || pendingMounts.size > 0) persistPending(); // gated changes: the mirror catches up
    let snapshot: GraphPersistSnapshot;
    let size: () => number;
    let vouched: number | undefined;
    if (ownGraph) {
      mirror.resetFromGraph(graph);
      ({ snapshot, size, vouched } = mirrorBaseline(true));
    } else {
      snapshot = graph.snapshot();
      mirror.reset(snapshot);
      size = sizer(snapshot);
    }
    const timestampNs = nowNs();
    // The pairs of a WAL group resume together, all above the highest seq any of them numbered, or none does.
    const resumeAt = new Map<WalGroup, number>();
    checked.forEach(({ group }, i) => {
      if (group === undefined) return;
      const seq = resumeAt.get(group) ?? 0;
      resumeAt.set(group, ready[i] !== true || seq < 0 ? -1 : Math.max(seq, (states[i] as PairState).outbox.seq));
    });
    states.forEach((pair, i) => {
      const group = (checked[i] as (typeof checked)[number]).group;
      const at = group === undefined ? 0 : (resumeAt.get(group) as number);
      if (ready[i] !== true || at < 0) return;
      baselineTaken(pair, size);
      pair.outbox.rebaseline({ kind: "baseline", snapshot, timestampNs, own: true, vouched }, at);
    });
  };

  const rebaseline = async (): Promise<number> => {
    if (disposed) {
      throw new StorageError("closed", `rebaseline: the storage handle of graph "${graph.name}" is disposed`, {
        graph: graph.name,
      });
    }
    await resume(() => true);
    return flush();
  };

  /**
   * A lost store worker stopped a pair (AttachOutbox.onWorkerLost): it is resumed as rebaseline() would, after
   * `delayMs` (the outbox's backoff), once for every pair stopped meanwhile. Reached from the outboxes weakly (a
   * WeakMap keyed by `report`, which lives as long as the graph observes): long-lived tier state holds them.
   */
  let resumeDue = false;
  const resumeLost = (delayMs: number): void => {
    if (resumeDue || disposed) return;
    resumeDue = true;
    // Unref'd: what the resume writes is what no flush acknowledged; a flush() waiting for it keeps the process up.
    setTimeout(() => {
      resumeDue = false;
      if (disposed) return;
      resume((pair) => pair.outbox.stoppedByLostWorker).then(
        () => {
          // A pair still stopped (its seq bootstrap failed again, a group not ready): tried again, backing off.
          const again = states.find((pair) => pair.outbox.stoppedByLostWorker);
          if (again !== undefined) resumeLost(Math.min(10_000, Math.max(100, delayMs * 2)));
        },
        (err: unknown) => report(err, (states[0] as PairState).outbox.snapshot),
      );
    }, delayMs).unref();
  };
  lostResumers.set(report, resumeLost);

  let disposing: Promise<void> | undefined;
  const handle: StorageHandle = {
    flush,
    drained: () => quiet(Promise.all(states.map((pair) => pair.outbox.drained())).then(noop)),
    rebaseline: () => quiet(rebaseline()),
    dispose(): Promise<void> {
      if (disposing === undefined) {
        disposed = true;
        // A pair a lost worker stopped is resumed no more: its last flush says so at once (the stop's error).
        for (const { outbox } of states) outbox.endResumeWait();
        unsubscribe();
        // Disposed, the handle releases its rules itself: a long-lived graph attached and disposed N times kept N
        // registry cells until it was collected (review r237 #3).
        collectedGraphs.unregister(handedOver);
        // Reclaim ends once the last flush settled and the reclaim work running then (a read-back, the deletes it
        // started) settled, or DISPOSE_RECLAIM_WAIT_MS passed; a retry waiting on a timer is not run. Dead frames left
        // are the next attach's to delete: ending the running work at once left a frame per attach/dispose cycle,
        // never deleted (task 259); waiting without bound kept dispose() and the graph's claim for as long as a
        // delete waited on a row lock (PostgreSQL, no statement_timeout: forever) or a stale backlog took (r267).
        disposing = quiet(
          flush()
            .then(noop)
            .finally(async () => {
              await settledWithin(Promise.all(states.map(({ outbox }) => outbox.reclaimSettled())), DISPOSE_RECLAIM_WAIT_MS);
              for (const { outbox } of states) outbox.dispose();
              // After the last flush, before the stores are free: the actors this handle gave its fold rule stop
              // folding the graph, and a store nothing else holds shuts down with its last tier (task 223). Also
              // when the WAL tier's close began first (review r231 F1): the release goes through its store then,
              // and dispose settles once a store with no tier left was shut down (or kept).
              const releases = states.map(({ outbox, cadence }) =>
                cadence.kind === "background" && outbox.wal !== undefined ? stopFoldingInBackground(outbox.wal, graph.name) : undefined,
              );
              // The shared-WAL records are flushed (shared-wal.ts) before the stores are free for another attach.
              await Promise.all([...releases, ...unregister.map((end) => end())]);
              releaseTiers(graph.name, tiers);
            }),
        );
      }
      return disposing;
    },
    get seq(): number {
      let seq = Number.POSITIVE_INFINITY;
      for (const { outbox } of states) if (!outbox.stopped) seq = Math.min(seq, outbox.seq);
      return seq === Number.POSITIVE_INFINITY ? 0 : seq;
    },
  };
  outboxesOf.set(handle, states.map((pair) => pair.outbox));
  return handle;
}

/** Each handle's outboxes, in pair order (attachOutboxes). */
const outboxesOf = new WeakMap<StorageHandle, readonly AttachOutbox[]>();

/**
 * The outboxes of a handle attach returned, in pair order: what each pair still has to write (`queued`,
 * `queuedBytes`). Internal (tests and tools in this repository), not exported from the package.
 */
export function attachOutboxes(handle: StorageHandle): readonly AttachOutbox[] {
  return outboxesOf.get(handle) ?? [];
}

/**
 * A pair's periodic-baseline cadence: an explicit `compactEvery` (the option, else the snapshot tier's) counts
 * waves, as in the references. By default the ratio rule applies; with engine tiers the store's actor applies it
 * in the background (no full snapshot on this thread after attach) when it can, else attach does.
 */
function cadenceOf(graphName: string, pair: AttachPair, compactEvery: number | undefined, ratio: number, shared: boolean): Cadence {
  const waves = compactEvery ?? pair.snapshot.compactEvery;
  if (waves !== undefined) return { kind: "waves", waves };
  // A background fold deletes the frames it folds into its pair's baseline: other pairs on the WAL tier need them.
  if (pair.wal === undefined || shared) return { kind: "ratio", ratio };
  try {
    if (foldInBackground(pair.wal, pair.snapshot, graphName, { ratio, minBytes: BASELINE_MIN_BYTES })) {
      return { kind: "background" };
    }
  } catch {
    // a closed tier: attach's own writes report it
  }
  return { kind: "ratio", ratio };
}

/**
 * Graph names by store id, each with its attached graph held weakly: a handle dropped with its graph, never disposed,
 * writes nothing more, and its claim counts as released once the graph is collected (a live graph keeps its attach,
 * which writes on its waves, and so its claim). A store object id is held weakly too (a memory store is not kept).
 */
class Claims {
  readonly #byPath = new Map<string, Map<string, ClaimEntry>>();
  readonly #byObject = new WeakMap<object, Map<string, ClaimEntry>>();

  /**
   * Whether a graph still alive holds `graphName`'s claim on store `id`. A collected one's is released here, and what
   * it left to undo is: its fold rule is taken back first (before a new handle of the graph hands over its own), and
   * its outboxes retire (a new attach of the graph on the store ends what is left of that: attach-floor.ts). The entry
   * stays until they retired.
   */
  has(id: string | object, graphName: string): boolean {
    const entry = this.#names(id)?.get(graphName);
    if (entry === undefined) return false;
    if (entry.owner.deref() !== undefined) return true;
    const collected = entry.collected;
    entry.collected = undefined; // once
    collected?.();
    const retired = entry.retire?.();
    if (retired === undefined) {
      this.delete(id, graphName);
      return false;
    }
    const done = (): void => {
      if (this.#names(id)?.get(graphName) === entry) this.delete(id, graphName); // unless an attach took it over
    };
    retired.then(done, done);
    return false;
  }

  add(id: string | object, graphName: string, owner: object): void {
    let names = this.#names(id);
    if (names === undefined) {
      names = new Map();
      if (typeof id === "string") this.#byPath.set(id, names);
      else this.#byObject.set(id, names);
    }
    names.set(graphName, { owner: new WeakRef(owner) });
  }

  /** Runs `fn` once `graphName`'s claim on store `id` is found with its graph collected (see `has`). */
  onCollected(id: string | object, graphName: string, fn: () => void): void {
    const entry = this.#names(id)?.get(graphName);
    if (entry !== undefined) entry.collected = fn;
  }

  /** Sets what retires the outboxes of `graphName`'s claim on store `id` once its graph is found collected. */
  onRetire(id: string | object, graphName: string, fn: () => Promise<void>): void {
    const entry = this.#names(id)?.get(graphName);
    if (entry !== undefined) entry.retire = fn;
  }

  delete(id: string | object, graphName: string): void {
    const names = this.#names(id);
    names?.delete(graphName);
    if (names?.size !== 0) return;
    if (typeof id === "string") this.#byPath.delete(id);
    else this.#byObject.delete(id); // a store object is not held once nothing claims it
  }

  #names(id: string | object): Map<string, ClaimEntry> | undefined {
    return typeof id === "string" ? this.#byPath.get(id) : this.#byObject.get(id);
  }
}

/**
 * A claim: its graph, held weakly, and what to undo once that graph is found collected undisposed (its fold rule, its
 * outboxes: `retire` holds them, and so their tiers, which must not reach the graph).
 */
interface ClaimEntry {
  readonly owner: WeakRef<object>;
  collected?: () => void;
  retire?: () => Promise<void>;
}

/** What the registry keeps of an attach until its graph is collected: none of it reaches the graph. */
interface DroppedAttach {
  readonly graphName: string;
  readonly claims: ReadonlyArray<{ readonly role: Claim["role"]; readonly id: string | WeakRef<object> }>;
  readonly retire: () => Promise<void>;
}

/**
 * Attached graphs: once one is collected undisposed, its outboxes retire (their last writes flushed, their refusal
 * watches ended: else every open tier of the pair kept them) and its claims are looked at, which releases them and
 * takes its fold rule back (Claims.has). Without it a store holding a fold rule stayed open until engine.close()
 * (task 223's report), and a claim no later attach looked at kept its outboxes. A claim released or taken over
 * meanwhile is left alone.
 */
const collectedGraphs = new FinalizationRegistry<DroppedAttach>((held) => {
  void held.retire();
  for (const { role, id } of held.claims) {
    const store = typeof id === "string" ? id : id.deref();
    if (store !== undefined) claimed[role].has(store, held.graphName);
  }
});

/**
 * Retires `outboxes` once `graph` is collected undisposed, or once a later attach finds its claims so. Module-level
 * so neither callback holds the graph (a closure made in attach would share its context, which holds the graph).
 * Task 245: while the pairs' tiers stayed open their refusal watches held the outboxes, and the outboxes' report
 * closure attach's context: the graph was never collected, its name stayed claimed and its fold rule in force.
 */
function retireWhenCollected(graph: Graph, claims: readonly Claim[], outboxes: readonly AttachOutbox[], token: object): void {
  const graphName = graph.name;
  let retired: Promise<void> | undefined;
  const retire = (): Promise<void> => (retired ??= Promise.all(outboxes.map((o) => o.retire())).then(noop));
  for (const { role, id } of claims) claimed[role].onRetire(id, graphName, retire);
  const held = claims.map(({ role, id }) => ({ role, id: typeof id === "string" ? id : new WeakRef(id) }));
  // `token`: the attach's own (its handedOver list, held weakly by the registry), unregistered by its dispose or
  // its failure, so the cell lives only as long as the handle could be dropped undisposed.
  collectedGraphs.register(graph, { graphName, claims: held, retire }, token);
}

/**
 * Each attach's resume after a lost store worker, by its `report` (attach's resumeLost): the outboxes reach it through
 * their `report`'s WeakRef, so what the resume holds (the graph) is held no longer than `report` is.
 */
const lostResumers = new WeakMap<object, (delayMs: number) => void>();

/**
 * An outbox's way to its attach's resume (lostResumers), reached weakly as `report` is: made out here, so the closure
 * holds `report`'s WeakRef alone, not attach's scope (which holds the graph).
 */
function weakResume(report: WeakRef<object>): (delayMs: number) => void {
  return (delayMs) => {
    const r = report.deref();
    if (r !== undefined) lostResumers.get(r)?.(delayMs);
  };
}

/** `report` for one pair, reached weakly: long-lived tier state holds what calls it (see attach's `reportRef`). */
function weakReport(
  report: WeakRef<(err: unknown, snapshot: SnapshotStorageTier<GraphCheckpointRecord>) => void>,
  snapshot: SnapshotStorageTier<GraphCheckpointRecord>,
): (err: unknown) => void {
  return (err) => report.deref()?.(err, snapshot);
}

/**
 * Stores holding a live attach's records, by graph name: a second handle writing graph "g" beside the first would
 * number its own seqs under the same keys (two sequences, frames overwritten, holes in each: docs/design.md §3.7).
 * By store (tier-store identity), not tier object: two tiers over one store write the same keys. Baselines (key
 * "g") and frames ("g/wal/…") are claimed apart: one store may hold a pair's baseline and another pair's WAL.
 */
const claimed = { snapshot: new Claims(), wal: new Claims() };

/** What attach claims: a store's baseline or WAL keys of the graph. */
interface Claim {
  readonly role: "snapshot" | "wal";
  readonly id: string | object;
}

/** The store of `tier` (the tier itself for a hand-written tier). */
function storeIdOf(tier: object): string | object {
  return tierStore(tier)?.id ?? tier;
}

/**
 * Claims the stores of every tier of `pairs` for `graphName` (released when the handle's dispose settled, or once
 * `owner`, the attached graph, was collected). Throws
 * StorageError("invalid-argument") for a store a live handle of the graph holds in that role, two snapshot tiers
 * over one store (two baselines under one key), or two WAL tier objects over one store (they would number apart:
 * pairs share a WAL by sharing the tier object). A claim whose graph was collected undisposed is taken over, and
 * its outboxes retire (Claims.has).
 */
function claimTiers(graphName: string, pairs: readonly AttachPair[], owner: Graph): Claim[] {
  const mine: Claim[] = [];
  const seen = { snapshot: new Map<string | object, object>(), wal: new Map<string | object, object>() };
  const take = (role: Claim["role"], tier: object & { name?: string }, i: number): void => {
    const id = storeIdOf(tier);
    const before = seen[role].get(id);
    if (before === tier && role === "wal") return; // several pairs may share one WAL tier: one WalGroup numbers them
    if (before !== undefined) {
      const why =
        role === "snapshot"
          ? `pairs[${i}].snapshot is given twice, or writes to the store of another pair's snapshot tier (two baselines under one key)`
          : `pairs[${i}].wal is a second tier over the store of another pair's WAL tier (pairs share a WAL by sharing one tier object)`;
      throw new StorageError("invalid-argument", `attachSnapshotStorage: ${why} (graph "${graphName}")`, {
        graph: graphName,
        tier: tier.name,
      });
    }
    seen[role].set(id, tier);
    if (claimed[role].has(id, graphName)) {
      throw new StorageError(
        "invalid-argument",
        `attachSnapshotStorage: graph "${graphName}" is attached to the store of tier "${tier.name}" already ` +
          "(a second handle would write the same keys with seqs of its own): dispose the first handle, and await it",
        { graph: graphName, tier: tier.name },
      );
    }
    mine.push({ role, id });
  };
  pairs.forEach((p, i) => {
    take("snapshot", p.snapshot, i);
    if (p.wal !== undefined) take("wal", p.wal, i);
  });
  for (const { role, id } of mine) claimed[role].add(id, graphName, owner);
  return mine;
}

function releaseTiers(graphName: string, claims: readonly Claim[]): void {
  for (const { role, id } of claims) claimed[role].delete(id, graphName);
}

/** Runs `fn` (a call into the graph during attach); when it throws, the claim is released and no handle returned. */
function released<T>(graphName: string, tiers: readonly Claim[], fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    releaseTiers(graphName, tiers);
    throw err;
  }
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
  // Its keys share the store with other graphs' and tiers' records: a name shaped like one of theirs would overwrite it.
  assertGraphName(g.name, "attachSnapshotStorage");
  // A batch's snapshot holds changes its rollback may undo, and a rollback emits no wave: the baseline would keep them.
  if (typeof g.inBatch === "function" && g.inBatch()) {
    throw new TypeError("attachSnapshotStorage: cannot attach inside a batch (a rollback would leave its changes in the baseline); attach before or after it");
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
  maxQueuedBytes: number;
} {
  if (typeof opts !== "object" || opts === null) throw new TypeError("attachSnapshotStorage: opts must be an object");
  refuseUnknownKeys(opts, ["paths", "filter", "compactEvery", "baselineRatio", "maxQueuedBytes", "onError"], "attachSnapshotStorage");
  const { paths, filter, onError, compactEvery, baselineRatio = DEFAULT_BASELINE_RATIO, maxQueuedBytes = DEFAULT_MAX_QUEUED_BYTES } = opts;
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
  if (typeof maxQueuedBytes !== "number" || Number.isNaN(maxQueuedBytes) || maxQueuedBytes <= 0) {
    throw new RangeError(`attachSnapshotStorage: opts.maxQueuedBytes must be a number > 0 (or Infinity), got ${String(maxQueuedBytes)}`);
  }
  return { paths: paths === undefined ? undefined : new Set(paths), filter, onError, baselineRatio, maxQueuedBytes };
}
