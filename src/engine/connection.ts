/**
 * Main-thread end of one store's actor: coalesces every op queued in one tick into a single `apply`
 * message, matches results to waiting promises, and turns a dead worker into typed rejections. An actor lost
 * with its worker (crash, watchdog, failed open) is replaced by a new one at the store's next operation: the
 * connection reopens the store's tiers in it and reports writes the old actor never acknowledged (see TierRecord).
 */
import { isDeepStrictEqual } from "node:util";
import { MessageChannel, receiveMessageOnPort, type MessagePort } from "node:worker_threads";
import { proxy, releaseProxy, wrap } from "comlink";
import type { ColumnarTransport } from "../codec/types.js";
import { codecFailure } from "../codec/user-codec.js";
import { CodecError, StorageError, deserializeError, serializeError, type SerializedError } from "../errors.js";
import { handled } from "../base/promises.js";
import { findColumns } from "./codecs.js";
import { frameColumns, pushValueFrame, type FrameColumns, type ValueFrameParts } from "../wal/frame-columns.js";
import {
  REQUESTS_MESSAGE,
  isClosedWithRefusal,
  isHostActorResult,
  isRefusedMessage,
  isResultsMessage,
  packWrites,
  refusedKeyOf,
  type ActorApi,
  type ActorEvent,
  type ActorOptions,
  type ActorStats,
  type CodecSpec,
  type Op,
  type RefusedMessage,
  type RequestsMessage,
  type ResultsMessage,
  type StoreSpec,
  type TierSpec,
  type WritesMessage,
} from "./protocol.js";
import { isPermanent } from "../tier/core.js";
import { noteFinalError } from "../tier/write-verdict.js";
import { RefusalWatchers, isRefusalReport, markRefusalReport, type RefusalListener } from "../tier/refusal-watchers.js";
import { flushCallWeight } from "../tier/weights.js";
import { ActorCounters } from "./actor-counters.js";
import { StoreBacklog } from "./backlog.js";
import { closeServed, portEndpoint, useClosableProxies, useTypedErrors } from "./rpc.js";
import { TurnRingSlot, type RingOp, type TurnRingCounts, type TurnRingLedger } from "./ring.js";
import { RING_MESSAGE, type RingMessage } from "./ring-drain.js";

useTypedErrors(); // control calls reject with our typed errors, as the worker entry throws them
useClosableProxies(); // a lost actor's event sink is closed here, not whenever its worker collects the proxy

/** The actor as seen across the port: every method answers asynchronously. */
type RemoteActor = {
  [K in keyof ActorApi]: ActorApi[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;
};

type OpWithoutId = Op extends infer O ? (O extends { id: number } ? Omit<O, "id"> : never) : never;

interface Waiter {
  resolve(v: { value?: unknown; bytes?: Uint8Array | Uint8Array[] }): void;
  reject(e: Error): void;
}

/** What the connection keeps of an open tier, to reopen it in a new actor when the old one was lost. */
interface TierRecord {
  readonly spec: TierSpec;
  /** Writes of this tier went to the actor after its last flush (whose outcome reports the writes before it). */
  dirty: boolean;
  /** Writes lost with an actor and not reported yet: the tier's next flush in the new actor rejects with this. */
  lost: Error | undefined;
  /** The transport the tier's worker codec declares (codecs.ts findColumns): its puts cross as those columns. */
  columns: ColumnarTransport<unknown> | undefined;
  /** Who hears the tier's refusals by key, refused here or in the actor (BaseStorageTier.watchRefusals). */
  readonly refusals: RefusalWatchers;
  /** Ops queued for the tier that a flush called after them answers for (see `flush`): writes, deletes, a close. */
  writes: number;
  /** The tier's latest flush() call while its answer is due, and its held next flush (see `flush`). */
  ask: FlushAsk | undefined;
  held: FlushAsk | undefined;
  /** The tier's posted flushes whose answer is still due (flushCallWeight). */
  flushesDue: number;
}

/**
 * A tier's flush() call whose answer is due. `writes`: the tier's count at the call (a call finding it unchanged
 * made no write since). `queue`: the queue its op waits in until sent; `joined`: the answer of the calls that share
 * it meanwhile (see `flush`). `post`: a held next flush (see `nextFlush`) places its op with it, before `ops[at]`;
 * undefined once placed. `epoch`: the actor it went (or will go) to.
 */
interface FlushAsk {
  readonly promise: Promise<void>;
  joined: Promise<void> | undefined;
  readonly writes: number;
  queue: Op[] | undefined;
  post: ((ops: Op[], at: number) => void) | undefined;
  epoch: number;
}

const noop = (): void => {};
/** Rethrows `err` unless it reports a refusal (see `flush`). */
const notRefusal = (err: unknown): void => {
  if (!isRefusalReport(err)) throw err;
};

/** Ops a flush called after them does not answer for: they do not count as the tier's writes (see `flush`). */
const UNCOUNTED = new Set<Op["t"]>(["flush", "open", "load", "loadEntries", "list", "changes", "sizes", "consistent", "settle", "scan"]);

/** Before a new actor's worker first beats (a thread starting on a loaded machine), the watchdog waits this long. */
const STARTUP_GRACE_MS = 30_000;

/**
 * Revival backoff (docs/design.md §3.30): an actor that dies within HEALTHY_LIFETIME_MS of its start died young; the
 * next one starts RESTART_DELAY_MIN_MS after the death, doubling with each young death in a row up to
 * RESTART_DELAY_MAX_MS. A store whose worker dies at every write (a value that crashes it) then costs a thread start
 * every 10 s, not one per retry.
 */
const HEALTHY_LIFETIME_MS = 10_000;
const RESTART_DELAY_MIN_MS = 100;
const RESTART_DELAY_MAX_MS = 10_000;
/** The fewest puts of one columns op worth encoding ahead: a paced turn's few frames go as they are. */
const AHEAD_MIN = 32;
/**
 * A burst's puts or columns op is posted before its turn ends once it holds this many puts (`postEarly`), so the
 * actor starts on a burst's first tick while the main thread still builds it (design §3.46: 500 and 1000 measured).
 */
export const EARLY_PUTS = 250;
/**
 * Writes the actor has not settled from which a burst is encoded ahead (encodeAhead): at most EARLY_PUTS, so a part
 * posted behind one whole part of its turn meets the trail, and a first tick's second part crosses as text too
 * (design §3.51; at 256 only the third part on did).
 */
const AHEAD_TRAIL = EARLY_PUTS;
/**
 * A turn's writes-only batch goes through the turn ring (ring.ts) when it holds at most this many writes, all puts or
 * frame columns: a paced turn's. A burst stays a message, its columns encoded ahead when the actor trails (§3.33).
 */
const RING_MAX_WRITES = 64;
const RING_MAX_OPS = 8;
/**
 * The most configs of one watcher key kept for a new actor (review r231 F2). A watcher that never answers "replaces
 * every earlier one" must not grow memory per config: past this the oldest go, except the one the watcher answered
 * replaces all before it (review r237 #1: 16 lifts or invalid configs after a fold rule pushed the rule out, and a
 * crash-restarted actor never folded again). A config equal to the last one kept replaces it, and one the watcher
 * refused is dropped, so repeats and mistakes do not count; 16 distinct configs in force after the last "replaces
 * all" is more than the built-in WAL growth watcher ever has (a rule or pin, then lifts).
 */
const MAX_REPLAYED_CONFIGS = 16;
/** The tier id of a config sent through no tier (tier ids start at 1): the actor takes it as the store's. */
const NO_TIER = 0;

export interface ConnectionHooks {
  onError(err: Error, context: { store: StoreSpec; tier?: string }): void;
  /** The actor is gone (shut down or crashed): the engine forgets this connection. */
  onGone(conn: StoreConnection): void;
  /** A tier whose flushes failed (onError heard it once) flushed again. */
  onRecovered?(context: { store: StoreSpec; tier?: string }): void;
}

/**
 * What a connection uses of the worker pool: piscina's `run`. Structural, so the published declarations do not
 * import piscina's, which need `resolveJsonModule` under `module: node16` (test/package/consumer-types).
 */
export interface ActorPool {
  run(task: unknown, options: { transferList: MessagePort[] }): Promise<unknown>;
}

export class StoreConnection {
  private remote!: RemoteActor;
  /** Releases `remote` (see `letGo`). */
  private releaseRemote!: () => void;
  /** The current actor's event sink, served to it on a port of its own (see `letGo`). */
  private sink!: object;
  private port!: MessagePort;
  private queue: Op[] = [];
  private transfers: ArrayBuffer[] = [];
  private scheduled = false;
  /** The send scheduled at the end of a turn, made once (not a closure per turn). */
  private readonly sendTurn = (): void => this.send();
  /** A lone puts op the ring took, emptied for postPut's next op (see sendLone); nothing else refers to it. */
  private sparePuts: Extract<Op, { t: "puts" }> | undefined;
  /** Units of writes under way (`unitStart` / `endUnit`): none is posted in parts. */
  private unitDepth = 0;
  /** Parts of this turn's writes posted early (`postEarly`): the turn's send then always posts, ending them. */
  private earlyParts = 0;
  private nextOpId = 1;
  private nextTierId = 1;
  private readonly waiting = new Map<number, Waiter>();
  /** Next flushes held (see `nextFlush`): while there are, a send places them before their tiers' writes. */
  private heldFlushes = 0;
  private outstanding = 0;
  private inFlightMessages = 0;
  /** Why the current actor is gone (the next operation starts a new one), undefined while it lives. */
  private deathError: Error | undefined;
  /** Set once the store is shut down (or lost while closing): every later call fails with it. */
  private finalError: Error | undefined;
  private rejectDeath!: (e: Error) => void;
  private death!: Promise<never>;
  private ready!: Promise<void>;
  /** `ready` resolved: a send posts in its own turn (once `sendsWaiting`, sends chained on `ready`, is 0). */
  private isReady = false;
  private sendsWaiting = 0;
  private task!: Promise<unknown>;
  /** Which actor is current: callbacks of a lost one must not touch its successor. */
  private epoch = 0;
  /**
   * The store's hold by the last actor that opened it, as its ready() answered it (backend/reopen.ts carryTenure: the
   * tenure id and a SQLite store's lock directory identity): an actor replacing it must follow it, else another
   * writer held the store in between and the connection is fenced (see `fence`).
   */
  private tenure: string | undefined;
  private readonly tiers = new Map<number, TierRecord>();
  /**
   * The commit-watcher configs a new actor must be sent, per watcher and key, through whichever tier, in the order
   * sent (a key re-inserted on each send): every config of the key since the last one its watcher answered
   * "replaces every earlier one" for (the actor's "configured" event, task 223). A new actor sent them in that order
   * ends where the lost one was (a config is the store's, not its tier's: one sent through a tier closed since still
   * holds). The engine reads no config: a fold rule replaces what came before, a lift after it does not (the actor
   * keeps the rule on a lift, task 222), and only the watcher knows which is which. At most MAX_REPLAYED_CONFIGS
   * per key: the one answered "replaces all" (then the list's first) and the newest.
   */
  private readonly watcherConfigs = new Map<string, Array<Extract<Op, { t: "configure-watcher" }>>>();
  /** The configs their watcher answered "replaces every earlier one" for: the bound never evicts them. */
  private readonly replacingConfigs = new WeakSet<Extract<Op, { t: "configure-watcher" }>>();
  /** Number of the last watcher config taken (its `seq`: the actor's "configured" event names it). */
  private configSeq = 0;
  /** Ops taken and jobs asked for so far: a shutdown asked before any of these came is not the store's to make. */
  private activity = 0;
  /**
   * Tiers whose flush (or close) was in flight when the actor was lost: its caller hears worker-crashed, but the
   * writes it covered may be lost, and so may other writers' on the tier (die() tells the tier's refusal watchers).
   */
  private readonly flushesLost = new Set<TierRecord>();
  /**
   * Batches sent while the actor was not ready, each posted once `ready` resolves (see `send`). Nothing reaches an
   * actor before it opened the store: an open that failed leaves these unwritten, and die() keeps their writes.
   */
  private unposted: Array<{ ops: Op[]; transfers: ArrayBuffer[] }> = [];
  /**
   * Writes an actor whose open failed (or that was lost before it answered ready) never took: revive() queues them
   * again, in order, after the new actor's reopen. They weigh in the backlog meanwhile (backpressure bounds them).
   */
  private kept: { ops: Op[]; transfers: ArrayBuffer[] } | undefined;
  /**
   * Starts the next actor by itself while writes are kept (see `keep`): nothing else may come (a producer refused
   * backpressure waits in drained(), which starts no actor). Unref'd: the kept writes do not hold the process.
   */
  private reviveTimer: NodeJS.Timeout | undefined;
  /** The refusals revive() queued for writes lost earlier: each revive queues its own, so die() keeps none of them. */
  private readonly reviveRefusals = new WeakSet<Op>();
  /** A new actor waits for this (the old worker's termination: piscina must not hand the new task to the dying thread). */
  private restartGate: Promise<unknown> = Promise.resolve();
  /**
   * The watchdog's view: the heartbeat last seen, when it last moved or nothing was due (`progressAt`), when it last
   * moved (`beatAt`), and whether this actor's worker beat yet.
   */
  private seenBeat = 0;
  private progressAt = 0;
  private beatAt = 0;
  private beating = false;
  /** When the current actor's task was handed to the pool (Infinity while its restart gate is closed). */
  private startedAt = Number.POSITIVE_INFINITY;
  /** Actors of this store that died young in a row (see HEALTHY_LIFETIME_MS), and when the last one died. */
  private youngDeaths = 0;
  private diedAt = 0;
  /** Ends the current restart delay now (close must not wait for it); undefined when none runs. */
  private endDelay: (() => void) | undefined;
  /** Resolves when close gave up on this store (abandon): nothing waits on its hosting task any longer. */
  private readonly abandoned: Promise<void>;
  private resolveAbandoned!: () => void;
  threadId: number | undefined;
  /** shutdown() began: nothing more is taken (see `assertAlive`). */
  closing = false;
  /** The wait before an idle store is shut down (see `whenIdle`), while one runs. */
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** runJob calls not settled yet: each holds the store open (see `shutdownIfIdle`). */
  private jobs = 0;
  private drain: Promise<void> | undefined;
  /**
   * Why `drain` may resolve although it stored nothing (see `drainedFor`): the store was given up before the drain
   * began (fenced, a lost lease, abandoned), or close gave up on it before its actor answered how the drain ended.
   */
  private drainVoid: Error | undefined;
  /** The actor answered the drain (every tier stored, or which failed): an abandon() after that changes nothing. */
  private drainAnswered = false;
  /** `drain` settled (see `flushedByDrain`). */
  private drainEnded = false;
  /** The final drain's failures by tier, when the hosting task told them (see HostActorResult.tierErrors). */
  private tierDrainErrors: Map<number, Error> | undefined;
  /** Counters the actor writes and this thread reads without a message (stats, backpressure). */
  private readonly counters = new ActorCounters();
  readonly backlog: StoreBacklog;
  /**
   * The store's hold on a turn ring of the engine's ledger (undefined when the engine's `turnRingBytes` is 0): taken
   * at the first paced write and handed to the actor by a message, given back when the store goes idle, its last
   * tier closes or its actor is lost (task 209). `portPosts`: the messages posted on the current actor's port so far:
   * a record carries that count, so the worker applies records and messages in issue order (ring-drain.ts).
   */
  private readonly ring: TurnRingSlot | undefined;
  private portPosts = 0;
  private lastError: string | undefined;
  /**
   * The current actor's backend's final error as this thread first heard it (an "error" event marked final), and as
   * it crossed: every later copy of that error (a flush's answer, another tier's report) is answered with this very
   * object, which noteFinalError marked. A flush that met the end rejected with a new copy, which no caller could
   * tell from a failure that may pass: an attach pair went on and stopped one save later (task 285, task 307).
   */
  private finalHeard: { readonly err: Error; readonly from: SerializedError } | undefined;
  /**
   * Results messages whose settling waits for the end of this turn of the event loop (see `onResults`), and the
   * refusals that arrived behind them (told in the actor's order), in arrival order; undefined when none waits.
   */
  private deferred: Array<ResultsMessage | RefusedMessage> | undefined;
  /**
   * A tier's close was answered by an actor that could not open the store (gone, unopenable): the tier closed on
   * this side (flushWaiter), and the death that answered it releases the store once nothing else uses it
   * (`releaseUnreached`).
   */
  private closedUnreached = false;
  /** The engine's close() shut the store down (see `shutdown`). */
  private engineClosing = false;
  /** While die() rejects its waiters: the batches the dying actor never took (their writes are kept, see keep). */
  private untakenAtDeath: ReadonlyArray<{ ops: Op[] }> = [];
  /**
   * The last failed open onError heard (`tellOpenFailure`): what it said (code, message and cause) and when. A store
   * that keeps writes revives by itself at each backoff (`reviveLater`): one gone for good failed the same way every
   * attempt, and onError heard it each time, one report per ≤ 10 s for as long as the engine stayed open.
   */
  private openFailureTold: { readonly said: string; readonly at: number } | undefined;

  constructor(
    private readonly pool: ActorPool,
    readonly key: string,
    readonly store: StoreSpec,
    private readonly options: ActorOptions,
    private readonly hooks: ConnectionHooks,
    maxPendingBytes?: number,
    /** How often the worker bumps the heartbeat the engine's watchdog reads (undefined: no watchdog). */
    private readonly heartbeatMs?: number,
    /** The engine's turn rings (undefined: every turn's writes go as a message). */
    rings?: TurnRingLedger,
    /**
     * The first actor starts once this settles: the shutdown of the store's previous connection, when a tier opened
     * the store while it shut down (task 220: one actor holds the store at a time, its lock or lease let go first).
     */
    after?: Promise<unknown>,
    /** How long the store stays unused before it is shut down (the engine's idleStoreCloseMs; 0: at once). */
    private readonly idleCloseMs = 0,
    /** How often a waiting drained() looks for room (backlog.ts; only tests set it: EngineTestInternals). */
    drainPollMs?: number,
  ) {
    if (after !== undefined) this.restartGate = after.catch(() => undefined);
    this.backlog = new StoreBacklog(this.counters, maxPendingBytes, key, drainPollMs);
    this.ring = rings !== undefined ? new TurnRingSlot(rings) : undefined;
    this.abandoned = new Promise<void>((r) => (this.resolveAbandoned = r));
    this.start();
  }

  /** Starts an actor for the store: at open, and at the first operation after the previous actor was lost. */
  private start(): void {
    const epoch = ++this.epoch;
    const key = this.key;
    this.deathError = undefined;
    this.threadId = undefined;
    this.finalHeard = undefined; // a new actor opens a new backend: its end is its own
    this.deferred = undefined;
    this.outstanding = 0;
    this.inFlightMessages = 0;
    this.seenBeat = this.counters.get("heartbeat");
    this.progressAt = Date.now();
    this.beating = false;
    this.startedAt = Number.POSITIVE_INFINITY;
    this.death = new Promise<never>((_, reject) => (this.rejectDeath = reject));
    this.death.catch(() => undefined);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    // No ring until this actor's first paced write: records a lost actor never read are lost with it (reported as
    // its messages are, die(), which gave its ring back), and none can reach its successor.
    this.portPosts = 0;
    this.ring?.restart();
    const remote = wrap<ActorApi>(portEndpoint(port1, () => this.portPosts++));
    this.remote = remote as unknown as RemoteActor;
    this.releaseRemote = () => remote[releaseProxy]();
    // Answers to batches with requests (postMessage) come on the same port, outside comlink.
    port1.on("message", (m: unknown) => this.onPortMessage(m, epoch));
    port1.unref();
    this.counters.set("threadId", 0); // no thread of this actor yet (worker thread ids start at 1)
    this.counters.set("failingTiers", 0); // a gauge of the actor now running: a lost one's failing tiers are not its own
    const tenureAfter = this.tenure !== undefined ? { tenureAfter: this.tenure } : {};
    const run = { port: port2, options: { ...this.options, counters: this.counters.buffer, ...tenureAfter }, heartbeatMs: this.heartbeatMs };
    const wait = this.youngDeaths > 0 ? this.diedAt + restartDelay(this.youngDeaths) - Date.now() : 0;
    const gate = wait > 0 ? Promise.all([this.restartGate, this.delay(wait)]) : this.restartGate;
    const task = gate.then(() => {
      if (epoch !== this.epoch || this.deathError !== undefined) {
        // Given up at the gate (close's abandon): no worker may open the store for an actor nobody waits on (task 337).
        port2.close();
        return undefined;
      }
      this.startedAt = Date.now();
      this.progressAt = this.startedAt; // the watchdog's startup grace counts from here
      return this.pool.run(run, { transferList: [port2] }) as Promise<unknown>;
    });
    this.task = task;
    this.isReady = false;
    const ready = this.call(() => this.remote.ready()).then(
      ({ threadId, tenure }) => {
        if (epoch !== this.epoch || this.deathError !== undefined) return;
        this.threadId = threadId;
        if (tenure !== undefined) this.tenure = tenure;
        this.isReady = true;
        this.openFailureTold = undefined; // opened: a later failure is a new spell
        // The lost writes' refusals are in this actor's mailbox now (see `revive`): its tiers report them.
        for (const rec of this.tiers.values()) rec.lost = undefined;
      },
      (err: unknown) => {
        if (epoch !== this.epoch || this.deathError !== undefined) throw err; // lost meanwhile: die() told the waiters
        // The actor could not open the store (store-locked, ENOSPC...): the typed reason, not a crash.
        // Re-made with this module's classes: comlink's error handler is the one the last copy of this package loaded
        // in the process registered (a test's worker entry loads dist/), and callers test errors by class.
        const e = err instanceof Error ? deserializeError(serializeError(err)) : new Error(String(err));
        this.tellOpenFailure(e, this.keepsWritesAfter(e));
        if (heldMeanwhile(e)) this.fence(e, epoch);
        else this.die(e, epoch);
        throw e;
      },
    );
    this.ready = ready;
    ready.catch(() => undefined);
    task.then(
      // A task that ends before ready() answered is an open failure: let ready's real reason win.
      () =>
        void ready
          .catch(() => undefined)
          .then(() => this.die(this.shutDown(), epoch)),
      (err: unknown) =>
        this.die(
          new StorageError("worker-crashed", `worker owning store ${key} crashed: ${errorMessage(err)}`, {
            store: key,
          }),
          epoch,
        ),
    );
    const sink = proxy((e: ActorEvent) => this.onEvent(e));
    this.sink = sink;
    void this.call(() => this.remote.setEventSink(sink)).catch(() => undefined);
  }

  /**
   * Tells onError that an actor could not open the store. When the open's writes are kept for the next actor
   * (`keeps`: nothing is lost, reviveLater tries again), not if it told the same failure (same code, message and
   * cause) less than RESTART_DELAY_MAX_MS ago with no open between: a store with kept writes retried by itself at
   * each backoff, or by each operation, that fails alike every time is told once per backoff ceiling, and at once
   * when the failure changes. An open whose failure loses the writes queued for it (no earlier hold of the store, a
   * close giving them up) is told every time: onError is the only word a writer that does not flush gets of them
   * (review r314 F5). The operations the open failed still reject with it, each time.
   */
  private tellOpenFailure(e: Error, keeps: boolean): void {
    const said = describeFailure(e);
    const now = Date.now();
    const last = this.openFailureTold;
    if (keeps && last !== undefined && last.said === said && now - last.at < RESTART_DELAY_MAX_MS) return;
    this.openFailureTold = { said, at: now };
    this.hooks.onError(e, { store: this.store });
  }

  /**
   * Whether die() keeps the writes of an actor whose open failed with `e` for the next one (its `keep` branch):
   * only after a hold of the store (`tenure`), and not once the store is given up (closing, a final error, a
   * fence, a `closed` end). Otherwise they are reported lost.
   */
  private keepsWritesAfter(e: Error): boolean {
    if (this.tenure === undefined || this.closing || this.finalError !== undefined || heldMeanwhile(e)) return false;
    return !(e instanceof StorageError && e.code === "closed");
  }

  /**
   * Resolves after `ms`, or at once when shutdown() or abandon() ends the delay. Not unref'd: the engine keeps the
   * process alive until close(), as the actor's task would (writes made meanwhile wait for it).
   */
  private delay(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.endDelay === done) this.endDelay = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.endDelay = done;
    });
  }

  /** Settles once the actor answered ready() (its thread is then known), whether or not it opened. */
  opened(): Promise<void> {
    return this.ready.catch(() => undefined);
  }

  /** False while the actor is lost (until the next operation replaces it) and once the store is shut down. */
  get alive(): boolean {
    return this.deathError === undefined && this.finalError === undefined;
  }

  /** Ops waiting in this tick's batch plus requests the actor has not answered yet (writes are not answered). */
  get queueDepth(): number {
    return this.queue.length + this.inFlightMessages;
  }

  newTierId(): number {
    return this.nextTierId++;
  }

  /** Opens a tier in the actor and remembers it (a new actor reopens it); its failure is the actor's to report. */
  openTier(tier: number, spec: TierSpec): void {
    const rec: TierRecord = {
      spec,
      dirty: false,
      lost: undefined,
      columns: undefined,
      refusals: new RefusalWatchers(),
      writes: 0,
      ask: undefined,
      held: undefined,
      flushesDue: 0,
    };
    this.tiers.set(tier, rec);
    findColumns(spec.codec, (columns) => (rec.columns = columns));
    this.request({ t: "open", tier, spec }).catch(() => undefined);
  }

  /** Queues a fire-and-forget op (put/append/rollback) for this tick's message; a write's weight is in `op.w`/`op.n`. */
  post(op: Op, transferable?: Uint8Array): void {
    this.assertAlive();
    if ("w" in op && op.w !== undefined) this.backlog.add(op.w, op.n ?? 0);
    const rec = this.tiers.get(op.tier);
    if (rec !== undefined) rec.writes++;
    this.queue.push(op);
    if (transferable && transferable.byteOffset === 0 && transferable.byteLength === transferable.buffer.byteLength) {
      this.transfers.push(transferable.buffer as ArrayBuffer);
    }
    this.schedule();
  }

  /**
   * Puts `value` in place of the value of this tick's last queued op when that op is a lone put of `key` to `tier`,
   * and says whether it did. For a snapshot tier, which keeps only the newest unwritten record of each key: a turn's
   * burst of saves of one key holds, and sends, one record instead of every superseded one (issue 13 item 3). In the
   * actor the newer put would have replaced the older before any flush of the turn ran, so nothing observable changes.
   */
  replaceLastPut(tier: number, key: string, value: unknown, bytes: number): boolean {
    const last = this.queue[this.queue.length - 1];
    if (this.replaceableWeight(tier, key) === undefined || last?.t !== "puts") return false;
    this.backlog.unpost(last.w, 1);
    this.backlog.add(bytes, 1);
    last.values[0] = value;
    last.w = bytes;
    return true;
  }

  /** The weight of the put `replaceLastPut(tier, key, …)` would replace now (room needs only the difference). */
  replaceableWeight(tier: number, key: string): number | undefined {
    const last = this.queue[this.queue.length - 1];
    if (last?.t !== "puts" || last.tier !== tier || last.n !== 1 || last.keys[0] !== key) return undefined;
    return last.w;
  }

  /**
   * Queues a put weighing `bytes`. Consecutive puts of one tier in a tick share one op: the columns of the transport
   * the tier's codec declares while values fit them, else a key column and a value column.
   */
  postPut(tier: number, key: string, value: unknown, bytes: number): void {
    this.assertAlive();
    const last = this.queue[this.queue.length - 1];
    const rec = this.tiers.get(tier);
    if (rec !== undefined) rec.writes++;
    const columns = rec?.columns;
    if (columns !== undefined) {
      const joins = last?.t === "columns" && last.tier === tier;
      const cols = joins ? last.cols : columns.empty();
      let fits: boolean;
      try {
        fits = columns.push(cols, value);
      } catch (err) {
        // The codec refuses the value, as a throwing encode does. The refusal ends the op: the columns the push
        // may have half filled take no more values, so every value before it still reads back at its index.
        this.refuse(tier, codecFailure(err, "encode", codecLabel(rec!.spec.codec)), undefined, key);
        return;
      }
      if (fits) {
        this.backlog.add(bytes, 1);
        if (joins) {
          last.keys.push(key);
          last.w += bytes;
          if (++last.n >= EARLY_PUTS) this.postEarly();
        } else {
          this.queue.push({ t: "columns", tier, keys: [key], cols, w: bytes, n: 1 });
          this.schedule();
        }
        return;
      }
    }
    this.backlog.add(bytes, 1);
    if (last?.t === "puts" && last.tier === tier) {
      last.keys.push(key);
      last.values.push(value);
      last.w += bytes;
      if (++last.n >= EARLY_PUTS) this.postEarly();
      return;
    }
    const spare = this.sparePuts;
    if (spare !== undefined) {
      // The lone put op the ring took last turn (see sendLone), emptied: no op or arrays made per paced save.
      this.sparePuts = undefined;
      spare.tier = tier;
      spare.keys.push(key);
      spare.values.push(value);
      spare.w = bytes;
      spare.n = 1;
      this.queue.push(spare);
    } else this.queue.push({ t: "puts", tier, keys: [key], values: [value], w: bytes, n: 1 });
    this.schedule();
  }

  /**
   * True when `tier`'s values cross as the frame columns (walFrameCodec's transport, frameColumns with the actor's
   * encoder added: known by its push): `postValueFrame` takes them.
   */
  takesValueFrames(tier: number): boolean {
    return this.tiers.get(tier)?.columns?.push === (frameColumns.push as ColumnarTransport<unknown>["push"]);
  }

  /**
   * `postPut(tier, key, frame, bytes)` of the value frame `parts` describe (frame-columns.ts pushValueFrame), for a
   * tier that `takesValueFrames`: the same op, the same columns, without the frame's objects (design §3.48).
   */
  postValueFrame(tier: number, key: string, parts: ValueFrameParts, bytes: number): void {
    this.assertAlive();
    const rec = this.tiers.get(tier);
    if (rec !== undefined) rec.writes++;
    this.backlog.add(bytes, 1);
    const last = this.queue[this.queue.length - 1];
    if (last?.t === "columns" && last.tier === tier) {
      pushValueFrame(last.cols as FrameColumns, parts);
      last.keys.push(key);
      last.w += bytes;
      if (++last.n >= EARLY_PUTS) this.postEarly();
      return;
    }
    const cols = frameColumns.empty();
    pushValueFrame(cols, parts);
    this.queue.push({ t: "columns", tier, keys: [key], cols, w: bytes, n: 1 });
    this.schedule();
  }

  /** Where a unit of writes (KvStorageTier.saveMany) starts in this turn's queue: hand it to `endUnit`. */
  unitStart(): number {
    this.unitDepth++;
    return this.queue.length;
  }

  /**
   * Ends the unit of writes posted since `start` (`unitStart`). Ops queued in one turn travel in one message; when
   * the unit spans several (one per value of a main-thread codec, a value its columns cannot take, a refusal),
   * every one but the last is marked `open`, so the actor's group commit commits none of them apart. The op before
   * `start` is marked too: the unit's first writes may have joined it. Call it once for each `unitStart` (in a
   * `finally`): no part of the turn is posted early while a unit is under way.
   */
  endUnit(start: number): void {
    this.unitDepth--;
    const last = this.queue.length - 1;
    for (let i = Math.max(0, start - 1); i < last; i++) {
      const op = this.queue[i]!;
      if (op.t === "put" || op.t === "puts" || op.t === "columns") op.open = true;
    }
    if (this.unitDepth === 0 && last === 0) this.postEarly();
  }

  /**
   * Posts this turn's queue before the turn ends when it is one puts or columns op of at least EARLY_PUTS puts: the actor
   * starts on a burst's first tick while this thread still builds it, instead of idling until the turn's message
   * (design §3.46). Only when nothing depends on the batch being the turn's whole: the queue is that op alone (no
   * flush, request or other write before it), no flush is held, the actor is ready and no send waits on `ready`
   * (messages keep their order), no unit of writes is under way, nothing to transfer. The batch carries MORE
   * (protocol.ts): the actor's group commit commits nothing until the turn's own send (`send`, which then always
   * posts) ends it, so the turn commits as its one message would have. A saved value may be read at any time until
   * written (docs/api.md Conventions): posting it earlier than the turn's end is within the contract.
   */
  private postEarly(): void {
    if (this.unitDepth > 0 || this.heldFlushes > 0 || !this.isReady || this.sendsWaiting > 0 || this.queue.length !== 1) return;
    if (this.transfers.length > 0 || this.deathError !== undefined) return;
    const op = this.queue[0]!;
    if ((op.t !== "columns" && op.t !== "puts") || op.n < EARLY_PUTS) return;
    const ops = this.queue;
    this.queue = [];
    this.taken(ops);
    // The parts posted before count as trailing (their writes are not settled until the turn commits): from the
    // second part on, a first tick's payloads cross as text.
    this.encodeAhead(ops);
    this.earlyParts++;
    this.postWritesMessage(ops, [], true);
  }

  /** Queues an op that produces a result, in order with everything posted before it. */
  request(op: OpWithoutId): Promise<{ value?: unknown; bytes?: Uint8Array | Uint8Array[] }> {
    try {
      this.assertAlive();
    } catch (err) {
      return Promise.reject(err);
    }
    if (!UNCOUNTED.has(op.t)) {
      const rec = this.tiers.get(op.tier);
      if (rec !== undefined) rec.writes++;
    }
    const id = this.nextOpId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, op.t === "flush" || op.t === "close" ? this.flushWaiter(op.t, op.tier, resolve, reject) : { resolve, reject });
      this.queue.push({ ...op, id } as Op);
      this.schedule();
    });
  }

  /**
   * A tier's flush() (not writePending's). A call with writes of the tier since its previous call is posted as any
   * request. One without answers for the same writes as that call, so it adds no work (review s15c D2: against a
   * stuck store every call added an op, a waiter and a message, ~2 KB each, without bound): while that call's op is
   * still queued it shares its answer (but for a refusal that call reports: reported by a flush called earlier, it
   * is not theirs, as in the actor, design §3.16), while held (below) the held one; once sent, it shares ONE next
   * flush of the tier, held until the sent one is answered. So a tier has at most one such flush in flight and one
   * held, however many calls.
   */
  flush(tier: number): Promise<void> {
    const rec = this.tiers.get(tier);
    const ask = rec?.ask;
    if (rec === undefined || ask === undefined || ask.writes !== rec.writes) return this.askFlush(tier, rec);
    if (ask.post !== undefined) return ask.promise;
    if (ask.queue === this.queue) return (ask.joined ??= handled(ask.promise.then(noop, notRefusal)));
    return this.nextFlush(tier, rec, ask);
  }

  /**
   * Posts a flush of `tier` and keeps it as the tier's latest call until answered. Its cost counts against the
   * store's bound until then, but for the tier's first one due (flushCallWeight): a writer pairing each save with a
   * flush against a stuck store held ~1.5 KB per pair beyond the bound, uncounted (60× a 4 MiB bound); the flush is
   * never refused for it.
   */
  private askFlush(tier: number, rec: TierRecord | undefined): Promise<void> {
    const answer = handled(this.request({ t: "flush", tier }).then(noop));
    // A tier unknown here (none opened under its id) counts as having one due: weighed, as before.
    const weight = flushCallWeight(rec === undefined ? 1 : rec.flushesDue++);
    if (rec !== undefined) {
      const answered = (): void => {
        rec.flushesDue--;
      };
      answer.then(answered, answered);
    }
    const promise = this.backlog.holdUntil(weight, answer);
    if (rec !== undefined) this.track(rec, { promise, joined: undefined, writes: rec.writes, queue: this.queue, post: undefined, epoch: this.epoch });
    return promise;
  }

  private track(rec: TierRecord, ask: FlushAsk): void {
    rec.ask = ask;
    const clear = (): void => {
      if (rec.ask === ask) rec.ask = undefined;
    };
    ask.promise.then(clear, clear);
  }

  /**
   * The flush a tier's write-less calls share while its flush `sent` is in flight: held until `sent` is answered.
   * Resolved then, or rejected with a refusal's report (`sent`, called earlier, reported it): its writes are
   * `sent`'s, stored. Rejected otherwise: posted then (the retry a call made before the failure is owed), unless
   * `sent`'s actor was lost (its writes with it: the calls hear why). A write of the tier (or a delete, a rollback, a
   * close) queued meanwhile places it at once, before that op (`placeHeld`), so it answers only for the writes
   * before its calls, as theirs would have (a later write's refusal is not theirs).
   */
  private nextFlush(tier: number, rec: TierRecord, sent: FlushAsk): Promise<void> {
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const promise = handled(new Promise<void>((res, rej) => ((resolve = res), (reject = rej))));
    const next: FlushAsk = { promise, joined: undefined, writes: rec.writes, queue: undefined, post: undefined, epoch: sent.epoch };
    const drop = (): boolean => {
      if (next.post === undefined) return false;
      next.post = undefined;
      if (rec.held === next) rec.held = undefined;
      this.heldFlushes--;
      return true;
    };
    next.post = (ops, at) => {
      if (!drop()) return;
      const id = this.nextOpId++;
      this.waiting.set(id, this.flushWaiter("flush", tier, () => resolve(), reject));
      ops.splice(at, 0, { t: "flush", tier, id });
      next.queue = ops === this.queue ? ops : undefined;
      next.epoch = this.epoch;
    };
    this.heldFlushes++;
    rec.held = next;
    const answered = (err: unknown, failed: boolean): void => {
      if (next.post === undefined) return; // placed before a write already
      if (!failed || isRefusalReport(err)) return void (drop() && resolve());
      if (this.deathError !== undefined || this.epoch !== sent.epoch || this.finalError !== undefined) return void (drop() && reject(err));
      try {
        this.assertAlive();
      } catch (e) {
        drop();
        // Called before the engine's close: the drain answers for its writes, as for a flush called while it runs.
        if (this.finalError === undefined && this.closing) this.drainedFor(tier).then(resolve, reject);
        else reject(e);
        return;
      }
      const at = this.queue.findIndex((op) => op.tier === tier && !UNCOUNTED.has(op.t));
      next.post(this.queue, at < 0 ? this.queue.length : at);
      this.schedule();
    };
    sent.promise.then(
      () => answered(undefined, false),
      (err: unknown) => answered(err, true),
    );
    this.track(rec, next);
    return promise;
  }

  /** Places each held next flush before the first op of its tier in `ops` that it must not answer for (`nextFlush`). */
  private placeHeld(ops: Op[]): void {
    for (let i = 0; i < ops.length && this.heldFlushes > 0; i++) {
      const op = ops[i]!;
      if (UNCOUNTED.has(op.t)) continue;
      const next = this.tiers.get(op.tier)?.held;
      // One held for a lost actor's flush stays held: that flush's answer (the loss) is its answer.
      if (next?.post !== undefined && next.epoch === this.epoch && this.deathError === undefined) next.post(ops, i++);
    }
  }

  /**
   * A flush's outcome reports the tier's writes before it: acknowledged, or the caller hears the rejection. One
   * that failed in a living actor leaves them pending there (a later loss of the actor must report them).
   */
  private flushWaiter(t: "flush" | "close", tier: number, resolve: Waiter["resolve"], reject: Waiter["reject"]): Waiter {
    return {
      resolve: (v) => {
        if (t === "close") {
          this.tiers.delete(tier); // closed, also when it reports a refusal
          if (this.tiers.size === 0) this.giveRingBack(); // nothing writes here until a tier opens again
          let settle = (): void => resolve(v);
          if (isClosedWithRefusal(v.value)) {
            const err = v.value.final === true ? this.heardAs(v.value.closedWithRefusal) : deserializeError(v.value.closedWithRefusal);
            if (v.value.final !== true) settle = () => reject(markRefusalReport(err));
            else {
              // Closed dropping writes that were never stored (a lost lease): a loss, not a refusal report.
              this.backlog.end(err);
              settle = () => reject(err);
            }
          }
          if (this.tiers.size > 0) return settle();
          // The store's last tier closed: once this answer's message is taken (later answers in it may still be
          // waited on), an idle store is shut down, and the close settles after (task 215).
          return queueMicrotask(() => {
            const shut = this.whenIdle();
            if (shut === undefined) settle();
            else void shut.then(settle);
          });
        }
        resolve(v);
      },
      reject: (e) => {
        const rec = this.tiers.get(tier);
        if (t === "close" && rec !== undefined && e === this.deathError && !this.isReady) {
          // Answered by an actor that could not open the store: none can close the tier, so it closes here (the close
          // rejects with why; writes no actor took for it are not kept: keep), and the store is released once
          // nothing else uses it (die: releaseUnreached), not kept reviving until engine.close() (task 321).
          // The close is final: the rejection says so (details.tierClosed) with the writes it drops, told to onError
          // too (no flush of the closed tier will report them), unlike a close that failed with the tier kept open.
          const dropped = this.unreachedWrites(tier);
          this.tiers.delete(tier);
          this.closedUnreached = true;
          // A loss an earlier actor's end left unreported (rec.lost: its next flush would have told it) is told here.
          const closed = tierClosedUnreached(e, rec.spec.name, dropped, rec.lost);
          if (dropped > 0 || rec.lost !== undefined) this.report(closed, rec.spec.name);
          reject(closed);
          return;
        }
        // A refusal (the codec's, the key's) leaves nothing pending: only another failure leaves writes to lose.
        if (rec && e !== this.deathError && !isPermanent(e)) rec.dirty = true;
        if (rec && e === this.deathError) this.flushesLost.add(rec);
        reject(e);
      },
    };
  }

  /** Marks the tiers with writes in `ops` that no later flush of theirs in `ops` covers (per message, not per save). */
  private taken(ops: Op[]): void {
    if (ops.length > 0) this.active();
    for (const op of ops) {
      if (op.t === "configure-watcher") {
        // Whatever its tier: a config is the store's (one sent through no tier, or a tier closed since, counts too).
        // One a revive sends again is listed already, or was forgotten since (a later one replaced it): not again.
        if (op.seq === undefined) this.keepConfig(op);
        continue;
      }
      const rec = this.tiers.get(op.tier);
      if (rec === undefined) continue;
      if (op.t === "flush" || op.t === "close") rec.dirty = false;
      else if (op.t === "put" || op.t === "puts" || op.t === "columns" || op.t === "append" || op.t === "refuse") rec.dirty = true;
    }
  }

  /**
   * Lists a config taken for replay to a new actor (see `watcherConfigs`): appended in place (a copy per config made
   * a key's configs O(n²), review r231 F2), and at most MAX_REPLAYED_CONFIGS per key, never evicting the config its
   * watcher answered replaces all before it (review r237 #1).
   */
  private keepConfig(op: Extract<Op, { t: "configure-watcher" }>): void {
    const key = `${op.watcher}\n${op.key}`;
    op.seq = ++this.configSeq;
    const sent = this.watcherConfigs.get(key);
    if (sent === undefined) return void this.watcherConfigs.set(key, [op]);
    this.watcherConfigs.delete(key); // re-inserted: replay follows the order sent
    this.watcherConfigs.set(key, sent);
    // The same config again right after itself leaves the watcher where it was (a lift sent by each detach): the new
    // one takes the old one's place (its seq is the one an answer will name), so repeats never push a rule out. The
    // config is the structured-clone copy configureCommitWatcher made: plain data.
    const last = sent[sent.length - 1];
    if (last !== undefined && !this.replacingConfigs.has(last) && isDeepStrictEqual(last.config, op.config)) sent.pop();
    sent.push(op);
    if (sent.length > MAX_REPLAYED_CONFIGS) {
      const from = this.replacingConfigs.has(sent[0]!) ? 1 : 0; // the answered "replaces all" stays: it is in force
      sent.splice(from, sent.length - MAX_REPLAYED_CONFIGS);
    }
  }

  /**
   * One message per event-loop turn: every op queued in this turn (this tick and the microtasks that follow it,
   * e.g. request handlers resuming after an await) travels together, so the fixed cost of a message is shared.
   */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.sendTurn);
  }

  private send(): void {
    this.scheduled = false;
    const early = this.earlyParts > 0;
    this.earlyParts = 0;
    if (this.queue.length === 0) {
      // Every write of the turn went early: an empty batch ends its parts (the actor's group commit waits for it).
      if (early && this.deathError === undefined && this.isReady && this.sendsWaiting === 0) this.postWritesMessage([], []);
      return;
    }
    const ops = this.queue;
    if (ops.length === 1 && this.sendLone(ops)) return;
    const transfers = this.transfers;
    this.queue = [];
    this.transfers = [];
    if (this.heldFlushes > 0) this.placeHeld(ops);
    this.taken(ops);
    this.encodeAhead(ops);
    const epoch = this.epoch;
    // A saved value is read at the end of its turn (docs/api.md, Conventions): posting copies it, and until the
    // actor is ready nothing is posted, so the values wait as copies (a caller may change its object meanwhile).
    if (!this.isReady) copyValues(ops);
    // Once the actor is ready and no earlier send still waits on `ready`, this one posts now: a paced turn's send
    // spends no promise step. Until then every send chains on `ready` in call order, and posts synchronously inside
    // its step: messages keep tick order.
    if (this.isReady && this.sendsWaiting === 0) return this.postMessage(ops, transfers, epoch);
    this.sendsWaiting++;
    const batch = { ops, transfers };
    this.unposted.push(batch);
    const posted = (): void => {
      this.sendsWaiting--;
      const at = this.unposted.indexOf(batch); // the first but after a death (die() emptied the list)
      if (at >= 0) this.unposted.splice(at, 1);
    };
    this.ready.then(
      () => {
        posted();
        this.postMessage(ops, transfers, epoch);
      },
      posted, // die() already rejected every waiter with the open failure, and kept the batch's writes
    );
  }

  /**
   * A paced turn's lone write op (a save's puts, a wave's frame columns) straight to the turn ring: what `send`,
   * `postMessage` and `toRing` do for it, without their walks over the batch (held flushes, encode-ahead, requests,
   * the ring's conditions per op) and the closure they make. True when it was handled here (written, or refused
   * as toRing refuses a value that throws while encoded, or sent as the writes message when the ring took no record);
   * false leaves it to the general path: anything else, the actor not ready, a send still waiting on `ready`, a held
   * flush, a tier whose codec is not built in, a burst's columns (encode-ahead's), no ring. With the op kept for the
   * next save (`sparePuts`), −0.37 µs of main-thread CPU per paced kv save at the median (design §3.35, task 244).
   */
  private sendLone(ops: Op[]): boolean {
    const op = ops[0]!;
    if (op.t !== "puts" && op.t !== "columns") return false;
    if (op.n > RING_MAX_WRITES || (op.t === "columns" && op.n >= AHEAD_MIN)) return false;
    const slot = this.ring;
    if (slot === undefined || this.heldFlushes > 0 || !this.isReady || this.sendsWaiting > 0 || this.transfers.length > 0) return false;
    if (this.deathError !== undefined) return false;
    const rec = this.tiers.get(op.tier);
    // Only values a built-in (JSON) codec encodes (toRing's rule).
    if (rec === undefined || rec.spec.codec.kind !== "builtin") return false;
    const ring = slot.writer ?? this.takeRing(slot);
    if (ring === undefined) return false; // the engine's ring budget is held by other stores: the general path
    this.queue = [];
    // taken(ops), for this op:
    this.active();
    rec.dirty = true;
    let written: boolean;
    try {
      written = ring.tryWrite(ops as RingOp[], this.portPosts);
    } catch (err) {
      this.splitUnsendable(ops, err); // a value that throws while encoded (toRing's case)
      return true;
    }
    if (!written) {
      this.postWritesMessage(ops, this.transfers);
      return true;
    }
    // Copied into the ring: the op is nobody's now (the queue it was in is dropped; a flush's `ask.queue` names the
    // array, never an op). Emptied (the caller's value is not kept) and kept for the next save's op.
    if (op.t === "puts" && op.open !== true && op.keys.length === 1) {
      op.keys.pop(); // pop, not `length = 0` (a runtime call, design §3.38)
      op.values.pop();
      this.sparePuts = op;
    }
    return true;
  }

  /**
   * While the actor trails a stream (writes of earlier turns it has not yet settled), a burst's columns take the form
   * its worker encodes fastest (ColumnarTransport.encodeAhead): the main thread, the less busy one then, takes a part
   * of the actor's work per write (design §3.33). A lone burst, or writes the actor keeps up with, cost no more.
   */
  private encodeAhead(ops: Op[]): void {
    let own = 0;
    for (const op of ops) if ("n" in op && op.n !== undefined) own += op.n;
    if (this.backlog.pendingEntries - own < AHEAD_TRAIL) return;
    for (const op of ops) {
      if (op.t !== "columns" || op.n < AHEAD_MIN) continue;
      try {
        this.tiers.get(op.tier)?.columns?.encodeAhead?.(op.cols);
      } catch {
        // Only an optimization: columns it failed on cross as they are (walFrameCodec's changes nothing until done).
      }
    }
  }

  private postMessage(ops: Op[], transfers: ArrayBuffer[], epoch = this.epoch): void {
    if (this.deathError || epoch !== this.epoch) return;
    if (!ops.some((op) => "id" in op)) return this.postWrites(ops, transfers);
    const message: RequestsMessage = { type: REQUESTS_MESSAGE, ops };
    try {
      this.port.postMessage(message, transfers);
      this.portPosts++;
    } catch (err) {
      this.splitUnsendable(ops, err); // a value structured clone cannot carry: nothing was sent
      return;
    }
    // One ResultsMessage answers it (onResults); a lost actor rejects the waiters instead (die).
    this.inFlightMessages++;
    this.hold();
  }

  private onPortMessage(m: unknown, epoch: number): void {
    if (isResultsMessage(m)) this.onResults(m, epoch);
    else if (isRefusedMessage(m) && epoch === this.epoch) {
      // The actor posted it after the answers waiting for the turn's end: told after them, in the actor's order.
      if (this.deferred !== undefined) this.deferred.push(m);
      else this.tellRefused(m);
    }
  }

  private tellRefused(m: RefusedMessage): void {
    this.tiers.get(m.tier)?.refusals.notify(m.key, deserializeError(m.error));
  }

  /**
   * Takes the answers and refusals the actor posted before it ended that this thread has not received yet. The end
   * of the actor's task arrives on piscina's port, which may be read before the messages the actor posted earlier
   * on this one: a flush the actor answered (stored) was then rejected as shut down (a false loss report).
   * Messages on one port arrive in posting order, and a message is on its port once posted, so every answer posted
   * before the task ended is here. comlink's answers are left: their calls race the actor's death anyway.
   */
  private takePosted(epoch: number): void {
    for (let m = receiveMessageOnPort(this.port); m !== undefined; m = receiveMessageOnPort(this.port)) {
      this.onPortMessage(m.message, epoch);
    }
  }

  /**
   * A batch's answers. One carrying a failure (not a refusal) while no final error was heard is settled at the end of
   * this event-loop turn, with every answer after it: the actor reports its backend's end (the "error" event marked
   * final, on the event sink's port) before it answers the flush that met it, yet this thread may read the answers'
   * port first (both pending in one turn). Settled after the sink's message, such a flush rejects with the final
   * error itself (`heardAs`) and its caller (an attach pair) knows at its first answer that the store ended.
   */
  private onResults(m: ResultsMessage, epoch: number): void {
    if (epoch !== this.epoch) return;
    this.inFlightMessages--;
    this.release(epoch);
    if (this.deferred !== undefined) return void this.deferred.push(m); // in order behind the one waiting
    if (this.finalHeard === undefined && m.results.some((r) => !r.ok && r.refusal !== true)) {
      this.deferred = [m];
      setImmediate(() => {
        if (epoch === this.epoch) this.settleDeferred(); // else die() settled them
      });
      return;
    }
    this.settleResults(m);
  }

  /**
   * Settles the answers `onResults` deferred, and tells the refusals that came behind them, in order (also at a
   * death, `now`, before the waiters left hear it). A refusal behind an answer settled here is told a turn later,
   * with what came after it (still deferred meanwhile): the answer's callers hear it in the promise jobs that run
   * once this turn's code returns, and a listener told here, synchronously, would hear the refusal before them,
   * as it never does when each message is read alone (task 321).
   */
  private settleDeferred(now = false): void {
    const deferred = this.deferred;
    if (deferred === undefined) return;
    let i = 0;
    for (; i < deferred.length; i++) {
      const m = deferred[i]!;
      if (isResultsMessage(m)) this.settleResults(m);
      else if (!now && i > 0 && isResultsMessage(deferred[i - 1]!)) break;
      else this.tellRefused(m);
    }
    if (i === deferred.length) {
      this.deferred = undefined;
      return;
    }
    this.deferred = deferred.slice(i);
    const epoch = this.epoch;
    setImmediate(() => {
      if (epoch === this.epoch) this.settleDeferred(); // else die() settled them
    });
  }

  private settleResults({ results, errors }: ResultsMessage): void {
    for (const r of results) {
      const w = this.waiting.get(r.id);
      if (!w) continue;
      this.waiting.delete(r.id);
      if (r.ok) w.resolve({ value: r.value, bytes: r.bytes });
      else if (r.refusal) w.reject(markRefusalReport(deserializeError(r.error)));
      else w.reject(this.heardAs(r.error));
    }
    for (const e of errors) this.report(deserializeError(e));
  }

  /**
   * `s` as an error of this thread: the final error heard (`finalHeard`, the object noteFinalError marked) when `s`
   * is a copy of it, else a new one. A copy is told by all it carries: name, code, message and stack (the stack is
   * the worker object's, made once: a backend keeps one finalError object, bff3629).
   */
  private heardAs(s: SerializedError): Error {
    const f = this.finalHeard?.from;
    if (f !== undefined && f.name === s.name && f.code === s.code && f.message === s.message && f.stack === s.stack) return this.finalHeard!.err;
    return deserializeError(s);
  }

  /**
   * Writes alone need no answer (their failures reach the tier's next flush and onError): one plain message, no
   * comlink call, nothing to receive. The answer was most of a paced write's main-thread cost (docs/design.md §3.22).
   */
  private postWrites(ops: Op[], transfers: ArrayBuffer[]): void {
    if (this.ring !== undefined && transfers.length === 0 && this.toRing(this.ring, ops)) return;
    this.postWritesMessage(ops, transfers);
  }

  /** The writes as one unanswered message (postWrites once the ring took none of them). */
  private postWritesMessage(ops: Op[], transfers: ArrayBuffer[], more = false): void {
    try {
      // Packing inside the try: a batch it refuses (an internal fault) is refused through the tiers, never thrown
      // into the promise chain that sends it.
      this.port.postMessage(packWrites(ops, more) satisfies WritesMessage, transfers);
      this.portPosts++;
    } catch (err) {
      this.splitUnsendable(ops, err); // a value structured clone cannot carry: nothing was sent
    }
  }

  /**
   * Writes a paced turn's writes-only batch to the turn ring, and says whether it did: not a burst, nor an op but
   * puts and columns, nor a tier whose codec is not built in, nor a value the ring has no encoding for (then structured clone carries or refuses it, and
   * splitUnsendable decides as before), nor a full ring (bounded memory: the message path takes it). A value that
   * throws while encoded (a getter) is what a message that failed to clone is: splitUnsendable finds and refuses it,
   * reading each value as often as it would have.
   */
  private toRing(slot: TurnRingSlot, ops: Op[]): boolean {
    if (ops.length > RING_MAX_OPS) return false;
    let writes = 0;
    for (const op of ops) {
      if (op.t !== "puts" && op.t !== "columns") return false;
      // Only values a built-in (JSON) codec encodes: the ring does not keep what JSON drops anyway (objects shared
      // by two places are written twice, an array's own non-index properties are left out), which a module codec in
      // the worker may see.
      if (this.tiers.get(op.tier)?.spec.codec.kind !== "builtin") return false;
      writes += op.n;
    }
    if (writes > RING_MAX_WRITES) return false;
    const ring = slot.writer ?? this.takeRing(slot);
    if (ring === undefined) return false; // the engine's ring budget is held by other stores: a message
    try {
      return ring.tryWrite(ops as RingOp[], this.portPosts);
    } catch (err) {
      this.splitUnsendable(ops, err);
      return true;
    }
  }

  /**
   * Takes a ring from the engine's ledger and hands it to the actor by a message on its port: the actor drains it
   * from that message on, and every record written here after it counts that message (ring-drain.ts hostRings).
   */
  private takeRing(slot: TurnRingSlot): TurnRingSlot["writer"] {
    const sab = slot.take();
    if (sab === undefined) return undefined;
    try {
      this.port.postMessage({ type: RING_MESSAGE, ring: sab } satisfies RingMessage);
      this.portPosts++;
    } catch {
      slot.give(); // not handed over (the port closed): nothing was written to it
      return undefined;
    }
    return slot.writer;
  }

  /**
   * Gives the store's ring back to the engine's ledger, telling the actor by a message (it applies the ring's records
   * before that message, then lets go of the ring and marks it released). The next paced write takes one again.
   */
  giveRingBack(): void {
    if (this.ring?.holding !== true) return;
    if (this.deathError === undefined && this.isReady) {
      try {
        this.port.postMessage({ type: RING_MESSAGE } satisfies RingMessage);
        this.portPosts++;
      } catch {
        // The port closed: the actor is going, and its end marks the ring released (or its loss reports the records).
      }
    }
    this.ring.give();
  }

  /** The engine's sweep: a ring that took no record since the previous sweep, all read, goes back (task 209). */
  sweepRing(): void {
    if (this.ring?.idle() === true) this.giveRingBack();
  }

  /** The current actor's turn rings' counts (undefined when the engine's rings are off): for stats and tests. */
  ringCounts(): TurnRingCounts | undefined {
    return this.ring?.counts();
  }

  /**
   * Finds the ops that cannot be cloned (failure path only) and resends the rest in order, each refused write
   * replaced by a refusal of its tier (its next flush rejects, onError hears it once: the tier's own mechanism).
   * Watcher configs always cross: configureCommitWatcher sends its structured-clone copy.
   */
  private splitUnsendable(ops: Op[], cause: unknown): void {
    const sendable: Op[] = [];
    // The resent writes travel unweighed: this message's weight is taken back whole.
    for (const op of ops) if ("w" in op && op.w !== undefined) this.backlog.unpost(op.w, op.n ?? 0);
    const each = ops.flatMap((op) => onePutEach(unweighed(op), this.tiers.get(op.tier)?.columns));
    for (const op of each) {
      // Only a lone write is known to be the one refused; the columns of one tier's puts are one op but many writes.
      const problem = each.length === 1 ? cause : cloneProblem(op);
      if (problem === undefined) sendable.push(op);
      else if ("id" in op) this.fail(op, sendError(problem));
      else {
        const err = sendError(problem);
        sendable.push(refusal(op.tier, err));
        this.tiers.get(op.tier)?.refusals.notify(refusedKeyOf(op), err);
      }
    }
    if (sendable.length === 0) return;
    // Every op clones alone yet the message did not (its size): one message each, so this cannot recur.
    if (sendable.length === each.length && each.length > 1) for (const op of sendable) this.postMessage([op], []);
    else this.postMessage(sendable, []);
  }

  /**
   * Refuses a write on the main thread (e.g. a value the worker codec could never take), in order with the others.
   * `w`: what the refusal weighs until the actor took it (its error crosses): a flood of refused values meets
   * backpressure as writes do.
   */
  refuse(tier: number, err: Error, w?: number, key?: string): void {
    this.post(refusal(tier, err, w));
    this.tiers.get(tier)?.refusals.notify(key, err);
  }

  /** A tier's refusal watch (BaseStorageTier.watchRefusals): hears refusals made here and those the actor sends. */
  watchRefusals(tier: number, prefix: string, listener: RefusalListener): () => void {
    const rec = this.tiers.get(tier);
    if (rec === undefined) return new RefusalWatchers().add(prefix, listener); // closed: checked, hears nothing
    return rec.refusals.add(prefix, listener);
  }

  private fail(op: Op, err: Error): void {
    if (!("id" in op)) {
      // A write whose message was lost: its tier must hear it. A dead actor fails every later flush anyway.
      if (this.alive && !this.closing) this.refuse(op.tier, err, undefined, refusedKeyOf(op));
      return;
    }
    const w = this.waiting.get(op.id);
    this.waiting.delete(op.id);
    w?.reject(err);
  }

  /** Every comlink call goes through here: it keeps the port referenced while answers are due and fails fast on death. */
  private call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.deathError) return Promise.reject(this.deathError);
    const epoch = this.epoch;
    this.hold();
    const settle = (): void => this.release(epoch);
    const answer = fn();
    answer.catch(() => undefined); // an answer arriving after the actor's death (which won the race) is nobody's
    const p = Promise.race([answer, this.death]);
    p.then(settle, settle);
    return p;
  }

  /** An answer is due: the port keeps the process alive (and the watchdog watches) until it came. */
  private hold(): void {
    if (this.outstanding++ === 0) this.port.ref();
  }

  private release(epoch: number): void {
    if (epoch === this.epoch && --this.outstanding === 0) this.port.unref();
  }

  /** Read from the shared counters: answers at once however long the actor's backlog is. */
  stats(): ActorStats {
    const c = this.counters;
    return {
      pendingEntries: this.backlog.pendingEntries,
      pendingBytes: this.backlog.pendingBytes,
      flushes: c.get("flushes"),
      failedFlushes: c.get("failedFlushes"),
      flushAttempts: c.get("flushAttempts"),
      failing: c.get("failingTiers"),
      flushLatencyP50Ms: latency(c.get("flushP50Us")),
      flushLatencyP99Ms: latency(c.get("flushP99Us")),
      bytesWritten: c.get("bytesWritten"),
      writes: c.get("writes"),
      lastError: this.lastError,
    };
  }

  async runJob(name: string, args: unknown): Promise<unknown> {
    this.assertAlive();
    // A job holds the store open while it runs; after, the actor says whether it left state there (shutdownIfIdle).
    this.jobs++;
    this.active();
    try {
      await this.ready;
      await this.flushQueue();
      return await this.call(() => this.remote.runJob(name, args));
    } finally {
      // The store's last job on a store with no tier: an idle store shuts down, as after its last tier's close, and
      // the job settles after (a caller reading the engine's stats next sees the store gone).
      if (--this.jobs === 0 && this.tiers.size === 0) await this.whenIdle();
    }
  }

  /**
   * Shuts the store down when nothing uses it any more (task 215: an engine kept every store it ever opened, its
   * actor, SQLite handles and lock, until engine.close()): no open tier, no job running, nothing queued, sent and
   * unanswered or accepted and not committed, and the actor holds no state a new one would not have (task 223: it
   * answers holdsState, in mailbox order: a commit watcher's rule or pin, a job's that may have left some; the engine
   * reads no config). Kept open whatever the actor says: a memory store and a PostgreSQL store (see below). The engine
   * forgets a shut-down store (hooks.onGone); a tier opened later on it opens it again, in a new actor. Resolves
   * once decided (and shut down: its failure goes to onError); undefined when kept at once.
   */
  /**
   * The store may have become idle (its last tier closed, its last job ended, a config sent through no tier): with
   * the engine's idleStoreCloseMs 0 it is shut down now if idle (see shutdownIfIdle; resolves once decided), else
   * once it stayed unused that long (review r231 F4: a job or a tier per request on an otherwise unused store paid
   * a new actor and a SQLite open each time, 30 ms a compaction instead of 7). Any activity meanwhile cancels the
   * wait; the engine's close does not wait for it (it shuts every store down).
   */
  private whenIdle(): Promise<void> | undefined {
    if (this.idleCloseMs <= 0) return this.shutdownIfIdle();
    if (!this.idle() || !Number.isFinite(this.idleCloseMs)) return undefined;
    clearTimeout(this.idleTimer);
    // Unref'd: a store waiting to be shut down does not keep the process alive (nor does an idle one today).
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      void this.shutdownIfIdle();
    }, this.idleCloseMs);
    this.idleTimer.unref();
    return undefined;
  }

  /** Ops taken or a job asked for: counted (see shutdownIfIdle), and a wait to shut the store down ends. */
  private active(): void {
    this.activity++;
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
  }

  private shutdownIfIdle(): Promise<void> | undefined {
    if (!this.idle()) return undefined;
    // Never a memory store: its data lives in the actor. Nor PostgreSQL (task 220): a tier reopening it meanwhile
    // would wait on the old actor's lease, untested.
    if (this.store.kind === "memory" || this.store.kind === "postgres") return undefined;
    const asked = this.activity;
    const report = (err: unknown): void => this.report(err instanceof Error ? err : new Error(String(err)));
    return this.call(() => this.remote.holdsState()).then(
      (holds) => {
        // Anything taken meanwhile (a tier opened, a config, a job) is newer than the answer: its own end asks again.
        if (holds || this.activity !== asked || !this.idle()) return undefined;
        return this.shutdown().catch(report);
      },
      (err: unknown) => {
        // A lost actor held nothing a new one would get (no tier is open to replay configs through): shut down.
        if (err === this.deathError && this.idle()) return this.shutdown().catch(report);
        report(err); // kept open: whether it holds state is unknown
        return undefined;
      },
    );
  }

  /**
   * Sends a commit-watcher config to the store's actor through no tier: for a caller whose tier closed meanwhile
   * (attach's dispose taking its fold rule back after its WAL tier's close began: the rule kept the store open with
   * no tier for good, review r231 F1). In order with everything taken before; kept for a new actor as any config.
   * Nothing is sent once the store shuts down (its actor goes, and what configs set with it). With no tier open
   * and no job running the store may be idle once it is taken: resolves once that was decided.
   */
  async configureWatcherOfStore(watcher: string, key: string, config: unknown): Promise<void> {
    if (this.closing || this.finalError !== undefined) return;
    this.post({ t: "configure-watcher", tier: NO_TIER, watcher, key, config });
    if (this.tiers.size > 0 || this.jobs > 0) return; // the last tier's close (job's end) asks
    await this.flushQueue();
    await this.ready.catch(() => undefined); // sent (a send waiting on ready posts first)
    await this.whenIdle();
  }

  /** Nothing uses the store: no open tier or running job, nothing queued, sent and unanswered or not committed. */
  private idle(): boolean {
    if (this.closing || this.finalError !== undefined) return false;
    if (this.tiers.size > 0 || this.jobs > 0) return false;
    if (this.queue.length > 0 || this.waiting.size > 0 || this.heldFlushes > 0) return false;
    return this.backlog.pendingEntries === 0 && this.backlog.pendingBytes === 0;
  }

  /** Sends this tick's ops now (so a following direct call is ordered after them). */
  private flushQueue(): Promise<void> {
    if (this.queue.length > 0) this.send();
    return Promise.resolve();
  }

  /**
   * Posts a message outside the protocol on the actor's port once the actor answered ready(), ahead of ops still
   * queued. Only a test's worker entry acts on one (fault drills); the production entry ignores unknown messages.
   */
  async postRaw(message: unknown): Promise<void> {
    this.assertAlive();
    await this.opened();
    if (this.alive) {
      this.port.postMessage(message);
      this.portPosts++;
    }
  }

  /**
   * The watchdog's question: answers are due and the worker's heartbeat has not moved for `boundMs` (for a new
   * worker that never beat yet, at least STARTUP_GRACE_MS). Answers are due while a call waits, and also while
   * posted writes are not settled or drained() has waiters: writes are posted without an answer, and a producer
   * waiting for room waits on the actor as a caller does (review s13a F1). An idle actor holding debounced writes
   * is no stall: its heartbeat timer beats. Reads shared counters: no message, no timer. Called every round.
   */
  stalled(now: number, boundMs: number): boolean {
    this.watchBeat(now);
    if (!this.due(now)) return false;
    return now - this.progressAt >= (this.beating ? boundMs : Math.max(boundMs, STARTUP_GRACE_MS));
  }

  /**
   * Answers are due and the actor's task, handed to the pool `boundMs` ago, has not begun (no heartbeat yet): it
   * may be queued on a thread whose event loop is blocked (piscina hands tasks to a blocked worker too). Call after
   * stalled() in a round.
   */
  waitingToStart(now: number, boundMs: number): boolean {
    return !this.beating && this.due(now) && now - this.progressAt >= boundMs;
  }

  /** This actor's worker beat before and has not for `boundMs`: its thread's event loop stands still. */
  quiet(now: number, boundMs: number): boolean {
    return this.alive && this.beating && now - this.beatAt >= boundMs;
  }

  private watchBeat(now: number): void {
    const beat = this.counters.get("heartbeat");
    if (beat === this.seenBeat) return;
    this.seenBeat = beat;
    this.beating = true;
    this.beatAt = now;
    this.progressAt = now;
  }

  /** Whether the watchdog waits on this actor now (else the wait restarts: `progressAt`). */
  private due(now: number): boolean {
    const due =
      this.alive &&
      now >= this.startedAt && // a restart delay or the old worker's termination: nothing runs yet
      (this.outstanding > 0 || this.backlog.waiting || this.backlog.pendingBytes > 0);
    if (!due) this.progressAt = now;
    return due;
  }

  /** The worker thread of the current actor, known from its start (before it answered anything); undefined if none yet. */
  get thread(): number | undefined {
    return this.counters.get("threadId") || this.threadId;
  }

  /** Like die(), and the next actor starts only once `terminated` settled (the old worker is gone from the pool). */
  lose(err: Error, terminated: Promise<unknown>): void {
    this.restartGate = terminated.catch(() => undefined);
    this.die(err);
  }

  /**
   * Settles once this connection's last actor is off its thread: the termination a loss waits for (restartGate) and
   * the actor's hosting task, if it started; or once close gave up on the store (abandon). The engine starts a new
   * connection's actor for a store it forgot after this (engine.ts `released`): the store released at once after a
   * close its unopened actor answered (releaseUnreached) may still have that actor's thread in a native open.
   */
  ended(): Promise<void> {
    const task = Number.isFinite(this.startedAt) ? this.task.catch(() => undefined) : undefined;
    return Promise.race([Promise.all([this.restartGate, task]).then(() => undefined), this.abandoned]);
  }

  /** The next actor starts only once `terminated` settled (a thread its current task may be queued on is being ended). */
  startAfter(terminated: Promise<unknown>): void {
    this.restartGate = terminated.catch(() => undefined);
  }

  /** Close gave up on this store (its deadline passed): it is lost for good (the pool's destroy ends its worker). */
  abandon(err: Error): void {
    if (!this.drainAnswered) this.drainVoid ??= err; // a drain it cuts short stored nothing it can vouch for
    this.closing = true;
    this.endDelay?.();
    this.resolveAbandoned(); // shutdown() stops waiting for the hosting task (its thread may be blocked)
    this.die(err);
  }

  /** Whether `tier` is open in this store (a close that settled, even reporting a refusal, closed it). */
  hasTier(tier: number): boolean {
    return this.tiers.has(tier);
  }

  /**
   * Drains everything durably and stops the actor (releases the store lock). Idempotent. `engineClose`: called by
   * the engine's close(), which the store's end then names (details.reason "engine-closed", engine-gone.ts), also
   * when it joins a shutdown begun before: no caller takes it for a tier its owner closed (task 334).
   */
  shutdown(engineClose = false): Promise<void> {
    if (engineClose) this.engineClosing = true;
    this.drain ??= this.shutdownOnce().finally(() => void (this.drainEnded = true));
    this.drain.catch(() => undefined);
    return this.drain;
  }

  /** Settles as shutdown() does (resolved when it was never called). */
  drained(): Promise<void> {
    return this.drain ?? Promise.resolve();
  }

  /**
   * Settles as `tier`'s part of the drain did: a tier that drained cleanly resolves although another tier's failed
   * the store's drain; any failure not known to be another tier's alone rejects. Also once the drain ended (a flush
   * or close called after it, task 299): every write the tier took was taken before it (nothing is taken once
   * `closing`), so a clean drain stored them. A drain that stored nothing it can vouch for (`drainVoid`), or none
   * at all (abandon() without one), rejects with why.
   */
  async drainedFor(tier: number): Promise<void> {
    if (this.drain === undefined) {
      if (this.closing) throw this.drainVoid ?? this.finalError ?? this.closingError();
      return;
    }
    try {
      await this.drain;
    } catch (err) {
      const own = this.tierDrainErrors?.get(tier);
      if (own !== undefined) throw own;
      if (this.tierDrainErrors === undefined) throw err;
    }
    if (this.drainVoid !== undefined) throw this.drainVoid;
  }

  /**
   * Backpressure's wait (backlog.ts drained) of `tier`. The store's end while the close drains it rejects the
   * backlog's waiters (die()), often before their 5 ms poll saw the room the drain made: such a wait settles as the
   * tier's part of the drain (drainedFor), resolved when the drain stored the tier's writes, rejected with why when
   * it dropped them or failed (task 337).
   */
  drainedRoom(tier: number, weight?: number): Promise<void> {
    return this.backlog.drained(weight).catch((err: unknown) => {
      if (err !== this.deathError || !this.closing || this.drain === undefined) throw err;
      return this.drainedFor(tier);
    });
  }

  /**
   * A flush of `tier` (named `name`) called once the store is closing: every write it covers went to the drain.
   * During the drain, its outcome (drainedFor). After it (task 299): resolved when the drain stored the tier's
   * writes; rejected with a refusal's report as it was, with why the drain stored nothing it can vouch for (an
   * abandon's close-timeout, a final error from before), and otherwise with `closed` carrying the tier's drain
   * failure: a closed tier takes no retry, and nothing calls its writes refused. `details.reason` "drain-failed" says
   * so to a caller that words its own report (attach's pair: its write is not acknowledged, the drain failed, task 307).
   */
  flushedByDrain(tier: number, name: string): Promise<void> {
    if (!this.drainEnded) return this.drainedFor(tier);
    return this.drainedFor(tier).catch((err: unknown) => {
      if (err === this.drainVoid || isRefusalReport(err) || (err instanceof StorageError && err.code === "closed")) throw err;
      throw new StorageError(
        "closed",
        `storage tier "${name}" is closed: the close of store ${this.key} could not store its writes (${errorMessage(err)})`,
        { tier: name, store: this.key, reason: "drain-failed" },
        err,
      );
    });
  }

  private async shutdownOnce(): Promise<void> {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.finalError) {
      this.drainVoid ??= this.finalError; // given up before: nothing drains (close() itself resolves, as before)
      return;
    }
    // Writes a failed open left unwritten: a new actor tries the store once more, and the drain answers for them.
    if (this.deathError && this.kept !== undefined) this.revive();
    this.closing = true;
    this.endDelay?.(); // a revival waiting out its backoff starts now: the drain must not wait for it
    if (this.deathError) {
      // The actor was lost and not replaced: nothing waits in a worker, but lost writes must still be heard.
      this.finalError = this.shutDown();
      this.hooks.onGone(this);
      for (const rec of this.tiers.values()) if (rec.lost) throw rec.lost;
      return;
    }
    await this.ready;
    await this.flushQueue();
    let drainFailure: { error: unknown } | undefined;
    const readTierErrors = (result: unknown): void => {
      if (isHostActorResult(result) && result.tierErrors !== undefined) {
        // A tier whose close reported a refusal (its writes settled) stays a refusal's report on this side too.
        this.tierDrainErrors = new Map(result.tierErrors.map(([id, e, refusal]) => [id, refusal === true ? markRefusalReport(deserializeError(e)) : deserializeError(e)]));
      }
    };
    try {
      await this.call(() => this.remote.shutdown());
      this.drainAnswered = true;
    } catch (err) {
      const death: unknown = this.deathError; // set by die() while this call waited
      if (err !== death) {
        this.drainAnswered = true;
        drainFailure = { error: err }; // a tier's drain failed; the actor ends anyway
      } else if (err instanceof StorageError && err.code === "closed") {
        // The hosting task ended before the answer arrived (another port): its result says how the drain ended.
        const result: unknown = await this.taskEnd();
        // No result (close gave up waiting, or the task failed): how the drain ended is unknown.
        if (!isHostActorResult(result)) this.drainVoid ??= err;
        else this.drainAnswered = true;
        readTierErrors(result);
        if (isHostActorResult(result) && result.drainError !== undefined) throw deserializeError(result.drainError);
        return;
      } else throw err;
    }
    readTierErrors(await this.taskEnd()); // the hosting task returns once the actor released the store
    this.die(this.shutDown()); // now, not a few ticks later: calls after close() resolved fail with closed
    if (drainFailure !== undefined) throw drainFailure.error;
  }

  /**
   * The hosting task's result, or undefined once close gave up on the store: a thread blocked after the actor's
   * answer never ends the task, and only the pool's destroy, after close's deadline, would (review s13a F3).
   */
  private taskEnd(): Promise<unknown> {
    return Promise.race([this.task.catch(() => undefined), this.abandoned.then(() => undefined)]);
  }

  private shutDown(): StorageError {
    if (!this.engineClosing) return new StorageError("closed", `store actor for ${this.key} shut down`, { store: this.key });
    return new StorageError("closed", `store actor for ${this.key} shut down: the storage engine closed`, { store: this.key, reason: "engine-closed" });
  }

  private onEvent(e: ActorEvent): void {
    if (e.type === "configured") {
      // The watcher said config e.seq replaces the key's earlier ones: a new actor needs it and those after it only.
      // Refused (the watcher threw, changing nothing): that config alone goes.
      const key = `${e.watcher}\n${e.key}`;
      const sent = this.watcherConfigs.get(key);
      if (sent === undefined) return;
      if (e.refused === true) {
        const at = sent.findIndex((c) => c.seq === e.seq);
        if (at >= 0) sent.splice(at, 1);
        return;
      }
      const kept = sent.filter((c) => c.seq === undefined || c.seq >= e.seq);
      if (kept[0]?.seq === e.seq) this.replacingConfigs.add(kept[0]);
      this.watcherConfigs.set(key, kept);
      return;
    }
    if (e.type === "recovered") this.hooks.onRecovered?.({ store: this.store, ...(e.tier !== undefined ? { tier: e.tier } : {}) });
    else {
      const err = e.final === true ? this.heardAs(e.error) : deserializeError(e.error);
      if (e.final === true) {
        this.finalHeard ??= { err, from: e.error };
        // The worker's finalError arrives as a new object: noted here, so a wait for room that meets it (later
        // writes throw this very object: proxies.ts) knows the store's writes ended, whatever its code (r279 F1).
        noteFinalError(err);
        this.backlog.end(err); // before onError hears it: a handler's save throws it
      }
      this.report(err, e.tier);
    }
  }

  /** Tells onError (the engine's hooks) about `err` of this store, and keeps it as the store's last error. */
  report(err: Error, tier?: string): void {
    this.lastError = `${(err as { code?: string }).code ?? err.name}: ${err.message}`;
    this.hooks.onError(err, { store: this.store, ...(tier !== undefined ? { tier } : {}) });
  }

  /**
   * Writes after shutdown() began throw at once: they would reach the actor after it closed its tiers. An actor
   * that was lost is replaced here, so the operation goes to a new one.
   */
  private assertAlive(): void {
    if (this.finalError) throw this.finalError;
    if (this.closing) throw this.closingError();
    if (this.deathError) this.revive();
  }

  /**
   * A new actor for the store, its mailbox starting with: every open tier reopened (same ids), the watcher configs
   * in the order they were sent, and for each tier whose writes were lost unreported a refusal, so its next flush
   * rejects with why.
   */
  private revive(): void {
    clearTimeout(this.reviveTimer);
    this.reviveTimer = undefined;
    this.start();
    for (const [tier, rec] of this.tiers) this.request({ t: "open", tier, spec: rec.spec }).catch(() => undefined);
    // After every open; a config whose tier closed since, or sent through none, too: the actor takes a config
    // whatever its tier (it is the store's), also with no tier open (a job's revival).
    for (const config of [...this.watcherConfigs.values()].flat()) this.queue.push(config);
    for (const [tier, rec] of this.tiers) {
      // Kept until this actor opened: one that cannot (a PostgreSQL lease the dead worker still holds) would take
      // the refusal with it, and a caller retrying its flush until it resolves would never hear of the loss.
      if (rec.lost) {
        const op = refusal(tier, rec.lost);
        this.reviveRefusals.add(op);
        this.queue.push(op);
      }
    }
    // The writes the last actor never took (its open failed): after the reopen, before anything newer. Already
    // weighed (die() counted them again) and copied (a value is read at the end of its turn).
    const kept = this.kept;
    this.kept = undefined;
    if (kept === undefined) return;
    for (const op of kept.ops) if (this.tiers.has(op.tier)) this.queue.push(op);
    this.transfers.push(...kept.transfers);
  }

  /**
   * Another writer held the store between a lost actor and its replacement (its open failed with not-owner,
   * held-meanwhile): final, as a lost lease. That writer may have written the keys this connection's tiers count on
   * (attach's next frame seqs), and what the store holds says nothing of their unacknowledged writes: every call on
   * them fails with `err`, their watchers hear it (an attach pair stops above its acknowledged seq without reading
   * the store), and the engine forgets the connection, so tiers opened later open the store again.
   */
  private fence(err: Error, epoch: number): void {
    const tiers = [...this.tiers.values()];
    this.finalError = err;
    this.die(err, epoch);
    this.backlog.end(err); // writes throw it; drained() resolves (nothing will drain)
    this.tiers.clear(); // a tier's close then closes it, rejecting once with err (as after a lost lease)
    for (const rec of tiers) rec.refusals.notify(undefined, err);
  }

  private closingError(): StorageError {
    return new StorageError("closed", `storage engine is closing store ${this.key}`, { store: this.key, reason: "engine-closed" });
  }

  /**
   * The actor (of `epoch`, default the current one) is gone: every waiting promise rejects with `err`, and the
   * writes it held unacknowledged are marked lost for their tiers' next flush. While closing (or after the actor
   * shut down) this is final; otherwise the next operation starts a new actor.
   */
  die(err: Error, epoch = this.epoch): void {
    if (epoch !== this.epoch || this.deathError) return;
    this.takePosted(epoch); // answers posted before the end are answers, not losses
    this.settleDeferred(true); // and so are those waiting for the turn's end (onResults): settled now, in order
    this.deathError = err;
    this.rejectDeath(err);
    this.backlog.fail(err);
    this.taken(this.queue); // never sent: lost as well, unless kept below
    // Nothing is posted to an actor before it answered ready() (see `send`): one lost before that (its open
    // failed, or its worker ended first) took none of these writes (the queue's are not copied yet: keep() does).
    const untaken = this.isReady ? [] : [...this.unposted, { ops: this.queue, transfers: this.transfers, copy: true }];
    this.unposted = [];
    this.queue = [];
    this.transfers = [];
    this.untakenAtDeath = untaken; // a close it rejects counts its tier's writes among them (unreachedWrites)
    for (const w of this.waiting.values()) w.reject(err);
    this.untakenAtDeath = [];
    this.waiting.clear();
    // No message: the actor is gone. One that shut down marked its rings released (reused), but for a handover it
    // never read (dropped); a lost one's are dropped.
    if (err instanceof StorageError && err.code === "closed") this.ring?.ended();
    else this.ring?.lost();
    this.letGo();
    if (this.closing || this.finalError !== undefined || (err instanceof StorageError && err.code === "closed")) {
      this.finalError ??= err;
      this.kept = undefined; // the store is given up: close() and later calls fail with why
      clearTimeout(this.reviveTimer);
      this.reviveTimer = undefined;
      this.hooks.onGone(this);
      return;
    }
    // A young death delays the next actor's start (see HEALTHY_LIFETIME_MS); one that died before it started is young.
    this.diedAt = Date.now();
    this.youngDeaths = this.diedAt - this.startedAt < HEALTHY_LIFETIME_MS ? this.youngDeaths + 1 : 0;
    if (!this.isReady && this.tenure !== undefined) {
      // Never took an op: no write was lost with it. Its writes go to the next actor (revive), weighed as before
      // (a flush that covered them rejected with why and leaves them pending, as one failing in a living actor).
      // A loss found earlier and not reported yet stays (`rec.lost`: revive queues its refusal again).
      // Only after a hold of this connection (`tenure`): the next actor reopens following it, so another writer
      // in between is found (held-meanwhile, fenced) before a kept write could land over its acknowledged ones.
      // With no earlier hold (the first open failed: store-locked by another process) nothing would find it:
      // those writes are reported lost below, as any a lost actor took (review r302 F2).
      this.keep(untaken);
      this.flushesLost.clear();
      for (const rec of this.tiers.values()) rec.dirty = false;
      if (this.kept !== undefined) this.reviveLater();
      this.releaseUnreached();
      return;
    }
    // Writes lost with this actor: those not covered by a flush, and those a flush in flight covered (its caller
    // hears the crash; other writers of the tier must too). Also when an earlier loss is still unreported (an
    // actor revived meanwhile could not open): these writes are lost as well.
    const losing = new Set(this.flushesLost);
    this.flushesLost.clear();
    for (const rec of this.tiers.values()) {
      if (rec.dirty) {
        rec.lost ??= lostWrites(err, this.key, rec.spec.name);
        losing.add(rec);
      }
      rec.dirty = false;
    }
    // Which writes were lost is unknown: every watcher of those tiers hears it (and checks the store).
    for (const rec of losing) rec.refusals.notify(undefined, rec.lost ?? lostWrites(err, this.key, rec.spec.name));
    if (err instanceof StorageError && (err.code === "worker-crashed" || err.code === "worker-unresponsive")) {
      this.hooks.onError(err, { store: this.store });
    }
    this.releaseUnreached();
  }

  /** Writes of `tier` no actor took: kept over a lost actor, or untaken by the one dying now (untakenAtDeath). */
  private unreachedWrites(tier: number): number {
    let n = 0;
    for (const batch of [...(this.kept !== undefined ? [this.kept] : []), ...this.untakenAtDeath]) {
      for (const op of batch.ops) if (!("id" in op) && op.tier === tier) n += writesIn(op);
    }
    return n;
  }

  /**
   * After a tier's close that an actor unable to open the store answered (`closedUnreached`): with no tier open and
   * no job running, the store is shut down now (nothing drains: no actor holds it) and the engine forgets it; a tier
   * opened later opens it afresh. Before, it stayed with its revivals, ring and record until engine.close().
   */
  private releaseUnreached(): void {
    if (!this.closedUnreached) return;
    this.closedUnreached = false;
    if (this.tiers.size > 0 || this.jobs > 0 || this.closing || this.finalError !== undefined) return;
    clearTimeout(this.reviveTimer);
    this.reviveTimer = undefined;
    this.kept = undefined; // only a closed tier's writes were kept, and keep() takes none of those
    this.giveRingBack();
    void this.shutdown().catch((err: unknown) => this.report(err instanceof Error ? err : new Error(String(err))));
  }

  /**
   * Starts the next actor at the young-death backoff (start() waits out what remains of it) when kept writes are
   * waiting and nothing else revives the store: the documented loop save → backpressure → drained() starts no
   * actor, and the kept writes' weight would hold drained() for good (review r302 F1). Each failed reopen dies
   * here again and schedules the next try, with a longer backoff; an actor that opens stores the kept writes, and
   * close(), a final error or any operation's revive() clears the timer.
   */
  private reviveLater(): void {
    clearTimeout(this.reviveTimer);
    const wait = Math.max(0, this.diedAt + restartDelay(Math.max(1, this.youngDeaths)) - Date.now());
    this.reviveTimer = setTimeout(() => {
      this.reviveTimer = undefined;
      if (this.deathError === undefined || this.kept === undefined) return; // revived meanwhile
      if (this.closing || this.finalError !== undefined) return;
      this.revive();
    }, wait);
    this.reviveTimer.unref();
  }

  /**
   * Keeps the writes of batches no actor took for the next one (`kept`): not requests (their callers heard the
   * failure), nor watcher configs (revive replays every config), nor refusals a revive queued (it queues them again).
   */
  private keep(batches: Array<{ ops: Op[]; transfers: ArrayBuffer[]; copy?: boolean }>): void {
    const ops: Op[] = this.kept?.ops ?? [];
    const transfers: ArrayBuffer[] = this.kept?.transfers ?? [];
    for (const batch of batches) {
      if (batch.copy === true) copyValues(batch.ops); // a value is read at the end of its turn: kept past it, copied
      for (const op of batch.ops) {
        if ("id" in op || op.t === "configure-watcher" || this.reviveRefusals.has(op)) continue;
        if (!this.tiers.has(op.tier)) continue; // a tier closed meanwhile (its close said why): no actor will take it
        ops.push(op);
        if ("w" in op && op.w !== undefined) this.backlog.add(op.w, op.n ?? 0); // backlog.fail() dropped it
      }
      transfers.push(...batch.transfers);
    }
    this.kept = ops.length > 0 ? { ops, transfers } : undefined;
  }

  /**
   * Lets go of the lost actor's port: closed, its listeners (they hold this connection) removed, and comlink's proxy
   * of it released. comlink's finalization registry holds a port's endpoint until every proxy of it is released or
   * collected, and this connection held the proxy: a closed engine's connections, with their tiers' records and
   * watchers, stayed reachable for the process's life (review s14 J). Nothing uses the proxy after: call() rejects
   * on a dead actor before touching it (a released proxy throws), and a revived actor gets a proxy of its own.
   */
  private letGo(): void {
    this.port.close();
    this.port.removeAllListeners();
    this.releaseRemote(); // after close: comlink's release message goes nowhere (the actor is gone)
    // The event sink's port: comlink closes it only once the actor's thread lets go of its proxy, which a worker that
    // outlives its actor (a failed open ends the task, the pool thread stays) did whenever it happened to collect it.
    closeServed(this.sink);
  }
}

/** An actor's open refused because another writer held the store since the actor it replaces (see `fence`). */
function heldMeanwhile(err: Error): boolean {
  return err instanceof StorageError && err.code === "not-owner" && err.details.reason === "held-meanwhile";
}

/** What a failure says, to tell a repeat (tellOpenFailure): its code and message, and its cause's. */
function describeFailure(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as { code?: unknown }).code;
  return `${e.name} ${typeof code === "string" ? code : ""}: ${e.message}${e.cause !== undefined ? ` <- ${describeFailure(e.cause)}` : ""}`;
}

/** The delay before the next actor of a store whose last `youngDeaths` actors died young. */
function restartDelay(youngDeaths: number): number {
  return Math.min(RESTART_DELAY_MAX_MS, RESTART_DELAY_MIN_MS * 2 ** Math.min(youngDeaths - 1, 20));
}

/** Microseconds in the counters, milliseconds in stats (0: no flush yet). */
function latency(us: number): number | undefined {
  return us === 0 ? undefined : us / 1000;
}

/**
 * Why a tier's unacknowledged writes are gone: with a lost worker, StorageError("worker-crashed"); when the actor
 * could not open the store (e.g. a full disk), that reason itself.
 */
function lostWrites(cause: Error, store: string, tier: string | undefined): Error {
  if (!(cause instanceof StorageError) || (cause.code !== "worker-crashed" && cause.code !== "worker-unresponsive")) return cause;
  return new StorageError(
    "worker-crashed",
    `writes to tier "${tier ?? "?"}" of store ${store} that no flush had acknowledged were lost with the store's worker: ${cause.message}`,
    { store, ...(tier !== undefined ? { tier } : {}) },
    cause,
  );
}

function refusal(tier: number, err: Error, w?: number): Op {
  return { t: "refuse", tier, error: serializeError(err), ...(w !== undefined ? { w, n: 0 } : {}) };
}

/** Columnar puts are split back into single puts (`columns`: the tier's transport), so one unclonable value refuses only itself. */
function onePutEach(op: Op, columns: ColumnarTransport<unknown> | undefined): Op[] {
  if (op.t === "puts") return op.keys.map((key, i) => ({ t: "put" as const, tier: op.tier, key, value: op.values[i] }));
  if (op.t === "columns" && columns !== undefined) {
    return op.keys.map((key, i) => ({ t: "put" as const, tier: op.tier, key, value: columns.at(op.cols, i) }));
  }
  return [op];
}

/**
 * Replaces the values `ops` carry by structured-clone copies, as posting would make them: all in one clone, so
 * values sharing an object still share its copy, as they would in the message. Only when that fails, one by one,
 * so a value that cannot be copied stays as it is (posting refuses it later, as usual) and the others are copied.
 */
function copyValues(ops: Op[]): void {
  const held = ops.map((op) => ("value" in op ? op.value : "values" in op ? op.values : "entries" in op ? op.entries : "cols" in op ? op.cols : undefined));
  let copies: unknown[];
  try {
    copies = structuredClone(held);
  } catch {
    copyEachValue(ops);
    return;
  }
  ops.forEach((op, i) => {
    if (held[i] === undefined) return;
    if ("value" in op) op.value = copies[i];
    else if ("values" in op) op.values = copies[i] as unknown[];
    else if ("entries" in op) op.entries = copies[i] as typeof op.entries;
    else if ("cols" in op) op.cols = copies[i];
  });
}

function copyEachValue(ops: Op[]): void {
  for (const op of ops) {
    if ("value" in op && op.value !== undefined) op.value = copied(op.value);
    if ("values" in op) op.values = op.values.map(copied);
    if ("entries" in op && op.entries !== undefined) op.entries = copied(op.entries);
    if ("cols" in op) op.cols = copied(op.cols);
  }
}

function copied<T>(value: T): T {
  try {
    return structuredClone(value);
  } catch {
    return value; // left for postMessage to refuse
  }
}

/** `op` weighing nothing: the actor settles what an op weighs, and a resent op's weight was taken back. */
function unweighed(op: Op): Op {
  return "w" in op && op.w !== undefined ? { ...op, w: 0, n: 0 } : op;
}

function cloneProblem(op: Op): unknown {
  try {
    structuredClone(op);
    return undefined;
  } catch (err) {
    return err;
  }
}

/** A message the port could not carry (a value structured clone rejects) is a codec failure of that tick's writes. */
function sendError(err: unknown): Error {
  if (err instanceof StorageError || err instanceof CodecError) return err;
  // DataCloneError, or a RangeError from a value nested too deep for structured clone: the value cannot cross.
  return new CodecError("encode-failed", `a value could not be sent to the store's worker: ${errorMessage(err)}`, {}, err);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** How a tier's codec is named in a refusal: a worker codec module by its specifier and export. */
function codecLabel(spec: CodecSpec): string {
  return spec.kind === "module" ? `${spec.specifier}#${spec.exportName}` : spec.kind === "builtin" ? spec.name : "main-thread codec";
}

/** How many writes `op` carries (a put, a run of puts, appended entries); 0 for anything else. */
function writesIn(op: Op): number {
  switch (op.t) {
    case "put":
      return 1;
    case "puts":
    case "columns":
      return op.keys.length;
    case "append":
      return "counts" in op ? op.counts.reduce((a, b) => a + b, 0) : op.count;
    default:
      return 0;
  }
}

/**
 * A tier's close answered by an actor that could not open the store (`err`, its failure): the tier is closed for
 * good all the same, dropping `dropped` writes no actor took. Said so (details.tierClosed, droppedWrites), where a
 * close that failed in a living actor leaves the tier open (task 334). `lost`: writes an earlier actor took
 * unacknowledged were lost with it, not reported yet (details.lostWrites, named in the message; review r338 F2).
 */
function tierClosedUnreached(err: Error, tier: string | undefined, dropped: number, lost: Error | undefined): Error {
  const droppedText = dropped > 0 ? `, dropping ${dropped} write${dropped === 1 ? "" : "s"} no actor stored` : "";
  const named = tier !== undefined ? `storage tier ${JSON.stringify(tier)}` : "the storage tier";
  const lostText = lost !== undefined ? `; before that, ${lost.message}` : "";
  const message = `${err.message}; ${named} is closed all the same${droppedText} (the store could not be opened)${lostText}`;
  const details = {
    ...(tier !== undefined ? { tier } : {}),
    tierClosed: true,
    droppedWrites: dropped,
    ...(lost !== undefined ? { lostWrites: true } : {}),
  };
  if (!(err instanceof StorageError)) return new StorageError("closed", message, details, err);
  return new StorageError(err.code, message, { ...err.details, ...details }, err);
}
