/**
 * The store actor: lives in a worker thread and is the only writer of one store. It owns the backend
 * connection, the tier cores (pending buffers, debounce timers, cadence), encoding + checksums, and runs
 * every op in mailbox order, so two flushes of one store can never interleave. This file is the mailbox, the op
 * dispatch and tier open/close; the counters live in actor-stats.ts, policies on what was committed in the commit
 * watchers the worker entry registers (commit-watchers.ts), and jobs run by name (jobs.ts).
 */
import { nextTurn } from "../base/promises.js";
import { threadId } from "node:worker_threads";
import { memoryBackend } from "../backend/memory.js";
import { fileBackend, reopenFileBackend } from "../backend/file.js";
import { reopenSqliteBackend, sqliteBackend } from "../backend/sqlite.js";
import { carriedTenure, carryTenure } from "../backend/reopen.js";
import { checkpointBeside } from "./side-checkpoint.js";
import type { StorageBackend } from "../backend/types.js";
import { followsHold, writerTenure } from "../backend/tenure.js";
import { openPostgresStore, publicStoreSpec } from "./postgres-store.js";
import { CodecError, StorageError, deserializeError as deserializeFromWire, serializeError } from "../errors.js";
import { AppendLogCore } from "../tier/append-log.js";
import { KvCore } from "../tier/kv.js";
import { SnapshotCore } from "../tier/snapshot.js";
import { isPermanent, type TierCore } from "../tier/core.js";
import { isRefusalReport } from "../tier/refusal-watchers.js";
import type { Codec } from "../codec/types.js";
import { Encoded } from "../codec/bytes.js";
import { codecFailure, decodeWith } from "../codec/user-codec.js";
import { resolveCodec } from "./codecs.js";
import { GroupCommit, MAX_HELD_PUTS } from "./group-commit.js";
import { StoreFlushGroup } from "./flush-group.js";
import { ActorStats } from "./actor-stats.js";
import type { ActorJob, ActorJobContext } from "./jobs.js";
import { ConsistentReads } from "./consistent-reads.js";
import { CommitWatchers, isRetryableJobFailure, type CommitWatcherDefinition, type WatcherJobOutcome } from "./commit-watchers.js";
import {
  type ActorApi,
  type ClosedWithRefusal,
  type ActorEvent,
  type ActorOptions,
  type ApplyResult,
  type HostActorResult,
  type Op,
  type OpResult,
  REFUSED_MESSAGE,
  refusedKeyOf,
  type RefusedMessage,
  type ScanPage,
  type StoreSpec,
  type TierSpec,
} from "./protocol.js";

type AnyCore = SnapshotCore<unknown> | KvCore<unknown> | AppendLogCore<unknown>;

interface TierEntry {
  core: AnyCore;
  /** undefined: the codec runs on the main thread and values travel as bytes. */
  codec: Codec<unknown> | undefined;
}

/**
 * `progress`: called during long synchronous backend work, so the engine's watchdog sees a busy thread as alive.
 * `reopen`: the actor replaces a lost one that held the store (`options.tenureAfter`): a SQLite or file store must be
 * there, nothing is created (backend/reopen.ts): one moved aside meanwhile fails store-moved, a failure that may pass
 * (the connection opens it again at the next operation), instead of an empty store made at its path (review r287 F2).
 * A PostgreSQL writer's reopen creates no table either: tables gone fail it with not-owner, held-meanwhile (final).
 * `lockDir`: the lost writer's lock directory identity (backend/reopen.ts carriedTenure), to tell a directory made
 * again from a SQLite store's files moved aside (review r298 F1).
 */
export async function openBackend(
  store: StoreSpec,
  synchronous: ActorOptions["synchronous"],
  progress?: () => void,
  reopen = false,
  lockDir?: string,
): Promise<StorageBackend> {
  switch (store.kind) {
    case "sqlite":
      return reopen
        ? reopenSqliteBackend(store.path, { synchronous, readOnly: store.readOnly === true }, lockDir)
        : sqliteBackend(store.path, { synchronous, readOnly: store.readOnly === true });
    case "file":
      return (reopen ? reopenFileBackend : fileBackend)(store.dir, { readOnly: store.readOnly === true, ...(progress ? { onProgress: progress } : {}) });
    case "memory":
      return memoryBackend({ name: `memory:${store.name}` });
    case "postgres":
      return openPostgresStore(store, reopen);
  }
}

/**
 * An actor replacing a lost one (`options.tenureAfter`) whose open found that another writer held the store since
 * (backend/tenure.ts): that writer may have written over the keys the lost actor's callers count on (attach's frame
 * seqs), so the store is lost for them as with a lost lease. The hold is given back (a PostgreSQL lease released, the
 * lock let go) before the open fails with not-owner, `details.reason` "held-meanwhile" (docs/design.md §3.20).
 */
async function refuseHeldMeanwhile(backend: StorageBackend, options: ActorOptions): Promise<void> {
  const tenure = writerTenure(backend);
  const last = options.tenureAfter === undefined ? undefined : carriedTenure(options.tenureAfter).hold;
  if (last === undefined || tenure === undefined || followsHold(tenure, last)) return;
  try {
    await backend.close?.(); // only the hold to give back: nothing was written through it
  } catch {
    // The refusal is what the main thread must hear; a hold not given back lapses (or goes with the thread).
  }
  throw new StorageError(
    "not-owner",
    `another writer held store ${backend.name} after this engine's actor for it was lost (its hold ${last}, the hold before the new one ${tenure.after ?? "none"}): what the store holds may not be this engine's writes, and its tiers opened before write no more; open them again (and restore) to continue`,
    { reason: "held-meanwhile", lastHold: last, ...(tenure.after !== undefined ? { holdBefore: tenure.after } : {}) },
  );
}

export class StoreActor implements ActorApi {
  private backend: StorageBackend | undefined;
  /** Why the backend could not be opened (ready() rejects with it; undefined: opened or still opening). */
  private openError: { error: unknown } | undefined;
  /** Settles when the backend is open or failed to open (a PostgreSQL store connects and takes its lease). */
  private readonly opening: Promise<void>;
  private readonly tiers = new Map<number, TierEntry>();
  /** Why a tier could not be opened: later ops on it fail with that reason, not "not open". */
  private readonly failedOpens = new Map<number, unknown>();
  private mailbox: Promise<unknown> = Promise.resolve();
  private sink: ((e: ActorEvent) => void) | undefined;
  /** Where the tiers' refusals go by key (the store's port: ahead of flush answers); see `refusalHeard`. */
  private refusalSink: ((m: RefusedMessage) => void) | undefined;
  /**
   * Refusals sent by key per tier since the last message taken (or turn: a timer's flush refuses outside any): past
   * REFUSALS_BY_KEY one keyless notice stands for the rest.
   */
  private readonly refusalsSent = new Map<number, number>();
  private readonly stats: ActorStats;
  private readonly watchers: CommitWatchers;
  private shuttingDown = false;
  /**
   * Jobs asked for and not yet ended, each settling a turn after its outcome (so a job its watcher starts on that
   * outcome is in here by then): shutdown lets them end first.
   */
  private readonly jobsInFlight = new Set<Promise<void>>();
  /** A job that may leave state in the actor ran (see holdsState). */
  private jobLeftState = false;
  /** Explicit flushes of one run over the queued messages share a commit (flush-group.ts); undefined: each commits alone. */
  private flushGroup: StoreFlushGroup | undefined;
  private readonly groupCommit = new GroupCommit(() => this.flushGroup?.commit());
  private readonly consistentReads = new ConsistentReads();
  private resolveClosed!: () => void;
  /** Resolves when the actor shut down; the hosting piscina task returns then. */
  readonly closed = new Promise<void>((r) => (this.resolveClosed = r));
  /**
   * Why shutdown() rejected (a tier's final drain, the backend's close), for the hosting task to return too: its
   * answer and the task's end travel on different ports, and the task's end may arrive first.
   */
  private drainError: unknown;
  /** Each tier's own drain failure, and whether the store's own close failed too (see HostActorResult). */
  private readonly tierDrainErrors: Array<readonly [number, unknown]> = [];
  private backendCloseFailed = false;

  /** What the hosting task returns once the actor closed: how shutdown()'s drain ended. */
  hostResult(): HostActorResult {
    if (this.drainError === undefined) return { closed: true };
    const drainError = serializeError(this.drainError);
    if (this.backendCloseFailed) return { closed: true, drainError };
    return { closed: true, drainError, tierErrors: this.tierDrainErrors.map(([id, err]) => [id, serializeError(err), isRefusalReport(err)] as const) };
  }

  constructor(
    private readonly options: ActorOptions,
    private readonly jobs: ReadonlyMap<string, ActorJob> = new Map(),
    watchers: readonly CommitWatcherDefinition<unknown>[] = [],
  ) {
    this.stats = new ActorStats(options.counters, (tier) => this.emit({ type: "recovered", tier }));
    this.watchers = new CommitWatchers(
      watchers,
      { options, runJob: (name, args, subject) => this.runWatcherJob(name, args, subject), report: (err, subject) => this.emitError(err, subject) },
      (err) => this.emitError(err, undefined),
    );
    const after = options.tenureAfter === undefined ? undefined : carriedTenure(options.tenureAfter);
    this.opening = openBackend(options.store, options.synchronous, () => this.stats.progressed(), after !== undefined, after?.lockDir)
      .then(async (backend) => {
        await refuseHeldMeanwhile(backend, options);
        try {
          checkpointBeside(backend, options.store, options.checkpointer, options.synchronous);
        } catch (err) {
          // Never fails the open: without the thread the writer checkpoints inline, as an inline store does.
          this.emitError(err instanceof Error ? err : new Error(String(err)), undefined);
        }
        this.backend = backend;
        this.flushGroup = StoreFlushGroup.for(backend, () => this.stats.committedGroup());
      })
      .catch((error: unknown) => void (this.openError = { error }));
    this.mailbox = this.opening; // ops and jobs that arrive meanwhile wait for the backend
    void this.closed.then(() => this.stats.retire());
  }

  async ready(): Promise<{ threadId: number; tenure?: string }> {
    await this.opening;
    if (!this.openError) {
      const tenure = this.backend && writerTenure(this.backend);
      // The hold's id and, beside it, the lock directory's identity the replacing actor's reopen checks.
      return { threadId, ...(tenure && this.backend ? { tenure: carryTenure(this.backend, tenure.id) } : {}) };
    }
    // Answer first, then end the hosting task: the main thread must learn the real reason (e.g. store-locked).
    setImmediate(() => this.resolveClosed());
    throw this.openError.error;
  }

  setEventSink(sink: (e: ActorEvent) => void): void {
    this.sink = sink;
  }

  /** The worker entry's: posts a tier's refusal to the main thread on the store's port (protocol.ts RefusedMessage). */
  setRefusalSink(sink: (m: RefusedMessage) => void): void {
    this.refusalSink = sink;
  }

  /**
   * A tier of this actor refused a write (not one the main thread refused: those its watchers heard there). Sent at
   * once, so it precedes the answer of the flush that reports it; a flood is bounded per message (or turn) and tier
   * (past the bound, one notice of unknown keys: every watcher of the tier hears it and checks the store).
   */
  private refusalHeard(tier: number, key: string | undefined, err: Error): void {
    if (this.refusalSink === undefined) return;
    const sent = this.refusalsSent.get(tier) ?? 0;
    if (sent > REFUSALS_BY_KEY) return;
    if (this.refusalsSent.size === 0) setImmediate(() => this.refusalsSent.clear());
    this.refusalsSent.set(tier, sent + 1);
    const byKey = sent < REFUSALS_BY_KEY;
    try {
      this.refusalSink({ type: REFUSED_MESSAGE, tier, key: byKey ? key : undefined, error: serializeError(err) });
    } catch {
      // the main thread is gone; nothing to report to
    }
  }

  /** Ops run strictly in arrival order; flush completion is awaited outside the mailbox. */
  apply(ops: Op[]): Promise<ApplyResult> {
    const done = this.enqueue(() => this.applyInOrder(ops));
    return done.then(async ({ settled, errors }) => ({ results: await Promise.all(settled), errors }));
  }

  /**
   * A batch of writes the main thread posted without waiting for an answer (docs/design.md §3.22): applied in
   * mailbox order as `apply` does; what `apply` would answer as errors reaches the main thread as events.
   */
  applyWrites(ops: Op[]): void {
    this.enqueue(() => this.applyInOrder(ops)).then(
      ({ errors }) => {
        for (const error of errors) this.sink?.({ type: "error", error, tier: undefined });
      },
      (err: unknown) => this.emitError(err instanceof Error ? err : new Error(String(err)), undefined),
    );
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.mailbox.then(task, task);
    this.mailbox = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async applyInOrder(ops: Op[]): Promise<{ settled: Promise<OpResult>[]; errors: ApplyResult["errors"] }> {
    // A new message's writes were made after the main thread heard every notice sent so far: their refusals must be
    // heard afresh, even within the turn that sent an earlier notice of unknown keys (review s12g).
    this.refusalsSent.clear();
    // A message taken is progress: a backlog of queued messages runs before any timer (§3.28), so the event loop's
    // heartbeat alone would stand still for all of it and the watchdog take a busy worker for a hung one (s13a F4).
    this.stats.progressed();
    const first = this.groupCommit.messageTaken((ops as { more?: true }).more === true) === 1;
    let flushes = false;
    const settled: Promise<OpResult>[] = [];
    const errors: ApplyResult["errors"] = [];
    for (let at = 0; at < ops.length; at++) {
      const op = ops[at]!;
      // Joined flushes commit before anything but a write or a flush: an op that reads, waits or ends a transaction
      // (a rollback discards only what no flush took) finds them committed, as it would had each committed alone.
      if (!JOINING.has(op.t)) this.flushGroup?.commit();
      try {
        if (op.t === "open") {
          const opened = this.result(
            op.id,
            this.openTier(op.tier, op.spec).catch((err: unknown) => {
              this.failedOpens.set(op.tier, err);
              throw err;
            }),
          );
          await opened; // later ops of this message may use the tier
          settled.push(opened);
          continue;
        }
        if (op.t === "configure-watcher") {
          // A config is the store's, not its tier's: one sent once its tier closed (attach's dispose releasing its
          // fold rule after a close, review r231 F1) or with no tier open is applied as well.
          this.configureWatcher(op);
          continue;
        }
        const entry = this.tier(op.tier);
        const core = entry.core as unknown as TierCore<unknown>;
        this.groupCommit.beforeOp(op.t, core);
        if (op.t === "puts" || op.t === "columns") {
          this.putEach(op, entry);
          this.groupCommit.afterPuts(op.keys.length, op.open === true);
          continue;
        }
        const loads = op.t === "load" && core instanceof KvCore ? keyedLoads(ops, at) : 1;
        if (loads > 1) {
          // A run of loads of one kv tier (a restore asks for hundreds per message): read together, answered each.
          const run = ops.slice(at, at + loads) as Array<Extract<Op, { t: "load" }>>;
          const kv = core as unknown as KvCore<unknown>;
          const keys = run.map((l) => l.key!);
          const results = entry.codec
            ? kv.loadMany(keys).map((p, i) => this.result(run[i]!.id, p))
            : kv.loadManyBytes(keys).map((p, i) => this.bytesResult(run[i]!.id, p));
          // Reads finish before the next op starts, as one load's would.
          await Promise.all(results);
          settled.push(...results);
          at += loads - 1;
          continue;
        }
        if (op.t === "flush") flushes = true;
        const r = this.applyOne(op, entry);
        // A refusal holds nothing once taken: its weight (the error that crossed) is settled now.
        if ("w" in op && op.w !== undefined) {
          if (op.t === "refuse") this.stats.settled(op.w, 0);
          else if (ownWeight(op, entry.core) === undefined) core.weigh(op.w, op.n ?? 0); // else the record holds it
        }
        // A main-thread codec's saves cross as one put each, appends as one op per call: they fill a turn's hold too.
        if (op.t === "put") this.groupCommit.afterPuts(1, op.open === true);
        else if (op.t === "append") this.groupCommit.afterPuts("counts" in op ? op.counts.reduce((a, b) => a + b, 0) : op.count);
        // Joined flushes hold their batches' values until committed: bounded as a turn's held writes are (§3.28).
        if (op.t === "flush" && this.flushGroup !== undefined && this.flushGroup.held >= MAX_HELD_PUTS) this.flushGroup.commit();
        // Reads and deletes finish before the next op starts; flush completion does not block the mailbox.
        if (r) {
          if (op.t === "flush" || op.t === "close" || op.t === "compact") settled.push(r);
          else {
            await r.catch(() => undefined);
            settled.push(r);
          }
        }
      } catch (err) {
        // A write that never reached a tier is settled now: the main thread's backlog must not count it forever.
        if ("w" in op && op.w !== undefined) this.stats.settled(op.w, op.n ?? 0);
        if ("id" in op) settled.push(Promise.resolve(failure(op.id, err)));
        else {
          // A write refused when applied (e.g. a key the backend can never store) is a refusal of its tier;
          // on a tier that is not open, its next flush fails with the same reason anyway.
          const core = this.tiers.get(op.tier)?.core;
          if (core) core.refuse(err instanceof Error ? err : new Error(String(err)), undefined, refusedKeyOf(op));
          else errors.push(serializeError(err));
        }
      }
    }
    // The group spans the messages taken in this run over the port and commits at its end (group commit's turn end),
    // before any op that is not a write or a flush, and at the bound (flush-group.ts). Except after the turn's first
    // message, when it has flushes: nothing says more messages are queued, and a lone writer's flush answered a turn
    // later took ~40 µs more per round trip (bench/flush-group.ts --paced --memory). A backlog's later messages share
    // the turn's end: a run commits at most twice.
    if (first && flushes) this.flushGroup?.commit();
    return { settled, errors };
  }


  /**
   * The puts of one tier in one tick, each a write of its own (as the separate saves they were): a put the tier
   * refuses for good (a key the backend can never store) is refused alone and the others are taken, as inline. The
   * refused puts' share of the op's weight is acknowledged now, the rest when committed. A tier that takes no
   * write at all (closed, read-only) throws at the first put, before any is taken: the caller refuses the op whole.
   * Past the first put, any failure is that put's alone.
   */
  private putEach(op: Extract<Op, { t: "puts" | "columns" }>, { core, codec }: TierEntry): void {
    const tier = asRecordTier(core);
    // The main thread sends columns only for a codec declaring them (codecs.ts findColumns): this same codec.
    tier.assertWritable(); // before any put is taken or refused: the caller refuses the op whole
    const valueAt = op.t === "puts" ? (i: number) => op.values[i] : columnValues(op.cols, op.keys.length, codec!, tier);
    if (tier instanceof SnapshotCore && op.n === op.keys.length) return this.putRecords(op, tier, valueAt);
    let refused = 0;
    for (let i = 0; i < op.keys.length; i++) {
      try {
        const value = valueAt(i);
        if (value instanceof Refused) {
          core.refuse(value.error, undefined, op.keys[i]);
          refused++;
          continue;
        }
        tier.put(op.keys[i]!, value);
      } catch (err) {
        if (i === 0 && !isPermanent(err)) throw err;
        core.refuse(err instanceof Error ? err : new Error(String(err)), undefined, op.keys[i]);
        refused++;
      }
    }
    // A resent op weighs nothing (n = 0, its weight was taken back when it was first lost): nothing to settle.
    const refusedWeighed = Math.min(refused, op.n);
    const share = refusedWeighed === 0 ? 0 : Math.round((op.w * refusedWeighed) / op.n);
    if (refusedWeighed > 0) this.stats.settled(share, refusedWeighed);
    core.weigh(op.w - share, op.n - refusedWeighed);
  }

  /**
   * `putEach` on a snapshot tier: each record holds its share of the op's weight (one entry), settled when it is
   * written, replaced, dropped or not put back by a failed write (snapshot.ts `release`), not with the next batch
   * taken: the main thread's backlog and stats().pendingEntries count only the records pending (task 283).
   */
  private putRecords(
    op: Extract<Op, { t: "puts" | "columns" }>,
    tier: SnapshotCore<unknown>,
    valueAt: (i: number) => unknown,
  ): void {
    for (let i = 0; i < op.keys.length; i++) {
      // Shares that sum to op.w exactly (the main thread sends only the op's total).
      const w = Math.round((op.w * (i + 1)) / op.n) - Math.round((op.w * i) / op.n);
      try {
        const value = valueAt(i);
        if (value instanceof Refused) tier.refuse(value.error, undefined, op.keys[i]);
        else if (tier.put(op.keys[i]!, value, w)) continue;
      } catch (err) {
        if (i === 0 && !isPermanent(err)) throw err; // nothing taken or settled yet: the caller refuses the op whole
        tier.refuse(err instanceof Error ? err : new Error(String(err)), undefined, op.keys[i]);
      }
      this.stats.settled(w, 1); // refused: it holds nothing
    }
  }

  private applyOne(op: Exclude<Op, { t: "open" | "puts" | "columns" }>, entry: TierEntry): Promise<OpResult> | undefined {
    const { core, codec } = entry;
    switch (op.t) {
      case "put": {
        const value = op.bytes ?? op.value;
        const w = ownWeight(op, core);
        if (w === undefined) asRecordTier(core).put(op.key, value);
        else if (!(core as SnapshotCore<unknown>).put(op.key, value, w)) this.stats.settled(w, 1); // refused
        return undefined;
      }
      case "append": {
        const log = asLog(core);
        if ("buckets" in op) {
          // All or nothing (a refused bucket throws before any takes entries): the caller refuses the call whole.
          if (op.bytes) {
            const { bytes, ends } = op;
            log.appendEncodedGroups(
              op.buckets.map((bucket, i) => ({ bucket, bytes: bytes.subarray(ends![i - 1] ?? 0, ends![i]), count: op.counts[i]! })),
            );
          } else log.appendGroups(new Map(op.buckets.map((bucket, i) => [bucket, op.entries![i]!])));
        } else if (op.bytes) log.appendEncoded(op.bucket, op.bytes, op.count);
        else log.append(op.bucket, op.entries ?? []);
        return undefined;
      }
      case "rollback":
        core.rollback();
        return undefined;
      case "discard":
        if (core instanceof SnapshotCore) core.discard(op.key);
        return undefined;
      case "refuse":
        core.refuseHeard(deserializeFromWire(op.error)); // its watchers heard it on the main thread
        return undefined;
      case "configure-watcher":
        this.configureWatcher(op);
        return undefined;
      case "flush":
        return this.result(op.id, (op.pending ? core.writePending() : core.flushJoining()).then(() => null));
      case "compact":
        return this.result(op.id, core.compact().then(() => null));
      case "close": {
        // A close that reports a refusal still closed the tier (it answers so); one whose write failed left it open,
        // unless the backend writes no more (its final error: the tier closed, dropping what it could not store).
        const closed = core.close().then(
          () => null,
          (err: unknown): ClosedWithRefusal => {
            if (!core.isClosed) throw err;
            return { closedWithRefusal: serializeError(err), ...(this.isFinal(err) ? { final: true as const } : {}) };
          },
        );
        return this.result(
          op.id,
          closed.finally(() => {
            if (core.isClosed) this.retire(op.tier);
          }),
        );
      }
      case "load":
        if (core instanceof SnapshotCore) {
          if (op.head === true && codec) return this.result(op.id, core.loadHead(op.key));
          return codec ? this.result(op.id, core.load(op.key)) : this.bytesResult(op.id, core.loadBytes(op.key));
        }
        if (core instanceof KvCore) {
          if (op.key === undefined) throw new TypeError("kv load needs a key");
          return codec ? this.result(op.id, core.load(op.key)) : this.bytesResult(op.id, core.loadBytes(op.key));
        }
        throw new TypeError("load on an append-log tier");
      case "loadEntries": {
        const log = asLog(core);
        if (codec) return this.result(op.id, log.loadEntries(op.opts));
        // The keys travel with the bytes (as the value): the main thread's decode names the one that fails.
        return log.loadSegments(op.opts?.keyFilter).then(
          ({ segments, keys }) => ({ id: op.id, ok: true as const, bytes: segments, value: keys }),
          (err: unknown) => failure(op.id, err),
        );
      }
      case "delete":
        return this.result(op.id, asKv(core).delete(op.key).then(() => null));
      case "deleteMany":
        return this.result(op.id, asKv(core).deleteMany(op.keys).then(() => null));
      case "list":
        return this.result(op.id, asKv(core).list(op.prefix));
      case "changes":
        return this.result(op.id, asKv(core).changeCounter());
      case "sizes":
        return this.result(op.id, asKv(core).sizes(op.keys));
      case "consistent":
        return this.result(
          op.id,
          op.token === undefined ? this.consistentReads.begin(this.requireBackend(), op.tier) : this.consistentReads.end(op.token),
        );
      case "settle": {
        const backend = this.requireBackend();
        const settle = backend.readOnly === true ? backend.settleBatches?.bind(backend) : undefined;
        return this.result(op.id, settle === undefined ? Promise.resolve(null) : settle().then(() => null));
      }
      case "scan":
        return this.result(op.id, scanPage(asKv(core), codec, op.prefix, op.after, op.limit));
    }
  }

  private async openTier(id: number, spec: TierSpec): Promise<null> {
    const backend = this.requireBackend();
    if (this.tiers.has(id)) throw new StorageError("invalid-argument", `tier id ${id} already open`);
    const codec = await resolveCodec(spec.codec);
    const common = {
      name: spec.name,
      debounceMs: spec.debounceMs,
      compactEvery: spec.compactEvery,
      ...(spec.retry !== undefined ? { retry: spec.retry } : {}),
      onError: (err: Error) => this.emitError(err, spec.name),
    };
    const passthrough = codec ?? bytesCodec;
    let core: AnyCore;
    if (spec.kind === "snapshot") core = new SnapshotCore<unknown>(backend, passthrough, common);
    else if (spec.kind === "kv") core = new KvCore<unknown>(backend, passthrough, common);
    else core = new AppendLogCore<unknown>(backend, codec as Codec<readonly unknown[]> | undefined, { ...common, mode: spec.mode, layout: spec.layout });
    // The main thread bounds the store's backlog (it weighs each write it posts); the actor acknowledges.
    core.selfWeighing = false;
    core.maxPendingBytes = undefined;
    core.flushGroup = this.flushGroup;
    // A timer's flush is a flush called when it fires: after the ops of the messages taken by then (core.ts).
    core.timedFlushes = (flush) => void this.enqueue(async () => flush());
    this.stats.observe(core as unknown as TierCore<unknown>, spec.name, (batch) => this.watchers.committed(batch));
    this.tiers.set(id, { core, codec });
    core.watchRefusals("", (key, err) => this.refusalHeard(id, key, err));
    return null;
  }

  private retire(id: number): void {
    this.tiers.delete(id);
    this.consistentReads.endTier(id); // its readers can no longer end them through it
  }

  private tier(id: number): TierEntry {
    const t = this.tiers.get(id);
    if (!t) {
      if (this.failedOpens.has(id)) throw this.failedOpens.get(id);
      throw new StorageError("closed", `tier ${id} is not open in this store actor`);
    }
    return t;
  }

  private requireBackend(): StorageBackend {
    if (!this.backend) {
      throw new StorageError("closed", "store actor is shut down", { store: JSON.stringify(publicStoreSpec(this.options.store)) });
    }
    return this.backend;
  }

  private result(id: number, p: Promise<unknown>): Promise<OpResult> {
    return p.then(
      (value) => ({ id, ok: true as const, value }),
      (err: unknown) => failure(id, err),
    );
  }

  private bytesResult(id: number, p: Promise<Uint8Array | Uint8Array[] | undefined>): Promise<OpResult> {
    return p.then(
      (bytes) => ({ id, ok: true as const, bytes }),
      (err: unknown) => failure(id, err),
    );
  }

  private emitError(err: Error, tier: string | undefined): void {
    this.stats.errorReported();
    // A lost lease: the main thread refuses writes from now on.
    this.emit({ type: "error", error: serializeError(err), tier, ...(this.isFinal(err) ? { final: true as const } : {}) });
  }

  /**
   * Whether `err` is the backend's final error (StorageBackend.finalError): the very object the backend states, which
   * it keeps once set (a PostgreSQL writer keeps its first loss). Not by code: another error sharing it (a commit
   * watcher's own not-owner, a refusal's in-doubt copy of the loss) is no statement of the backend's that it writes
   * no more, and marked final it would end the store's writes on the main thread with its wording (review r253).
   */
  private isFinal(err: unknown): boolean {
    const fin = this.backend?.finalError;
    return fin !== undefined && err === fin;
  }

  private emit(event: ActorEvent): void {
    try {
      this.sink?.(event);
    } catch {
      // the main thread is gone; nothing to report to
    }
  }

  runJob(name: string, args: unknown): Promise<unknown> {
    let result: Promise<unknown> | undefined;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const started = this.enqueue(async () => {
      const job = this.jobs.get(name);
      if (!job) throw new StorageError("invalid-argument", `no job "${name}" is registered in the store actor`);
      const ctx: ActorJobContext = {
        backend: this.requireBackend(),
        flushAll: () => this.flushAll(),
        release,
        exclusive: (step) => {
          release(); // a step queued behind its own job, still holding the mailbox, would never run
          return this.enqueue(() => this.holdingFlushes(step));
        },
      };
      // Counted before it runs: a job that fails may have left part of its state.
      if (job.leavesState !== false) this.jobLeftState = true;
      result = job(ctx, args);
      // The mailbox moves on when the job ends or releases it (jobs.ts: a fold reads beside the store's flushes).
      await Promise.race([result, released]);
    });
    const outcome = started.then(() => result);
    const ended = outcome.then(nextTurn, nextTurn);
    this.jobsInFlight.add(ended);
    void ended.then(() => this.jobsInFlight.delete(ended));
    return outcome;
  }

  /** Hands a config to its commit watcher; a failure is reported (not the tier's fault: the tier keeps working). */
  private configureWatcher(op: Extract<Op, { t: "configure-watcher" }>): void {
    try {
      // The watcher's answer travels back only when it lets the engine forget earlier configs of the key.
      if (this.watchers.configure(op.watcher, op.key, op.config) && op.seq !== undefined) {
        this.emit({ type: "configured", watcher: op.watcher, key: op.key, seq: op.seq });
      }
    } catch (err) {
      // Refused: the engine need not replay it to a new actor (kept, it took a place of the key's bounded list).
      if (op.seq !== undefined) this.emit({ type: "configured", watcher: op.watcher, key: op.key, seq: op.seq, refused: true });
      this.emitError(err instanceof Error ? err : new Error(String(err)), this.tiers.get(op.tier)?.core.name);
    }
  }

  /**
   * In mailbox order, so the configs and jobs before it count: a watcher holding state a config set, or a job that
   * ran here and may have left some (ActorJob.leavesState), keeps the store open when its last tier closed.
   */
  holdsState(): Promise<boolean> {
    return this.enqueue(() => Promise.resolve(this.jobLeftState || this.watchers.holds()));
  }

  /** A job a commit watcher asked for: its failure is reported here, so the watcher need not catch. */
  private runWatcherJob(name: string, args: unknown, subject: string | undefined): Promise<WatcherJobOutcome> {
    return this.runJob(name, args).then(
      (value) => ({ ok: true, value }),
      (err: unknown) => {
        // A job that started after the shutdown closed the backend is no failure to report; any other is, shutdown or not.
        const closedUnder = this.shuttingDown && err instanceof StorageError && err.code === "closed";
        if (!closedUnder) this.emitError(err instanceof Error ? err : new Error(String(err)), subject);
        return { ok: false, retryable: isRetryableJobFailure(err) };
      },
    );
  }

  /**
   * Runs `step` with every tier's flushes held: they run outside the mailbox (debounce and retry timers, the end of
   * a group-commit turn), so a mailbox step alone would not keep a tier's write of a value the step read from
   * landing between the step's read and its write (a fold's baseline, on an asynchronous backend).
   */
  private holdingFlushes<T>(step: () => Promise<T> | T): Promise<T> {
    // Tiers over one backend write through its one lane (src/tier/write-lane.ts): holding it once holds them all,
    // and holding it again inside would wait for itself.
    const lanes = new Set<unknown>();
    const cores = [...this.tiers.values()].map(({ core }) => core).filter((core) => !lanes.has(core.lane) && lanes.add(core.lane));
    const hold = (i: number): Promise<T> => {
      const core = cores[i];
      return core === undefined ? Promise.resolve().then(step) : core.holdingFlushes(() => hold(i + 1));
    };
    return hold(0);
  }

  /** Every tier's accepted writes durable, for a job; refusals stay for the flushes of their writers. */
  private async flushAll(): Promise<void> {
    await Promise.all([...this.tiers.values()].map(({ core }) => core.writePending()));
  }

  /**
   * Drains every tier durably, then closes the backend (releasing the store lock) and ends the actor. A tier
   * whose drain failed rejects the call with its error; the actor still ends (the engine is closing either way).
   */
  shutdown(): Promise<void> {
    this.shuttingDown = true;
    this.watchers.close(); // no retry timers: folds in flight, and those their outcomes make due, still run (jobsEnded)
    return this.jobsEnded().then(() => this.enqueue(async () => {
      let firstError: unknown;
      for (const [id, { core }] of this.tiers) {
        try {
          await core.close();
        } catch (err) {
          firstError ??= err;
          this.tierDrainErrors.push([id, err]);
        }
        this.retire(id);
      }
      this.consistentReads.close(); // a reader still inside one: its reads end with the actor anyway
      try {
        await this.backend?.close?.();
      } catch (err) {
        firstError ??= err;
        this.backendCloseFailed = true;
      }
      this.backend = undefined;
      this.drainError = firstError;
      setImmediate(() => this.resolveClosed()); // after this answer has been posted
      if (firstError !== undefined) throw firstError;
    }));
  }

  /**
   * Resolves once no job is in flight: a fold in progress commits (or gives up), and one its watcher starts on that
   * outcome runs too, so a store closed cleanly is left within its fold rule. A released job's remaining steps queue
   * in the mailbox, so this waits outside it (engine.close bounds the wait: closeTimeoutMs).
   */
  private async jobsEnded(): Promise<void> {
    while (this.jobsInFlight.size > 0) await Promise.all([...this.jobsInFlight]);
  }
}

/**
 * The weight a snapshot tier's record keeps as its own (`putRecords`) for a lone put `op` of one entry to `core`;
 * undefined for any other op (its weight is the tier's as a whole: `weigh`).
 */
function ownWeight(op: Op, core: AnyCore): number | undefined {
  return op.t === "put" && op.n === 1 && core instanceof SnapshotCore ? op.w : undefined;
}

/** Ops a message's joined flushes wait past (flush-group.ts): writes that no flush took yet, and flushes. */
const JOINING = new Set<Op["t"]>(["puts", "columns", "put", "append", "flush", "refuse", "configure-watcher"]);

/** The most loads of one message read together (a restore sends up to 512 per tick). */
const MAX_JOINT_LOADS = 1024;

/** How many ops from `ops[at]` on are loads of one tier, each naming a key (at most MAX_JOINT_LOADS). */
function keyedLoads(ops: readonly Op[], at: number): number {
  const first = ops[at]!;
  let n = 0;
  while (n < MAX_JOINT_LOADS && at + n < ops.length) {
    const op = ops[at + n]!;
    if (op.t !== "load" || op.tier !== first.tier || op.key === undefined) break;
    n++;
  }
  return n;
}

/** A value of a columnar put that its codec refused to encode: a refusal of that put alone, as at flush. */
class Refused {
  constructor(readonly error: Error) {}
}

/**
 * Value i of a columnar put: encoded here, straight from the columns, when the codec's transport has an encoder
 * and the tier is a kv tier (its flush passes the bytes through); else rebuilt, for the tier to encode at flush.
 */
function columnValues(
  cols: unknown,
  count: number,
  codec: Codec<unknown>,
  tier: SnapshotCore<unknown> | KvCore<unknown>,
): (i: number) => unknown {
  const columns = codec.columns!;
  // `at` is the user codec's code too: its throw refuses that value alone (a Refused, never thrown, so a bad first
  // value does not refuse the op's good ones), as CodecError("encode-failed") as its encode's throw would be.
  const rebuilt = (i: number): unknown => {
    try {
      return columns.at(cols, i);
    } catch (err) {
      return new Refused(codecFailure(err, "encode", codec.name));
    }
  };
  if (columns.encoder === undefined || !(tier instanceof KvCore)) return rebuilt;
  let encode: (i: number) => Uint8Array;
  try {
    encode = columns.encoder(cols);
  } catch {
    return rebuilt; // each value then goes through the codec's own encode, refused alone
  }
  // An encoder's bytes may be pooled or its scratch bytes (ColumnarTransport: overwritten by its next call), and
  // these wait in the tier (a debounce, a failing store's retries): each is copied at once into one buffer of the
  // op's own, sized by the first value as if the rest were like it (up to 1 MiB) and grown as needed. Not a fixed first size: a
  // paced turn's one frame paid a 4 KiB buffer and a trimmed copy of it (~5 µs of the actor's time) instead of one
  // exact allocation (~1 µs).
  let own: Uint8Array | undefined;
  let at = 0;
  // Where each value starts and ends in `own` (end -1: refused, its error in `refusals`): no Encoded or view is made
  // until the tier takes the value, and none for a refused one. Float64: exact past 2 GiB, which an op may reach.
  const ends = new Float64Array(count);
  const starts = new Float64Array(count);
  let refusals: Map<number, Refused> | undefined;
  for (let i = 0; i < count; i++) {
    let bytes: unknown;
    try {
      bytes = encode(i);
    } catch (err) {
      (refusals ??= new Map()).set(i, new Refused(codecFailure(err, "encode", codec.name))); // a user encoder's throw, as CodecError
      ends[i] = -1;
      continue;
    }
    if (!(bytes instanceof Uint8Array)) {
      const got = bytes === null ? "null" : typeof bytes;
      (refusals ??= new Map()).set(i, new Refused(new CodecError("encode-failed", `the columnar encoder returned ${got} for value ${i}, not a Uint8Array`)));
      ends[i] = -1;
      continue;
    }
    if (own === undefined) own = new Uint8Array(Math.min(bytes.byteLength * (count - i), Math.max(bytes.byteLength, 1 << 20)));
    else if (at + bytes.byteLength > own.byteLength) {
      const grown = new Uint8Array(Math.max(own.byteLength * 2, at + bytes.byteLength));
      grown.set(own.subarray(0, at));
      own = grown;
    }
    own.set(bytes, at);
    starts[i] = at;
    at += bytes.byteLength;
    ends[i] = at;
  }
  // Held for as long as the values wait: no more than an eighth spare (a copy to trim costs more than that room).
  // Math.floor, not `at >> 3`: a shift is Int32, an `at` of 2 GiB or more went negative and a buffer with no room to
  // spare was copied whole to trim it.
  if (own !== undefined && own.byteLength - at > Math.floor(at / 8)) own = own.slice(0, at);
  const buffer = own?.buffer;
  const offset = own?.byteOffset ?? 0;
  return (i) => {
    const end = ends[i]!;
    if (end < 0) return refusals!.get(i);
    return new Encoded(new Uint8Array(buffer!, offset + starts[i]!, end - starts[i]!));
  };
}

const bytesCodec: Codec<unknown> = {
  name: "bytes",
  version: 1,
  encode: (v) => v as Uint8Array,
  decode: (b) => b,
};

function asRecordTier(core: AnyCore): SnapshotCore<unknown> | KvCore<unknown> {
  if (core instanceof AppendLogCore) throw new TypeError("put on an append-log tier");
  return core;
}

function asLog(core: AnyCore): AppendLogCore<unknown> {
  if (!(core instanceof AppendLogCore)) throw new TypeError("not an append-log tier");
  return core;
}

function asKv(core: AnyCore): KvCore<unknown> {
  if (!(core instanceof KvCore)) throw new TypeError("not a kv tier");
  return core;
}

async function scanPage(
  kv: KvCore<unknown>,
  codec: Codec<unknown> | undefined,
  prefix: string,
  after: string | undefined,
  limit: number,
): Promise<ScanPage> {
  const entries: ScanPage["entries"] = [];
  for await (const { key, value } of kv.entriesByPrefix(prefix, (b) => b, after)) {
    entries.push(codec ? { key, value: decodeWith(codec, value) } : { key, bytes: value });
    if (entries.length >= limit) return { entries, next: key };
  }
  return { entries, next: undefined };
}

/** Refusals a tier's watchers on the main thread hear by key per message; a flood past it is one notice of unknown keys. */
const REFUSALS_BY_KEY = 64;

function failure(id: number, err: unknown): OpResult {
  return { id, ok: false, error: serializeError(err), ...(isRefusalReport(err) ? { refusal: true as const } : {}) };
}
