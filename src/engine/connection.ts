/**
 * Main-thread end of one store actor: coalesces every op queued in one tick into a single `apply`
 * message, matches results to waiting promises, and turns a dead worker into typed rejections.
 */
import { MessageChannel, type MessagePort } from "node:worker_threads";
import { proxy, transfer, wrap } from "comlink";
import nodeEndpoint from "comlink/dist/esm/node-adapter.mjs";
import type { Piscina } from "piscina";
import { CodecError, StorageError, deserializeError, serializeError } from "../errors.js";
import { emptyColumns, frameAt, pushFrame } from "./frame-columns.js";
import type { ActorApi, ActorEvent, ActorOptions, ActorStats, FaultKind, Op, Outcome, StoreSpec } from "./protocol.js";
import { ActorCounters } from "./actor-counters.js";
import { StoreBacklog } from "./backlog.js";

/** The actor as seen across the port: every method answers asynchronously. */
type RemoteActor = {
  [K in keyof ActorApi]: ActorApi[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;
};

type OpWithoutId = Op extends infer O ? (O extends { id: number } ? Omit<O, "id"> : never) : never;

interface Waiter {
  resolve(v: { value?: unknown; bytes?: Uint8Array | Uint8Array[] }): void;
  reject(e: Error): void;
}

export interface ConnectionHooks {
  onError(err: Error, context: { store: StoreSpec; tier?: string }): void;
  /** The actor is gone (shut down or crashed): the engine forgets this connection. */
  onGone(conn: StoreConnection): void;
  /** A tier whose flushes failed (onError heard it once) flushed again. */
  onRecovered?(context: { store: StoreSpec; tier?: string }): void;
}

export class StoreConnection {
  private readonly remote: RemoteActor;
  private readonly port: MessagePort;
  private queue: Op[] = [];
  private transfers: ArrayBuffer[] = [];
  private scheduled = false;
  private nextOpId = 1;
  private nextTierId = 1;
  private readonly waiting = new Map<number, Waiter>();
  private postError: unknown;
  private outstanding = 0;
  private inFlightMessages = 0;
  private deathError: Error | undefined;
  private rejectDeath!: (e: Error) => void;
  private readonly death: Promise<never>;
  private readonly ready: Promise<void>;
  private readonly task: Promise<unknown>;
  threadId: number | undefined;
  /** shutdown() began: nothing more is taken (see `assertAlive`). */
  closing = false;
  private drain: Promise<void> | undefined;
  /** Counters the actor writes and this thread reads without a message (stats, backpressure). */
  private readonly counters = new ActorCounters();
  readonly backlog: StoreBacklog;
  private lastError: string | undefined;

  constructor(
    pool: Piscina,
    readonly key: string,
    readonly store: StoreSpec,
    options: ActorOptions,
    private readonly hooks: ConnectionHooks,
    maxPendingBytes?: number,
  ) {
    this.backlog = new StoreBacklog(this.counters, maxPendingBytes, key);
    this.death = new Promise<never>((_, reject) => (this.rejectDeath = reject));
    this.death.catch(() => undefined);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const endpoint = nodeEndpoint(port1);
    const postMessage = endpoint.postMessage.bind(endpoint);
    // comlink posts synchronously inside a call; remember a refused message so send() can split it at once.
    endpoint.postMessage = (message: unknown, transfer?: readonly unknown[]): void => {
      try {
        postMessage(message, transfer as Parameters<typeof postMessage>[1]);
      } catch (err) {
        this.postError = err;
        throw err;
      }
    };
    this.remote = wrap<ActorApi>(endpoint) as unknown as RemoteActor;
    port1.unref();
    const task = pool.run({ port: port2, options: { ...options, counters: this.counters.buffer } }, { transferList: [port2] }) as Promise<unknown>;
    this.task = task;
    task.then(
      // A task that ends before ready() answered is an open failure: let ready's real reason win.
      () =>
        void this.ready
          .catch(() => undefined)
          .then(() => this.die(this.shutDown())),
      (err: unknown) =>
        this.die(
          new StorageError("worker-crashed", `worker owning store ${key} crashed: ${errorMessage(err)}`, {
            store: key,
          }),
        ),
    );
    this.ready = this.call(() => this.remote.ready()).then((outcome) => {
      if (!outcome.ok) {
        const err = deserializeError(outcome.error);
        this.hooks.onError(err, { store: this.store });
        this.die(err);
        throw err;
      }
      this.threadId = outcome.value.threadId;
    });
    this.ready.catch(() => undefined);
    void this.call(() => this.remote.setEventSink(proxy((e: ActorEvent) => this.onEvent(e)))).catch(() => undefined);
  }

  /** Settles once the actor answered ready() (its thread is then known), whether or not it opened. */
  opened(): Promise<void> {
    return this.ready.catch(() => undefined);
  }

  get alive(): boolean {
    return this.deathError === undefined;
  }

  /** Ops waiting in this tick's batch plus messages the actor has not answered yet. */
  get queueDepth(): number {
    return this.queue.length + this.inFlightMessages;
  }

  newTierId(): number {
    return this.nextTierId++;
  }

  /** Queues a fire-and-forget op (put/append/rollback) for this tick's message; a write's weight is in `op.w`/`op.n`. */
  post(op: Op, transferable?: Uint8Array): void {
    this.assertAlive();
    if ("w" in op && op.w !== undefined) this.backlog.add(op.w, op.n ?? 0);
    this.queue.push(op);
    if (transferable && transferable.byteOffset === 0 && transferable.byteLength === transferable.buffer.byteLength) {
      this.transfers.push(transferable.buffer as ArrayBuffer);
    }
    this.schedule();
  }

  /** Queues a put weighing `bytes`; consecutive puts of one tier in a tick share one columnar op. */
  postPut(tier: number, key: string, value: unknown, bytes: number): void {
    this.assertAlive();
    this.backlog.add(bytes, 1);
    const last = this.queue[this.queue.length - 1];
    if (last?.t === "puts" && last.tier === tier) {
      last.keys.push(key);
      last.values.push(value);
      last.w += bytes;
      last.n++;
      return;
    }
    this.queue.push({ t: "puts", tier, keys: [key], values: [value], w: bytes, n: 1 });
    this.schedule();
  }

  /** Queues a WAL-frame put as columns; false when `frame` is not frame-shaped (the caller posts it as a value). */
  postFrame(tier: number, key: string, frame: unknown, bytes: number): boolean {
    this.assertAlive();
    const last = this.queue[this.queue.length - 1];
    if (last?.t === "frames" && last.tier === tier) {
      if (!pushFrame(last.cols, key, frame)) return false;
      last.w += bytes;
      last.n++;
      this.backlog.add(bytes, 1);
      return true;
    }
    const cols = emptyColumns();
    if (!pushFrame(cols, key, frame)) return false;
    this.backlog.add(bytes, 1);
    this.queue.push({ t: "frames", tier, cols, w: bytes, n: 1 });
    this.schedule();
    return true;
  }

  /** Queues an op that produces a result, in order with everything posted before it. */
  request(op: OpWithoutId): Promise<{ value?: unknown; bytes?: Uint8Array | Uint8Array[] }> {
    if (this.deathError) return Promise.reject(this.deathError);
    if (this.closing) return Promise.reject(this.closingError());
    const id = this.nextOpId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.queue.push({ ...op, id } as Op);
      this.schedule();
    });
  }

  /**
   * One message per event-loop turn: every op queued in this turn (this tick and the microtasks that follow it,
   * e.g. request handlers resuming after an await) travels together, so the fixed cost of a message is shared.
   */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.send());
  }

  private send(): void {
    this.scheduled = false;
    if (this.queue.length === 0) return;
    const ops = this.queue;
    const transfers = this.transfers;
    this.queue = [];
    this.transfers = [];
    // Every send chains on `ready` in call order, and posts synchronously inside its step: messages keep tick order.
    this.ready.then(
      () => this.postMessage(ops, transfers),
      () => undefined, // die() already rejected every waiter with the open failure
    );
  }

  private postMessage(ops: Op[], transfers: ArrayBuffer[]): void {
    if (this.deathError) return;
    this.postError = undefined;
    this.inFlightMessages++;
    const reply = this.call(() => this.remote.apply(transfers.length > 0 ? transfer(ops, transfers) : ops));
    const unsendable = this.postError;
    if (unsendable !== undefined) {
      // The port refused the message (a value structured clone cannot carry): nothing was sent.
      this.postError = undefined;
      this.inFlightMessages--;
      reply.catch(() => undefined);
      this.splitUnsendable(ops, unsendable);
      return;
    }
    reply.then(
      ({ results, errors }) => {
        this.inFlightMessages--;
        for (const r of results) {
          const w = this.waiting.get(r.id);
          if (!w) continue;
          this.waiting.delete(r.id);
          if (r.ok) w.resolve({ value: r.value, bytes: r.bytes });
          else w.reject(deserializeError(r.error));
        }
        for (const e of errors) this.report(deserializeError(e));
      },
      (err: unknown) => {
        this.inFlightMessages--;
        const e = err instanceof Error ? err : new Error(String(err));
        for (const op of ops) this.fail(op, e);
      },
    );
  }

  /**
   * Finds the ops that cannot be cloned (failure path only) and resends the rest in order, each refused write
   * replaced by a refusal of its tier (its next flush rejects, onError hears it once: the tier's own mechanism).
   */
  private splitUnsendable(ops: Op[], cause: unknown): void {
    const sendable: Op[] = [];
    // The resent writes travel unweighed: this message's weight is taken back whole.
    for (const op of ops) if ("w" in op && op.w !== undefined) this.backlog.unpost(op.w, op.n ?? 0);
    const each = ops.flatMap(onePutEach);
    for (const op of each) {
      // Only a lone write is known to be the one refused; the columns of one tier's puts are one op but many writes.
      const problem = each.length === 1 ? cause : cloneProblem(op);
      if (problem === undefined) sendable.push(op);
      else if ("id" in op) this.fail(op, sendError(problem));
      else sendable.push(refusal(op.tier, sendError(problem)));
    }
    if (sendable.length > 0) this.postMessage(sendable, []);
  }

  /** Refuses a write on the main thread (e.g. a value the worker codec could never take), in order with the others. */
  refuse(tier: number, err: Error): void {
    this.post(refusal(tier, err));
  }

  private fail(op: Op, err: Error): void {
    if (!("id" in op)) {
      // A write whose message was lost: its tier must hear it. A dead actor fails every later flush anyway.
      if (this.alive && !this.closing) this.refuse(op.tier, err);
      return;
    }
    const w = this.waiting.get(op.id);
    this.waiting.delete(op.id);
    w?.reject(err);
  }

  /** Every comlink call goes through here: it keeps the port referenced while answers are due and fails fast on death. */
  private call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.deathError) return Promise.reject(this.deathError);
    if (this.outstanding++ === 0) this.port.ref();
    const settle = (): void => {
      if (--this.outstanding === 0) this.port.unref();
    };
    const p = Promise.race([fn(), this.death]);
    p.then(settle, settle);
    return p;
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
    await this.ready;
    await this.flushQueue();
    const outcome: Outcome<unknown> = await this.call(() => this.remote.runJob(name, args));
    if (!outcome.ok) throw deserializeError(outcome.error);
    return outcome.value;
  }

  /** Sends this tick's ops now (so a following direct call is ordered after them). */
  private flushQueue(): Promise<void> {
    if (this.queue.length > 0) this.send();
    return Promise.resolve();
  }

  injectFault(kind: FaultKind): void {
    void this.ready.then(() => this.remote.injectFault(kind)).catch(() => undefined);
  }

  /** Drains everything durably and stops the actor (releases the store lock). Idempotent. */
  shutdown(): Promise<void> {
    this.drain ??= this.shutdownOnce();
    this.drain.catch(() => undefined);
    return this.drain;
  }

  /** Settles as shutdown() does (resolved when it was never called). */
  drained(): Promise<void> {
    return this.drain ?? Promise.resolve();
  }

  private async shutdownOnce(): Promise<void> {
    if (this.deathError) return;
    this.closing = true;
    await this.ready;
    await this.flushQueue();
    let outcome: Outcome<null>;
    try {
      outcome = await this.call(() => this.remote.shutdown());
    } catch (err) {
      if (err instanceof StorageError && err.code === "closed") return; // the actor finished first
      throw err;
    }
    await this.task.catch(() => undefined); // the hosting task returns once the actor released the store
    this.die(this.shutDown()); // now, not a few ticks later: calls after close() resolved fail with closed
    if (!outcome.ok) throw deserializeError(outcome.error);
  }

  private shutDown(): StorageError {
    return new StorageError("closed", `store actor for ${this.key} shut down`, { store: this.key });
  }

  private onEvent(e: ActorEvent): void {
    if (e.type === "recovered") this.hooks.onRecovered?.({ store: this.store, ...(e.tier !== undefined ? { tier: e.tier } : {}) });
    else this.report(deserializeError(e.error), e.tier);
  }

  private report(err: Error, tier?: string): void {
    this.lastError = `${(err as { code?: string }).code ?? err.name}: ${err.message}`;
    this.hooks.onError(err, { store: this.store, ...(tier !== undefined ? { tier } : {}) });
  }

  /** Writes after shutdown() began throw at once: they would reach the actor after it closed its tiers. */
  private assertAlive(): void {
    if (this.deathError) throw this.deathError;
    if (this.closing) throw this.closingError();
  }

  private closingError(): StorageError {
    return new StorageError("closed", `storage engine is closing store ${this.key}`, { store: this.key });
  }

  /** Rejects every waiting promise with `err`; later calls fail with it too. */
  die(err: Error): void {
    if (this.deathError) return;
    this.deathError = err;
    this.rejectDeath(err);
    this.backlog.fail(err);
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
    this.queue = [];
    this.port.close();
    if (err instanceof StorageError && err.code === "worker-crashed" && !this.closing) {
      this.hooks.onError(err, { store: this.store });
    }
    this.hooks.onGone(this);
  }
}

/** Microseconds in the counters, milliseconds in stats (0: no flush yet). */
function latency(us: number): number | undefined {
  return us === 0 ? undefined : us / 1000;
}

function refusal(tier: number, err: Error): Op {
  return { t: "refuse", tier, error: serializeError(err) };
}

/** Columnar puts are split back into single puts, so one unclonable value refuses only itself. */
function onePutEach(op: Op): Op[] {
  if (op.t === "puts") return op.keys.map((key, i) => ({ t: "put" as const, tier: op.tier, key, value: op.values[i] }));
  if (op.t === "frames") {
    return op.cols.keys.map((key, i) => ({ t: "put" as const, tier: op.tier, key, value: frameAt(op.cols, i) }));
  }
  return [op];
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
  if (err instanceof Error && err.name === "DataCloneError") {
    return new CodecError("encode-failed", `a value could not be sent to the store's worker: ${err.message}`, {}, err);
  }
  return err instanceof Error ? err : new Error(String(err));
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
