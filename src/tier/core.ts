/**
 * The cadence and flush machinery every tier shares, inline or inside a worker actor:
 * - compactEvery boundary-crossing rule and sync-through (debounceMs 0/undefined) trigger;
 * - a real debounce timer whose window starts at the first buffered write;
 * - flushes serialised on one chain per backend (write-lane.ts: no two flushes of a tier ever overlap, and the tiers
 *   of one backend write in call order, a flush's batch taken at its call);
 * - a rollback epoch: a flush that started before a rollback writes nothing more;
 * - failed flushes keep their data pending (subclasses restore it) and are reported, never thrown unhandled;
 * - refusals: a write that can never be stored is dropped, reported, and fails the next flush()
 *   (docs/design.md §3.16).
 */
import { Encoded } from "../codec/bytes.js";
import { handled } from "../base/promises.js";
import { MAX_TIMER_MS, timerBound } from "../base/timers.js";
import { CodecError, StorageError, asStorageError } from "../errors.js";
import type { BatchOp, ExpectedValue, StorageBackend } from "../backend/types.js";
import { continueAsync, isPromiseLike, runMaybeAsync, type Step } from "./maybe.js";
import { writeOps } from "./write-ops.js";
import { readOnlyError } from "../backend/read-only.js";
import type { TierCommonOptions, TierErrorHandler, TierStats } from "./types.js";
import { measure, type ValueCheck } from "./value-check.js";
import { flushCallWeight, MIN_VALUE_ESTIMATE, recordWeight } from "./weights.js";
import { RoomQueue } from "./room.js";
import { RefusalWatchers, isRefusalReport, markRefusalReport, type RefusalListener } from "./refusal-watchers.js";
import { writeLaneOf, type WriteLane } from "./write-lane.js";
import { noteFinalError } from "./write-verdict.js";

const noop = (): void => {};

/**
 * A write refused for good: its number (see `refuse`; merged records: the oldest and the newest of theirs), and the
 * count of flush calls when a flush that answered for all of them reported it.
 */
interface Refusal {
  readonly error: Error;
  write: number;
  newest: number;
  reportedAt: number | undefined;
}

/** What one flush (or close) answers for: the writes offered before its call, numbered up to `asOf`. */
interface FlushCall {
  readonly asOf: number;
  readonly call: number;
}

/**
 * A batch a flush took, with what it settles: the weight and number of its writes, its oldest write's number and the
 * rollback epoch it was taken in. `absorbed`: an earlier batch of the tier failed while this one waited on the
 * lane or in a flush group, and put it back with its own (`laterTaken`); it then fails with `error`, unwritten.
 * `seq`: its place in the tier's taking order.
 */
interface Taken<Batch> {
  readonly batch: Batch;
  readonly seq: number;
  readonly oldest: number;
  readonly bytes: number;
  readonly entries: number;
  readonly epoch: number;
  absorbed: boolean;
  error: unknown;
}

/** Refusal records kept at most: more are merged (see `refuse`). */
const MAX_REFUSAL_RECORDS = 64;

/**
 * A store actor's flush group (src/engine/flush-group.ts, docs/design.md §3.30): the batches explicit flushes took in
 * one run over the actor's messages commit as one backend transaction. Declared here: a tier never imports the engine.
 */
export interface FlushGroup {
  /**
   * Whether batches may join (a synchronous backend whose batches are atomic: SQLite, memory). Without, the group
   * only keeps the tiers' writes in call order (`owes`, `taking`, `commit`), and each batch commits alone.
   */
  readonly joins: boolean;
  /**
   * Adds a taken batch's ops (none: a flush answering for `owner`'s batches already here) after those already
   * joined; `finish` runs once they committed (no error) or failed, and returns the error the batch finally failed
   * with (undefined: stored; an empty member returns what it heard). `owner`: the tier whose batch it is.
   */
  join(ops: readonly BatchOp[], finish: (err: unknown) => unknown, owner: unknown, expects?: readonly ExpectedValue[]): void;
  /**
   * Whether a batch may join with `expects`: keys that must hold these values for its ops to apply (an append-log's
   * new segment keys: no value). The group's one batch is then conditional on every batch's expectations; when one
   * fails, each batch is committed alone, and a batch whose own expectations fail hears `expectationFailed()`: its
   * tier numbers it again and writes it alone. Its tier's later batches in the group, unwritten, wait for that
   * retry and then settle with it: each batch hears `expectationFailed(true)` once the retry stored the earlier
   * one (it is numbered again and written alone after it), and is put back with it when the retry failed for good
   * (`laterTaken`); a member that took nothing answers as the batches before it did (task 194).
   */
  readonly joinsConditional?: boolean;
  /** Whether a batch of `owner` waits for the next commit. */
  holds(owner: unknown): boolean;
  /** Commits what joined, now, after taking the writes a tier owes (`owes`); nothing joined: nothing to do. */
  commit(): void;
  /**
   * `core` holds a triggered flush (sync-through, compactEvery) for the actor's run: its writes are owed to the store
   * from their call, as an inline tier writes them at save(). Writes another tier owed before are taken now (they
   * come first); `core`'s are taken when another tier takes a batch or writes, or the group commits.
   */
  owes(core: TierCore<unknown>): void;
  /** `core` takes a batch now: writes another tier owes were made before, and are taken first. */
  taking(core: TierCore<unknown>): void;
}

/**
 * What a joined batch whose expectations failed hears (FlushGroup.joinsConditional): another handle of the store
 * wrote one of its keys. Nothing of the batch was written; its tier numbers it again and writes it alone (an
 * append-log, up to ARRAY_WRITE_ATTEMPTS tries). `inherited`: an earlier batch of its tier in the group did, and
 * that retry stored it; this one, unwritten, is numbered again and written alone after it. A flush rejects with it
 * only where its tier cannot write anew (no tier of this package).
 */
export function expectationFailed(inherited = false): StorageError {
  const why = inherited
    ? "an earlier flush of this tier in its commit found a key it expected unchanged written by another handle of the store (it is retried)"
    : "another handle of the store wrote a key this flush expected unchanged (it is retried)";
  return new StorageError("store-busy", why, { expectationFailed: true, ...(inherited ? { inherited: true } : {}) });
}

/**
 * Whether `err` is `expectationFailed()`'s: "own" for the batch whose expectations failed (nothing written, the
 * batches after it in its group committed), "inherited" for a later batch of its tier, unwritten, whose earlier
 * batch's retry stored it (its turn to be numbered again and written).
 */
export function expectationFailure(err: unknown): "own" | "inherited" | undefined {
  if (!(err instanceof StorageError) || err.code !== "store-busy" || err.details.expectationFailed !== true) return undefined;
  return err.details.inherited === true ? "inherited" : "own";
}

/** What a batch's write step yields instead of writing, while its flush joins a group (`joinTo`). */
class JoinedWrite {
  constructor(
    readonly ops: readonly BatchOp[],
    readonly expects?: readonly ExpectedValue[],
  ) {}
}

/**
 * A flush() call whose answer is due: the writes offered (`asOf`) and refusal reports made at its call, and whether
 * it waits to start (a next flush, see `TierCore.nextFlush`).
 */
interface FlushAsk {
  promise: Promise<void>;
  readonly asOf: number;
  readonly reports: number;
  waiting: boolean;
}

const NOTHING_LEFT = { bytes: 0, entries: 0 } as const;

export abstract class TierCore<Batch> {
  readonly name: string;
  readonly debounceMs: number | undefined;
  readonly compactEvery: number | undefined;
  protected readonly backend: StorageBackend;
  protected epoch = 0;
  private count = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The backend's write lane, shared by every tier over the same backend object (write-lane.ts). */
  readonly lane: WriteLane;
  /** Batches taken at their flush's call while the lane was busy, waiting for their turn, oldest first. */
  private readonly queued: Array<Taken<Batch>> = [];
  /**
   * Batches joined to a flush group, waiting for its commit, oldest first (`runJoining`). When an earlier batch of
   * this tier fails for good after its retry alone (an append-log's numbers taken by another handle), they are put
   * back with it (`laterTaken`), so a retry still writes them after it (flush-group.ts, task 194).
   */
  private readonly joined: Array<Taken<Batch>> = [];
  /** The joined batch whose write step the group's commit is resuming: `laterTaken` takes only batches after it. */
  private resumed: Taken<Batch> | undefined;
  /** Batches taken so far (`Taken.seq`). */
  private takes = 0;
  /** This tier's latest batch write through the lane, until it settles: a flush taking nothing answers with it. */
  private lastWrite: Promise<void> | undefined;
  private closed = false;
  /** The close in progress: a flush() meanwhile joins it. */
  private closing: Promise<void> | undefined;
  /**
   * Writes offered so far, numbering them: a flush answers for the writes offered before its call (`refuse`). The
   * oldest write not yet taken by a flush, and the oldest of the batch being written (undefined: none).
   */
  private offered = 0;
  private oldestUntaken: number | undefined;
  private oldestTaken = 0;
  /** Refusals not yet reported, and those reported while a flush called before the report still runs. */
  private refusals: Refusal[] = [];
  /** Who hears refusals by key (refusal-watchers.ts), whoever flushes. */
  private readonly refusalWatchers = new RefusalWatchers();
  private flushCalls = 0;
  /**
   * The call numbers of the flushes (and close) not yet settled, oldest first. A Set: a store actor's turn may hold
   * thousands of flush() calls that settle together, and an array's splice made that quadratic (review s13a F4).
   */
  private readonly running = new Set<number>();
  /** The latest flush() call while its answer is due (see `flush`); `reports` counts refusal reports (`settled`). */
  private lastFlush: FlushAsk | undefined;
  private reports = 0;
  private deferredFlush = false;
  /**
   * Set by a store actor's group commit (src/engine/group-commit.ts): triggered flushes wait for its
   * `flushDeferred()` so one turn's writes commit together. Inline tiers never set it.
   */
  deferTriggeredFlushes = false;
  /**
   * The store actor's flush group: it keeps the writes of the store's tiers in call order (a held triggered flush's
   * writes are owed from their call), and where it `joins`, `flushJoining` adds its batch to it. Anything else that
   * writes to the backend commits it first (`exclusive`), so nothing lands before a batch taken earlier. Inline
   * tiers have none.
   */
  flushGroup: FlushGroup | undefined;
  /** Set while a joining flush's batch is prepared: its write step yields a JoinedWrite instead of writing. */
  private joinTo: FlushGroup | undefined;
  /**
   * Set by a store actor: runs a timer's flush (debounce, retry) in its mailbox, after the ops of the messages it
   * took before the timer fired. The main thread called those before the timer fired, and while the actor awaits
   * one of them (a delete, a load), a flush started by the timer would take and write its batch ahead of the writes
   * called earlier (docs/design.md §3.30). Inline tiers have none: the calls before a timer ran before it fires.
   */
  timedFlushes: ((flush: () => void) => void) | undefined;
  /** A timer fired and its flush waits in `timedFlushes`; a flush that takes the batch first makes it moot. */
  private timedDue = false;
  /** Set while a unit of writes is taken (`asOneUnit`): the flush they trigger waits for the last of them. */
  private inUnit = false;
  /** The value rule of the tier's built-in codec, checked when a write is accepted (inline tiers: see value-check.ts). */
  valueCheck: ValueCheck | undefined;
  /** Receives every successful flush's duration (engine stats); `joined`: its batch committed in a flush group. */
  flushObserver: ((ms: number, joined: boolean) => void) | undefined;
  /** Receives the ops of every committed write (the actor counts WAL frames for auto-compaction). */
  writeObserver: ((ops: readonly BatchOp[]) => void) | undefined;
  /** Hears every flush attempt's outcome and the failing/recovered transitions (the actor's shared counters). */
  attemptObserver: ((ok: boolean, failingChanged: boolean) => void) | undefined;
  /** Receives the weight of accepted writes once they are committed or dropped (the actor acknowledges them). */
  settleObserver: ((bytes: number, entries: number) => void) | undefined;
  /**
   * Whether put/append weigh accepted writes themselves (inline tiers). The actor weighs them by the main thread's
   * figures instead (`weigh`), so what it acknowledges is exactly what the main thread counted.
   */
  selfWeighing = true;
  /** This tier's flush() calls whose answer is still due (flushCallWeight). */
  private flushesDue = 0;
  /** Bound on `heldBytes` past which writes are refused with StorageError("backpressure"); undefined: unbounded. */
  maxPendingBytes: number | undefined;
  private readonly onError: TierErrorHandler | undefined;
  private readonly onRecovered: (() => void) | undefined;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  /** Failing since a flush failed, until one succeeds: automatic retries back off, onError heard it once. */
  private failing = false;
  private retryDelay = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** The backend's final error once a failed write found it (StorageBackend.finalError): reported, no more retries. */
  private finalError: Error | undefined;
  private finalReported = false;
  /** Weight of accepted writes not yet committed or dropped (pending or in flight), and of those not yet taken. */
  private heldBytes = 0;
  private untakenBytes = 0;
  private untakenEntries = 0;
  /**
   * Of the batch whose write is failing: the weight and count of its records the subclass did not put back
   * (`releaseTaken`): `fail` restores only the rest as pending and settles these (review r278 F1).
   */
  private releasedBytes = 0;
  private releasedEntries = 0;
  private committedEntries = 0;
  /** Each waiter's `need`: the weight it passed to drained(), else the write refused last when it called. */
  private drainWaiters: Array<{ need: number; resolve: () => void }> = [];
  /** Refused writes waiting for room, first come first served (room.ts). */
  private readonly room = new RoomQueue(() => this.maxPendingBytes);
  /** Wakes the waiters when a reservation lapses (nothing else may change while its writer is gone). */
  private lapseTimer: ReturnType<typeof setTimeout> | undefined;
  readonly stats: TierStats = {
    pendingEntries: 0,
    flushes: 0,
    failedFlushes: 0,
    flushAttempts: 0,
    bytesWritten: 0,
    writes: 0,
    lastFlushMs: undefined,
    lastError: undefined,
  };

  /** Arguments are validated by the public constructors (inline factories, engine proxies) before they get here. */
  constructor(backend: StorageBackend, opts: TierCommonOptions, defaultName: string) {
    this.backend = backend;
    this.lane = writeLaneOf(backend);
    this.name = opts.name ?? backend.name ?? defaultName;
    this.debounceMs = opts.debounceMs;
    this.compactEvery = opts.compactEvery;
    this.onError = opts.onError;
    this.onRecovered = opts.onRecovered;
    this.retryInitialMs = opts.retry?.initialMs ?? DEFAULT_RETRY.initialMs;
    this.retryMaxMs = opts.retry?.maxMs ?? DEFAULT_RETRY.maxMs;
    const max = opts.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
    this.maxPendingBytes = max === Number.POSITIVE_INFINITY ? undefined : max;
  }

  /**
   * Refuses a write weighing `weight` (replacing a pending one weighing `freed`) unless it fits beside the bytes
   * held (accepted, not yet committed) and the writes refused before it that wait for room (room.ts: first come,
   * first served). A refused write is NOT accepted, and `drained(weight)` says when to write it again. Memory stays
   * bounded while the disk is slow or full.
   */
  assertRoom(weight: number, freed = 0): void {
    if (this.room.admit(this.heldBytes, weight, freed)) return;
    this.closeWindowWhenFull();
    throw backpressureError(this.name, this.heldBytes, this.maxPendingBytes as number, weight);
  }

  /**
   * A full bound closes the debounce window now: a refused write's drained() must not wait for the window to close
   * by itself (review r249 D1: a window past the timer range has no timer, and nothing drained without flush()).
   */
  private closeWindowWhenFull(): void {
    if (this.failing || this.closed || this.oldestUntaken === undefined || !this.debounceMs) return;
    this.clearTimer();
    this.flushOnTimer();
  }

  /**
   * Resolves once a write weighing `weight` (the refusal's `details.weight`; default: the write refused last on this
   * tier) would be taken, at once when it already would; with no write refused, once at most half the bound is held.
   */
  drained(weight?: number): Promise<void> {
    const need = weight ?? this.room.refusedWeight;
    // A backend that writes no more: nothing will drain; the next write throws its error (assertWritable).
    if (this.room.ready(this.heldBytes, need) || this.writesEnded() !== undefined) return Promise.resolve();
    return new Promise((resolve) => {
      this.drainWaiters.push({ need, resolve });
      this.armLapse();
    });
  }

  private wakeDrained(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = waiters.filter((w) => !this.room.ready(this.heldBytes, w.need));
    for (const w of waiters) if (!this.drainWaiters.includes(w)) w.resolve();
    this.armLapse();
  }

  /** While someone waits, a timer for the next reservation that lapses (its writer may never come back). */
  private armLapse(): void {
    if (this.lapseTimer !== undefined || this.drainWaiters.length === 0) return;
    const at = this.room.nextLapseAt();
    if (at === undefined) return;
    this.lapseTimer = setTimeout(() => {
      this.lapseTimer = undefined;
      this.wakeDrained();
    }, Math.max(0, at - Date.now()) + 1);
  }

  /**
   * Room for a delete of `keys` (a record with no value each) while it waits behind a flush: un-awaited deletes
   * queued without limit before. Returns the weight to hold (0: this tier does not weigh, e.g. in an actor).
   */
  protected deleteRoom(keys: readonly string[]): number {
    if (!this.selfWeighing) return 0;
    let weight = 0;
    for (const key of keys) weight += recordWeight(key, 0);
    this.assertRoom(weight);
    return weight;
  }

  /** Holds `weight` against the bound until `done` settles (a queued delete), then wakes drained() waiters. */
  protected holdUntil<R>(weight: number, done: Promise<R>): Promise<R> {
    if (weight === 0) return done;
    this.heldBytes += weight;
    const release = (): void => {
      this.heldBytes -= weight;
      if (this.drainWaiters.length > 0) this.wakeDrained();
    };
    done.then(release, release);
    return done;
  }

  /** Adds accepted writes' weight (the actor: the main thread's figures for one op). */
  weigh(bytes: number, entries: number): void {
    this.heldBytes += bytes;
    this.untakenBytes += bytes;
    this.untakenEntries += entries;
  }

  /**
   * A value's size before encoding: exact for bytes, else the size its value check estimated while walking it,
   * else the tier's average (`entryEstimate`: a codec without a value rule, a vouched frame).
   */
  protected weightOf(value: unknown, size: number): number {
    if (value instanceof Uint8Array) return value.byteLength;
    if (value instanceof Encoded) return value.bytes.byteLength;
    return size >= 0 ? size : this.entryEstimate();
  }

  /** Bytes committed per accepted entry so far (1 KiB before the first commit), never under MIN_VALUE_ESTIMATE. */
  protected entryEstimate(): number {
    if (this.committedEntries === 0) return UNKNOWN_ENTRY_BYTES;
    return Math.max(MIN_VALUE_ESTIMATE, Math.ceil(this.stats.bytesWritten / this.committedEntries));
  }

  private settle(bytes: number, entries: number): void {
    if (bytes === 0 && entries === 0) return;
    this.heldBytes -= bytes;
    this.settleObserver?.(bytes, entries);
    if (this.drainWaiters.length > 0) this.wakeDrained();
  }

  /** An accepted write a newer one replaced before any flush took it (of the same key), or one dropped unwritten: it holds nothing now. */
  protected superseded(bytes: number): void {
    this.untakenBytes -= bytes;
    this.untakenEntries -= 1;
    this.settle(bytes, 1);
  }

  /**
   * For a subclass putting a failed batch back: of the records taken (its batch and the later ones `laterTaken`
   * returned), those weighing `bytes` in `entries` records are not put back (replaced by a newer save, refused by the
   * codec, discarded or stale): the failing write settles them instead of holding them as pending again.
   */
  protected releaseTaken(bytes: number, entries: number): void {
    this.releasedBytes += bytes;
    this.releasedEntries += entries;
  }

  /** Everything not yet taken by a flush is settled (nothing pending any more: rolled back or taken elsewhere). */
  private settleUntaken(): void {
    const b = this.untakenBytes;
    const n = this.untakenEntries;
    this.untakenBytes = 0;
    this.untakenEntries = 0;
    this.settle(b, n);
  }

  /** Moves everything pending into a batch (or undefined when nothing is pending). */
  protected abstract takePending(): Batch | undefined;
  /** Writes a taken batch. Must check `this.epoch !== epoch` before each backend write and, on failure, restore the batch when the epoch is unchanged. */
  protected abstract writeBatch(batch: Batch, epoch: number): Step;
  /** Drops everything pending (rollback). */
  protected abstract clearPending(): void;

  /**
   * A key the backend could never store is refused when the write is accepted, alone (never poisoning a flush).
   * Only the backend's own rule: the shared key rule ran once at the public entry (arguments.ts), inline or in the
   * main-thread proxy whose ops an actor applies, and the backend's write/batch checks again on its side.
   */
  protected checkKey(key: string): void {
    this.backend.checkKey?.(key);
  }

  /**
   * Whether a record write may be buffered, and its weight (`recordWeight`): throws when the tier is not writable,
   * the backend can never store `key`, or the write does not fit beside what is held (`freed`: the weight of the
   * pending write it replaces); false when `valueCheck` refuses `value` (reported). Room is checked before the
   * value's refusal is reported, so a full tier answers backpressure for any value, as before it weighed values.
   */
  protected acceptable(key: string, value: unknown, freed: number): number | false {
    this.assertWritable();
    this.checkKey(key);
    const size = measure(this.valueCheck, value);
    // A refused value is not weighed: weightOf's instanceof runs a Proxy's getPrototypeOf trap (a revoked one throws).
    const weight = recordWeight(key, size instanceof Error ? 0 : this.weightOf(value, size));
    this.assertRoom(weight, freed);
    if (size instanceof Error) {
      this.refuse(size, undefined, key);
      return false;
    }
    return weight;
  }

  /** Read paths report backend failures typed, like flushes do (custom backends throw raw OS errors). */
  protected async guard<R>(what: string, fn: () => Promise<R> | R): Promise<R> {
    try {
      return await fn();
    } catch (err) {
      throw asStorageError(err, `${what} in storage tier "${this.name}" failed`, { tier: this.name });
    }
  }

  /** Once close() began the tier takes nothing more: every call throws closed (never accepted, then dropped). */
  assertOpen(): void {
    if (this.closed || this.closing) throw this.closedError();
  }

  /** A write through a read-only backend is refused when offered, synchronously: never buffered to fail a flush. */
  assertWritable(): void {
    this.assertOpen();
    if (this.backend.readOnly === true) throw readOnlyError(this.backend.name);
    const ended = this.writesEnded();
    if (ended !== undefined) throw ended;
  }

  /** The backend's final error (a lost lease's not-owner), once it has one: no write of this tier can land. */
  private writesEnded(): Error | undefined {
    const ended = this.finalError ?? this.backend.finalError;
    if (ended !== undefined) noteFinalError(ended); // whatever its code, a waiter's verdict knows it (write-verdict.ts)
    return ended;
  }

  private closedError(): StorageError {
    const state = this.closed ? "closed" : "closing";
    return new StorageError("closed", `storage tier "${this.name}" is ${state}`, { tier: this.name });
  }

  /**
   * Call after `k` writes weighing `bytes` were accepted into pending (`write`: the call's number, when the tier
   * took one to keep with them): applies the compactEvery / sync-through / debounce rule. While failing, the retry
   * timer flushes instead (a save does not retry at once).
   */
  protected accepted(k: number, bytes: number, write = this.nextWrite()): void {
    this.oldestUntaken ??= write;
    if (this.selfWeighing) this.weigh(bytes, k);
    const prev = this.count;
    this.count += k;
    if (this.failing) return;
    const every = this.compactEvery;
    const crossed = every !== undefined && Math.floor(prev / every) !== Math.floor(this.count / every);
    if (crossed || !this.debounceMs) {
      if (this.deferTriggeredFlushes || this.inUnit) {
        this.deferredFlush = true;
        this.flushGroup?.owes(this as TierCore<unknown>);
      } else this.flushInBackground();
      return;
    }
    // A window past Node's timer range (~24.8 days) ran after 1 ms: it means no timer, as the engine's delays do
    // (timerBound); the writes wait for flush(), compactEvery or close().
    const windowMs = timerBound(this.debounceMs);
    if (this.timer === undefined && windowMs !== Number.POSITIVE_INFINITY) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flushOnTimer();
      }, windowMs);
    }
  }

  /**
   * Takes a unit of writes (`take`: KvStorageTier.saveMany), holding the flush they trigger (sync-through,
   * compactEvery) until the last is taken, so one flush takes them all: one backend batch (one SQLite transaction),
   * never a prefix of the unit. Room for the whole unit is the caller's to find first. A flush a store actor's
   * group commit holds stays held (its turn end runs it).
   */
  protected asOneUnit(take: () => void): void {
    if (this.inUnit) return take();
    this.inUnit = true;
    try {
      take();
    } finally {
      this.inUnit = false;
      if (!this.deferTriggeredFlushes) this.flushDeferred();
    }
  }

  /**
   * A triggered flush held back by `deferTriggeredFlushes` runs now (group commit's turn end or a barrier, or another
   * tier of the store taking a batch after these writes): its batch joins the store's flush group where it can, so
   * it commits with the run's other writes, in call order.
   */
  flushDeferred(): void {
    if (!this.deferredFlush) return;
    this.deferredFlush = false;
    const group = this.joiningGroup();
    if (group === undefined) return this.flushInBackground();
    this.clearTimer();
    try {
      const r = this.runOnce(group);
      if (r) r.catch(noop); // reported through onError, as a background flush's
    } catch {
      // reported through onError; data stays pending
    }
  }

  /**
   * A write of another key is about to take a one-slot tier's slot (a snapshot tier's latest record): the older
   * record stays pending beside it (snapshot.ts `earlier`), and a triggered flush held for the older one, owed
   * since it was triggered, runs now, so it writes what it was triggered for, as an inline tier would have. The rule
   * lives here, beside the holding, so such a tier needs to say only that it displaces, not who holds flushes or why.
   */
  protected displacing(): void {
    this.flushDeferred();
  }

  /** A debounce or retry timer fired: its flush starts now, or in the actor's mailbox order (`timedFlushes`). */
  private flushOnTimer(): void {
    const later = this.timedFlushes;
    if (later === undefined) return this.flushInBackground();
    this.timedDue = true;
    later(() => {
      if (!this.timedDue || this.closed) return;
      this.timedDue = false;
      this.flushInBackground();
    });
  }

  private flushInBackground(): void {
    try {
      const r = this.flushNow();
      if (r) r.catch(noop); // already reported through onError
    } catch {
      // already reported through onError; data stays pending
    }
  }

  /**
   * Starts a flush now, behind the work of the backend's tiers already started (write-lane.ts). Sync when nothing
   * runs on the lane and the backend is sync.
   */
  protected flushNow(): void | Promise<void> {
    this.clearTimer();
    this.deferredFlush = false;
    // Batches taken earlier and writes owed (this tier's or another's of the store) land first.
    this.flushGroup?.commit();
    if (this.lane.busy) return this.flushQueued();
    const r = this.lane.run(() => this.runOnce());
    if (r) this.lastWrite = this.latest(r);
    return r;
  }

  /**
   * A flush called while work runs on the backend's lane (an asynchronous backend's write, a job's step): its batch
   * is taken now, at its call, and written in its place, so every write of the backend's tiers called later lands
   * after it, and the tier's writes called earlier before it (docs/design.md §3.30). Taken later, it would also take
   * writes made after another tier's flush queued meanwhile, and land them before that flush. Taking nothing, it
   * answers once the tier's batch queued or in flight is stored (its writes are there); when that one failed (its
   * batch put back), it flushes again then, its batch taken at that moment, behind the work queued by then.
   */
  private flushQueued(): void | Promise<void> {
    const owed = this.lastWrite;
    const taken = this.takeBatch();
    if (taken === undefined) return owed?.then(noop, () => this.flushNow());
    // Values left out for a queued delete (kv.ts leaveForDeletes) are this flush's too: it ran before this batch's
    // write, and when it failed they are owed, so the flush writes them then (review s15r2 D1).
    const left = owed !== undefined && this.pendingLeft();
    this.queued.push(taken);
    const r = this.lane.run(() => this.write(taken));
    if (r) this.lastWrite = this.latest(r);
    if (!left || !r) return r;
    return r.then(() => owed.then(noop, () => this.flushNow()));
  }

  /**
   * A delete queued on the lane (kv.ts) counts as the tier's latest write: values a flush taking its batch meanwhile
   * left pending for it (kv.ts `leaveForDeletes`) are owed once it ran, so such a flush answers when it settled, and
   * flushes again if it (or the write before it) failed, the values it was to drop back in the batch (review s15r2 D1).
   */
  protected queuedWrite(p: Promise<void>): void {
    const prev = this.lastWrite;
    const both =
      prev === undefined
        ? p
        : Promise.allSettled([prev, p]).then((rs) => {
            for (const r of rs) if (r.status === "rejected") throw r.reason;
          });
    this.lastWrite = this.latest(both);
  }

  /** The account (weight, entries) of the values the last `takePending` left pending: it stays untaken. */
  protected takeLeft(): { bytes: number; entries: number } {
    return NOTHING_LEFT;
  }

  /** Values still pending after `takePending` returned nothing (left for a queued delete): not settled yet. */
  protected pendingLeft(): boolean {
    return false;
  }

  /** A delete dropped pending values: once none is left, nothing will take them, so their account settles now. */
  protected droppedPending(): void {
    if (this.pendingLeft()) return;
    this.oldestUntaken = undefined;
    this.settleUntaken();
  }

  /** `p` as the tier's latest batch write until it settles. */
  private latest(p: Promise<void>): Promise<void> {
    const clear = (): void => {
      if (this.lastWrite === p) this.lastWrite = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  /**
   * Runs `task` after every flush already started by a tier over the backend; a flush asked for meanwhile (a
   * debounce or retry timer, a triggered flush) of any of them writes after it ends (its batch taken at its call).
   * A job in the store's actor commits this way (src/engine/jobs.ts). Not reentrant: a task that holds flushes
   * again over the same backend waits for itself. What `task` writes lands at this call's place on the lane: it
   * tells the tiers holding older put-back values of those keys with `lane.landedNow` (write-lane.ts).
   */
  async holdingFlushes<T>(task: () => Promise<T>): Promise<T> {
    let result: T | undefined;
    await this.exclusive(async () => {
      result = await task();
    });
    return result as T;
  }

  /**
   * Runs `task` after the backend work of every tier over the backend already started (sync when none runs), so
   * backend ops keep call order (write-lane.ts). A task must not wait for backend work of these tiers called after
   * it (it would wait for itself). `task` gets its landing number (`WriteLane.landing`: a delete reports it).
   */
  protected exclusive(task: (at: number) => void | Promise<void>): void | Promise<void> {
    // Batches taken earlier and writes owed (this tier's or another's of the store) land first.
    this.flushGroup?.commit();
    const at = this.lane.landing();
    // Its number is the lane's current one while it runs: a job's step reports its writes there (`landedNow`).
    return this.lane.run(() => task(at), at);
  }

  /**
   * Takes the pending batch and writes it (`group`: joins it to the group instead, see `flushJoining`, and
   * `answered` settles the joined flush's account as its batch finishes, when it returns a promise).
   */
  private runOnce(group?: FlushGroup, answered?: (failed: boolean) => void): void | Promise<void> {
    // Joining: writes another tier owes the store were made before this batch is taken (alone: `exclusive` took them).
    group?.taking(this as TierCore<unknown>);
    const taken = this.takeBatch();
    if (taken !== undefined) return this.write(taken, group, answered);
  }

  /** Takes the pending batch with its account (undefined: nothing pending). */
  private takeBatch(): Taken<Batch> | undefined {
    this.clearRetry();
    const batch = this.takePending();
    // Values left pending for a queued delete keep their account: they are still held, and owed if it fails.
    if (batch === undefined && this.pendingLeft()) {
      this.takeLeft();
      return undefined;
    }
    const oldest = this.oldestUntaken ?? this.offered;
    this.oldestUntaken = undefined;
    if (batch === undefined) {
      this.settleUntaken();
      // Nothing left to write (rolled back), unless a batch of this tier still waits on the lane or runs.
      if (this.failing && this.lastWrite === undefined) this.recovered();
      return undefined;
    }
    // Values left pending for a queued delete keep their account (held until they are taken or dropped).
    const left = this.takeLeft();
    const bytes = Math.max(0, this.untakenBytes - left.bytes);
    const entries = Math.max(0, this.untakenEntries - left.entries);
    const taken: Taken<Batch> = { batch, seq: ++this.takes, oldest, bytes, entries, epoch: this.epoch, absorbed: false, error: undefined };
    this.untakenBytes -= bytes;
    this.untakenEntries -= entries;
    return taken;
  }

  /**
   * For a subclass putting a failed batch back (its epoch unchanged): the batches of this tier taken after it and
   * waiting on the lane, oldest first, each with its oldest write's number. They fail with it unwritten (their
   * flushes reject with its error): the caller puts them back first, newest first, each under what is newer, then
   * the failed one under them, so a retry writes them in call order and an older value never lands over a newer one.
   */
  protected laterTaken(): Array<{ readonly batch: Batch; readonly oldest: number }> {
    const later: Array<{ batch: Batch; oldest: number }> = [];
    // Joined batches wait in the group only while nothing runs on the lane (core `joiningGroup`): never both kinds.
    const after = this.resumed?.seq ?? 0;
    for (const t of [...this.queued, ...this.joined]) {
      if (t.absorbed || t.epoch !== this.epoch || t.seq <= after) continue;
      t.absorbed = true;
      this.untakenBytes += t.bytes;
      this.untakenEntries += t.entries;
      this.oldestUntaken = Math.min(t.oldest, this.oldestUntaken ?? t.oldest);
      later.push({ batch: t.batch, oldest: t.oldest });
    }
    return later;
  }

  /** Writes a taken batch (see `runOnce`); a batch an earlier failed one put back fails unwritten with its error. */
  private write(taken: Taken<Batch>, group?: FlushGroup, answered?: (failed: boolean) => void): void | Promise<void> {
    if (this.queued[0] === taken) this.queued.shift();
    if (taken.absorbed) {
      this.stats.failedFlushes++;
      throw asStorageError(taken.error, `flush of storage tier "${this.name}" failed`, { tier: this.name });
    }
    const { batch, oldest, bytes: takenBytes, entries: takenEntries, epoch } = taken;
    if (epoch !== this.epoch) {
      // Rolled back while it waited on the lane: it writes nothing (nor encodes, so refuses nothing), as a flush
      // started before a rollback (docs/api.md rollback).
      this.settle(takenBytes, takenEntries);
      return;
    }
    this.oldestTaken = oldest;
    const started = performance.now();
    this.stats.flushAttempts++;
    const done = (): void => {
      const ms = performance.now() - started;
      this.stats.flushes++;
      this.stats.lastFlushMs = ms;
      this.committedEntries += takenEntries;
      this.settle(takenBytes, takenEntries);
      this.flushObserver?.(ms, group !== undefined);
      if (this.failing) this.recovered();
      else this.attemptObserver?.(true, false);
    };
    const fail = (err: unknown): never => {
      const e = asStorageError(err, `flush of storage tier "${this.name}" failed`, { tier: this.name });
      this.stats.failedFlushes++;
      for (const t of this.queued) if (t.absorbed && t.error === undefined) t.error = e; // they fail with it
      for (const t of this.joined) if (t.absorbed && t.error === undefined) t.error = e;
      this.stats.lastError = describeError(e);
      // The batch is pending again (subclasses restore it) unless a rollback discarded it meanwhile; what the
      // subclass did not put back settles now (`releaseTaken`), never held until a later flush succeeds.
      const releasedBytes = this.releasedBytes;
      const releasedEntries = this.releasedEntries;
      this.releasedBytes = 0;
      this.releasedEntries = 0;
      if (this.epoch === epoch) {
        this.untakenBytes += takenBytes - releasedBytes;
        this.untakenEntries += takenEntries - releasedEntries;
        this.oldestUntaken = Math.min(oldest, this.oldestUntaken ?? oldest);
        this.settle(releasedBytes, releasedEntries);
      } else this.settle(takenBytes, takenEntries);
      const entering = !this.failing;
      this.failing = true;
      this.attemptObserver?.(false, entering);
      if (entering) this.report(e); // once per failing spell, not per attempt
      if (this.endWrites(e)) throw e;
      this.scheduleRetry();
      throw e;
    };
    let r: void | Promise<void>;
    try {
      const step = this.writeBatch(batch, epoch);
      if (group !== undefined) return this.runJoining(taken, step, group, done, fail, answered);
      r = runMaybeAsync(step);
    } catch (err) {
      return fail(err);
    }
    if (isPromiseLike(r)) return r.then(done, fail);
    done();
  }

  /**
   * Runs a batch's write step up to its write, which joins `group` instead of running: the step resumes when the
   * group committed (or failed, its error thrown at the write, so the step puts its batch back as a failed write
   * does). Synchronous when there is nothing to write. A step that waits on the backend before its write (not on the
   * synchronous backends groups are for) writes alone after the group committed.
   */
  private runJoining(
    taken: Taken<Batch>,
    step: Step,
    group: FlushGroup,
    done: () => void,
    fail: (err: unknown) => never,
    answered: (failed: boolean) => void = noop,
  ): void | Promise<void> {
    this.joinTo = group;
    let r: IteratorResult<unknown, void>;
    try {
      r = step.next();
      while (!r.done && !(r.value instanceof JoinedWrite) && !isPromiseLike(r.value)) r = step.next(r.value);
    } finally {
      this.joinTo = undefined;
    }
    if (r.done) return done();
    if (!(r.value instanceof JoinedWrite)) {
      group.commit();
      return continueAsync(step, r.value as PromiseLike<unknown>)
        .then(done, fail)
        .then(
          () => answered(false),
          (err: unknown) => {
            answered(true);
            throw err;
          },
        );
    }
    const { ops, expects } = r.value;
    this.joined.push(taken);
    return new Promise<void>((resolve, reject) => {
      // Settled inside the group's commit: the batch is back in pending and its account restored before the actor's
      // next op (a flush taking it again, a rollback discarding it) sees the tier. The flush's account settles here
      // too, not a microtask later: in taking order, before anything after the commit (a flush committing alone,
      // compact) settles its own (review s14c D1). Returns what the group needs for this tier's later batches: the
      // error when the batch is not stored (put back), undefined once it is.
      group.join(
        ops,
        (err) => {
          const at = this.joined.indexOf(taken);
          if (at >= 0) this.joined.splice(at, 1);
          if (taken.absorbed) {
            // An earlier batch of this tier failed for good after its retry alone, and put this one back under it
            // (`laterTaken`): unwritten, its account restored there. Its step never resumes (it would put it back again).
            step.return(undefined);
            this.stats.failedFlushes++;
            const e = asStorageError(taken.error ?? err, `flush of storage tier "${this.name}" failed`, { tier: this.name });
            answered(true);
            reject(e);
            return e;
          }
          const resumed = this.resumed;
          this.resumed = taken;
          try {
            let s = err === undefined ? step.next() : step.throw(err);
            while (!s.done) s = step.next(s.value); // after its write a step only records the outcome
          } catch (e) {
            this.resumed = resumed;
            try {
              fail(e);
            } catch (failed) {
              answered(true);
              reject(failed);
              return failed;
            }
            return e;
          }
          this.resumed = resumed;
          try {
            done();
          } catch (e) {
            answered(true);
            reject(e); // a throwing observer fails this flush's answer, never the other batches of the group
            return undefined; // stored all the same
          }
          try {
            answered(false); // throws the refusal this flush answers for
            resolve();
          } catch (e) {
            reject(e);
          }
          return undefined;
        },
        this,
        expects,
      );
    });
  }

  /**
   * The write of a batch's ops (subclasses' `writeBatch` write through it): while the batch joins a flush group,
   * the ops are handed to the group instead (`runJoining`); else they go to the backend (write-ops.ts).
   */
  protected *writeOps(ops: readonly BatchOp[], cancelled: () => boolean, expects?: readonly ExpectedValue[]): Step {
    if (this.joinTo !== undefined && ops.length > 0) {
      if (cancelled()) return;
      yield new JoinedWrite(ops, expects);
      return;
    }
    yield* writeOps(this.backend, ops, cancelled);
  }

  private recovered(): void {
    this.failing = false;
    this.retryDelay = 0;
    this.attemptObserver?.(true, true);
    try {
      this.onRecovered?.();
    } catch {
      // a throwing handler must not break the flush chain
    }
  }

  /**
   * After a failed write (`e`): true when the backend writes no more (its `finalError`, e.g. a PostgreSQL writer's
   * lost lease). onError hears that error once (besides `e` when the spell began with another), retries stop, and
   * drained() waiters resolve: the next write throws it (docs/design.md §3.20). The pending data stays unwritten.
   */
  private endWrites(e: Error): boolean {
    if (this.finalError !== undefined) return true;
    const final = this.backend.finalError;
    if (final === undefined) return false;
    this.finalError = final;
    noteFinalError(final);
    this.clearRetry();
    this.report(final); // once (report), also when the spell began with another error
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w.resolve();
    return true;
  }

  /** Exponential backoff with jitter (half to full delay) between automatic retries, capped at retry.maxMs. */
  private scheduleRetry(): void {
    if (this.closed || this.retryTimer !== undefined || this.finalError !== undefined) return;
    this.retryDelay = this.retryDelay === 0 ? this.retryInitialMs : Math.min(this.retryMaxMs, this.retryDelay * 2);
    // At most Node's timer range (timerBound): beyond it setTimeout fires after 1 ms, a retry loop against a sick
    // store. Unlike a debounce window, a retry must still come, so a longer back-off waits the longest a timer can
    // (~24.8 days); flush() retries at once whatever the wait.
    const wait = Math.min(this.retryDelay * (0.5 + Math.random() / 2), MAX_TIMER_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.flushOnTimer();
    }, wait);
  }

  private clearRetry(): void {
    if (this.retryTimer !== undefined) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
  }

  /** Numbers the write being offered now. */
  protected nextWrite(): number {
    return ++this.offered;
  }

  /** How many writes were offered so far: a write numbered above it was offered later. */
  protected get writesOffered(): number {
    return this.offered;
  }

  /** The number of the oldest write in the batch being written: a refusal found in it is dated no later. */
  protected get oldestInBatch(): number {
    return this.oldestTaken;
  }

  /**
   * A write this tier accepted can never be stored (the codec refuses its value, the backend its key): it is
   * dropped, onError hears it now, and flush() rejects with it: every flush called after the write was offered and
   * before a flush reported it, a background one nobody awaits (sync-through, debounce timer, compactEvery)
   * included, so no flush resolves while a value offered before its call was not stored. A flush called before
   * the write does not answer for it. `write`: the refused write's number when it was accepted earlier (refused in
   * a batch: its own number, else the batch's oldest); by default a write offered now. `key`: the refused write's
   * key, for the watchers of its prefix (undefined: unknown, every watcher hears it).
   */
  refuse(err: Error, write = this.nextWrite(), key?: string): void {
    this.refuseHeard(err, write);
    this.refusalWatchers.notify(key, err);
  }

  /** `refuse`, for a refusal its watchers already heard (a store actor applying a main-thread proxy's refusal). */
  refuseHeard(err: Error, write = this.nextWrite()): void {
    const last = this.refusals[this.refusals.length - 1];
    if (this.refusals.length < MAX_REFUSAL_RECORDS || last === undefined) {
      this.refusals.push({ error: err, write, newest: write, reportedAt: undefined });
    } else {
      // Bounded memory under a flood of refusals: merged on the side of reporting more, never less (a flush that
      // answers for its oldest write rejects; it counts as reported once one answered for its newest).
      last.write = Math.min(last.write, write);
      last.newest = Math.max(last.newest, write);
      last.reportedAt = undefined;
    }
    this.stats.lastError = describeError(err);
    this.report(err);
  }

  /** Hears every refusal of a write whose key starts with `prefix` (refusal-watchers.ts); returns its removal. */
  watchRefusals(prefix: string, listener: RefusalListener): () => void {
    return this.refusalWatchers.add(prefix, listener);
  }

  /** Opens a flush's account: the writes it answers for are those offered before now. Close it with `settled`. */
  private flushCall(): FlushCall {
    const call = ++this.flushCalls;
    this.running.add(call);
    return { asOf: this.offered, call };
  }

  /**
   * Ends a flush's account, throwing the refusal it answers for: a write offered before its call, refused and not
   * reported before the call (concurrent flushes alike reject with it; later ones do not). A flush that `failed`
   * rejects with its own error: its refusals stay unreported, for the next flush.
   */
  private settled(f: FlushCall, failed = false, reportedAt: number = this.flushCalls): void {
    const answerable = (r: Refusal): boolean => r.write <= f.asOf && (r.reportedAt === undefined || r.reportedAt >= f.call);
    const found = failed ? undefined : this.refusals.find(answerable);
    if (found !== undefined) {
      this.reports++;
      for (const r of this.refusals) if (r.newest <= f.asOf) r.reportedAt ??= reportedAt;
    }
    // A reported refusal matters only to flushes called before the report: once none of those runs, it is gone.
    this.running.delete(f.call);
    if (this.refusals.length > 0) {
      const oldest: number = this.running.values().next().value ?? Number.POSITIVE_INFINITY;
      this.refusals = this.refusals.filter((r) => r.reportedAt === undefined || r.reportedAt >= oldest);
    }
    if (found !== undefined) throw markRefusalReport(found.error);
  }

  protected report(err: Error): void {
    if (err === this.writesEnded()) {
      // Once: writes offered after it (an actor applying ones posted before the main thread heard) throw it too.
      if (this.finalReported) return;
      this.finalReported = true;
    }
    if (!this.onError) return;
    try {
      this.onError(err);
    } catch {
      // a throwing error handler must not break the flush chain
    }
  }

  /** Counts committed backend ops for stats and observers. */
  protected committed(ops: readonly BatchOp[]): void {
    for (const op of ops) if (op.op === "put") this.stats.bytesWritten += op.value.byteLength;
    this.stats.writes += ops.length;
    this.writeObserver?.(ops);
  }

  flush(): Promise<void> {
    // Everything accepted before this call is in the close's drain: it settles as that does.
    if (this.closing) return this.closing;
    if (this.closed) return handled(Promise.reject(this.closedError()));
    // Nothing offered (no write, no refusal) and nothing reported since the previous call, whose answer is due: this
    // one answers exactly as that one, so it adds no work (review s15c D2: against a stuck store each call chained
    // promises and an account, ~1.1 KB, without bound). It shares that call's answer while it waits to start, else
    // ONE next flush started once it settled (`nextFlush`).
    const last = this.lastFlush;
    if (last !== undefined && last.asOf === this.offered && last.reports === this.reports) return last.waiting ? last.promise : this.nextFlush(last);
    return this.answering(() => this.flushNow());
  }

  /**
   * The flush that calls made while `last` runs share: its account opened now (it answers for the writes offered
   * before now, as a flush called now). It waits for `last`, whose writes are its writes: stored (`last` resolved,
   * or reported a refusal, the rest stored), it only settles its account; failed after the calls, it retries, as a
   * flush called then (its batch taken then, behind the backend work queued by then, as `flushQueued` retries).
   */
  private nextFlush(last: FlushAsk): Promise<void> {
    const call = this.flushCall();
    const next: FlushAsk = { promise: Promise.resolve(), asOf: call.asOf, reports: this.reports, waiting: true };
    const retry = (err: unknown): void | Promise<void> => {
      if (isRefusalReport(err)) return;
      next.waiting = false;
      return this.flushNow();
    };
    const failed = (err: unknown): never => {
      this.settled(call, true);
      throw err;
    };
    next.promise = handled(last.promise.then(noop, retry).then(() => this.settled(call), failed));
    this.keepLast(next);
    return next.promise;
  }

  /** `ask` is the latest flush() call until it settles. */
  private keepLast(ask: FlushAsk): void {
    this.lastFlush = ask;
    const clear = (): void => {
      if (this.lastFlush === ask) this.lastFlush = undefined;
    };
    ask.promise.then(clear, clear);
  }

  /** A flush's answer: opens its account, starts it, and settles the account as it ends. */
  private answering(start: () => void | Promise<void>): Promise<void> {
    const reports = this.reports;
    const call = this.flushCall();
    let r: void | Promise<void>;
    try {
      r = start();
    } catch (err) {
      this.settled(call, true);
      return handled(Promise.reject(err));
    }
    if (r) {
      const failed = (err: unknown): never => {
        this.settled(call, true);
        throw err;
      };
      // A flush left waiting behind another counts against the bound until it settles (flushCallWeight, design
      // §3.19): against a stuck backend each save + flush pair held ~2.3 KB uncounted (50,000 pairs under 4 MiB:
      // +116 MB of heap).
      const settling = handled(r.then(() => this.settled(call), failed));
      const weight = flushCallWeight(this.flushesDue++);
      const answered = (): void => {
        this.flushesDue--;
      };
      settling.then(answered, answered);
      const promise = this.selfWeighing ? this.holdUntil(weight, settling) : settling;
      this.keepLast({ promise, asOf: call.asOf, reports, waiting: false });
      return promise;
    }
    try {
      this.settled(call);
      return Promise.resolve();
    } catch (err) {
      return handled(Promise.reject(err));
    }
  }

  /**
   * `flush()` whose batch, taken now as a flush takes it, joins the store actor's flush group (`flushGroup`) instead
   * of committing alone: the group commits the batches of one run over the actor's messages as one transaction, in
   * the order they were taken, and each flush answers as its own commit would (docs/design.md §3.30). A tier whose
   * batch depends on what is stored, without a group, or with a flush in flight flushes alone.
   */
  flushJoining(): Promise<void> {
    const group = this.joiningGroup();
    if (group === undefined) return this.flush();
    // A batch of this tier waiting in the group (an earlier flush's, a held triggered flush's) holds writes offered
    // before this call: this flush answers for them.
    const waiting = group.holds(this);
    const call = this.flushCall();
    // Settled as its batch finishes in the group's commit, in taking order; the refusals it reports count as reported
    // at its call (as when it committed at once), so a flush called after it does not answer for them.
    const answered = (failed: boolean): void => this.settled(call, failed, call.call);
    this.clearTimer();
    this.deferredFlush = false;
    let r: void | Promise<void>;
    try {
      r = this.runOnce(group, answered);
    } catch (err) {
      this.settled(call, true);
      return handled(Promise.reject(err));
    }
    if (r) return handled(r);
    if (waiting) return this.answeringAfter(group, answered);
    try {
      this.settled(call);
      return Promise.resolve();
    } catch (err) {
      return handled(Promise.reject(err));
    }
  }

  /**
   * A joining flush that took nothing while a batch of this tier waits in `group` (an earlier flush's, a triggered
   * one's): it joins as an empty member, so it settles in taking order after that batch and fails with it (review
   * s14c D1: it resolved at once, before the batch was stored, and even when the batch failed).
   */
  private answeringAfter(group: FlushGroup, answered: (failed: boolean) => void): Promise<void> {
    return handled(
      new Promise<void>((resolve, reject) => {
        group.join(
          [],
          (err) => {
            if (err !== undefined) {
              answered(true);
              reject(asStorageError(err, `flush of storage tier "${this.name}" failed`, { tier: this.name }));
              return err;
            }
            try {
              answered(false);
              resolve();
            } catch (e) {
              reject(e);
            }
            return undefined;
          },
          this,
        );
      }),
    );
  }

  /**
   * The flush group a batch taken now may join, if any (a tier closing, or while work runs on the backend's lane,
   * flushes alone: a batch joined now would commit ahead of that work).
   */
  private joiningGroup(): FlushGroup | undefined {
    const group = this.flushGroup;
    if (group === undefined || !group.joins || this.closing || this.closed || this.lane.busy || !this.joinable()) return undefined;
    return group;
  }

  /** Whether the batch being written joins a flush group (its write step yields its ops to the group). */
  protected get joining(): FlushGroup | undefined {
    return this.joinTo;
  }

  /** Whether a batch's ops depend only on the batch (not on what is stored), so it may join a flush group. */
  protected joinable(): boolean {
    return true;
  }

  /**
   * Writes what was accepted, after the flushes already started, as a background flush does: rejects only when
   * writing failed. Refusals stay for the flush() calls that answer for them: a job that needs the store's writes
   * durable (a compaction in the store's actor) must not take the report away from their writer.
   */
  async writePending(): Promise<void> {
    if (this.closing) {
      // The close drains what was accepted: its refusal is its caller's to hear, a failed write is everyone's.
      await this.closing.catch((err: unknown) => {
        if (!isPermanent(err) && !isRefusalReport(err)) throw err;
      });
      return;
    }
    this.assertOpen();
    await this.flushNow();
  }

  rollback(): void {
    this.assertOpen();
    this.epoch++;
    this.clearTimer();
    this.clearPending();
    this.oldestUntaken = undefined;
    this.settleUntaken();
  }

  async compact(): Promise<void> {
    this.assertWritable();
    await this.flush();
  }

  /** Refuses new work at once, drains what was accepted, then closes. Idempotent; concurrent calls share one close. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.closing) return this.closing;
    const p = handled(this.closeOnce());
    this.closing = p;
    // A failed write leaves the tier open, its data pending, for a retry (unless the backend writes no more).
    p.catch(() => {
      if (this.closing === p) this.closing = undefined;
    });
    return p;
  }

  private async closeOnce(): Promise<void> {
    const call = this.flushCall();
    let ended: Error | undefined;
    try {
      await this.flushNow();
    } catch (err) {
      this.settled(call, true);
      // The backend writes no more (a lost lease): no retry can store what is pending, so keeping the tier open for
      // one would leak it, its data and timers. It closes, dropping that data (onError and flushes reported the
      // loss), and this close rejects with why (docs/design.md §3.20).
      ended = this.writesEnded();
      if (ended === undefined) throw err;
      this.clearPending();
      this.oldestUntaken = undefined;
      this.settleUntaken();
    }
    this.clearTimer();
    this.clearRetry();
    this.closed = true;
    this.closing = undefined;
    // Nothing more is taken: no refused write waits for room, and no one waits for drained().
    this.room.clear();
    if (this.lapseTimer !== undefined) clearTimeout(this.lapseTimer);
    this.lapseTimer = undefined;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w.resolve();
    if (ended !== undefined) throw ended;
    // A refusal no flush reported yet: closing cannot fix it, but the caller must hear it.
    this.settled(call);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private clearTimer(): void {
    this.timedDue = false; // every flush taking the batch clears the timer: a fired one's flush has nothing left
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}

/** A tier whose pending writes are keyed (kv records, append-log buckets): a flush takes the whole map. */
export abstract class KeyedTierCore<V> extends TierCore<Map<string, V>> {
  protected pending = new Map<string, V>();

  protected takePending(): Map<string, V> | undefined {
    if (this.pending.size === 0) return undefined;
    const batch = this.pending;
    this.pending = new Map();
    this.stats.pendingEntries = 0;
    return batch;
  }

  protected clearPending(): void {
    this.pending.clear();
    this.stats.pendingEntries = 0;
  }
}

/** Automatic retries of failed background flushes (docs/api.md "Overload"). */
export const DEFAULT_RETRY = { initialMs: 100, maxMs: 10_000 } as const;
/** Default bound on a tier's (inline) or store's (engine) bytes accepted and not yet committed. */
export const DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024;
/** The weight of a value not yet encoded before the tier committed anything to average from. */
export const UNKNOWN_ENTRY_BYTES = 1024;

export function backpressureError(tier: string, pendingBytes: number, maxPendingBytes: number, weight: number): StorageError {
  return new StorageError(
    "backpressure",
    `storage tier "${tier}" has ${pendingBytes} bytes pending (maxPendingBytes ${maxPendingBytes}): the write (weight ${weight}) was not accepted; await drained(weight) and write again`,
    { tier, pendingBytes, maxPendingBytes, weight },
  );
}

/** The rule for returned promises lives in src/base (one place for every layer). */
export { handled };

function describeError(e: Error): string {
  return `${(e as { code?: string }).code ?? e.name}: ${e.message}`;
}

/** True for failures that a retry can never fix (the value cannot be encoded, the key cannot be stored). */
export function isPermanent(err: unknown): boolean {
  return err instanceof CodecError || (err instanceof StorageError && err.code === "invalid-key");
}
