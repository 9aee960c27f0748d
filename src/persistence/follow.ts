/**
 * Followers (docs/design.md §3.17): a read replica of a graph that another process writes. `followGraph` restores
 * the graph through the stored-graph reader, then polls the store and applies the frames that continue it, in seq
 * order, with restore's replay (restore.ts), one graph batch per poll. A frame it cannot use yet is left for the
 * next poll; a store that cannot be read right is reported and ends the follower.
 * - Change detection: the WAL tier's change counter when it has one (SQLite's data_version): a poll whose counter did
 *   not move reads nothing more, except the baseline's head every IDLE_BASELINE_POLLS such polls, as the baseline
 *   may live in another store the counter does not see (a snapshot tier with a counter of its own is asked
 *   instead). Otherwise every poll lists the graph's frame keys.
 * - Compactions: when the next frame is missing (a hole in the listing, or gone when read) or a frame it already
 *   applied vanished, the baseline is read; one past the applied seq means the writer folded those frames away, and
 *   the follower reloads it and the frames above it. A compaction that folds everything a poll would have seen
 *   deletes nothing the follower can miss with a counter (the counter moves); without one, idle polls also read the
 *   baseline every IDLE_BASELINE_POLLS polls.
 * - A baseline above the last frame (rebaseline, attach's compactEvery) shows no hole until the writer writes on: the
 *   first poll without new frames after one that applied some reads the baseline, counter or not.
 * - Removals of code-built nodes (derived, effect; a mount holding one): replay cannot build them again, so a poll
 *   applies frames only up to the last wave where all it removed is back (follow-hold.ts), holding the rest for a
 *   re-add for `holdRemovalPolls` polls (at most twice that when a younger removal lies between it and its
 *   re-add): the graph is restore's at every frame it reports (design §3.9). A reload whose baseline folded such a
 *   removal waits the same way for a frame above it re-adding what it dropped (load). A re-add read after its
 *   removal was applied without it (the hold ran out, a baseline folded past it) finds the node gone for good: the
 *   follower reports that once per node (RestoreError `follow-diverged`, onError and stats().diverged) and goes on
 *   (follow-diverged.ts).
 * - What stops it (typed, through onError and `done`): a hole the baseline does not cover (RestoreError `wal-gap`), a
 *   bad frame with later frames after it (`torn-write-mid-stream`), an unusable baseline, the graph refusing a change
 *   (`phase-failed`), a closed tier or graph, a load of a store forgotten from its shared WAL's record with the frames
 *   above its baseline gone (`wal-compacted-past-baseline`, restore's check: shared-wal-record.ts). Transient storage
 *   failures are reported and the next poll retries.
 * Layer 4 (graph).
 */
import { refuseUnknownKeys } from "../base/options.js";
import { MAX_TIMER_MS } from "../base/timers.js";
import { RestoreError, StorageError } from "../errors.js";
import { refuseForgottenPast } from "./shared-wal-record.js";
import type { KvStorageTier, SnapshotStorageTier } from "../tier/types.js";
import type { SnapshotHead } from "../tier/json-head.js";
import type { WALFrame } from "../wal/frame.js";
import { handled } from "../base/promises.js";
import {
  advanceStoredNodes,
  applyBaseline,
  checkCodeChanges,
  codeBuiltOf,
  codeChangesOf,
  reAddedAbove,
  refuseCodeChanges,
  replayFrames,
  storedNodesOf,
  type CodeBuilt,
  type StoredNodes,
} from "./restore.js";
import { codeBuiltDropped } from "./apply.js";
import { framesToApply, waveEndAfter, type RemovalWait } from "./follow-hold.js";
import { codeBuiltPaths, divergedError, missingCodeBuilt } from "./follow-diverged.js";
import type { CodeChangesPolicy, GraphCheckpointRecord, RestoreCodeChange } from "./storage-types.js";
import {
  baselineError,
  FrameChain,
  gapError,
  listFrameKeys,
  readBaseline,
  readFrameChunks,
  readStoredGraph,
  tailWaveGrew,
  tierSource,
  tornWriteError,
  type FrameKey,
  type StoredGraphSource,
} from "./stored-graph.js";
import type { Graph, GraphPersistSnapshot } from "../graph/types.js";
import { assertGraphName } from "../wal/keys.js";

/** Default time between two polls. */
export const DEFAULT_FOLLOW_POLL_MS = 100;
/**
 * While polls fail, the wait before the next doubles from pollMs up to this (jittered: half to full, never below
 * pollMs), as a tier's automatic retries back off (docs/design.md §3.19); a poll that succeeds resets it.
 */
export const MAX_FOLLOW_BACKOFF_MS = 10_000;
/**
 * An idle poll reads the baseline's head once per this many polls: without a WAL change counter (a compaction may
 * hide there), and with one that did not move but no snapshot counter (the baseline may be in another store).
 */
export const IDLE_BASELINE_POLLS = 10;
/**
 * Default polls a wave removing code-built nodes waits for their re-add before it is applied alone (design §3.9):
 * a removal applied alone cannot be undone by a later re-add, which restore (one phase) keeps.
 */
export const DEFAULT_HOLD_REMOVAL_POLLS = 10;

/** Where a followed graph is read: the same tiers restore reads (inline read-only tiers or engine proxies). */
export interface FollowSource {
  /**
   * Built-in snapshot tiers have no `changeCounter`; one that has (as a kv tier's: it moves whenever the snapshot's
   * store may have changed) spares the idle polls' reads of the baseline's head.
   */
  readonly snapshot: SnapshotStorageTier<GraphCheckpointRecord> & { changeCounter?(): Promise<number> };
  readonly wal: KvStorageTier<WALFrame>;
}

export interface FollowOptions {
  /** Milliseconds between the end of one poll and the start of the next (default 100). A finite number > 0. */
  readonly pollMs?: number;
  /** Called after every poll that did not fail. */
  readonly onLag?: (lag: FollowerLag) => void;
  /**
   * Polls a wave that removes a derived or effect node (or unmounts a mount holding one) waits, with the waves after
   * it, for a later wave re-adding what it removed (default 10; 0: applied at once), counted from the poll that
   * first read it. Replay cannot build what only the code builds, and restore, replaying the removal with a later
   * re-add, keeps the node (docs/design.md §3.9). A removal whose re-add is read behind a younger removal still
   * waiting waits with it, up to twice this. An integer >= 0.
   */
  readonly holdRemovalPolls?: number;
  /**
   * A poll's failure. `fatal`: the follower stopped (and `done` rejects with the error); otherwise the next poll
   * retries, after a wait that backs off while polls fail (stats().nextPollMs). A transient failure is reported once
   * per failing spell (polls failing one after another), and again when a poll fails with a different error (another
   * code); `stats().lastError` has the latest. Never called for the initial restore, whose error `followGraph`
   * rejects with. Also hears, not fatal, a RestoreError `follow-diverged` (not a failure, not in lastError): the
   * graph lacks a code-built node the writer re-added, which restore has (once per node; stats().diverged).
   */
  readonly onError?: (error: Error, fatal: boolean) => void;
  /**
   * As restoreSnapshot's (docs/design.md §3.9): "refuse" (default) fails the initial load (rejects) or a poll (fatal)
   * with RestoreError `derived-mismatch` when the stored graph holds a derived or effect node the graph built
   * otherwise or lacks; "accept" keeps the code's nodes (a new version of the code following an older writer).
   */
  readonly codeChanges?: CodeChangesPolicy;
}

/**
 * How far the follower is behind the store, as of its last poll: a position only. A graph that parted from
 * restore's (follow-diverged: a code-built node it cannot build) is not behind, it differs; lag() does not say so
 * (`frames` 0 once caught up), FollowerStats.diverged does, and onError heard it (design §3.9).
 */
export interface FollowerLag {
  /** The seq the graph is at: the baseline's, or the last frame applied. */
  readonly appliedSeq: number;
  /** The highest frame seq stored (at least `appliedSeq`). */
  readonly storedSeq: number;
  /** `storedSeq - appliedSeq`: frames stored but not applied (arrived since, or a frame still being written). */
  readonly frames: number;
  /**
   * Milliseconds since the write time of the newest change the follower has read (its frame's, or the baseline's):
   * with `frames` 0, how long the writer has been quiet, as far as the follower knows. Clocks of other machines
   * count as they are.
   */
  readonly ms: number;
}

export interface FollowerStats extends FollowerLag {
  readonly state: "following" | "stopped" | "failed";
  /** Seq of the baseline last loaded. */
  readonly baselineSeq: number;
  readonly polls: number;
  /** Frames applied after the initial restore. */
  readonly appliedFrames: number;
  /** Newer baselines loaded because the writer's compaction folded frames the follower had not applied. */
  readonly reloads: number;
  /** The last failure (transient or the one that stopped the follower). */
  readonly lastError: Error | undefined;
  /**
   * Set once the graph lacks a code-built node the writer re-added, which restore at that seq has (design §3.9):
   * the first such report (RestoreError `follow-diverged`, also heard by onError). It stays set; the follower goes
   * on applying frames (the rest of the graph stays the writer's), and a caller wanting the node restores afresh or
   * follows with a freshly built graph.
   */
  readonly diverged: RestoreError | undefined;
  /**
   * With `codeChanges: "accept"` only: the code changes the graph holds as of `appliedSeq`, as restoreSnapshot with
   * "accept" at that seq lists them (RestoreResult.codeChanges; [] when none), worked out at the call. A node
   * stored in the baseline the follower last loaded has that baseline's seq as `frame_seq` (a fresh restore may read
   * a newer baseline and name its seq).
   */
  readonly codeChanges?: RestoreCodeChange[];
  /** Polls that failed one after another, up to now (0: the last poll succeeded). */
  readonly failedPolls: number;
  /**
   * The wait before the next scheduled poll, chosen when the last poll ended: pollMs, or while polls fail, pollMs
   * doubled per failed poll up to MAX_FOLLOW_BACKOFF_MS (10 s), jittered to half to full and never below pollMs.
   * Undefined once the follower no longer polls.
   */
  readonly nextPollMs: number | undefined;
}

export interface GraphFollower {
  lag(): FollowerLag;
  stats(): FollowerStats;
  /**
   * Polls now, after a poll in progress, and resolves with the lag. Rejects with the error that stopped the follower,
   * StorageError `closed` after stop(), or this poll's transient failure (also reported to onError).
   */
  poll(): Promise<FollowerLag>;
  /** Stops polling; resolves when a poll in progress ended. Nothing is applied to the graph after the call. Idempotent. */
  stop(): Promise<void>;
  /** Resolves when stop() ended following, rejects with the error that stopped it. Handled: never an unhandled rejection. */
  readonly done: Promise<void>;
}

/**
 * Restores `graph` (built by the same code as the writer's) from `source`, then follows the store. Rejects with
 * restore's errors (RestoreError `baseline-missing`, `wal-gap`, …; StorageError `backend-no-list-support`, …) when
 * the initial restore fails; StorageError `invalid-name` for a graph name no store can hold apart (docs/design.md
 * §3.27); TypeError / RangeError for bad arguments. A torn tail frame is not applied until it
 * reads right. The caller owns the tiers and closes them after stop().
 */
export function followGraph(graph: Graph, source: FollowSource, opts: FollowOptions = {}): Promise<GraphFollower> {
  return handled(follow(graph, source, opts)); // ignored by its caller, a failure never crashes the host (base/promises.ts)
}

async function follow(graph: Graph, source: FollowSource, opts: FollowOptions): Promise<GraphFollower> {
  const options = checkOptions(graph, source, opts);
  const follower = new Follower(graph, source, options);
  await follower.load(true);
  follower.start();
  return follower.api;
}

interface CheckedOptions {
  readonly pollMs: number;
  readonly holdRemovalPolls: number;
  readonly onLag: ((lag: FollowerLag) => void) | undefined;
  readonly onError: ((error: Error, fatal: boolean) => void) | undefined;
  readonly codeChanges: CodeChangesPolicy;
}

/** Thrown inside a reload's batch (rolled back) when the reload waits for a re-add (Follower.load). */
const WAIT = Symbol("wait");
/** A poll's outcome when the baseline it read no longer matches: start over from that baseline. */
const RELOAD = Symbol("reload");
/**
 * A poll's outcome when it applied frames. It did not look at the baseline, which the writer may have stored above
 * them (rebaseline, attach's compactEvery: a baseline takes a seq no frame has); the next poll looks.
 */
const APPLIED = Symbol("applied");
/**
 * A poll's outcome when it left the last wave it listed for the next poll: a file store's batch was still renaming
 * its frames into place (`collect`). The next poll reads again whatever the change counter says.
 */
const PARTIAL = Symbol("wave in part");

class Follower {
  private readonly reader: StoredGraphSource;
  private state: FollowerStats["state"] = "following";
  private appliedSeq = 0;
  private storedSeq = 0;
  private baselineSeq = 0;
  private newestNs = 0;
  private polls = 0;
  private appliedFrames = 0;
  private reloads = 0;
  private lastError: Error | undefined;
  private diverged: RestoreError | undefined;
  /** Code-built paths as the graph's code built them: restore's fresh graph has these (follow-diverged.ts). */
  private readonly codeBuilt: ReadonlySet<string>;
  /** With codeChanges "accept": the graph's nodes as its code built them, and the stored graph's nodes as applied. */
  private readonly code: CodeBuilt | undefined;
  private stored: StoredNodes | undefined;
  /** Paths already reported as diverged: each is reported once. */
  private readonly divergedPaths = new Set<string>();
  /** Transient failures in a row, and the code onError heard last in this spell (reported again when it changes). */
  private failedPolls = 0;
  private reportedCode: string | undefined;
  private nextPollMs: number | undefined;
  /** Frame keys at or below `appliedSeq` in the last listing: fewer now means something deleted frames. */
  private listedBelow = 0;
  private lastCounter: number | undefined;
  private lastSnapshotCounter: number | undefined;
  private idlePolls = 0;
  /** Frames were applied since the baseline was last read: the next poll without new frames reads it. */
  private baselineDue = false;
  /**
   * The removals held back (follow-hold.ts), by frame seq: the cut (`cuts`) that first read them. Each waits
   * counting from its own first read, so one running out does not apply a younger removal with it; empty when
   * nothing is held.
   */
  private holds = new Map<number, number>();
  private cuts = 0;
  /** Polls a reload has waited for a frame re-adding what its baseline dropped (load): it reloads at every poll. */
  private baselineWaits = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Polls run one after another on this chain. */
  private chain: Promise<void> = Promise.resolve();
  private finish!: (err?: Error) => void;
  readonly done: Promise<void>;
  readonly api: GraphFollower;

  constructor(
    private readonly graph: Graph,
    private readonly source: FollowSource,
    private readonly opts: CheckedOptions,
  ) {
    this.reader = tierSource(source.snapshot, source.wal);
    this.codeBuilt = codeBuiltPaths(graph);
    this.code = opts.codeChanges === "accept" ? codeBuiltOf(graph) : undefined;
    this.done = new Promise<void>((resolve, reject) => {
      this.finish = (err) => (err === undefined ? resolve() : reject(err));
    });
    this.done.catch(() => undefined);
    this.api = {
      lag: () => this.lag(),
      stats: () => this.stats(),
      poll: () => handled(this.pollNow()),
      stop: () => handled(this.stop()),
      done: this.done,
    };
  }

  start(): void {
    this.schedule();
  }

  lag(): FollowerLag {
    const ms = this.newestNs > 0 ? Math.max(0, Date.now() - this.newestNs / 1e6) : 0;
    return { appliedSeq: this.appliedSeq, storedSeq: this.storedSeq, frames: this.storedSeq - this.appliedSeq, ms };
  }

  stats(): FollowerStats {
    return {
      ...this.lag(),
      state: this.state,
      baselineSeq: this.baselineSeq,
      polls: this.polls,
      appliedFrames: this.appliedFrames,
      reloads: this.reloads,
      lastError: this.lastError,
      diverged: this.diverged,
      ...(this.code && { codeChanges: this.stored ? codeChangesOf(this.code, this.stored, this.graph) : [] }),
      failedPolls: this.failedPolls,
      nextPollMs: this.nextPollMs,
    };
  }

  async stop(): Promise<void> {
    if (this.state === "following") {
      this.state = "stopped";
      this.clearTimer();
      this.finish();
    }
    await this.chain;
  }

  private async pollNow(): Promise<FollowerLag> {
    let failure: Error | undefined;
    await this.enqueue(async () => {
      failure = await this.pollSafely();
    });
    if (this.state === "failed") throw this.lastError as Error;
    if (this.state === "stopped") throw new StorageError("closed", `the follower of graph "${this.graph.name}" was stopped`);
    if (failure !== undefined) throw failure;
    return this.lag();
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.chain.then(task);
    this.chain = run;
    return run;
  }

  private schedule(): void {
    this.clearTimer();
    if (this.state !== "following") {
      this.nextPollMs = undefined;
      return;
    }
    const wait = this.waitBeforePoll();
    this.nextPollMs = wait;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.enqueue(async () => void (await this.pollSafely()));
    }, wait);
  }

  /**
   * pollMs; while polls fail, doubled per failed poll up to MAX_FOLLOW_BACKOFF_MS, jittered (half to full) so
   * followers of one store that went down do not come back in step, never below pollMs: a store that is down is
   * not asked (a PostgreSQL connection attempt per poll) every pollMs. At most Node's timer range: a longer wait
   * would fire after 1 ms (a poll loop), so a pollMs past ~24.8 days polls every ~24.8 days (poll() polls at once).
   */
  private waitBeforePoll(): number {
    const { pollMs } = this.opts;
    if (this.failedPolls === 0) return Math.min(pollMs, MAX_TIMER_MS);
    const cap = Math.max(pollMs, MAX_FOLLOW_BACKOFF_MS);
    const nominal = Math.min(cap, pollMs * 2 ** Math.min(this.failedPolls, 30));
    return Math.min(Math.max(pollMs, nominal * (0.5 + Math.random() / 2)), MAX_TIMER_MS);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One poll that never throws: returns its transient failure (reported), stops the follower on a fatal one. */
  private async pollSafely(): Promise<Error | undefined> {
    if (this.state !== "following") return undefined;
    try {
      await this.pollOnce();
      this.polls++;
      this.failedPolls = 0;
      this.reportedCode = undefined;
      if (this.state === "following") this.call(() => this.opts.onLag?.(this.lag()));
      return undefined;
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      if (this.state !== "following") return undefined; // stopped meanwhile: the poll's outcome no longer matters
      this.lastError = error;
      const fatal = isFatal(error);
      if (fatal) {
        this.state = "failed";
        this.clearTimer();
        this.finish(error);
      } else this.failedPolls++;
      // Once per failing spell, and again for a different error: not per poll of a store that is down.
      const code = codeOf(error);
      if (fatal || this.failedPolls === 1 || code !== this.reportedCode) {
        this.reportedCode = code;
        this.call(() => this.opts.onError?.(error, fatal));
      }
      return fatal ? undefined : error;
    } finally {
      this.schedule();
    }
  }

  /** User callbacks must not break the poll loop. */
  private call(fn: () => void): void {
    try {
      fn();
    } catch {
      // a throwing callback is the caller's bug; following goes on
    }
  }

  private async pollOnce(): Promise<void> {
    const counter = await this.source.wal.changeCounter?.();
    const snapshotCounter = await this.source.snapshot.changeCounter?.();
    // A poll holding frames reads them again (their hold is counted in polls) however still the store is.
    if (this.baselineWaits > 0) return this.reload(); // the stored graph again: a re-add above the baseline, or a newer one
    const unchanged = counter !== undefined && counter === this.lastCounter && snapshotCounter === this.lastSnapshotCounter;
    if (unchanged && this.holds.size === 0) {
      // The WAL's counter says nothing of a baseline in another store: a new writer's attach stores only a baseline
      // there (nothing in the WAL store), which a follower skipping on the WAL's counter alone never saw. Without a
      // snapshot counter, every IDLE_BASELINE_POLLS such polls read the baseline's head (4 KiB) to look.
      if (snapshotCounter !== undefined || ++this.idlePolls < IDLE_BASELINE_POLLS) return;
      this.idlePolls = 0;
      if (await this.baselineCovers(this.appliedSeq + 1)) await this.reload();
      return;
    }
    const outcome = await this.readNewFrames(counter !== undefined);
    if (outcome === RELOAD) await this.reload();
    // Only a poll that read everything may let the next one skip on an unchanged counter. One that applied frames
    // did not read the baseline: with the writer quiet after a baseline above those frames, every later poll would
    // skip, and the follower would show a state behind the store's for as long as the writer stays quiet.
    this.lastCounter = outcome === APPLIED || outcome === PARTIAL ? undefined : counter;
    this.lastSnapshotCounter = snapshotCounter;
  }

  private async reload(): Promise<void> {
    if (await this.load()) this.reloads++;
  }

  /**
   * Lists the graph's frames and applies those that continue `appliedSeq`. RELOAD when the store's baseline moved
   * past the frames the follower still needs.
   */
  private async readNewFrames(hasCounter: boolean): Promise<void | typeof RELOAD | typeof APPLIED | typeof PARTIAL> {
    const keys = await listFrameKeys(this.reader, this.graph.name);
    const below = keys.filter((k) => k.seq <= this.appliedSeq).length;
    const vanished = below < this.listedBelow;
    this.listedBelow = below;
    const ahead = keys.filter((k) => k.seq > this.appliedSeq);
    this.storedSeq = Math.max(this.appliedSeq, ahead.length > 0 ? (ahead[ahead.length - 1] as FrameKey).seq : 0);
    if (ahead.length === 0) {
      // Nothing new: a compaction may still have folded new frames away (it deletes frames; the counter moved).
      const check = vanished || hasCounter || this.baselineDue || ++this.idlePolls >= IDLE_BASELINE_POLLS;
      if (!check) return undefined;
      this.idlePolls = 0;
      this.baselineDue = false;
      return (await this.baselineCovers(this.appliedSeq + 1)) ? RELOAD : undefined;
    }
    this.idlePolls = 0;
    if (vanished && (await this.baselineCovers(this.appliedSeq + 1))) return RELOAD;
    const frames: WALFrame[] = [];
    const outcome = await this.collect(ahead, frames);
    if (outcome === RELOAD) return RELOAD;
    if (!this.apply(frames)) return outcome === PARTIAL ? PARTIAL : undefined;
    this.baselineDue = true;
    return APPLIED;
  }

  /**
   * Reads `ahead` in seq order into `frames`, up to the first frame that cannot be applied yet. PARTIAL when the
   * listing caught the last wave in part (see `tailWaveGrew`): its frames are left out of `frames` (design §3.16).
   */
  private async collect(ahead: readonly FrameKey[], frames: WALFrame[]): Promise<void | typeof RELOAD | typeof PARTIAL> {
    const chain = new FrameChain(this.appliedSeq, (ahead[ahead.length - 1] as FrameKey).seq, true, undefined);
    let expected = this.appliedSeq + 1;
    // Chunks bounded in bytes (stored-graph.ts FRAME_CHUNK_BYTES); the frames gathered are the poll's batch.
    for await (const reads of readFrameChunks(this.reader, ahead)) {
      for (const read of reads) {
        const gap = chain.gapBefore(read.seq);
        const screened = chain.screen(read);
        if (gap === undefined && "frame" in screened) {
          frames.push(screened.frame);
          expected = read.seq + 1;
          continue;
        }
        // The next frame is missing or unreadable. A compaction that folded it moved the baseline past it.
        if (await this.baselineCovers(expected)) return RELOAD;
        if (gap !== undefined) throw gapError(this.graph.name, this.baselineSeq, gap);
        // Gone when read (deleted since listed) or torn at the tail (still being written): the next poll looks again.
        if (!read.ok && read.absent) return;
        if ("torn" in screened) {
          if (screened.decision === "abort") throw tornWriteError(screened.torn);
          return;
        }
      }
    }
    // Every listed frame read: the listing may have caught a batch renaming its frames into place one by one (a
    // file store), the last wave without its last frames. Waits for the batches under way (not later ones: bounded),
    // and leaves such a wave to the next poll rather than show a state the writer never had.
    const tail = frames[frames.length - 1];
    if (tail === undefined || tail.frame_seq !== (ahead[ahead.length - 1] as FrameKey).seq) return;
    if (!(await tailWaveGrew(this.reader, this.graph.name, tail))) return;
    const wave = String(tail.frame_t_ns);
    while (frames.length > 0 && String((frames[frames.length - 1] as WALFrame).frame_t_ns) === wave) frames.pop();
    return PARTIAL;
  }

  /**
   * True when the stored baseline holds seq `seq` (the writer folded the frames up to it). Its head (name and seq,
   * a prefix of the bytes where the tier can) answers a "no" without parsing the baseline (~250 ms at 100,000
   * nodes); a "yes" reloads, and the reload reads and checks the baseline whole. A head that cannot answer (none
   * stored, another name, no seq, a tier without loadHead) leaves it to the full read, which says what is wrong.
   */
  private async baselineCovers(seq: number): Promise<boolean> {
    const head = await this.baselineHead();
    if (head !== undefined && head.name === this.graph.name && head.seq !== undefined) return head.seq >= seq;
    const base = await readBaseline(this.reader, this.graph.name);
    if (!base.check.ok) throw baselineError(this.graph.name, base.check);
    return base.check.record.seq >= seq;
  }

  /** The stored baseline's name and seq; undefined when the tier cannot tell them or its bytes do not decode. */
  private async baselineHead(): Promise<SnapshotHead | undefined> {
    const snapshot = this.source.snapshot;
    if (typeof snapshot.loadHead !== "function") return undefined;
    try {
      return await snapshot.loadHead(this.graph.name);
    } catch (err) {
      // Storage failures are the poll's, as a full read's would be; a record that does not decode is left to it.
      if (err instanceof StorageError) throw err;
      return undefined;
    }
  }

  /**
   * The frames of one poll, in one graph batch: observers see the writer's state at the poll's last frame, or at
   * the last wave before one held back (see `cut`).
   */
  private apply(read: readonly WALFrame[]): boolean {
    if (read.length === 0 || this.state !== "following") return false;
    const from = this.appliedSeq;
    const frames = read.slice(0, this.cut(read));
    if (frames.length === 0) return false; // all held: no empty wave for observers
    const result = this.graph.batch(() => replayFrames(this.graph, from, frames, undefined, this.opts.codeChanges));
    this.appliedSeq = result.finalSeq;
    this.appliedFrames += frames.length;
    this.listedBelow += frames.length;
    if (this.stored !== undefined) advanceStoredNodes(this.stored, frames);
    this.noteTimes(frames);
    this.checkDiverged(missingCodeBuilt(this.graph, this.codeBuilt, frames), true);
    return true;
  }

  /**
   * Reports the code-built nodes `missing` names that were not reported before, once each: onError (not fatal: the
   * poll succeeded) and stats().diverged. No reload can help: it would apply the same baseline and frames to the
   * same graph, which still cannot build the node.
   */
  private checkDiverged(missing: Map<string, number>, report: boolean): void {
    for (const path of this.divergedPaths) missing.delete(path);
    if (missing.size === 0) return;
    for (const path of missing.keys()) this.divergedPaths.add(path);
    const error = divergedError(this.graph.name, missing, this.appliedSeq);
    this.diverged ??= error;
    if (report) this.call(() => this.opts.onError?.(error, false));
  }

  /**
   * How many of `frames` to apply now (design §3.9): the waves before one that removes code-built nodes not re-added
   * by the frames read; those and the rest wait for a later poll. A removal waits `holdRemovalPolls` polls from the
   * poll that first read it, then applies as it is (the nodes are gone, as from a baseline folded past the removal),
   * or with its re-add when that is read: a younger removal still waiting between them holds it until its own wait
   * ends (applied with them then) or its re-add is read. At 2 × `holdRemovalPolls` a removal goes with its re-adds
   * and whatever lies between. A frame waits only on removals before it or in its wave, read no later than it
   * (unless two waves share a millisecond, hence `frame_t_ns`): none waits more than 2 × `holdRemovalPolls` polls
   * from its first read, so the frames re-read stay those of that many polls. `atLeast`: a count to apply anyway
   * (a loaded baseline kept nodes these frames add again).
   */
  private cut(frames: readonly WALFrame[], atLeast = 0): number {
    const hold = this.opts.holdRemovalPolls;
    if (hold === 0) return frames.length;
    const now = ++this.cuts;
    const waitOf = (seq: number): RemovalWait => {
      const waited = now - (this.holds.get(seq) ?? now);
      return waited >= 2 * hold ? "forced" : waited >= hold ? "expired" : "waits";
    };
    const { count: held, removals } = framesToApply(this.graph, frames, waitOf);
    const count = Math.max(held, atLeast);
    // The removals left to later polls keep the cut that first read them (a new Map drops those applied or folded).
    const holds = new Map<number, number>();
    for (const i of removals) {
      const seq = (frames[i] as WALFrame).frame_seq;
      if (i >= count) holds.set(seq, this.holds.get(seq) ?? now);
    }
    this.holds = holds;
    return count;
  }

  private noteTimes(frames: readonly WALFrame[]): void {
    // Number: a lag in ms needs no ns precision, and a frame may carry an exact u64 as a bigint (protocol §2.6).
    for (const f of frames) this.newestNs = Math.max(this.newestNs, Number(f.frame_t_ns));
  }

  /**
   * Reads the graph as restore does and makes the live graph match it in one batch (the initial restore, reloads).
   * A reload whose baseline folded the removal of a code-built node the graph still has (held for its re-add),
   * re-added by no frame above it, waits as that removal would: up to `holdRemovalPolls` polls, each reading the
   * stored graph again, for a frame re-adding it (design §3.9); so does one whose frames hold a removal still
   * waiting before such a re-add. False when it waits.
   */
  async load(initial = false): Promise<boolean> {
    let frames: WALFrame[] = [];
    let skipped = 0;
    const view = await readStoredGraph(this.reader, this.graph.name, {}, {
      start() {
        frames = [];
        skipped = 0;
      },
      frame: (f) => void frames.push(f),
      skipped: () => void skipped++,
    });
    // Restore's check (design §3.10): a store forgotten from its shared WAL's record, the frames above its baseline
    // compacted away, holds an older state than the stored one. The initial load rejects, a reload fails the follower.
    await refuseForgottenPast(this.source.snapshot, this.source.wal, this.graph.name, view.baseline.seq, frames.length + skipped);
    if (this.state !== "following") return true;
    const record = view.baseline;
    const last = view.keys[view.keys.length - 1];
    const mayWait = !initial && this.baselineWaits < this.opts.holdRemovalPolls;
    const wait = (): false => {
      this.baselineWaits++;
      this.storedSeq = Math.max(this.appliedSeq, last?.seq ?? 0);
      return false;
    };
    const accept = this.opts.codeChanges === "accept";
    // The initial load is restore's: a stored code-built node the graph lacks fails it too (restore.ts).
    if (initial && !accept) refuseCodeChanges(this.graph, record, frames);
    if (mayWait && dropsCodeBuilt(this.graph, record.snapshot, frames, accept)) return wait();
    let result: ReturnType<typeof replayFrames>;
    try {
      result = this.graph.batch(() => {
        // The baseline keeps the code-built nodes it lacks that these frames add again (restore does): the frames
        // are then applied up to those adds at least, or the graph would show them where restore does not. A
        // removal held before such an add makes a reload wait (rolled back), as the add's own removal would.
        const reAdded = reAddedAbove(this.graph, record.snapshot, frames);
        applyBaseline(this.graph, record, frames, this.opts.codeChanges);
        const atLeast = reAdded.size === 0 ? 0 : waveEndAfter(frames, Math.max(...reAdded.values()));
        const count = this.cut(frames, mayWait ? 0 : atLeast); // a removal at the end waits for its re-add here too
        if (count < atLeast) throw WAIT;
        frames = frames.slice(0, count);
        return replayFrames(this.graph, record.seq, frames, undefined, this.opts.codeChanges);
      });
    } catch (err) {
      if (err === WAIT) return wait();
      throw err;
    }
    this.baselineWaits = 0;
    if (this.code !== undefined) this.stored = storedNodesOf(record, frames);
    this.baselineSeq = record.seq;
    this.appliedSeq = result.finalSeq;
    this.storedSeq = Math.max(this.appliedSeq, last?.seq ?? 0);
    this.listedBelow = view.keys.filter((k) => k.seq <= this.appliedSeq).length;
    // Number, as for frames (noteTimes): the baseline's may be an exact u64 decoded as a bigint (protocol §2.6).
    this.newestNs = Number(record.timestamp_ns as number | bigint);
    this.baselineDue = false;
    this.noteTimes(frames);
    // The initial restore is restore's own graph; a reload's baseline may hold a node the graph lost before.
    this.checkDiverged(missingCodeBuilt(this.graph, this.codeBuilt, frames, record), !initial);
    return true;
  }
}

/**
 * True when applying `snapshot` before `frames` drops a code-built node of `graph` that no frame adds again (with
 * `accept`, a node they end without stays: the code's).
 */
function dropsCodeBuilt(graph: Graph, snapshot: GraphPersistSnapshot, frames: readonly WALFrame[], accept: boolean): boolean {
  const reAdded = reAddedAbove(graph, snapshot, frames);
  if (accept) for (const p of codeBuiltDropped(graph, snapshot, frames)) reAdded.set(p, -1);
  for (const path of graph.paths()) {
    const kind = graph.kindOf(path);
    if (kind === "state" || kind === undefined || reAdded.has(path)) continue;
    if (!Object.prototype.hasOwnProperty.call(snapshot.nodes, path)) return true;
  }
  return false;
}

/** Failures a later poll cannot fix end the follower; a storage hiccup (I/O, a busy store, a restarting worker) does not. */
/** What tells two failures apart for onError's once-per-spell rule: the typed code, else the error's name. */
function codeOf(err: Error): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" ? code : err.name;
}

function isFatal(err: Error): boolean {
  if (!(err instanceof StorageError)) return true;
  return !(err.code === "backend-error" || err.code === "store-busy" || err.code === "worker-crashed");
}

function checkOptions(graph: Graph, source: FollowSource, opts: FollowOptions): CheckedOptions {
  const g = graph as Partial<Graph> | null;
  if (typeof g !== "object" || g === null || typeof g.name !== "string" || typeof g.batch !== "function") {
    throw new TypeError("followGraph: graph must implement Graph");
  }
  assertGraphName(g.name, "followGraph");
  if (typeof source !== "object" || source === null) throw new TypeError("followGraph: source must be { snapshot, wal }");
  if (typeof source.snapshot?.load !== "function") throw new TypeError("followGraph: source.snapshot must be a snapshot tier");
  const wal = source.wal as Partial<KvStorageTier<WALFrame>> | undefined;
  if (typeof wal?.list !== "function" || typeof wal.load !== "function") {
    throw new RestoreError("wal-tier-required", "followGraph: source.wal must be the WAL kv tier (list and load)", {});
  }
  if (typeof opts !== "object" || opts === null) throw new TypeError("followGraph: opts must be an object");
  refuseUnknownKeys(opts, ["pollMs", "onLag", "holdRemovalPolls", "onError", "codeChanges"], "followGraph");
  const codeChanges = checkCodeChanges(opts.codeChanges, "followGraph");
  const pollMs = opts.pollMs ?? DEFAULT_FOLLOW_POLL_MS;
  if (typeof pollMs !== "number" || !Number.isFinite(pollMs) || pollMs <= 0) {
    throw new RangeError(`followGraph: opts.pollMs must be a finite number > 0, got ${String(opts.pollMs)}`);
  }
  const holdRemovalPolls = opts.holdRemovalPolls ?? DEFAULT_HOLD_REMOVAL_POLLS;
  if (typeof holdRemovalPolls !== "number" || !Number.isSafeInteger(holdRemovalPolls) || holdRemovalPolls < 0) {
    throw new RangeError(`followGraph: opts.holdRemovalPolls must be an integer >= 0, got ${String(opts.holdRemovalPolls)}`);
  }
  for (const name of ["onLag", "onError"] as const) {
    if (opts[name] !== undefined && typeof opts[name] !== "function") throw new TypeError(`followGraph: opts.${name} must be a function`);
  }
  return { pollMs, holdRemovalPolls, onLag: opts.onLag, onError: opts.onError, codeChanges };
}
