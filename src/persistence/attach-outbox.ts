/**
 * AttachOutbox: what one attach pair (a snapshot tier and its optional WAL tier) still has to write, in order
 * (docs/design.md §3.7, §3.15–§3.16). It numbers frames and baselines with the pair's seqs, holds them until the
 * seq bootstrap is done, an own baseline is durable, or a tier under backpressure drained, retries transient
 * failures, and stops the pair for good at a refused seq (removing whatever the store holds past the gap).
 * attachSnapshotStorage decides what goes in (waves, baselines and their cadence); this decides when it is out.
 * Layer 4 (persistence).
 */
import { StorageError } from "../errors.js";
import { isPermanent } from "../tier/core.js";
import { isRefusalReport } from "../tier/refusal-watchers.js";
import { isFinalError, sharedWriteAttempt, writesEndedBy, type PendingWriter } from "../tier/write-verdict.js";
import type { KvStorageTier, SnapshotHead, SnapshotStorageTier } from "../tier/types.js";
import { headOf } from "../tier/json-head.js";
import { vouchBaseline, vouchWalFrame, vouchWalFrames } from "../tier/value-check.js";
import { walFrameCodec } from "../wal/codec.js";
import type { WALFrame } from "../wal/frame.js";
import { graphWalPrefix, parseWalFrameKey, walFrameKey } from "../wal/keys.js";
import { nextTurn } from "../base/promises.js";
import { timerBound } from "../base/timers.js";
import { dropEndedBaselines, floorOf, holdFloor, noteEndedSnapshot, noteRetiring } from "./attach-floor.js";
import { closedByOwner, engineGone, engineGoneError, saidError, tierClosedError, writeAt } from "./engine-gone.js";
import { diffFrames, oneValueFrame } from "./decompose.js";
import { saveValueFrame, type ValueFrameLane, type ValueFrameParts } from "../wal/frame-columns.js";
import { diffBytes } from "./size-estimate.js";
import {
  checkBaseline,
  foreignFrameError,
  readFrameChunks,
  tierSource,
  type FrameKey,
  type StoredGraphSource,
  type StoredValue,
} from "./stored-graph.js";
import type { GraphCheckpointRecord, GraphSnapshotDiff, GraphWALFrame } from "./storage-types.js";
import { endSharedWalRecord, loadPriorRecord, sharedWalRecordKey, type PriorRecord } from "./shared-wal-record.js";
import { SNAPSHOT_VERSION, type GraphPersistSnapshot } from "../graph/types.js";

/** Own-seq baselines remembered above the durable seq (a bound for handles that never flush; see `holes`). */
const MAX_TRACKED_BASELINES = 4096;
/** Retries of an own baseline whose flush failed transiently (a tier's flush retries back off alike). */
const GATE_RETRY = { initialMs: 100, maxMs: 10_000 };
/** Dead frames deleted per backend batch (one SQLite transaction); the event loop runs between batches. */
const RECLAIM_CHUNK = 8192;
/** Rounds of reading again stale keys whose read threw (100 ms doubling to 10 s, jittered: 12-23 s); then left to the next attach. */
const STALE_READ_RETRIES = 8;
const noop = (): void => {};
/**
 * `item.frames` of a wave whose one frame a tier took in its parts (#save): saved whole, nothing left to number or
 * resend (no frame past `next`, 0). Never written to.
 */
const SAVED_IN_PARTS = Object.freeze([]) as unknown as GraphWALFrame[];

/**
 * A baseline is `own` when it is the live graph rather than the sum of the frames before it (attach, rebaseline,
 * every baseline of a pair without a WAL): it takes a seq of its own. A periodic one carries the last frame's seq.
 * A frames item is numbered on its first save attempt (`frames`) and resumes at `next` on a retry; `weight` is its
 * estimated bytes once it waits in the queue. `resumeAt`: an own baseline replacing queued waves in a WAL group is
 * numbered above it (the highest seq any member numbered: see `collapse`).
 */
export type OutboxItem =
  | {
      kind: "baseline";
      snapshot: GraphPersistSnapshot;
      timestampNs: number;
      own: boolean;
      resumeAt?: number;
      /**
       * Set when attach built the snapshot from its own graph's checked slices and froze it (attach.ts
       * mirrorBaseline): its estimated size, which the tier's value check answers instead of walking the record.
       */
      vouched?: number | undefined;
    }
  | {
      kind: "frames";
      diff: GraphSnapshotDiff;
      timestampNs: number;
      frames: GraphWALFrame[] | undefined;
      next: number;
      weight?: number;
    };

/**
 * Which dead frames (at or below a durable baseline) a pair deletes (docs/design.md §3.18): "all" (attach's own
 * size rule: the frames it wrote and those stored before it attached), "stale" (the store's actor folds the WAL
 * and deletes what it folds; the frames stored before attach are left to this pair), "none" (an explicit
 * compactEvery: the WAL is kept as the reference implementations keep it, for compactGraph or autoCompact).
 */
export type Reclaim = "all" | "stale" | "none";

/**
 * The pairs of one attach that share a WAL tier (docs/design.md §3.7): their frames go under the same keys, so they
 * are one sequence of seqs. Every member submits the same items in the same order and numbers them alike, which
 * holds only if they start at one seq (the bootstrap reads for them all: the WAL's highest frame key and every
 * member's stored baseline), no member skips what the others number (a stop stops them all) and a rebaseline resumes
 * them all at one seq. A frame leaves no member before every member's own baseline below it is durable: the frame
 * is in each member's store, and above a missing own baseline it would be a hole in that member's changes.
 */
export class WalGroup {
  readonly members: AttachOutbox[] = [];
  /** The group's seq bootstrap while one is in flight (members bootstrapping at once share it). */
  bootstrap: Promise<number> | undefined;
  /** Highest frame seq a member saved: a member numbering the same wave later does not save its frames again. */
  written = 0;
  /**
   * Hears that a member's baseline may have been stored at a higher seq (its own baseline's gate opened, a flush
   * settled after a newer baseline): the frames below every member's baseline are the ones a compaction may delete
   * (shared-wal.ts moves the WAL store's pin on).
   */
  baselineMoved: (() => void) | undefined;
  /**
   * Hears, before the seq bootstrap resolves (so before any frame of the group is saved), the shared-WAL record an
   * earlier session left in the WAL's store and the WAL's highest frame seq then: shared-wal.ts writes this session's
   * record from them (keeping what it says was forgotten).
   */
  recordFound: ((prior: PriorRecord, top: number) => void) | undefined;
}

export class AttachOutbox {
  /** Last seq handed to a tier (after a stop: the highest seq ever numbered, so a rebaseline goes above it). */
  #seq = 0;
  /** Highest seq known durable in both tiers. */
  #durable = 0;
  #ready = false;
  /**
   * Set when the pair stopped for good (a refused write, a failed bootstrap): nothing more is saved and flush()
   * rejects with the error this settles to, until rebaseline. Set synchronously; settles once the refused seq
   * is known and nothing past it is left in the store.
   */
  #stopped: Promise<Error> | undefined;
  /** The save that failed last (the outbox is stuck until it succeeds). */
  #blocked: Error | undefined;
  /** While a tier refused a save with backpressure: resolves once both tiers drained (the outbox then moves on). */
  #room: Promise<void> | undefined;
  /** handle.drained()'s shared write-attempt loop behind a full tier, while one runs (#roomWait). */
  #roomLoop: Promise<void> | undefined;
  /**
   * Set while an own baseline is being made durable: no frame leaves the outbox before it (a store never holds
   * frames above a missing own baseline). Stays set after a transient failure (`gateError`) until flush() retries.
   */
  #gate: Promise<void> | undefined;
  #gateError: Error | undefined;
  /**
   * After a transient failure the gate is retried on a timer (backoff from GATE_RETRY.initialMs, jittered), not only
   * by the next flush(): a writer pacing on drained() never calls flush, and its waves would pile up here unwritten.
   * `#gateRetry` settles once the retry started; `#gateDelay` is 0 while the gate has not failed in this spell.
   */
  #gateRetry: Promise<void> | undefined;
  #gateDelay = 0;
  /**
   * Seqs of own baselines numbered above `durable`, ascending: the holes in the WAL's seqs that are not refused
   * frames. Capped: forgetting one only makes a later gap search stop earlier (more unacknowledged frames dropped).
   */
  #holes: number[] = [];
  /** Seq of the last baseline saved (the one a refused snapshot flush refers to). */
  #lastBaseline = 0;
  /**
   * Baselines handed to the snapshot tier, and how many of them a flush() acknowledged (its snapshot flush resolved
   * after they were saved): a periodic baseline is numbered at the seq it covers, so the seqs alone do not say
   * whether the last one is stored (#nothingUnacknowledged).
   */
  #baselinesSaved = 0;
  #baselinesAcked = 0;
  /** FIFO: `queue[head]` is next (an index, not shift(): waves queued during the bootstrap can be many). */
  #queue: Array<OutboxItem | undefined> = [];
  #head = 0;
  /** Index in `queue` of the unsent baseline a newer one replaces (-1: none), so the outbox holds at most one. */
  #replaceable = -1;
  /** Estimated bytes of the frames items in `queue` (attach bounds it with `collapse`: docs/design.md §3.19). */
  #queuedBytes = 0;
  /** Set once a collapse was reported, until the queue runs empty (reported once per spell). */
  #collapsed = false;
  /**
   * Set once a tier's backpressure was reported, until the queue runs empty (once per spell): reported again after
   * each save that got through, a writer not pacing on drained() made onError hear it ~16 times a second.
   */
  #pressed = false;
  /** False when the WAL tier's codec seals frames itself (checksum computed where it encodes: design.md §3.14). */
  readonly #seal: boolean;
  readonly #prefix: string;
  /** The parts of a lone value frame saved without building it (#save), reused. */
  readonly #parts: ValueFrameParts = {
    lifecycle: "",
    structure: "",
    version: 0,
    kind: "",
    path: "",
    value: undefined,
    frameSeq: 0,
    tNs: 0,
    checksum: "",
    formatVersion: 0,
  };
  #bootstrap!: Promise<void>;
  /**
   * Reclaiming dead frames (docs/design.md §3.18): frames at or below a durable baseline are never read again, and
   * are deleted. `#deadKeys`: the frames the store held when the pair attached (all below the attach baseline, an
   * own baseline above every stored seq) until it is durable, then keys to delete (also a failed batch's, retried
   * on a timer); `#staleTop` their highest seq. `#deadRanges`: seqs this pair wrote below a durable
   * baseline. What is reclaimed is the `reclaim` mode's (see `Reclaim`).
   */
  #stale: string[] = [];
  #staleTop = 0;
  #deadKeys: string[] = [];
  #deadRanges: Array<{ from: number; to: number }> = [];
  /** Lowest seq this pair numbered that no reclaim covers yet (Infinity: none). */
  #unreclaimed = Number.POSITIVE_INFINITY;
  #reclaiming = false;
  /**
   * Set by dispose(): nothing more is saved (queued items are dropped, the gate's retry and room waits end) and
   * reclaim work ends; the next attach's listing finds what is left.
   */
  #disposed = false;
  /** What dispose() wakes: handle.drained()'s waits and their paused write attempts (each removes itself). */
  readonly #onDispose = new Set<() => void>();
  /** Highest seq a read-back proved covered by a stored baseline: frames up to it may be gone (not a gap). */
  #reclaimedTo = 0;
  /** Backoff of the retry of a failed delete batch (0: the deletes have not failed in this spell). */
  #reclaimDelay = 0;
  #reclaimRetry = false;
  /** Periodic baseline whose reclaim waits for the next flush (a snapshot window beyond the timer range); 0: none. */
  #reclaimAfterFlush = 0;
  /** The same for a read-back that failed to read. */
  #readBackDelay = 0;
  #readBackRetry = false;
  #readBackUpTo = 0;
  /** Failed rounds of reading the stale keys whose read threw (0: none failing); see #reclaimStale. */
  #unreadTries = 0;
  /**
   * Reclaim work running now (a read-back and what it starts, a stale read round, the delete loop), each settled
   * alone; timers waiting to retry are not in it. handle.dispose() waits for it (reclaimSettled).
   */
  readonly #reclaimWork = new Set<Promise<void>>();
  /**
   * Ends the watches of this pair's refused writes (#walRefused, #snapshotRefused): a refusal is heard whoever
   * flushed its tier. Undefined where neither tier can be watched (a hand-written tier): the pair's own flushes
   * then are how it hears a refusal.
   */
  #unwatch: (() => void) | undefined;
  /** Whether the WAL tier's refusals are watched: a refusal report its flush rejects with then is another's. */
  readonly #watchesWal: boolean;
  /**
   * The checks, one per tier, of what a refusal of unknown keys took (#checkUnknownRefusal): flush() waits for
   * them all, or rejects with a check's error once its attempt could not read the store (retried on a timer
   * meanwhile); an own baseline's gate stays shut until all are done.
   */
  readonly #checks = new Map<"wal" | "snapshot", UnknownLossCheck>();
  /** The highest seq handed out before the last rebaseline: frames up to it are dead (deleted at the stop). */
  #resumedAbove = 0;
  /** The pairs sharing this pair's WAL tier in its attach, this one included (undefined: the WAL is its own). */
  readonly #group: WalGroup | undefined;
  /** Seq of the last own baseline this pair saved (a frame above it in another member of the group waits for it). */
  #gatedAt = 0;
  /** Seq of the last baseline the group heard of as possibly stored (WalGroup.baselineMoved). */
  #toldStored = 0;
  /**
   * Set by attach on the one pair per WAL tier that writes no shared-WAL record (shared-wal-record.ts): a record an
   * earlier session left in the WAL's store is deleted once this pair's attach baseline is durable (the stores it
   * names no longer restore from this WAL once this session writes). `#recordSeen`: the seq bootstrap listed one.
   */
  endsSharedRecord = false;
  #recordSeen = false;
  /** The record the seq bootstrap found (read only when it listed one) and the WAL's highest frame seq then. */
  #priorRecord: PriorRecord = { record: undefined };
  #priorTop = 0;
  /** Set by `retire`: settles once the pair's last flush settled and it was disposed. */
  #retired: Promise<void> | undefined;
  /**
   * Set by attach: asked to resume the pair (its rebaseline, by itself) once a lost store worker stopped it, after
   * `delayMs` (0 at the first loss of a spell, then backing off: a worker dying at every revival is no hot loop).
   */
  onWorkerLost: ((delayMs: number) => void) | undefined;
  /** Losses of a store worker that stopped the pair: a flush in flight across one rejects with it (#lostError). */
  #losses = 0;
  #lostError: Error | undefined;
  /** A loss no flush rejected with yet: the next flush answers for the lost writes, so it rejects with it. */
  #lossUnanswered = false;
  /** The pair is stopped by a lost worker and waits for its resume; `#resumed` wakes flush() and drained() then. */
  #lostStop = false;
  #resumed: Promise<void> = Promise.resolve();
  #wakeResumed: () => void = noop;
  /** Backoff of the next resume after a loss (0: none in this spell; reset once an own baseline is durable). */
  #lossDelay = 0;

  /**
   * Queues `first` (the attach baseline) and starts the seq bootstrap. `report` hears every
   * failure once (it must not throw). Long-lived tier state holds the outbox (its refusal watches), so nothing it
   * holds may reach the attached graph: attach hands it a `report` that reaches onError through a WeakRef.
   */
  constructor(
    readonly graphName: string,
    readonly snapshot: SnapshotStorageTier<GraphCheckpointRecord>,
    readonly wal: KvStorageTier<WALFrame> | undefined,
    private readonly report: (err: unknown) => void,
    first: OutboxItem,
    private readonly reclaim: Reclaim,
    group?: WalGroup,
  ) {
    // The outboxes of an earlier attach of the graph on these stores still retiring (its graph collected
    // undisposed; found through its claim or not: task 252) were stopped by attach (cedeRetiring, before its
    // predecessor-pending check: review r264 F6), and this pair numbers above what they handed out (their floor)
    // without waiting for their last flush (attach-floor.ts).
    // Their baselines their snapshot tiers still hold for a retry never land over this pair's (task 254).
    dropEndedBaselines(graphName, snapshot);
    this.#group = group;
    group?.members.push(this);
    this.#seal = wal?.codecName !== walFrameCodec.name;
    this.#prefix = graphWalPrefix(graphName);
    const unwatchWal = wal?.watchRefusals?.(`${this.#prefix}/`, (key, err) => this.#walRefused(key, err));
    const unwatchSnapshot = snapshot.watchRefusals?.(graphName, (key, err) => this.#snapshotRefused(key, err));
    this.#watchesWal = unwatchWal !== undefined;
    if (unwatchWal !== undefined || unwatchSnapshot !== undefined) {
      this.#unwatch = () => {
        unwatchWal?.();
        unwatchSnapshot?.();
      };
    }
    this.#queue.push(first);
    this.#startBootstrap();
  }

  /** Last seq handed to a tier. */
  get seq(): number {
    return this.#seq;
  }

  /** True once the pair stopped for good (until `rebaseline`). */
  get stopped(): boolean {
    return this.#stopped !== undefined;
  }

  /** True while the pair is stopped by a lost store worker, waiting for the resume attach makes by itself. */
  get stoppedByLostWorker(): boolean {
    return this.#lostStop && this.#stopped !== undefined;
  }

  /** Ends the waits of flush() and drained() for a resume that will not come (the handle is disposed). */
  endResumeWait(): void {
    this.#lostStop = false;
    this.#wakeResumed();
  }

  /** While stopped by a lost worker: waits for the resume (or endResumeWait); then the pair's state says what next. */
  async #awaitResume(): Promise<void> {
    while (this.stoppedByLostWorker && !this.#disposed) await this.#resumed;
  }

  /** Saves `item` now when nothing waits ahead of it (the steady state), else queues it behind the rest. */
  submit(item: OutboxItem): void {
    if (this.#stopped !== undefined || this.#disposed) return; // nothing is written past a refused seq until rebaseline
    const held = item.kind === "frames" && this.#group !== undefined && this.#heldBy() !== undefined;
    if (!this.#ready || this.#gate !== undefined || this.#head !== this.#queue.length || held) {
      if (item.kind === "baseline" && (!item.own || this.wal === undefined)) {
        // A newer baseline holds everything an unsent older one does: memory holds one baseline per pair.
        if (this.#replaceable >= this.#head) this.#queue[this.#replaceable] = undefined;
        this.#replaceable = this.#queue.length;
      }
      this.#queue.push(item);
      if (item.kind === "frames") this.#queuedBytes += item.weight = diffBytes(item.diff);
      // Under backpressure the store stays full until it drains, and #awaitRoom drains the outbox then: trying
      // meanwhile would only be refused again, each refusal an error built (~5 µs of a burst's main thread per wave).
      if (!isBackpressure(this.#blocked)) this.#drain();
      return;
    }
    try {
      this.#saveItem(item);
      this.#blocked = undefined;
    } catch (err) {
      this.#queue.push(item);
      if (item.kind === "frames") this.#queuedBytes += item.weight = diffBytes(item.diff);
      this.#fail(item, err);
    }
  }

  /** Estimated bytes of the waves waiting in the outbox (handed to no tier yet, or not all of them). */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Items waiting in the outbox (frames and baselines not yet handed to a tier). O(queue): for tests and tools. */
  get queued(): number {
    let n = 0;
    for (let i = this.#head; i < this.#queue.length; i++) if (this.#queue[i] !== undefined) n++;
    return n;
  }

  /**
   * Replaces everything queued that no tier took any part of by `baseline`, an own baseline of the persisted state
   * (attach's mirror: it holds all those waves and baselines hold), so a store that is stuck or slower than the writer
   * keeps the outbox at one baseline, not every wave (docs/design.md §3.19). It is numbered above every seq handed
   * out and durable before any later frame leaves, as any own baseline; a frames item a tier took part of stays
   * ahead of it. The pairs sharing this pair's WAL tier do it too, at once: they number alike, so each numbers its
   * baseline above the highest seq any of them numbered (seqs it skips are the others' frames or own baselines).
   * onError hears it once per spell (until the outbox ran empty), as StorageError("backpressure").
   */
  collapse(baseline: OutboxItem & { kind: "baseline"; own: true }): void {
    const members = this.#group?.members ?? [this];
    let resumeAt = this.#group?.written ?? 0;
    if (this.#group !== undefined) {
      for (const m of members) resumeAt = Math.max(resumeAt, m.#seq, m.#partialTop());
    }
    for (const m of members) {
      if (m.#stopped !== undefined || m.#disposed) continue;
      const waves = m.#dropUnsent();
      m.#queue.push(this.#group === undefined ? baseline : { ...baseline, resumeAt });
      if (!m.#collapsed) {
        m.#collapsed = true;
        m.report(collapsedError(m.graphName, waves));
      }
    }
    for (const m of members) if (m.#stopped === undefined && !m.#disposed && !isBackpressure(m.#blocked)) m.#drain();
  }

  /** The last frame seq of a frames item at the head that a tier took part of (0: none): it stays queued. */
  #partialTop(): number {
    const head = this.#queue[this.#head];
    if (head?.kind !== "frames" || head.next === 0 || head.frames === undefined) return 0;
    return (head.frames[head.frames.length - 1] as GraphWALFrame).frame_seq;
  }

  /** Drops every queued item except a partly handed head (#partialTop); returns how many waves it dropped. */
  #dropUnsent(): number {
    const head = this.#partialTop() > 0 ? this.#queue[this.#head] : undefined;
    let waves = 0;
    for (let i = this.#head; i < this.#queue.length; i++) if (this.#queue[i]?.kind === "frames") waves++;
    this.#clearQueue();
    if (head?.kind !== "frames") return waves;
    this.#queue.push(head);
    this.#queuedBytes = head.weight ?? 0;
    return waves - 1;
  }

  /**
   * Makes everything submitted so far durable in both tiers (frames first) and resolves to the durable seq, or
   * rejects with why it is not: a transient failure (retried by the next flush) or the stop error.
   */
  async flush(): Promise<number> {
    try {
      return await this.#flush();
    } catch (err) {
      // A flush that rejected with a lost worker answered for its lost writes: the next one need not.
      if (lostWorker(err)) this.#lossUnanswered = false;
      throw err;
    }
  }

  async #flush(): Promise<number> {
    await this.#bootstrap;
    // Stopped by a lost worker: this flush answers for what the resume writes (the lost writes were answered for by
    // the flushes in flight at the loss); one in flight across a later loss rejects with it (below).
    if (this.#lossUnanswered) {
      this.#lossUnanswered = false;
      throw this.#stopped !== undefined ? await this.#stopped : (this.#lostError as Error);
    }
    await this.#awaitResume();
    const losses = this.#losses;
    this.#drain();
    // Everything handed out before this call is part of it: frames held back by backpressure first leave.
    await this.#outlastBackpressure();
    if (this.#stopped !== undefined) throw await this.#stopped;
    if (this.#blocked !== undefined) throw this.#blocked;
    if (this.#gateError !== undefined) this.#openGate(this.#lastBaseline); // retry the own baseline first
    // Frames held back by an own baseline leave once it is durable; they are part of this flush.
    for (;;) {
      while (this.#gate !== undefined) {
        // A gate held shut by a loss check that cannot read the store: the flush says why, as below (§3.16).
        const failed = [...this.#checks.values()].find((c) => c.error !== undefined);
        if (failed !== undefined) throw failed.error;
        await Promise.race([this.#gate, ...[...this.#checks.values()].map((c) => c.attempt)]);
        if (this.#stopped !== undefined) throw await this.#stopped;
        if (this.#gateError !== undefined) throw this.#gateError;
        // Frames the opened gate let go may meet a full tier: not a failure, they leave once it drained (as above).
        await this.#outlastBackpressure();
        if (this.#stopped !== undefined) throw await this.#stopped;
        if (this.#blocked !== undefined) throw this.#blocked;
      }
      // So are frames held back for the own baseline of another pair on this WAL tier (#heldBy).
      const m = this.#heldQueue();
      if (m === undefined) break;
      await this.#awaitMember(m, true);
      this.#drain();
      await this.#outlastBackpressure();
      if (this.#stopped !== undefined) throw await this.#stopped;
      if (this.#blocked !== undefined) throw this.#blocked;
    }
    const target = this.#seq;
    if (this.wal !== undefined) {
      try {
        await this.wal.flush(); // frames first: a baseline never lands before them
      } catch (err) {
        // A refusal of a watched WAL tier that was this pair's stopped it (#walRefused heard it before the flush
        // settled); else another writer's: every frame this flush answers for was written. Not once the store is
        // lost (not-owner): then nobody else's writes are refused through this backend.
        if (lostStore(err) || !(this.#watchesWal && isRefusalReport(err))) {
          if (this.#nothingUnacknowledged(err)) return this.#durable;
          throw await this.#flushFailed(err, "wal");
        }
        // Writes a lost store worker took (reported as a refusal, key unknown): what this pair lost is checked.
        if (!isPermanent(err)) this.#checkUnknownRefusal(err as Error, "wal");
      }
    }
    const baselineBefore = this.#lastBaseline;
    const baselinesBefore = this.#baselinesSaved;
    try {
      await this.snapshot.flush();
    } catch (err) {
      // A refusal report is this pair's only if its baseline is not stored (a shared tier: another writer's record).
      if (lostStore(err) || !(isRefusalReport(err) && (await this.#baselineStored(this.#lastBaseline)))) {
        if (this.#nothingUnacknowledged(err)) return this.#durable;
        throw await this.#flushFailed(err, "snapshot");
      }
    }
    while (this.#checks.size > 0) {
      // Nothing is acknowledged while what a lost worker took is unknown: a store that cannot say is a failure.
      const checks = [...this.#checks.values()];
      const failed = checks.find((c) => c.error !== undefined);
      if (failed !== undefined) throw failed.error;
      await Promise.race(checks.flatMap((c) => [c.done, c.attempt]));
    }
    // Stopped while this flush ran (a refusal, also one another writer's flush reported): nothing is acknowledged.
    if (this.#stopped !== undefined) throw await this.#stopped;
    // A worker lost while it ran, the pair resumed by itself since: what it answered for may be lost, so it rejects.
    if (this.#losses !== losses) {
      this.#lossUnanswered = false;
      throw this.#lostError as Error;
    }
    this.#baselinesAcked = Math.max(this.#baselinesAcked, baselinesBefore);
    if (target > this.#durable) {
      this.#durable = target;
      const h = this.#holes;
      let k = 0;
      while (k < h.length && (h[k] as number) <= target) k++;
      if (k > 0) h.splice(0, k);
    }
    this.#tellStored(baselineBefore);
    if (this.#reclaimAfterFlush > 0) {
      this.#reclaim(this.#reclaimAfterFlush);
      this.#reclaimAfterFlush = 0;
    }
    return this.#durable;
  }

  /**
   * Resolves once the outbox is not held back by backpressure and both tiers drained. A wait for room: a store that
   * may take writes again (a full disk, an I/O error spell) is waited through; one that takes none for good
   * (writesEndedBy: closed, not-owner, read-only, corrupt, a backend's finalError) makes it reject with the store's
   * error (task 258), also behind an own baseline; a stopped pair rejects with its stop error, as flush() (task 272).
   */
  drained(): Promise<void> {
    // dispose() ends every wait: what the outbox held is dropped, so nothing more will drain (review r279 F5).
    const closedError = (): StorageError =>
      new StorageError("closed", `drained(): the storage handle of graph "${this.graphName}" was disposed`, { graph: this.graphName });
    const closed = (): never => {
      throw closedError();
    };
    return new Promise<void>((resolve, reject) => {
      const wake = (): void => reject(closedError());
      this.#onDispose.add(wake);
      this.#drainedWait(closed)
        .then(resolve, reject)
        .finally(() => this.#onDispose.delete(wake));
    });
  }

  /** drained()'s waits; `closed` throws its error once the pair was disposed. */
  async #drainedWait(closed: () => never): Promise<void> {
    await this.#bootstrap;
    for (;;) {
      if (this.#disposed) closed();
      // A pair a lost worker stopped resumes by itself: the wait goes on through it (and through its backoff).
      if (this.stoppedByLostWorker) {
        await this.#resumed;
        continue;
      }
      // A stopped pair drops every change until rebaseline: no room to report to a writer pacing on this (as flush()).
      if (this.#stopped !== undefined) throw await this.#stopped;
      if (writesEndedBy(this.#blocked)) throw this.#blocked;
      // An own baseline whose store takes no writes for good: its timer retries it, flush() and rebaseline() reject.
      if (writesEndedBy(this.#gateError)) throw this.#gateError;
      if (isBackpressure(this.#blocked)) await this.#roomWait();
      // An own baseline not yet durable holds every wave back: not drained until it is (or the pair stops).
      else if (this.#gate !== undefined) await (this.#gateError === undefined ? this.#gate : (this.#gateRetry ?? delay(10)));
      else {
        const m = this.#heldQueue();
        if (m === undefined) break;
        // Its retries (timer, flush) move it on; a store of its that takes no writes for good ends this wait.
        await this.#awaitMember(m, false).catch((err: unknown) => {
          if (writesEndedBy(err)) throw err;
          return delay(10);
        });
      }
    }
    // A save failed with an error that may pass (not backpressure: an I/O error spell), its items still queued:
    // not drained. Paced retries wait it out; one that ends writes rejects above (review r279 F1: an engine store's
    // final error, woken from a wait for room, was left here and drained() resolved over frames that never land).
    for (let paced = 0; this.#blocked !== undefined && !isBackpressure(this.#blocked) && this.#head < this.#queue.length; ) {
      if (this.#stopped !== undefined) throw await this.#stopped;
      if (writesEndedBy(this.#blocked)) throw this.#blocked;
      if (this.#disposed) closed();
      await this.#pauseUnlessDisposed(FAILED_ATTEMPT_PAUSE_MS << (paced = Math.min(paced + 1, UNBOUNDED_PAUSE_STEPS)));
      this.#drain();
      if (isBackpressure(this.#blocked)) return this.#drainedWait(closed); // full again: the room wait above
    }
    await Promise.all([this.wal?.drained?.(), this.snapshot.drained?.()]);
    if (this.stoppedByLostWorker) return this.#drainedWait(closed); // a worker lost meanwhile: wait for the resume
    if (this.#stopped !== undefined) throw await this.#stopped; // stopped while the tiers drained
  }

  /**
   * handle.drained()'s wait for room behind this pair's full tier (#outlastBackpressure, unbounded): one write-attempt
   * loop per outbox that every waiter shares, as #room is shared, so the store's work does not grow with the number
   * of waiters, and a waiter that gave up leaves no loop of its own behind (review r265 F3).
   */
  #roomWait(): Promise<void> {
    return (this.#roomLoop ??= this.#outlastBackpressure(this, false).finally(() => {
      this.#roomLoop = undefined;
    }));
  }

  /**
   * First half of a rebaseline: waits for the bootstrap and a stop's gap search; retries a failed bootstrap (the
   * pair stays stopped meanwhile: waves skipped now must not be written before the baseline that holds them).
   * Resolves to whether the pair can take the baseline.
   */
  async prepareRebaseline(): Promise<boolean> {
    await this.#bootstrap;
    if (this.#stopped !== undefined) await this.#stopped; // its gap search and deletes are done
    if (!this.#ready) {
      this.#startBootstrap();
      await this.#bootstrap;
    }
    return this.#ready;
  }

  /**
   * Second half: resumes a prepared pair with `baseline` (an own baseline of the live graph). A stopped pair goes on
   * above `resumeAt` too: the highest seq the pairs sharing its WAL tier numbered (they stopped with it, each
   * after numbering what it had reached), so they all number the baseline alike.
   */
  rebaseline(baseline: OutboxItem & { kind: "baseline" }, resumeAt = 0): void {
    if (this.#stopped !== undefined) this.#seq = Math.max(this.#seq, resumeAt);
    this.#stopped = undefined;
    this.#resumedAbove = this.#seq;
    this.submit(baseline);
    if (this.#lostStop) this.endResumeWait(); // flush() and drained() waiting for the resume go on
  }

  /** Learns the highest seq in the store, then saves what queued meanwhile. A failure stops the pair (again). */
  #startBootstrap(): void {
    this.#bootstrap = this.#bootstrapSeq().then(
      (seq) => {
        this.#seq = Math.max(this.#seq, seq);
        this.#durable = Math.max(this.#durable, seq);
        this.#ready = true;
        this.#drain();
      },
      (err: unknown) => {
        // Never write at seqs that may already be taken: the pair stays silent.
        const e = kept(err);
        this.#clearQueue();
        this.#stopped = Promise.resolve(e);
        this.report(e);
      },
    );
  }

  /**
   * Highest seq already used in the pair's store: the WAL's highest frame key (exactly `<name>/wal/<20 digits>`)
   * and the stored baseline's seq, so a re-attach never reuses a seq (docs/graph-model.md §6 item 15).
   */
  async #bootstrapSeq(): Promise<number> {
    const group = this.#group;
    if (group === undefined) return this.#storedSeq([this]);
    // Members bootstrapping at once (attach, a rebaseline) share one read, so they all start at one seq.
    if (group.bootstrap === undefined) {
      const shared = this.#storedSeq(group.members);
      group.bootstrap = shared;
      const clear = (): void => {
        if (group.bootstrap === shared) group.bootstrap = undefined;
      };
      shared.then(clear, clear);
    }
    return group.bootstrap;
  }

  /**
   * Highest seq used in the store of `members` (this pair, or the pairs sharing its WAL tier): the WAL's highest
   * frame key, every member's stored baseline seq, and what a member numbered in this process (a stopped one's
   * frames may not be stored).
   */
  async #storedSeq(members: readonly AttachOutbox[]): Promise<number> {
    let seq = 0;
    if (this.wal !== undefined) {
      const stale: string[] = [];
      const record = sharedWalRecordKey(this.graphName);
      for (const key of await this.wal.list(`${this.#prefix}/`)) {
        const s = parseWalFrameKey(this.#prefix, key);
        if (s === undefined) {
          if (key === record) for (const m of members) m.#recordSeen = true;
          continue;
        }
        stale.push(key);
        if (s > seq) seq = s;
      }
      for (const m of members) {
        m.#stale = stale;
        m.#staleTop = seq;
      }
      // The record an earlier session left (one read more, only when listed): this session's record keeps its
      // forgotten marks and marks the stores it leaves out (shared-wal.ts), before any frame of this session.
      const group = this.#group;
      if (members.some((m) => m.#recordSeen) && (group?.recordFound !== undefined || members.some((m) => m.endsSharedRecord))) {
        const prior = await loadPriorRecord(this.graphName, this.wal);
        for (const m of members) {
          m.#priorRecord = prior;
          m.#priorTop = seq;
        }
      }
      group?.recordFound?.(this.#priorRecord, seq);
    }
    // `members` is read after the listing: attach constructs every member of a group in one synchronous call.
    for (const stored of await Promise.all(members.map((m) => m.#storedHead()))) {
      if (stored?.seq !== undefined && stored.seq > seq) seq = stored.seq;
    }
    for (const m of members) if (m.#seq > seq) seq = m.#seq;
    // Frames an ended outbox of the graph left pending in a tier over this store land below this pair's baseline.
    if (this.wal !== undefined) seq = Math.max(seq, floorOf(this.wal, this.graphName));
    // No seq left for the attach baseline: it went in at 2^53 (flush resolved), which every reader refuses, over the
    // good baseline. Only a store another program wrote gets here; the pair stays silent, as on a failed read.
    if (seq >= Number.MAX_SAFE_INTEGER) throw seqsExhausted(this.graphName, seq);
    return seq;
  }

  /**
   * Ends the shared-WAL record an earlier session left (see `endsSharedRecord`), once: the stores it named are
   * marked forgotten and it pins nothing more (shared-wal-record.ts endSharedWalRecord). Until 2026-12-06 it was
   * deleted, and a store it named restored its baseline's older state once the frames above it were gone. Called
   * before the pair deletes dead frames (in call order: the mark lands first). A record that does not decode is
   * reported and left (compactions refuse it).
   */
  #endSharedRecord(): void {
    if (!this.#recordSeen || !this.endsSharedRecord || this.wal === undefined) return;
    this.#recordSeen = false;
    const prior = this.#priorRecord;
    if (prior.corrupt !== undefined) this.report(prior.corrupt);
    const wal = this.wal;
    const end = (): void => endSharedWalRecord(this.graphName, wal, prior, this.#priorTop);
    try {
      end();
    } catch (err) {
      // Under backpressure, saved again once the tier drained; a closed tier: the pair's own writes report it.
      if (err instanceof StorageError && err.code === "backpressure" && wal.drained !== undefined) {
        wal.drained().then(end).catch((e: unknown) => this.report(e));
      } else if (!(err instanceof StorageError && err.code === "closed")) this.report(err);
    }
  }

  /** Tells the WAL group that this pair's baseline at `seq` may be stored now (once per baseline). */
  #tellStored(seq: number): void {
    if (seq <= this.#toldStored || this.#group === undefined) return;
    this.#toldStored = seq;
    this.#group.baselineMoved?.();
  }

  /** Whether the store holds this graph's baseline at `seq` or above (false also when it cannot be read). */
  async #baselineStored(seq: number): Promise<boolean> {
    try {
      const head = await this.#storedHead();
      return head !== undefined && head.name === this.graphName && head.seq !== undefined && head.seq >= seq;
    } catch {
      return false;
    }
  }

  /** The stored baseline's name and seq: its head alone where the tier can read it so (no decode of the graph). */
  async #storedHead(): Promise<SnapshotHead | undefined> {
    if (this.snapshot.loadHead !== undefined) return this.snapshot.loadHead(this.graphName);
    const record: unknown = await this.snapshot.load(this.graphName);
    return record === undefined ? undefined : headOf(record);
  }

  /** Saves one item (throws what the tier throws); seqs advance only with what was saved. */
  #save(item: OutboxItem): void {
    if (item.kind === "baseline") {
      // An own baseline replacing queued waves in a WAL group goes above what any member numbered (`collapse`).
      if (item.resumeAt !== undefined && item.resumeAt > this.#seq) this.#skipTo(item.resumeAt);
      const seq = item.own ? this.#seq + 1 : this.#seq;
      if (seq > Number.MAX_SAFE_INTEGER) throw seqsExhausted(this.graphName, this.#seq);
      const record: GraphCheckpointRecord = {
        name: this.graphName,
        mode: "full",
        snapshot: item.snapshot,
        seq,
        timestamp_ns: item.timestampNs,
        format_version: SNAPSHOT_VERSION,
      };
      if (item.vouched === undefined) this.snapshot.save(record);
      else {
        // Frozen like the snapshot under it: a tier's filter or keyOf cannot change what the vouch covers.
        vouchBaseline(Object.freeze(record), item.vouched);
        try {
          this.snapshot.save(record);
        } finally {
          vouchBaseline(undefined, 0);
        }
      }
      this.#seq = seq;
      this.#lastBaseline = seq;
      this.#baselinesSaved++;
      if (item.own && this.wal !== undefined) {
        if (this.#holes.push(seq) > MAX_TRACKED_BASELINES) this.#holes.shift();
        this.#openGate(seq);
      } else if (this.wal !== undefined && this.reclaim === "all") {
        // Its frames are dead once it is durable, which the tier makes it at once (sync-through) or when its
        // debounce window closes: ask then, so no flush is forced earlier than the tier's own.
        this.#reclaimWhenDurable(seq);
      }
      return;
    }
    const wal = this.wal as KvStorageTier<WALFrame>;
    // A lone value frame goes to an engine WAL tier in its parts, not built (design §3.48): the same columns, key,
    // weight and checks as its save. Only on a first attempt: a retry re-saves the frames it numbered then.
    if (item.frames === undefined && !this.#seal) {
      const lane = (wal as { [saveValueFrame]?: ValueFrameLane })[saveValueFrame];
      const parts = this.#parts;
      if (lane !== undefined && lane.standsInFor === wal.save && this.#seq < Number.MAX_SAFE_INTEGER && oneValueFrame(item.diff, item.timestampNs, this.#seq, parts)) {
        let taken: boolean;
        try {
          taken = lane.call(wal, walFrameKey(this.#prefix, parts.frameSeq), parts);
        } catch (err) {
          // As a throwing save: the frame is numbered now and kept for the retry.
          item.frames = diffFrames(item.diff, item.timestampNs, this.#seq, this.#seal, true);
          throw err;
        } finally {
          parts.value = undefined; // the parts object outlives the save: it keeps no value alive
        }
        if (taken) {
          item.frames = SAVED_IN_PARTS;
          item.next = 0;
          if (this.#unreclaimed === Number.POSITIVE_INFINITY) this.#unreclaimed = parts.frameSeq;
          this.#seq = parts.frameSeq;
          return;
        }
      }
    }
    // Numbered on first attempt and kept, so a retry re-saves the same seqs under the same keys.
    const frames = (item.frames ??= diffFrames(item.diff, item.timestampNs, this.#seq, this.#seal, true));
    // Past 2^53 - 1 walFrameKey threw a RangeError (untyped) on every flush.
    if ((frames[frames.length - 1]?.frame_seq ?? 0) > Number.MAX_SAFE_INTEGER) throw seqsExhausted(this.graphName, this.#seq);
    // A wave of several frames is one unit for the tier (saveMany): room for all of it is found at once, and it is
    // committed in one transaction, so a crash or a follower never sees part of a wave. Refused whole (backpressure),
    // it is saved whole again once the tier drained.
    if (wal.saveMany !== undefined && frames.length - item.next > 1) this.#saveWave(wal, frames, item);
    for (; item.next < frames.length; item.next++) {
      const f = frames[item.next] as GraphWALFrame;
      // A frozen frame is one diffFrames proved storable: the tier's value check need not walk it again.
      if (!Object.isFrozen(f)) wal.save(walFrameKey(this.#prefix, f.frame_seq), f);
      else {
        vouchWalFrame(f);
        try {
          wal.save(walFrameKey(this.#prefix, f.frame_seq), f);
        } finally {
          vouchWalFrame(undefined);
        }
      }
    }
    if (frames.length > 0) {
      if (this.#unreclaimed === Number.POSITIVE_INFINITY) this.#unreclaimed = (frames[0] as GraphWALFrame).frame_seq;
      this.#seq = (frames[frames.length - 1] as GraphWALFrame).frame_seq;
    }
  }

  /** Saves the frames of `item` from `item.next` on as one unit (KvStorageTier.saveMany); throws what it throws. */
  #saveWave(wal: KvStorageTier<WALFrame>, frames: readonly GraphWALFrame[], item: OutboxItem & { kind: "frames" }): void {
    const entries: Array<[string, GraphWALFrame]> = [];
    let frozen: Set<object> | undefined;
    for (let i = item.next; i < frames.length; i++) {
      const f = frames[i] as GraphWALFrame;
      entries.push([walFrameKey(this.#prefix, f.frame_seq), f]);
      // A frozen frame is one diffFrames proved storable: the tier's value check need not walk it again.
      if (Object.isFrozen(f)) (frozen ??= new Set()).add(f);
    }
    vouchWalFrames(frozen);
    try {
      wal.saveMany!(entries);
    } finally {
      vouchWalFrames(undefined);
    }
    item.next = frames.length;
  }

  /**
   * Makes the own baseline just saved durable at once, whatever the snapshot tier's debounce, and holds every
   * frame back until it is: frames above a baseline that never landed would be a hole in the changes.
   */
  #openGate(seq: number): void {
    const opened = async (): Promise<void> => {
      // A store worker lost meanwhile may have taken the baseline with it (a retried flush resolves without it):
      // frames leave only once the check of what it lost is done and did not stop the pair.
      while (this.#checks.size > 0 && this.#gate === gate) await Promise.all([...this.#checks.values()].map((c) => c.done));
      if (this.#gate !== gate || this.#stopped !== undefined) return;
      this.#gate = undefined;
      this.#gateError = undefined;
      this.#gateDelay = 0;
      this.#lossDelay = 0; // a lost worker's spell ends with an own baseline durable
      this.#endSharedRecord(); // before the reclaim's deletions, in call order
      this.#reclaim(seq);
      this.#tellStored(seq);
      this.#drain();
      // Frames the pairs sharing the WAL tier held back for this baseline leave now (see #heldBy).
      if (this.#group !== undefined) for (const m of this.#group.members) if (m !== this) m.#drain();
    };
    if (seq > this.#gatedAt) this.#gatedAt = seq;
    const gate: Promise<void> = this.snapshot.flush().then(
      opened,
      async (err: unknown) => {
        if (this.#gate !== gate) return;
        // A refusal the flush reports may be another writer's (a shared snapshot tier): the stored baseline says.
        if (!lostStore(err) && isRefusalReport(err) && (await this.#baselineStored(seq))) return opened();
        if (this.#gate !== gate) return;
        if (cannotSucceed(err)) {
          this.#gate = undefined;
          void this.#stop(err, seq, seq);
          return;
        }
        // The baseline stays pending in the tier; a timer (or an earlier flush()) retries it. Frames keep waiting.
        this.#gateError = kept(err);
        if (this.#gateDelay === 0) this.report(err); // once per failing spell, not per retry
        this.#retryGate(seq);
      },
    );
    this.#gate = gate;
    this.#gateError = undefined;
  }

  #retryGate(seq: number): void {
    if (this.#gateRetry !== undefined) return;
    this.#gateDelay = this.#gateDelay === 0 ? GATE_RETRY.initialMs : Math.min(GATE_RETRY.maxMs, this.#gateDelay * 2);
    const ms = this.#gateDelay * (0.5 + Math.random() / 2);
    // Unref'd: a retry never keeps the process alive (what is unwritten is what flush() has not acknowledged).
    this.#gateRetry = new Promise<void>((resolve) => setTimeout(resolve, ms).unref()).then(() => {
      this.#gateRetry = undefined;
      if (this.#gateError !== undefined && this.#gate !== undefined && this.#stopped === undefined) this.#openGate(seq);
    });
  }

  /**
   * Stops the pair for good: nothing more is saved or acknowledged. `refused` is the refused seq, or a search for
   * it that also removes whatever the store holds past it (never rejects); `report` hears the outcome once.
   * `baseline`: the baseline that is the write in question (a snapshot tier's failure, a baseline's save), named in
   * the error as such (engine-gone.ts). `by`: the pair of its WAL group that stopped first and stops this one, which
   * deletes the group's frames past the gap (they are the same keys): this one deletes nothing, and a baseline in
   * question is that pair's, named as such (task 334).
   */
  #stop(cause: Error, refused: number | Promise<number | StopAt>, baseline?: number, by?: AttachOutbox): Promise<Error> {
    if (this.#stopped !== undefined) return this.#stopped;
    this.#clearQueue(); // superseded: a rebaseline writes the live graph
    this.#blocked = undefined;
    this.#gate = undefined;
    this.#gateError = undefined;
    // A lost store worker refused nothing: the pair resumes by itself (attach's rebaseline), backing off per loss.
    const lost = lostWorker(cause) && this.onWorkerLost !== undefined;
    if (lost) {
      this.#losses++;
      this.#lossUnanswered = true;
      this.#lostStop = true;
      this.#resumed = new Promise<void>((resolve) => (this.#wakeResumed = resolve));
    }
    const settle = (at: number | StopAt): Error => {
      const seq = typeof at === "number" ? at : at.seq;
      if (lost && (typeof at === "number" || at.closed === undefined)) {
        const err = kept(lostWorkerError(this.graphName, seq, cause as StorageError, by === undefined ? baseline : undefined));
        this.#lostError = err;
        const delayMs = this.#lossDelay;
        if (delayMs === 0) this.report(err); // once per spell: a worker dying at every revival is heard once
        this.#lossDelay = delayMs === 0 ? GATE_RETRY.initialMs : Math.min(GATE_RETRY.maxMs, delayMs * 2);
        if (!this.#disposed) this.onWorkerLost?.(delayMs === 0 ? 0 : delayMs * (0.5 + Math.random() / 2));
        return err;
      }
      if (lost) this.endResumeWait(); // its tier closed meanwhile: said as the close, nothing resumes
      // Seqs exhausted is no refused write that a rebaseline gets past (it cannot number either): said as it is. So is
      // a backend's finalError of a code of its own (not a lost lease's not-owner): its store takes no write again.
      const said = isSeqsExhausted(cause) || (isFinalError(cause) && !lostStore(cause));
      // A member's stop is about another pair's baseline, if any: its own writes are named by seq alone.
      const own = by === undefined ? baseline : undefined;
      const closed = closedByOwner(cause) || engineGone(cause) !== undefined;
      let err: Error;
      if (typeof at !== "number" && at.closed !== undefined && !closed) err = closedUnderRefusal(this.graphName, seq, at.closed, kept(cause), own);
      else if (said) err = cause;
      else if (by !== undefined && baseline !== undefined && !closed) err = stoppedWithError(this.graphName, seq, kept(cause), by.snapshot.name, baseline);
      else err = refusedError(this.graphName, seq, kept(cause), own);
      this.report(err);
      return kept(err);
    };
    if (this.#group === undefined || by !== undefined) {
      this.#stopped = typeof refused === "number" ? Promise.resolve(settle(refused)) : refused.then(settle);
      return this.#stopped;
    }
    // The other pairs on this WAL tier stop at the same seq (they number alike and write these keys): a pair going
    // on would number past the others, and their frames past the refused seq are a gap in every member's store.
    // A search (#dropPastGap, #checkUnknownRefusal) deletes them, once for all (its #dropFrom covers the group's
    // seqs): each member deleting them again reported each failure once more (task 321). An exact seq deletes nothing,
    // as for a single pair: the refused save and what followed it reached no tier (#fail), the store refused or
    // lost that one baseline (frames at its seq are none of the group's), or the store takes no write (task 334).
    const at = typeof refused === "number" ? Promise.resolve(refused) : refused;
    this.#stopped = at.then(settle);
    for (const m of this.#group.members) {
      if (m !== this && m.#stopped === undefined && !m.#disposed) void m.#stop(cause, at, baseline, this);
    }
    return this.#stopped;
  }

  /**
   * The writer lost its store (not-owner: a PostgreSQL lease taken over). Stops the pair above its acknowledged seq
   * without reading the store: the new holder restored up to that seq and writes the seqs above it under the same
   * keys, so what the store holds there is not this pair's (a loss check took those frames for its own and
   * acknowledged a wave the actor had refused: docs/design.md §3.20).
   */
  #stopLost(err: Error): Promise<Error> {
    return this.#stop(err, this.#durable + 1);
  }

  /** Records a failed save: the outbox is stuck until a retry succeeds, or the pair stops when no retry can. */
  #fail(item: OutboxItem, err: unknown): void {
    if (isBackpressure(err)) {
      // Not a failure: the store is behind. The item stays in the outbox and leaves once the tiers drained;
      // `report` hears it once per spell, until the outbox ran empty (handle.drained() is the writer's signal).
      if (!this.#pressed) this.report(err);
      this.#pressed = true;
      this.#blocked = kept(err);
      void this.#awaitRoom();
      return;
    }
    if (!cannotSucceed(err)) {
      this.#blocked = kept(err);
      this.report(err);
      return;
    }
    // The refused save is known exactly and nothing after it reached a tier: there is nothing to remove.
    // A periodic baseline refused, or an own one or frames that could not even be built.
    let refused = item.kind === "baseline" && !item.own ? this.#seq : this.#seq + 1;
    let numbered = refused;
    if (item.kind === "frames" && item.frames !== undefined) {
      refused = item.frames[item.next]?.frame_seq ?? refused;
      numbered = item.frames[item.frames.length - 1]?.frame_seq ?? refused;
    }
    this.#seq = Math.max(this.#seq, numbered);
    void this.#stop(err, refused, item.kind === "baseline" ? refused : undefined);
  }

  /**
   * flush()'s wait behind a full tier (backpressure: not a failure, the frames leave once it drained), bounded by
   * the tier's own verdict on its store: room for the refused write OR a write attempt of the tier that refused
   * (writePending: what it holds, after the flushes already started). Such an attempt failing FAILED_ATTEMPTS times
   * in a row, with no room gained between, means the store keeps failing: the wait ends with the tier's error (the
   * frames stay queued, the next flush waits again), where it waited for room that never came and a handle's
   * flush() and dispose() never settled (task 255). A passing failure or two (a store that recovers) is ridden out;
   * a store whose writes ended (finalError) wakes the room waiters itself and the next save stops the pair.
   * `m`: the pair whose backpressure is waited out (this one, or a pair on this WAL tier holding its frames back:
   * #awaitMember). `bounded` false (handle.drained(), a wait for room): failed attempts are paced, never counted, so
   * a full disk that frees later is waited through. Either way an attempt whose failure says the store takes no
   * writes for good (writesEndedBy) ends the wait with that error at once: every wait settles on a dead store.
   */
  async #outlastBackpressure(m: AttachOutbox = this, bounded = true): Promise<void> {
    let failed = 0;
    const pause = (steps: number): Promise<void> => delay(FAILED_ATTEMPT_PAUSE_MS << steps);
    while (isBackpressure(m.#blocked) && m.#stopped === undefined && !m.#disposed) {
      const tier = m.#pressedTier();
      const room = m.#awaitRoom().then(() => "room" as const);
      if (tier?.writePending === undefined) {
        await (bounded ? room : m.#orDisposed(room));
        continue;
      }
      if (!bounded) {
        // Unbounded: the tier's one attempt loop, shared by every pair waiting on it (50 graphs over one WAL tier ask
        // it as often as one: review r279 F4) and paced by it (each attempt doubles the next pause up to ~10 s, so a
        // long full-disk spell costs an attempt every ~10 s at most; unref'd). Room or dispose() ends the wait sooner.
        const shared = tier as typeof tier & PendingWriter;
        const woke = await m.#orDisposed(Promise.race([room, sharedWriteAttempt(shared, UNBOUNDED_PACE)]));
        if (woke !== "room" && woke !== "disposed" && !woke.written && writesEndedBy(woke.error)) {
          throw woke.error instanceof Error ? woke.error : new StorageError("backend-error", String(woke.error), { tier: tier.name });
        }
        continue;
      }
      const attempt = tier.writePending().then(
        () => "written" as const,
        (err: unknown) => err,
      );
      const woke = await Promise.race([room, attempt]);
      if (woke === "room") failed = 0;
      else if (woke === "written") {
        failed = 0; // written: room follows once what is held drained (paced: a tier holding nothing answers at once)
        await Promise.race([room, pause(0)]);
      } else if (writesEndedBy(woke) || ++failed >= FAILED_ATTEMPTS) {
        throw woke instanceof Error ? woke : new StorageError("backend-error", String(woke), { tier: tier.name });
      } else {
        // Paced as a retry, not a loop against a sick store: room (the tier's own retry landing) ends it sooner.
        await Promise.race([room, pause(failed)]);
      }
    }
  }

  /** The tier whose backpressure holds the outbox (the refusal names it); the WAL tier when it names neither. */
  #pressedTier(): KvStorageTier<WALFrame> | SnapshotStorageTier<GraphCheckpointRecord> | undefined {
    const details = this.#blocked instanceof StorageError ? this.#blocked.details : undefined;
    if (details?.tier !== undefined && details.tier === this.snapshot.name && details.tier !== this.wal?.name) return this.snapshot;
    return this.wal ?? this.snapshot;
  }

  /** Drains the outbox again once the tiers that refused with backpressure drained. */
  #awaitRoom(): Promise<void> {
    // A custom tier without drained() that refuses with backpressure is retried after a pause, never in a loop.
    const pause = this.wal?.drained === undefined && this.snapshot.drained === undefined ? delay(10) : undefined;
    // The tier that refused waits for room for that write's weight (first come, first served: it cannot starve).
    const details = this.#blocked instanceof StorageError ? this.#blocked.details : undefined;
    const weight = typeof details?.weight === "number" ? details.weight : undefined;
    const roomFor = (tier: { name: string } | undefined): number | undefined => (tier?.name === details?.tier ? weight : undefined);
    this.#room ??= Promise.all([this.wal?.drained?.(roomFor(this.wal)), this.snapshot.drained?.(roomFor(this.snapshot)), pause]).then(
      () => {
        this.#room = undefined;
        this.#drain();
      },
      () => {
        this.#room = undefined; // the tier failed (e.g. closed): the next save reports why
      },
    );
    return this.#room;
  }

  /** Saves queued items in order until one fails or an own baseline holds the rest back. */
  #drain(): void {
    while (this.#ready && !this.#disposed && this.#stopped === undefined && this.#gate === undefined && this.#head < this.#queue.length) {
      const item = this.#queue[this.#head];
      if (item !== undefined) {
        if (item.kind === "frames" && this.#group !== undefined && this.#heldBy() !== undefined) break;
        try {
          this.#saveItem(item);
        } catch (err) {
          this.#fail(item, err);
          return;
        }
        this.#blocked = undefined;
        if (item.kind === "frames") this.#queuedBytes -= item.weight ?? 0;
      }
      if (this.#replaceable === this.#head) this.#replaceable = -1;
      this.#queue[this.#head++] = undefined; // released for GC
    }
    if (this.#head === this.#queue.length) {
      this.#clearQueue();
      this.#collapsed = false; // caught up: the next collapse is a new spell
      this.#pressed = false; // and so is the next backpressure
    }
  }

  /**
   * The pair of this one's WAL group whose own baseline at or below this pair's last one is not durable yet (it has
   * not saved it, or its gate is shut): a frame this pair numbers next would land in that pair's store above a
   * missing own baseline. Undefined: none (or no group).
   */
  #heldBy(): AttachOutbox | undefined {
    for (const m of (this.#group as WalGroup).members) {
      if (m === this || m.#disposed || m.#stopped !== undefined) continue;
      if (m.#gatedAt < this.#gatedAt || (m.#gatedAt === this.#gatedAt && m.#gate !== undefined)) return m;
    }
    return undefined;
  }

  /**
   * Saves `item` (#save). In a WAL group a wave's frames that another member saved are the same frames under the same
   * keys (the members number alike): this member numbers them (its seq moves on) and saves them once, not again.
   */
  #saveItem(item: OutboxItem): void {
    const group = this.#group;
    if (group === undefined || item.kind !== "frames") return this.#save(item);
    if (item.frames === undefined) {
      item.frames = diffFrames(item.diff, item.timestampNs, this.#seq, this.#seal, true);
      const last = item.frames[item.frames.length - 1];
      if (last !== undefined && last.frame_seq <= group.written) item.next = item.frames.length;
    }
    this.#save(item);
    if (this.#seq > group.written) group.written = this.#seq;
  }

  /** The pair holding back the frames next in this pair's queue (#heldBy), if they are held. */
  #heldQueue(): AttachOutbox | undefined {
    if (this.#group === undefined) return undefined;
    for (let i = this.#head; i < this.#queue.length; i++) {
      const next = this.#queue[i];
      if (next !== undefined) return next.kind === "frames" ? this.#heldBy() : undefined; // undefined: a replaced baseline
    }
    return undefined;
  }

  /**
   * Waits for `m` (the pair holding this one's frames back: #heldBy) to get on, or throws why it cannot now (its
   * failure; its own flush() reports it too). Behind its backpressure it waits as #outlastBackpressure does for
   * `m` (`bounded`: flush()'s wait, which ends after failed write attempts; drained()'s waits for room), where it
   * waited for room only and a flush behind a member whose store failed every write never settled (task 258).
   */
  async #awaitMember(m: AttachOutbox, bounded: boolean): Promise<void> {
    if (m.#gate !== undefined) {
      if (m.#gateError !== undefined) throw m.#gateError;
      await m.#gate;
    } else if (!m.#ready) await m.#bootstrap;
    else if (isBackpressure(m.#blocked)) await (bounded ? this.#outlastBackpressure(m, true) : m.#roomWait());
    else if (m.#blocked !== undefined) throw m.#blocked;
    else {
      m.#drain(); // its own baseline, if nothing holds it back
      if (m.#gate === undefined) await delay(10); // held by a third pair: it moves on that pair's events
    }
  }

  #clearQueue(): void {
    if (this.#queue.length !== 0) this.#queue.length = 0;
    this.#head = 0;
    this.#replaceable = -1;
    this.#queuedBytes = 0;
  }

  /**
   * Moves this member of a WAL group on to `seq` (a collapse's `resumeAt`): the seqs it skips are frames another
   * member saved or another member's own baselines. Those are holes here too, so a gap search never takes them for
   * a lost frame of this pair.
   */
  #skipTo(seq: number): void {
    const skipped = new Set<number>();
    for (const m of (this.#group as WalGroup).members) for (const h of m.#holes) if (h > this.#seq && h <= seq) skipped.add(h);
    if (skipped.size > 0) {
      this.#holes = [...new Set([...this.#holes, ...skipped])].sort((a, b) => a - b);
      if (this.#holes.length > MAX_TRACKED_BASELINES) this.#holes.splice(0, this.#holes.length - MAX_TRACKED_BASELINES);
    }
    this.#seq = seq;
  }

  /**
   * The WAL tier refused a write under this pair's prefix, heard whoever flushed it (another writer's flush may have
   * taken the report) and before any flush answering for it settled. A frame above the acknowledged seqs stops the
   * pair: the gap search runs once the tier's flush is out of the way (this is heard from inside it). Writes whose
   * keys are unknown (a crashed worker's) are checked against the store.
   */
  #walRefused(key: string | undefined, err: Error): void {
    if (this.#disposed || this.#stopped !== undefined) return;
    if (lostStore(err)) return void this.#stopLost(err);
    if (key === undefined) return this.#checkUnknownRefusal(err, "wal");
    const seq = parseWalFrameKey(this.#prefix, key);
    // Not a frame this pair has yet to acknowledge (one below a rebaseline was dropped at the stop).
    if (seq === undefined || seq <= Math.max(this.#durable, this.#resumedAbove)) return;
    void this.#stop(err, Promise.resolve().then(() => this.#dropPastGap(seq)));
  }

  /** The snapshot tier refused this graph's baseline (its default key, the graph's name), whoever flushed it. */
  #snapshotRefused(key: string | undefined, err: Error): void {
    if (this.#disposed || this.#stopped !== undefined) return;
    if (lostStore(err)) return void this.#stopLost(err);
    if (key === undefined) this.#checkUnknownRefusal(err, "snapshot");
    else if (key === this.graphName) void this.#stop(err, this.#lastBaseline, this.#lastBaseline);
  }

  /**
   * A tier lost writes whose keys are unknown (a store worker crashed before committing them, a flood of refusals
   * past the engine's bound on refusals reported by key, per message its worker takes or per turn for a timer's
   * flush): the pair stops only if the store lacks what it saved by now. What the tier
   * holds pending is written first with writePending, not flush: the first flush after a loss reports it to its
   * caller, and this must not take that report away. A store that cannot be read yet (a PostgreSQL lease the dead
   * worker still holds) is read again on a timer, backing off; meanwhile flush() acknowledges nothing (it rejects
   * with why the store could not be read), and an own baseline's gate stays shut.
   */
  #checkUnknownRefusal(err: Error, tier: "wal" | "snapshot"): void {
    if (lostStore(err)) return void this.#stopLost(err);
    const pending = this.#checks.get(tier);
    if (pending !== undefined) {
      // One check per tier: a later loss widens it (and makes it read again), it never replaces or multiplies it.
      pending.upTo = this.#seq;
      pending.baseline = this.#lastBaseline;
      pending.again = true;
      return;
    }
    const c: UnknownLossCheck = {
      upTo: this.#seq,
      baseline: this.#lastBaseline,
      again: false,
      error: undefined,
      attempt: Promise.resolve(),
      done: Promise.resolve(),
    };
    let delay = 0;
    c.done = (async () => {
      for (;;) {
        let ended!: () => void;
        c.attempt = new Promise<void>((resolve) => (ended = resolve));
        try {
          await (delay === 0 ? Promise.resolve() : unrefDelay(delay));
          if (this.#stopped !== undefined || this.#disposed) return;
          c.again = false;
          const lost = await this.#lostSince(tier, c.upTo, c.baseline);
          c.error = undefined;
          if (lost !== undefined && this.#stopped === undefined && !this.#disposed) {
            // A lost own baseline: no frame may stand above it (one that left in a race is removed).
            const ownBaseline = tier === "snapshot" && this.#holes.includes(lost);
            const refused = tier === "wal" ? this.#dropFrom(lost) : ownBaseline ? this.#dropFrom(lost + 1).then(() => lost) : lost;
            void this.#stop(err, refused, tier === "snapshot" ? lost : undefined);
            return;
          }
          if (!c.again) return;
          delay = 0; // widened while this attempt ran: read again at once
        } catch (e) {
          if (cannotSucceed(e)) {
            // A tier closed meanwhile is why nothing can be checked: said as such, not as the loss refused for good.
            const why = closedByOwner(e) || engineGone(e) !== undefined ? e : err;
            // A snapshot tier's check is about the baseline it could not read back: named as the write in question.
            const baseline = tier === "snapshot" && c.baseline > 0 ? c.baseline : undefined;
            if (this.#stopped === undefined && !this.#disposed) void this.#stop(why, this.#durable + 1, baseline);
            return;
          }
          c.error = kept(e);
          delay = delay === 0 ? GATE_RETRY.initialMs : Math.min(GATE_RETRY.maxMs, delay * 2);
        } finally {
          ended();
        }
      }
    })().finally(() => {
      if (this.#checks.get(tier) === c) this.#checks.delete(tier);
    });
    this.#checks.set(tier, c);
  }

  /**
   * What a loss of unknown writes took from this pair, reading the store (throws when it cannot be read): the WAL's
   * first missing seq up to `upTo`, or the last baseline `baseline` when the stored one is older; undefined: none.
   */
  async #lostSince(tier: "wal" | "snapshot", upTo: number, baseline: number): Promise<number | undefined> {
    if (tier === "wal") {
      await this.wal!.writePending?.();
      const gap = await this.#findGap(upTo, true);
      return gap <= upTo ? gap : undefined;
    }
    if (baseline === 0) return undefined;
    await this.snapshot.writePending?.();
    const head = await this.#storedHead(); // unlike #baselineStored, a failed read throws: it is read again
    return head !== undefined && head.name === this.graphName && head.seq !== undefined && head.seq >= baseline ? undefined : baseline;
  }

  /**
   * The WAL tier refused a frame saved since the last acknowledged seq (which one, its flush does not say). Once
   * everything else this pair handed it is written, the first frame seq the store lacks is the gap; every frame
   * above it is deleted, so restore and compaction see the changes up to the gap and none after. A store that
   * cannot be listed counts as holding nothing unacknowledged past the refused seq (`refused`, the one the watch
   * heard, when known); a closed one is tried no delete on (task 334).
   */
  async #dropPastGap(refused?: number): Promise<number | StopAt> {
    await (this.wal as KvStorageTier<WALFrame>).flush().catch(noop); // nothing new is saved any more: this writes the rest (or fails again)
    const gap = await this.#findGap(this.#seq, false, refused);
    // A tier that cannot even list (closed meanwhile, by its owner or its engine) takes no delete either: none is
    // tried, and no gap is claimed (what the store holds past the acknowledged seq may all be stored).
    if (typeof gap !== "number") return gap;
    return this.#dropFrom(gap);
  }

  /**
   * The first seq above the acknowledged ones, up to `upTo`, that the WAL lacks and is no own baseline's (`upTo + 1`:
   * none missing). A store that cannot be listed counts as holding nothing unacknowledged (non-strict: the gap is
   * `refused` when known; a closed tier answers where, with its `closed` error).
   */
  async #findGap(upTo: number, strict: true, refused?: number): Promise<number>;
  async #findGap(upTo: number, strict: false, refused?: number): Promise<number | StopAt>;
  async #findGap(upTo: number, strict: boolean, refused?: number): Promise<number | StopAt> {
    const wal = this.wal as KvStorageTier<WALFrame>;
    const holes = new Set(this.#holes);
    // Frames up to a baseline a read-back proved stored may have been reclaimed, and those below a rebaseline were
    // dropped at the stop: missing there is not the gap.
    const floor = Math.max(this.#durable, this.#reclaimedTo, this.#resumedAbove);
    let gap = floor + 1;
    try {
      const stored = new Set<number>();
      for (const key of await wal.list(`${this.#prefix}/`)) {
        const s = parseWalFrameKey(this.#prefix, key);
        if (s !== undefined && s > floor) stored.add(s);
      }
      const firstMissing = (from: number): number => {
        for (let s = from; s <= upTo; s++) if (!stored.has(s) && !holes.has(s)) return s;
        return upTo + 1; // every frame stored: the pair stops after its last one
      };
      // Frames at or below the stored baseline are in it: the store's fold deletes the frames it folds, also those
      // above this pair's acknowledged seq, so missing there is no loss (read after the listing: a fold commits its
      // baseline with its deletes). A refused frame's search falls back to the first missing seq when none is missing
      // above it (a baseline of this pair's own stored at the refused frame's seq: the refused seq is reported).
      const head = await (strict ? this.#storedHead() : this.#storedHead().catch(() => undefined));
      const covered = head !== undefined && head.name === this.graphName && head.seq !== undefined ? head.seq : 0;
      gap = firstMissing(Math.max(floor, covered) + 1);
      // A refused frame's search: the refused key's seq where the watch heard it, unless a frame is missing before it
      // (a seq the store's fold deleted below a stored baseline is no gap); else the first missing seq.
      if (!strict && refused !== undefined) gap = Math.min(gap, refused);
      else if (!strict && gap > upTo) gap = firstMissing(floor + 1);
    } catch (err) {
      if (strict) throw err;
      // Unreadable store: the refused seq the watch heard, else the conservative gap; a closed one is said as such.
      if (refused !== undefined) gap = refused;
      if (err instanceof StorageError && err.code === "closed") return { seq: gap, closed: err };
    }
    return gap;
  }

  /**
   * Deletes every frame this pair numbered from `gap` on (a delete also drops the key's pending save), and in a WAL
   * group every frame a member numbered there (the same keys: the group's stop deletes them once, here); resolves to
   * `gap` once each delete settled. A frame left above the gap makes every restore fail with wal-gap (the acknowledged
   * frames below it could not be restored), and its pending save, which a failed delete keeps, may still be
   * written: deletes that failed are reported and retried in the background (#retryDrops).
   */
  async #dropFrom(gap: number): Promise<number> {
    const members = this.#group?.members ?? [this];
    let top = 0;
    for (const m of members) top = Math.max(top, m.#seq);
    // A seq is a frame's when a member numbered it and it is none of that member's own baselines (holes).
    const holes = members.map((m) => ({ seq: m.#seq, holes: new Set(m.#holes) }));
    const keys: string[] = [];
    for (let s = gap; s <= top; s++) if (holes.some((m) => s <= m.seq && !m.holes.has(s))) keys.push(walFrameKey(this.#prefix, s));
    const failed = await this.#deleteFrames(keys);
    if (failed !== undefined) void this.#retryDrops(gap, failed);
    return gap;
  }

  /** Deletes `keys` from the WAL tier, each alone; the keys whose delete failed, with the last failure, or undefined. */
  async #deleteFrames(keys: readonly string[]): Promise<{ keys: string[]; error: unknown } | undefined> {
    const wal = this.wal as KvStorageTier<WALFrame>;
    const failed: string[] = [];
    let error: unknown;
    await Promise.all(
      keys.map((key) =>
        wal.delete(key).catch((err: unknown) => {
          failed.push(key);
          error = err;
        }),
      ),
    );
    return failed.length === 0 ? undefined : { keys: failed.sort(), error };
  }

  /**
   * Deletes again, backing off, the frames above a stop's gap whose delete failed, until none is left; reported once.
   * Ends when the pair is disposed (a handle attached since may have written frames at those seqs: the next attach's
   * own baseline covers what is left) or no retry can succeed (a closed tier). Only these keys are retried: they
   * lie at or below the seqs a rebaseline goes above, so frames written since are never touched.
   */
  async #retryDrops(gap: number, failed: { keys: string[]; error: unknown }): Promise<void> {
    this.report(undeletedFramesError(this.graphName, gap, failed.keys, failed.error, !cannotSucceed(failed.error)));
    let delay = GATE_RETRY.initialMs;
    for (let left: typeof failed | undefined = failed; left !== undefined; ) {
      if (this.#disposed || cannotSucceed(left.error)) return;
      await unrefDelay(delay * (0.5 + Math.random() / 2));
      if (this.#disposed) return;
      left = await this.#deleteFrames(left.keys);
      delay = Math.min(GATE_RETRY.maxMs, delay * 2);
    }
  }

  /** Reclaims below the periodic baseline `seq` once the snapshot tier wrote it (a failure is flush()'s to report). */
  #reclaimWhenDurable(seq: number): void {
    // No flush of its own: a refusal it took would then be lost to the pair's flush(), which must stop the pair.
    // The read-back in #reclaim decides; a baseline not stored yet leaves its frames to the next one.
    const wait = timerBound(this.snapshot.debounceMs ?? 0);
    // A window beyond Node's timer range is no window (timerBound): the tier writes on flush(), so ask after it.
    if (wait === Number.POSITIVE_INFINITY) this.#reclaimAfterFlush = Math.max(this.#reclaimAfterFlush, seq);
    else setTimeout(() => this.#reclaim(seq), wait).unref(); // never keeps the process alive
  }

  /**
   * The snapshot tier's flush of a baseline at `upTo` resolved: frames at or below it are dead (restore starts above
   * it) once the store holds a baseline at `upTo` or above. A resolved flush alone does not prove that (the tier's
   * `filter` may have dropped the save, a `rollback()` discarded it, a custom tier stored it elsewhere), so the
   * stored baseline's name and seq are read back first (its head: the graph is not decoded where the tier has
   * loadHead; once per baseline, and only when there is something to delete); without one the frames stay, for the
   * next baseline to retry. Then their deletion runs in the background, a batch per event-loop turn; nothing waits
   * for it. A failed batch is reported once per spell and retried on a timer (a closed tier silently ends it);
   * frames still left when the process ends are found by the next attach's listing.
   */
  #reclaim(upTo: number): void {
    if (this.wal === undefined || this.reclaim === "none" || this.#disposed) return;
    const stale = this.#stale.length > 0 && this.#staleTop <= upTo ? this.#stale : [];
    const own = this.reclaim === "all" && this.#unreclaimed <= upTo ? { from: this.#unreclaimed, to: upTo } : undefined;
    if (stale.length === 0 && own === undefined) return;
    if (stale.length > 0) this.#stale = [];
    if (own !== undefined) this.#unreclaimed = upTo + 1;
    // Stale keys: attach-time, once; the store may be another's, so the baseline is checked whole, once.
    this.#trackReclaim(this.#storedAtLeast(upTo, stale.length > 0).then((stored) => {
      if (stored !== true) {
        // Given back: the next durable baseline covers them too.
        if (stale.length > 0) this.#stale = stale.concat(this.#stale);
        if (own !== undefined) this.#unreclaimed = Math.min(this.#unreclaimed, own.from);
        // A read that failed (not one that found no such baseline) is tried again: no next baseline may come.
        if (stored === undefined) this.#retryReadBack(upTo);
        return;
      }
      this.#readBackDelay = 0;
      this.#reclaimedTo = Math.max(this.#reclaimedTo, upTo);
      // The own range first: what the stale keys hold (a value that will not read) never holds it back.
      if (own !== undefined) {
        this.#deadRanges.push(own);
        this.#startDeleting(this.wal as KvStorageTier<WALFrame>);
      }
      if (stale.length > 0) return this.#reclaimStale(stale);
    }));
  }

  /** Holds `work` in #reclaimWork until it settled (its failure is the work's own to report). */
  #trackReclaim(work: Promise<unknown>): void {
    const settled = work.then(noop, noop);
    this.#reclaimWork.add(settled);
    void settled.then(() => this.#reclaimWork.delete(settled));
  }

  /**
   * Resolves once the reclaim work running now settled, and what it started (a stale read round, its deletes); a
   * retry waiting on a timer is not waited for (dispose ends it). handle.dispose() waits for this, at most
   * DISPOSE_RECLAIM_WAIT_MS (attach.ts, review r267), before the pair is disposed: a graph attached and disposed in
   * a loop (each attach's frames listed at attach are deleted once its baseline is durable) otherwise ended every
   * cycle's reclaim in its read-back, and the WAL kept a frame per cycle, each attach's listing longer than the last
   * (task 259).
   */
  async reclaimSettled(): Promise<void> {
    while (this.#reclaimWork.size > 0) await Promise.all(this.#reclaimWork);
  }

  /**
   * Deletes the `keys` listed at attach that hold frames of this graph (docs/design.md §3.27), once a baseline above
   * them all was proven (so a retry reads only keys, no baseline). Each is read: one holding anything but a frame at
   * its seq is kept (another record there is reported, as `corrupt-store`; a codec's throw is CodecError, a value
   * that does not decode: kept unreported). A key whose read throws (a read error) is kept too, never deleted on a
   * guess: reported once, and read again on a timer a few times (a read error may pass); then left to the next
   * attach's listing.
   */
  async #reclaimStale(keys: readonly string[]): Promise<void> {
    if (this.#disposed) return;
    let read: { frames: string[]; unread: Map<string, unknown> };
    try {
      read = await this.#framesOfGraph(keys);
    } catch {
      return; // a closed tier: nothing can be deleted any more (the next attach lists them)
    }
    if (read.frames.length > 0) {
      this.#deadKeys = this.#deadKeys.length === 0 ? read.frames : this.#deadKeys.concat(read.frames);
      this.#startDeleting(this.wal as KvStorageTier<WALFrame>);
    }
    if (read.unread.size === 0 || this.#disposed) {
      this.#unreadTries = 0;
      return;
    }
    if (this.#unreadTries === 0) this.report(unreadStaleError(this.graphName, read.unread)); // once, not per retry
    if (++this.#unreadTries > STALE_READ_RETRIES) {
      this.#unreadTries = 0;
      return;
    }
    const ms = Math.min(GATE_RETRY.maxMs, GATE_RETRY.initialMs * 2 ** (this.#unreadTries - 1)) * (0.5 + Math.random() / 2);
    const unread = [...read.unread.keys()];
    setTimeout(() => this.#trackReclaim(this.#reclaimStale(unread)), ms).unref(); // never keeps the process alive
  }

  /**
   * The `keys` (this graph's frame keys) whose stored value is a frame at the key's seq, read a chunk at a time, and
   * those whose read threw (with why). Throws only when the tier is closed.
   */
  async #framesOfGraph(keys: readonly string[]): Promise<{ frames: string[]; unread: Map<string, unknown> }> {
    const unread = new Map<string, unknown>();
    const source = keyByKey(tierSource(this.snapshot, this.wal as KvStorageTier<WALFrame>), unread);
    const at: FrameKey[] = [];
    for (const key of keys) {
      const seq = parseWalFrameKey(this.#prefix, key);
      if (seq !== undefined) at.push({ key, seq });
    }
    const out: string[] = [];
    if (this.#disposed) return { frames: out, unread };
    // Chunks bounded in bytes (stored-graph.ts FRAME_CHUNK_BYTES), not 512 frames of whatever size.
    for await (const reads of readFrameChunks(source, at)) {
      for (const read of reads) {
        if (unread.has(read.key)) continue;
        if (read.ok && read.frame.frame_seq === read.seq) out.push(read.key);
        // A torn value may be a kv value of the user's (design §3.27): kept, as is another record, which is said.
        else if (!read.ok && read.foreign !== undefined) this.report(foreignFrameError(read));
      }
      await nextTurn();
      if (this.#disposed) break; // the delete loop would not run them; the next chunk is not read
    }
    return { frames: out, unread };
  }

  /**
   * Ends the pair (handle.dispose(), after its last flush settled): what that flush could not write is dropped, not
   * saved later by a retry over frames a handle attached since has written; no reclaim timer or delete batch runs on.
   */
  dispose(): void {
    if (this.#disposed) return;
    // What it handed the WAL tier and never saw durable may still land (the tier retries a failed write on its own
    // timer): a later attach of the graph on this store numbers above it (attach-floor.ts, task 252).
    if (this.wal !== undefined && this.#seq > this.#durable) holdFloor(this.wal, this.graphName, this.#seq);
    // So may the last baseline it handed the snapshot tier: a later attach of the graph drops it (attach-floor.ts).
    noteEndedSnapshot(this.snapshot, this.graphName, this.#seq > this.#durable);
    this.#disposed = true;
    this.endResumeWait();
    this.#unwatch?.();
    this.#clearQueue();
    this.#gate = undefined; // its handlers and retry timer see it is no longer theirs
    this.#gateError = undefined;
    this.#blocked = undefined;
    for (const wake of [...this.#onDispose]) wake(); // drained()'s waits end (a paused room loop too: it sees #disposed)
  }

  /** `p`, or "disposed" once dispose() ran (at once if it had): a wait of drained()'s that dispose() ends. */
  #orDisposed<T>(p: Promise<T>): Promise<T | "disposed"> {
    if (this.#disposed) return Promise.resolve("disposed");
    return new Promise<T | "disposed">((resolve, reject) => {
      const wake = (): void => resolve("disposed");
      this.#onDispose.add(wake);
      p.then(resolve, reject).finally(() => this.#onDispose.delete(wake));
    });
  }

  /** An unref'd pause of `ms` that dispose() cuts short (drained()'s paced write attempts). */
  #pauseUnlessDisposed(ms: number): Promise<void> {
    if (this.#disposed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#onDispose.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms).unref();
      this.#onDispose.add(done);
    });
  }

  /**
   * Ends the pair of a handle whose graph was collected undisposed (attach.ts): what it handed out or still holds is
   * flushed as a last flush() would (so it becomes durable, or a refusal stops the pair and removes what the store
   * holds past it), then the pair is disposed, which ends its refusal watches: the tiers hold it no more. Its
   * onError went with the graph, so no one hears the outcome. Idempotent.
   */
  retire(): Promise<void> {
    if (this.#retired !== undefined) return this.#retired;
    if (this.#disposed) return (this.#retired = Promise.resolve());
    this.#retired = this.flush().then(noop, noop).finally(() => this.dispose());
    const tiers = this.wal === undefined ? [this.snapshot] : [this.snapshot, this.wal];
    noteRetiring(this.graphName, tiers, this.#retired, () => this.dispose());
    return this.#retired;
  }

  /** Runs the delete loop unless it runs already (it takes what is queued) or the pair is disposed. */
  #startDeleting(wal: KvStorageTier<WALFrame>): void {
    if (this.#reclaiming || this.#disposed) return;
    this.#reclaiming = true;
    this.#trackReclaim(this.#deleteDead(wal).then(
      (emptied) => {
        this.#reclaiming = false;
        // A read-back resolving while the loop was returning queued frames it saw as taken: run again for them.
        if (emptied && (this.#deadKeys.length > 0 || this.#deadRanges.length > 0)) this.#startDeleting(wal);
      },
      () => {
        this.#reclaiming = false;
      },
    ));
  }

  /**
   * Whether the store holds a baseline of this graph at `seq` or above: undefined when the read failed and may
   * succeed later; false when it cannot (a closed tier, a record its codec refuses). The head alone (no decode of
   * the graph, §3.18) vouches for a record at a seq this pair just saved a baseline at, unless `whole`; any other
   * record (a seq above this pair's, or one read at attach, when the store may be another's) is checked as restore
   * checks a baseline: a head may say more than its record holds (a spec projection, another graph's name after
   * the snapshot in JSON not written sorted).
   */
  async #storedAtLeast(seq: number, whole: boolean): Promise<boolean | undefined> {
    try {
      // A head first only where it costs no decode: without loadHead it is a whole decode, and one is enough.
      if (!whole || this.snapshot.loadHead !== undefined) {
        const head = await this.#storedHead();
        if (head === undefined || head.name !== this.graphName || head.seq === undefined || head.seq < seq) return false;
        // Trusted at this pair's own seq (§3.27): only a writer in this process can put another record under the
        // key between the flush and this read (other processes are locked out), at exactly this seq, and the
        // library writes none (a fold writes a real baseline). Checking it whole would decode the graph at every
        // baseline (§3.18: 700-1,000 ms at 100,000 nodes); the bytes this pair saved are the tier's, not known here.
        if (!whole && (head.seq === seq || head.seq === this.#lastBaseline)) return true;
      }
      const record = await this.snapshot.load(this.graphName);
      // The check walks every node: a turn of its own, not one after the decode's (100,000 nodes: ~120 + ~60 ms).
      await nextTurn();
      const check = checkBaseline(record, this.graphName);
      return check.ok && check.record.seq >= seq;
    } catch (err) {
      return cannotSucceed(err) ? false : undefined;
    }
  }

  /** Reads back again after a failed read-back, on a timer (backoff as the gate's; a read-back never reports). */
  #retryReadBack(upTo: number): void {
    // One timer, for the newest baseline that failed: a baseline at or above it covers the older ones' frames too.
    this.#readBackUpTo = Math.max(this.#readBackUpTo, upTo);
    if (this.#readBackRetry) return;
    this.#readBackRetry = true;
    this.#readBackDelay =
      this.#readBackDelay === 0 ? GATE_RETRY.initialMs : Math.min(GATE_RETRY.maxMs, this.#readBackDelay * 2);
    setTimeout(() => {
      this.#readBackRetry = false;
      this.#reclaim(this.#readBackUpTo); // takes back what is still unreclaimed up to it (nothing once disposed)
    }, this.#readBackDelay * (0.5 + Math.random() / 2)).unref();
  }

  /** Deletes the queued dead frames a batch per turn; true when it ran out of work (not stopped, failed or disposed). */
  async #deleteDead(wal: KvStorageTier<WALFrame>): Promise<boolean> {
    for (;;) {
      if (this.#disposed) return false;
      const keys = this.#deadKeys.splice(0, RECLAIM_CHUNK);
      while (keys.length < RECLAIM_CHUNK && this.#deadRanges.length > 0) {
        const range = this.#deadRanges[0] as { from: number; to: number };
        const end = Math.min(range.to, range.from + (RECLAIM_CHUNK - keys.length) - 1);
        for (let s = range.from; s <= end; s++) keys.push(walFrameKey(this.#prefix, s));
        if (end === range.to) this.#deadRanges.shift();
        else range.from = end + 1;
      }
      if (keys.length === 0) return true;
      try {
        await (wal.deleteMany ? wal.deleteMany(keys) : Promise.all(keys.map((k) => wal.delete(k))));
      } catch (err) {
        // A closed tier ends the reclaim silently; a refusal (e.g. a read-only store) is reported once and ends it.
        if (err instanceof StorageError && err.code === "closed") return false;
        this.#deadKeys = keys.concat(this.#deadKeys);
        if (this.#disposed) return false;
        if (this.#reclaimDelay === 0) this.report(err); // once per failing spell, not per retry
        if (isPermanent(err)) return false;
        this.#retryReclaim(wal);
        return false;
      }
      this.#reclaimDelay = 0;
      await nextTurn();
    }
  }

  /**
   * Retries a failed delete batch on a timer (backoff as the gate's): "stale" mode reclaims once per attach, and
   * "all" mode's next reclaim waits for a baseline that a writer gone quiet never makes.
   */
  #retryReclaim(wal: KvStorageTier<WALFrame>): void {
    if (this.#reclaimRetry) return;
    this.#reclaimRetry = true;
    this.#reclaimDelay =
      this.#reclaimDelay === 0 ? GATE_RETRY.initialMs : Math.min(GATE_RETRY.maxMs, this.#reclaimDelay * 2);
    const ms = this.#reclaimDelay * (0.5 + Math.random() / 2);
    // Unref'd: dead frames left when the process ends are found by the next attach's listing.
    setTimeout(() => {
      this.#reclaimRetry = false;
      this.#startDeleting(wal); // a loop running now takes the batch (and retries it if it fails again)
    }, ms).unref();
  }

  /**
   * Whether a tier's flush that rejected with `err` refused nothing of this pair's (task 277, review r267 F3): `err` is
   * final (cannotSucceed: closed, not-owner, a refusal) and, the pair not stopped, every seq it handed out is at or
   * below the acknowledged one (#seq <= #durable), nothing is queued, every baseline it saved was acknowledged
   * (#baselinesAcked), and no check of what a lost worker took runs. flush() then resolves: nothing was left to write
   * (an engine closing under dispose()'s last flush stopped the pair and reported a refused write at a seq already
   * durable). Anything pending keeps the stop and its report (#flushFailed).
   */
  #nothingUnacknowledged(err: unknown): boolean {
    return (
      cannotSucceed(err) &&
      this.#stopped === undefined &&
      this.#seq <= this.#durable &&
      this.#head >= this.#queue.length &&
      this.#baselinesAcked === this.#baselinesSaved &&
      this.#checks.size === 0
    );
  }

  /** A tier's flush rejected: a transient failure stays pending in the tier for the next flush; a refusal stops. */
  #flushFailed(err: unknown, tier: "wal" | "snapshot"): Error | Promise<Error> {
    if (!cannotSucceed(err)) {
      this.report(err);
      return err instanceof Error ? err : new Error(String(err));
    }
    if (lostStore(err)) return this.#stopLost(err);
    // A store that takes no write again (a backend's finalError, heard at its first flush since task 307), or a tier
    // an engine's close closed (its drain failed, or it closed before the write: engine-gone.ts): no frame past the
    // gap can be deleted there either, so none is tried (each would fail and be reported as left to delete and
    // "deleted again"). A snapshot tier's answer is about the last baseline, if not acknowledged (task 317).
    // A tier its owner closed takes no list nor delete either, and no gap is known there (task 321).
    if (engineGone(err) !== undefined || closedByOwner(err)) {
      const baseline = tier === "snapshot" && this.#baselinesAcked < this.#baselinesSaved ? this.#lastBaseline : undefined;
      return this.#stop(err, this.#durable + 1, baseline);
    }
    if (isFinalError(err)) return this.#stop(err, this.#durable + 1);
    if (tier === "wal") return this.#stop(err, this.#dropPastGap());
    // A snapshot tier holds one baseline per graph: the refused one is the latest. The WAL has every change.
    return this.#stop(err, this.#lastBaseline, this.#lastBaseline);
  }
}

/**
 * A check of what a loss of unknown writes took from one tier of the pair (#checkUnknownRefusal): up to which seq
 * (and last baseline) it answers, whether a later loss widened it while an attempt ran (read again), the last
 * attempt's failure to read, the attempt running now, and the whole check.
 */
interface UnknownLossCheck {
  upTo: number;
  baseline: number;
  again: boolean;
  error: Error | undefined;
  attempt: Promise<void>;
  done: Promise<void>;
}

/**
 * `err` as an Error, its stack formatted: until `.stack` is read V8 keeps the call sites it captured, their receivers
 * and functions too (a graph's set(), attach's wave handler), so an error the outbox keeps (a tier's backpressure
 * while the store is stuck) kept a dropped handle's graph from being collected (task 252, review r248).
 */
function kept(err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  void e.stack;
  return e;
}

/** A pause that never keeps the process alive (what is unchecked is what flush() has not acknowledged). */
function unrefDelay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * flush()'s wait behind a full tier (#outlastBackpressure) ends with the store's error after this many write attempts
 * of the tier failed in a row, the first paused FAILED_ATTEMPT_PAUSE_MS, each next twice as long.
 */
const FAILED_ATTEMPTS = 3;
const FAILED_ATTEMPT_PAUSE_MS = 10;
/**
 * handle.drained()'s wait (unbounded) doubles its pause after each write attempt from 20 ms up to 10 ms << 10
 * (~10 s, a tier's own retry cap): a long full-disk spell costs an attempt every ~10 s; room still ends it at once.
 */
const UNBOUNDED_PAUSE_STEPS = 10;
/** That pace, kept per tier: sharedWriteAttempt (write-verdict.ts) runs one attempt loop per tier for every waiter. */
const UNBOUNDED_PACE = { pauseMs: FAILED_ATTEMPT_PAUSE_MS, maxSteps: UNBOUNDED_PAUSE_STEPS };

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isBackpressure(err: unknown): err is StorageError {
  return err instanceof StorageError && err.code === "backpressure";
}

/**
 * A store worker was lost with writes of the pair (crashed, exited, ended by the watchdog: the engine's loss report,
 * connection.ts lostWrites): nothing was refused, the store takes writes again on a fresh thread.
 */
function lostWorker(err: unknown): err is StorageError {
  return err instanceof StorageError && (err.code === "worker-crashed" || err.code === "worker-unresponsive");
}

/**
 * What flush() rejects with when a lost store worker took writes of the pair from `seq` on (`baseline`: the baseline
 * at it, when that is the write lost): not acknowledged, and the pair resumes by itself with a baseline of the graph.
 */
function lostWorkerError(graphName: string, seq: number, cause: StorageError, baseline?: number): StorageError {
  return new StorageError(
    "worker-crashed",
    `graph "${graphName}": ${writeAt(seq, baseline)} was lost with the store's worker (${saidError(cause)}), so nothing ` +
      `from seq ${seq} on is acknowledged; nothing was refused: the pair writes a baseline of the live graph above ` +
      "every seq it handed out, by itself, and later flushes acknowledge the changes after it",
    { graph: graphName, seq, reason: "worker-lost", ...(baseline !== undefined ? { baseline } : {}) },
    cause,
  );
}

/** The writer lost its store (a PostgreSQL lease taken over): whatever the store holds now says nothing of its writes. */
function lostStore(err: unknown): err is StorageError {
  return err instanceof StorageError && err.code === "not-owner";
}

/**
 * Failures no retry can fix: the tier's refusals (an unencodable value, a key the store refuses; any error a flush
 * reports a refusal with, e.g. a worker codec's plain Error), a closed tier, a writer that lost its store (not-owner),
 * seqs past 2^53 − 1, and a backend's finalError whatever its code (a custom backend's backend-error, a file store
 * whose lock is gone: write-verdict.ts knows them by identity). Such a store takes no write again: the pair stops,
 * where it retried that error for good, reporting it at each wave (task 285).
 */
function cannotSucceed(err: unknown): err is Error {
  return (
    isPermanent(err) ||
    isRefusalReport(err) ||
    isSeqsExhausted(err) ||
    isFinalError(err) ||
    (err instanceof StorageError && (err.code === "closed" || err.code === "not-owner"))
  );
}

/** seqsExhausted's error: no retry numbers past 2^53 − 1, so the pair stops with it (docs/design.md §3.36). */
function isSeqsExhausted(err: unknown): err is StorageError {
  return err instanceof StorageError && err.code === "corrupt-store" && err.details.reason === "seqs-exhausted";
}

/** A store whose seqs reached Number.MAX_SAFE_INTEGER: nothing more can be numbered above them. */
function seqsExhausted(graphName: string, seq: number): StorageError {
  return new StorageError(
    "corrupt-store",
    `graph "${graphName}": the store's seqs reached ${seq}, and seqs end at ${Number.MAX_SAFE_INTEGER}: nothing more can be written above them (a store only another program could have numbered so)`,
    { graph: graphName, seq, reason: "seqs-exhausted" },
  );
}

/** What onError hears once per spell when queued waves were replaced by one baseline (AttachOutbox.collapse). */
function collapsedError(graphName: string, waves: number): StorageError {
  return new StorageError(
    "backpressure",
    `graph "${graphName}": the store is behind and the waves waiting for it passed attach's maxQueuedBytes: ` +
      `${waves} queued waves were replaced by one baseline of the graph, written when the store takes writes again ` +
      "(nothing is lost; handle.drained() says when the store caught up)",
    { graph: graphName, waves },
  );
}

/**
 * What flush() rejects with in a WAL group's pair stopped by another pair's refused baseline (`baseline`, in the
 * snapshot tier named `pair`): the group numbers alike, so none writes past it; rebaseline() resumes them all.
 */
function stoppedWithError(graphName: string, seq: number, cause: Error, pair: string, baseline: number): StorageError {
  return new StorageError(
    "write-refused",
    `graph "${graphName}": stopped with pair ${JSON.stringify(pair)} of its WAL group, whose baseline at seq ${baseline} was ` +
      `refused for good (${saidError(cause)}); no frame from seq ${seq} on is written and nothing from it on acknowledged ` +
      "until handle.rebaseline()",
    { graph: graphName, seq, pair },
    cause,
  );
}

/**
 * Where a stop's search ended when the tier was closed meanwhile (`closed`, its answer): at `seq`, no frame deleted.
 */
interface StopAt {
  seq: number;
  closed?: StorageError;
}

/**
 * A refusal (`refusal`) whose stop met its WAL tier closed (`closed`) before anything past `seq` could be listed or
 * deleted: said as the close (rebaseline() cannot write through it), naming the refusal (engine-gone.ts).
 */
function closedUnderRefusal(graphName: string, seq: number, closed: StorageError, refusal: Error, baseline?: number): StorageError {
  if (engineGone(closed) !== undefined) return engineGoneError(graphName, seq, closed, baseline);
  return tierClosedError(graphName, seq, closed, baseline, refusal);
}

/**
 * What flush() rejects with once a pair stopped: names the refused seq (`baseline`: the baseline at it, when that is
 * the write refused), carries the tier's error as `cause`. A tier closed under the pair, by its engine's close or by
 * its owner, refused nothing: said as such (engine-gone.ts).
 */
function refusedError(graphName: string, seq: number, cause: Error, baseline?: number): StorageError {
  if (engineGone(cause) !== undefined) return engineGoneError(graphName, seq, cause as StorageError, baseline);
  if (closedByOwner(cause)) return tierClosedError(graphName, seq, cause, baseline);
  const what = saidError(cause);
  return new StorageError(
    "write-refused",
    `graph "${graphName}": ${writeAt(seq, baseline)} was refused for good (${what}); no frame after it is written ` +
      "and nothing after it acknowledged until handle.rebaseline()",
    { graph: graphName, seq, ...(baseline !== undefined ? { baseline } : {}) },
    cause,
  );
}

/**
 * `source`, its frames read so that a read that throws is one key's: a failed chunk is read again key by key, and a
 * key whose read still throws reads as absent (kept by the caller) with why in `unread`. A closed tier still throws.
 */
function keyByKey(source: StoredGraphSource, unread: Map<string, unknown>): StoredGraphSource {
  const readFrame = async (key: string): Promise<StoredValue> => {
    try {
      return await source.readFrame(key);
    } catch (err) {
      if (err instanceof StorageError && err.code === "closed") throw err;
      unread.set(key, err);
      return { state: "absent" };
    }
  };
  const readFrames = source.readFrames?.bind(source);
  return {
    ...source,
    readFrame,
    ...(readFrames && {
      readFrames: (keys: readonly string[]) => readFrames(keys).catch(() => Promise.all(keys.map(readFrame))),
    }),
  };
}

/**
 * What onError hears once when frames above a stop's gap could not be deleted: they are deleted again (`again`), or,
 * when no retry can succeed (the tier closed meanwhile), not.
 */
function undeletedFramesError(graphName: string, gap: number, keys: readonly string[], cause: unknown, again: boolean): StorageError {
  const why = cause instanceof Error ? cause.message : String(cause);
  const more = keys.length > 1 ? ` (and ${keys.length - 1} more)` : "";
  const then = again
    ? "it is deleted again (handle.rebaseline() also covers it)"
    : "the tier takes no delete any more, so it stays until a new attach over open tiers writes its own baseline";
  return new StorageError(
    cause instanceof StorageError ? cause.code : "backend-error",
    `graph "${graphName}": WAL frame ${JSON.stringify(keys[0])}${more}, at or above the refused seq ${gap}, could not be deleted ` +
      `(${why}); until it is, a restore fails with wal-gap at seq ${gap}: ${then}`,
    { graph: graphName, seq: gap, key: keys[0], keys: keys.length },
    cause,
  );
}

/** What onError hears once about stale keys whose read threw: they are kept, and read again a few times. */
function unreadStaleError(graphName: string, unread: ReadonlyMap<string, unknown>): StorageError {
  const [key, cause] = unread.entries().next().value as [string, unknown];
  const why = cause instanceof Error ? cause.message : String(cause);
  const more = unread.size > 1 ? ` (and ${unread.size - 1} more)` : "";
  return new StorageError(
    cause instanceof StorageError ? cause.code : "backend-error",
    `graph "${graphName}": WAL frame key ${JSON.stringify(key)}${more}, stored before this attach, could not be read (${why}); ` +
      "it is kept, not deleted unread, and read again a few times; the rest of the reclaim goes on",
    { graph: graphName, key, keys: unread.size },
    cause,
  );
}
