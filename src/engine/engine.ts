/**
 * openStorageEngine: a piscina pool of worker threads hosting one actor per open store. Opening the
 * same store twice reuses its actor; each store has exactly one writer.
 */
import { availableParallelism } from "node:os";
import { existsSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Piscina } from "piscina";
import { StorageError } from "../errors.js";
import type { AppendLogStorageTier, KvStorageTier, SnapshotStorageTier } from "../tier/types.js";
import { StoreConnection } from "./connection.js";
import { validateMaxPendingBytes } from "../tier/options.js";
import { DEFAULT_MAX_PENDING_BYTES } from "../tier/core.js";
import { normalisePostgres, POSTGRES_STORE_FIELDS, postgresStoreKey, publicStoreSpec } from "./postgres-store.js";
import { reported } from "../base/promises.js";
import { DEFAULT_CLOSE_TIMEOUT_MS, DEFAULT_WATCHDOG_MS, startWatchdog, validateBound } from "./watchdog.js";
import { ThreadIdleWatch } from "./thread-idle.js";
import { noteTierStoreSink } from "./commit-watchers.js";
import { claimGates, insideNative, newNativeGate, releaseGates } from "./native-gate.js";
import { releaseThreadTurns } from "../backend/sqlite-turns.js";
import { assertOneMeaning } from "../backend/real-path.js";
import { validateEngineOptions } from "./options.js";
import { EngineCheckpointer } from "./checkpointer.js";
import { timerBound } from "../base/timers.js";
import { DEFAULT_TURN_RING_BYTES, TurnRingLedger, turnRingsInBudget, type TurnRingCounts } from "./ring.js";
import {
  type ActorOptions,
  type ActorStats,
  type AutoCompactOptions,
  type StoreSpec,
} from "./protocol.js";
import {
  appendLogProxy,
  kvProxy,
  snapshotProxy,
  type EngineAppendLogOptions,
  type EngineKvOptions,
  type EngineSnapshotOptions,
} from "./proxies.js";

export type SqliteSynchronous = ActorOptions["synchronous"];

export interface StorageEngineOptions {
  /** Worker threads (default: available parallelism - 1, at least 1). */
  threads?: number;
  /** Milliseconds an idle worker thread is kept (default: forever while the engine is open). */
  idleTimeoutMs?: number;
  /** Default SQLite `synchronous` for stores (default "FULL": a resolved flush survives power loss). */
  synchronous?: SqliteSynchronous;
  /** Background failures: debounced/cadence flushes, worker crashes, ops rejected in the worker. */
  onError?: (error: Error, context: { store: StoreSpec; tier?: string }) => void;
  /** Per-worker V8 heap limits (OOM in a worker then crashes that worker only). */
  resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number };
  /** Background compaction of every graph WAL written through this engine (see AutoCompactOptions). */
  autoCompact?: AutoCompactOptions;
  /**
   * Backpressure: bound on each store's bytes of writes accepted and not yet committed (default 64 MiB; values the
   * worker encodes are weighed by the store's average committed write). Past it writes throw
   * StorageError("backpressure") and are not accepted; `tier.drained()` resolves when to write again.
   */
  maxPendingBytes?: number;
  /** A store whose flushes failed (onError heard it once, when they began) flushes again. */
  onRecovered?: (context: { store: StoreSpec; tier?: string }) => void;
  /**
   * A store's worker that makes no progress for this long while an answer is due (its event loop blocked, e.g. a
   * synchronous loop in a job or codec) is terminated: the waiting calls reject with
   * StorageError("worker-unresponsive") and the stores on it reopen at their next operation (default 30 s;
   * Infinity: off). A single synchronous step longer than this (a huge SQLite transaction) is taken for a hang.
   */
  watchdogMs?: number;
  /** close() ends within this bound: stores still draining then are given up with StorageError("close-timeout") (default 60 s). */
  closeTimeoutMs?: number;
  /**
   * Bytes of each open store's turn ring (default 1 MiB; 0: off; else a power of two from 1 KiB to 1 GiB): a turn's
   * few writes reach the store's worker through this shared memory instead of a message, ~0.3–0.7 µs less
   * main-thread CPU per paced write. A burst, a write of a value the ring cannot encode, and any write while the ring
   * is full go as a message, as they would without it. The worker takes the ring's writes within a millisecond or so
   * while they flow and sleeps when it stays empty (docs/design.md §3.35).
   */
  turnRingBytes?: number;
  /**
   * A store nothing uses any more (no tier open, no job running, and its actor holds no state a new one would not
   * have: docs/design.md §2) is shut down, its actor, SQLite handle and lock let go, once it stayed unused this long
   * (default 2000 ms; 0: at once, as the last tier's close or job's end settles; Infinity: kept until close()). A
   * tier opened or a job run meanwhile finds the store open: a server opening a tier or compacting per request pays
   * no new actor each time. close() does not wait for it.
   */
  idleStoreCloseMs?: number;
  /**
   * SQLite stores the engine writes are checkpointed by one thread of the engine's own (default true): the WAL's
   * copy into the database file and its fsync leave the commits a flush waits for. false: each store's writer
   * checkpoints inline (SQLite's autocheckpoint), as an inline sqliteBackend does (docs/design.md §3.50).
   */
  checkpointThread?: boolean;
}

/** One store's figures: the actor's counters plus what the main thread knows. */
export interface StoreStats extends Omit<ActorStats, "writes"> {
  store: StoreSpec;
  alive: boolean;
  /** Ops queued on the main thread plus messages the actor has not answered. */
  queueDepth: number;
  /** Backend writes (one per WAL frame / record / segment). */
  frames: number;
}

export interface StorageEngine {
  snapshot<T>(store: StoreSpec, opts?: EngineSnapshotOptions<T>): SnapshotStorageTier<T>;
  appendLog<T>(store: StoreSpec, opts?: EngineAppendLogOptions<T>): AppendLogStorageTier<T>;
  kv<T>(store: StoreSpec, opts?: EngineKvOptions<T>): KvStorageTier<T>;
  /**
   * Runs a job registered in the worker entry, by name, in the store's mailbox order. The engine does not know what
   * a job returns: the layer owning a job types it (graph compaction: compactGraphInEngine in src/graph).
   */
  runJob(store: StoreSpec, name: string, args: unknown): Promise<unknown>;
  stats(): Promise<StoreStats[]>;
  /**
   * Drains every pending write durably, closes connections, terminates workers. From the call on its tiers take
   * nothing more: writes throw StorageError("closed"), a tier's flush() or close() joins the drain and settles with
   * that tier's own outcome, other calls reject.
   */
  close(): Promise<void>;
  readonly closed: boolean;
}

export function storeKey(store: StoreSpec): string {
  switch (store?.kind) {
    case "sqlite":
      refuseUnknownFields(store, ["path", "readOnly"]);
      return `sqlite:${storePath(requireString(store.path, "store.path"), "SQLite store path")}${readOnlySuffix(store)}`;
    case "file":
      refuseUnknownFields(store, ["dir", "readOnly"]);
      return `file:${storePath(requireString(store.dir, "store.dir"), "file store directory")}${readOnlySuffix(store)}`;
    case "memory":
      refuseUnknownFields(store, ["name"]);
      return `memory:${requireString(store.name, "store.name")}`;
    case "postgres":
      refuseUnknownFields(store, POSTGRES_STORE_FIELDS);
      return postgresStoreKey(store);
    default:
      throw new TypeError(`store.kind must be "sqlite", "file", "memory" or "postgres", got ${String((store as { kind?: unknown })?.kind)}`);
  }
}

/**
 * A field the spec's kind does not have would be dropped on the way to the actor: `synchronous: "OFF"` in a SQLite
 * spec left the store at the engine's setting without a word (review s14 E). Backend settings go on the engine.
 */
function refuseUnknownFields(store: object, fields: readonly string[]): void {
  for (const key of Object.keys(store)) {
    if (key !== "kind" && !fields.includes(key)) {
      const kind = (store as { kind: string }).kind;
      throw new TypeError(`store.${key} is not a field of a "${kind}" store spec (fields: ${fields.join(", ")})`);
    }
  }
}

/** A read-only spec gets an actor of its own, apart from the writer's actor of the same store. */
function readOnlySuffix(store: { readonly readOnly?: boolean }): string {
  if (store.readOnly !== undefined && typeof store.readOnly !== "boolean") throw new TypeError("store.readOnly must be a boolean");
  return store.readOnly === true ? "?ro" : "";
}

function requireString(v: unknown, what: string): string {
  if (typeof v !== "string" || v.length === 0) throw new TypeError(`${what} must be a non-empty string`);
  return v;
}

/**
 * A store path made absolute by text, the engine's name of the store. A path whose `..` the kernel takes elsewhere
 * (`<d>/link/..`) is refused (StorageError invalid-argument, reason "ambiguous-dotdot"), as every opener refuses it:
 * the actor's backend opens what the kernel opens, so the text would name another store (design §3.12).
 */
function storePath(path: string, what: string): string {
  assertOneMeaning(path, what);
  return resolvePath(path);
}

function normalise(store: StoreSpec): StoreSpec {
  const ro = store.kind !== "memory" && store.readOnly === true ? { readOnly: true } : {};
  if (store.kind === "sqlite") return { kind: "sqlite", path: storePath(store.path, "SQLite store path"), ...ro };
  if (store.kind === "file") return { kind: "file", dir: storePath(store.dir, "file store directory"), ...ro };
  if (store.kind === "postgres") return normalisePostgres(store);
  return { kind: "memory", name: store.name };
}

/** The compiled worker entry: next to us when running from dist/, else dist/ of the package (tests run src/). */
export function workerEntryPath(): string {
  return compiledWorkerFile("store-actor.js");
}

function compiledWorkerFile(name: string): string {
  const candidates = [new URL(`../../workers/${name}`, import.meta.url), new URL(`../../dist/workers/${name}`, import.meta.url)];
  for (const c of candidates) {
    const p = fileURLToPath(c);
    if (existsSync(p)) return p;
  }
  throw new StorageError("backend-error", `compiled worker file workers/${name} not found: run \`npm run build\` first`);
}

export function openStorageEngine(opts: StorageEngineOptions = {}): StorageEngine {
  return openEngine(opts, workerEntryPath()).engine;
}

/**
 * Test access to an engine (crash drills). Not public: neither src/engine/index.ts nor src/index.ts exports it,
 * and the fault code lives only in the tests' worker entry (test/support/fault-worker.mjs), never in the package.
 */
export interface EngineTestAccess {
  readonly engine: StorageEngine;
  /** Posts `message` on the store's actor port once it answered ready() (the test worker entry acts on it). */
  post(store: StoreSpec, message: unknown): Promise<void>;
  /** Terminates the worker thread owning the store, from the main thread (a hung actor is not asked anything). */
  terminate(store: StoreSpec): Promise<void>;
  /** The store's current actor's turn rings' counts (undefined: rings off, or the store is not open). */
  ringCounts(store: StoreSpec): TurnRingCounts | undefined;
  /** The engine's rings: held by stores now, kept in all (held plus given back), made over its life, given back and released. */
  rings(): { held: number; kept: number; made: number; reusable: number } | undefined;
  /** Runs the engine's idle-ring sweep now (two in a row give back the ring of a store that wrote nothing between). */
  sweepRings(): void;
  /** The checkpointer thread (design §3.50): undefined when the engine has none (checkpointThread false). */
  readonly checkpointer: EngineCheckpointer | undefined;
}

/**
 * What only tests set: the checkpointer's threshold in WAL frames (default 1000), the bytes that start it (1 MiB), how
 * many times in a row one that died is started again (8; 0: a thread gone for good), how often a waiting drained()
 * looks for room (5 ms; an hour holds the look, so events alone settle the wait).
 */
export interface EngineTestInternals {
  readonly checkpointFrames?: number;
  readonly checkpointStartBytes?: number;
  readonly checkpointRestarts?: number;
  readonly drainPollMs?: number;
}

/** An engine whose workers run `workerEntry` (a module wrapping workers/store-actor.js), for tests only. */
export function openStorageEngineForTests(opts: StorageEngineOptions, workerEntry: string, internals: EngineTestInternals = {}): EngineTestAccess {
  return openEngine(opts, workerEntry, internals);
}

function openEngine(opts: StorageEngineOptions, workerEntry: string, internals: EngineTestInternals = {}): EngineTestAccess {
  validateEngineOptions(opts);
  const threads = opts.threads ?? Math.max(1, availableParallelism() - 1);
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be an integer >= 1, got ${threads}`);
  const synchronous = opts.synchronous ?? "FULL";
  if (!["FULL", "NORMAL", "OFF", "EXTRA"].includes(synchronous)) {
    throw new RangeError(`synchronous must be "FULL", "NORMAL", "OFF" or "EXTRA", got ${String(synchronous)}`);
  }
  if (opts.maxPendingBytes !== undefined) validateMaxPendingBytes(opts.maxPendingBytes);
  const maxPendingBytes =
    opts.maxPendingBytes === Number.POSITIVE_INFINITY ? undefined : (opts.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES);
  // timerBound: a delay past Node's timer range (~24.8 days) means no timer, not 1 ms (review r237 #2).
  const watchdogMs = timerBound(validateBound("watchdogMs", opts.watchdogMs) ?? DEFAULT_WATCHDOG_MS);
  const closeTimeoutMs = timerBound(validateBound("closeTimeoutMs", opts.closeTimeoutMs) ?? DEFAULT_CLOSE_TIMEOUT_MS);
  const idleStoreCloseMs = timerBound(opts.idleStoreCloseMs ?? DEFAULT_IDLE_STORE_CLOSE_MS);
  // On by default since task 198 (docs/design.md §3.35): 1 MiB holds the paced turns of a worker busy for a while.
  const turnRingBytes = opts.turnRingBytes ?? DEFAULT_TURN_RING_BYTES;
  // Rings go to the stores writing now, within a budget (task 209: not one per store ever opened).
  const rings = turnRingBytes > 0 ? new TurnRingLedger(turnRingBytes, turnRingsInBudget(turnRingBytes)) : undefined;
  const pool = new Piscina({
    // Piscina require()s `filename`: a CommonJS loader that import()s the entry, because require() of an ES module
    // aborts the whole process when its worker is terminated mid-load (see workers/load-entry.cts).
    filename: compiledWorkerFile("load-entry.cjs"),
    workerData: { entry: pathToFileURL(workerEntry).href },
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: timerBound(opts.idleTimeoutMs ?? Number.POSITIVE_INFINITY),
    // Actor tasks run for the store's lifetime; an idle worker must keep serving its MessagePorts and
    // debounce timers, which piscina's default Atomics.wait would freeze.
    atomics: "disabled",
    concurrentTasksPerWorker: 1 << 16,
    ...(opts.resourceLimits ? { resourceLimits: opts.resourceLimits } : {}),
  });
  // Worker errors surface through the tasks they fail; an idle pool error must not crash the process.
  pool.on("error", (err: Error) => report(new StorageError("worker-crashed", err.message), undefined));
  // A worker that exits inside a SQLite writer turn (out of memory, process.exit in a job: no `finally` runs) leaves the
  // turn held; freed at its exit, so the store's other handles need not wait out the turn's bound (sqlite-turns.ts).
  pool.on("workerCreate", (w: { readonly id: number }) => {
    const id = w.id;
    pool.threads.find((t) => t.threadId === id)?.once("exit", () => releaseThreadTurns(id));
  });

  // One thread checkpoints every SQLite store this engine writes, started with the first (design §3.50).
  const checkpointer =
    opts.checkpointThread === false
      ? undefined
      : new EngineCheckpointer(
          compiledWorkerFile("checkpointer.js"),
          (err, path) => report(err, path === undefined ? undefined : { kind: "sqlite", path }),
          () => {
            let most = 0;
            for (const conn of connections.values()) if (conn.store.kind === "sqlite") most = Math.max(most, conn.stats().bytesWritten);
            return most;
          },
          internals.checkpointFrames,
          internals.checkpointStartBytes,
          internals.checkpointRestarts,
        );
  const connections = new Map<string, StoreConnection>();
  /**
   * Connections a newer one of the same store replaced while they shut down (a tier opened the store during its idle
   * shutdown, task 220): close() and endThread still wait for them; each leaves once its shutdown settled.
   */
  const retiring = new Set<StoreConnection>();
  /**
   * Stores the engine forgot while their last actor's thread may still be ending (a store released after its actor,
   * lost before it opened, answered a tier's close: the watchdog's termination, its task): a new connection to one
   * starts its actor only once that settled (StoreConnection.ended), as it waits for a retiring one's shutdown.
   */
  const released = new Map<string, Promise<void>>();
  // An idle store's ring goes back to the ledger: one that took no record between two sweeps (task 209).
  const sweepRings = (): void => {
    for (const conn of connections.values()) conn.sweepRing();
  };
  const ringSweep = rings !== undefined ? setInterval(sweepRings, RING_SWEEP_MS) : undefined;
  ringSweep?.unref();
  /** Each connection's native gate (native-gate.ts): claimed before its actor's thread is terminated. */
  const gates = new WeakMap<StoreConnection, SharedArrayBuffer>();
  /** Threads being terminated, each once its native calls returned (endThread). */
  const ending = new Map<number, Promise<void>>();
  let closed = false;
  let closing: Promise<void> | undefined;
  const idle = new ThreadIdleWatch();
  // A retiring connection's actor is still on its thread (its shutdown may hang there): watched as an open one is.
  const stopWatchdog = startWatchdog(watchdogMs, () => [...connections.values(), ...retiring], (stalled, waiting, now) => {
    for (const conn of stalled) {
      if (!conn.alive) continue; // lost with a store of its thread earlier in this round
      const thread = conn.thread;
      const native = insideNative(gates.get(conn)!);
      // Piscina replaces the terminated worker; the stores on it restart on another once it is gone.
      const terminated = thread === undefined ? Promise.resolve() : endThread(thread);
      conn.lose(unresponsive(conn.key, `made no progress for ${watchdogMs} ms`, native), terminated);
      if (thread === undefined) continue; // its task never started: no other store shares a thread with it
      loseThread(thread, terminated, `shared a worker with store ${conn.key}, which made no progress for ${watchdogMs} ms`);
    }
    if (waiting.length === 0) return;
    // A store's task not begun after a bound while a thread's event loop stood still as long (every store on it
    // quiet, none due: the stall check did not see it): the task is queued on that blocked thread, as is every
    // later store piscina places there. The thread is terminated; piscina fails the tasks queued on it, so those
    // stores hear worker-crashed and reopen on a fresh thread at their next operation (review s13a F1).
    const byThread = new Map<number, boolean>();
    for (const conn of connections.values()) {
      const thread = conn.thread;
      if (thread === undefined || !conn.alive) continue;
      byThread.set(thread, (byThread.get(thread) ?? true) && conn.quiet(now, watchdogMs));
    }
    // A thread hosting no open store (its last store's task ended, then something blocked it) has no heartbeat to
    // read: its event loop's idle time standing still as long says it is blocked (nothing else runs there).
    for (const w of pool.threads) {
      if (!byThread.has(w.threadId)) byThread.set(w.threadId, idle.blocked(w.threadId, now, watchdogMs));
    }
    const terminations: Promise<unknown>[] = [];
    for (const [thread, hung] of byThread) {
      if (!hung) continue;
      const terminated = endThread(thread);
      terminations.push(terminated);
      loseThread(thread, terminated, `made no progress for ${watchdogMs} ms while store ${waiting[0]!.key} waited to start on its worker`);
    }
    // A waiting store's next actor must not be handed to a thread still being terminated (its task would fail again).
    if (terminations.length > 0) for (const conn of waiting) conn.startAfter(Promise.all(terminations));
  }, (now) => idle.sample(pool.threads, now));

  /** Every living store on `thread` (being terminated) is lost with it; each reopens at its next operation. */
  function loseThread(thread: number, terminated: Promise<unknown>, why: string): void {
    for (const conn of [...connections.values(), ...retiring]) {
      if (conn.alive && conn.thread === thread) conn.lose(unresponsive(conn.key, why, insideNative(gates.get(conn)!)), terminated);
    }
  }

  /**
   * Terminates `thread` once it is outside any native SQLite call (terminated inside one, better-sqlite3 aborts the
   * whole process: native-gate.ts). Its stores' gates are claimed first, so no call starts meanwhile; they are freed
   * once the thread is gone, for the stores' next actors (which wait for this: StoreConnection.lose). Once per thread.
   */
  function endThread(thread: number): Promise<void> {
    const known = ending.get(thread);
    if (known !== undefined) return known;
    // A thread's native calls mark every gate of its actors, so one of them would do; a closing store's actor (its
    // final commit, the close's checkpoint) is on the thread too. Not a lost one's: it may be starting elsewhere.
    const held: SharedArrayBuffer[] = [];
    for (const conn of [...connections.values(), ...retiring]) if ((conn.alive || conn.closing) && conn.thread === thread) held.push(gates.get(conn)!);
    const ended = claimGates(held)
      .then(() => pool.threads.find((w) => w.threadId === thread)?.terminate())
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        releaseGates(held);
        ending.delete(thread);
      });
    ending.set(thread, ended);
    return ended;
  }

  function report(err: Error, store: StoreSpec | undefined, tier?: string): void {
    try {
      opts.onError?.(err, { store: store ?? { kind: "memory", name: "?" }, ...(tier !== undefined ? { tier } : {}) });
    } catch {
      // a throwing handler must not break the engine
    }
  }

  function connection(store: StoreSpec): StoreConnection {
    if (closed) throw new StorageError("closed", "storage engine is closed");
    const key = storeKey(store);
    let conn = connections.get(key);
    if (conn && !conn.closing) return conn; // a connection whose actor was lost starts a new one itself
    // Shutting down (its last tier closed, task 215): the new connection's actor starts once the old one let the
    // store go (its lock, its lease), so two actors never hold it; close() waits for the old one too (task 220).
    const previous = conn;
    if (previous !== undefined) {
      retiring.add(previous);
      void previous.drained().then(
        () => retiring.delete(previous),
        () => retiring.delete(previous),
      );
    }
    const spec = normalise(store);
    // The connection reports the store (stats, onError) without a password; the actor gets it to connect.
    const nativeGate = newNativeGate();
    const checkpointLink = spec.kind === "sqlite" && spec.readOnly !== true ? checkpointer?.linkForActor() : undefined;
    conn = new StoreConnection(pool, key, publicStoreSpec(spec), {
      store: spec,
      synchronous,
      nativeGate,
      ...(checkpointLink !== undefined ? { checkpointer: checkpointLink } : {}),
      ...(opts.autoCompact ? { autoCompact: opts.autoCompact } : {}),
    }, {
      onError: (err, ctx) => report(err, ctx.store, ctx.tier),
      onGone: (c) => {
        if (connections.get(c.key) !== c) return;
        connections.delete(c.key);
        const ended = c.ended();
        released.set(c.key, ended);
        void ended.then(() => {
          if (released.get(c.key) === ended) released.delete(c.key);
        });
      },
      onRecovered: (ctx) => {
        try {
          opts.onRecovered?.(ctx);
        } catch {
          // a throwing handler must not break the engine
        }
      },
    }, maxPendingBytes, Number.isFinite(watchdogMs) ? Math.max(5, Math.floor(watchdogMs / 8)) : undefined, rings, previous !== undefined ? afterRetired(previous) : released.get(key), idleStoreCloseMs, internals.drainPollMs);
    connections.set(key, conn);
    gates.set(conn, nativeGate);
    return conn;
  }

  /**
   * Settles once a retiring connection let its store go: its shutdown settled and its actor is off its thread. A
   * shutdown the watchdog cut short settles at the loss, while the thread may still hold the store (review r338 F1).
   */
  function afterRetired(previous: StoreConnection): Promise<void> {
    return previous.drained().catch(() => undefined).then(() => previous.ended());
  }

  const engine: StorageEngine = {
    snapshot: <T>(store: StoreSpec, o: EngineSnapshotOptions<T> = {}) => snapshotProxy<T>(connection(store), o),
    appendLog: <T>(store: StoreSpec, o: EngineAppendLogOptions<T> = {}) => appendLogProxy<T>(connection(store), o),
    kv: <T>(store: StoreSpec, o: EngineKvOptions<T> = {}) => {
      const conn = connection(store);
      const tier = kvProxy<T>(conn, o);
      // A config that takes state back reaches the store after the tier's close too (commit-watchers.ts). The
      // connection is held weakly: the engine's map keeps it while the store is open, and a caller keeping this
      // (attach, for a graph dropped undisposed) must not keep it, and the tiers' watchers it holds, alive.
      const held = new WeakRef(conn);
      noteTierStoreSink(tier, (watcher, key, config) => held.deref()?.configureWatcherOfStore(watcher, key, config) ?? Promise.resolve());
      return tier;
    },
    runJob: (store, name, args) => handled(async () => connection(store).runJob(name, args), store),
    stats: () => handled(stats, undefined),
    close: () => (closing ??= handled(close, undefined)), // a second call joins the first
    get closed() {
      return closed;
    },
  };
  return {
    engine,
    post: (store, message) => handled(async () => connection(store).postRaw(message), store),
    terminate: (store) => handled(() => terminate(store), store),
    ringCounts: (store) => connections.get(storeKey(store))?.ringCounts(),
    rings: () => (rings !== undefined ? { held: rings.held, kept: rings.kept, made: rings.made, reusable: rings.reusable } : undefined),
    sweepRings,
    checkpointer,
  };

  /** Every promise the engine returns follows the one rule (base/promises.ts): never an unhandled rejection; onError hears it. */
  function handled<T>(fn: () => Promise<T>, store: StoreSpec | undefined): Promise<T> {
    let p: Promise<T>;
    try {
      p = fn();
    } catch (err) {
      p = Promise.reject(err);
    }
    return reported(p, (err) => report(err, store));
  }

  async function stats(): Promise<StoreStats[]> {
    if (closed) throw new StorageError("closed", "storage engine is closed");
    const out: StoreStats[] = [];
    for (const conn of connections.values()) {
      // Read from the counters the actor shares: no message, so a busy actor cannot delay the answer.
      const { writes, ...s } = conn.stats();
      out.push({ store: conn.store, alive: conn.alive, queueDepth: conn.queueDepth, ...s, frames: writes });
    }
    return out;
  }

  /** Drains every store, within closeTimeoutMs: stores still draining then are given up (their workers terminated). */
  async function close(): Promise<void> {
    closed = true;
    const errors: unknown[] = [];
    const conns = [...connections.values(), ...retiring]; // shutdown() of a retiring one joins its drain
    const drains = Promise.all(
      conns.map((c) =>
        c.shutdown(true).catch((err: unknown) => {
          errors.push(err);
        }),
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    const deadline = Number.isFinite(closeTimeoutMs)
      ? new Promise<"late">((r) => (timer = setTimeout(() => r("late"), closeTimeoutMs)))
      : new Promise<never>(() => undefined);
    if ((await Promise.race([drains, deadline])) === "late") {
      for (const c of conns) {
        c.abandon(new StorageError("close-timeout", `store ${c.key} did not finish draining within closeTimeoutMs (${closeTimeoutMs} ms); writes not yet stored are lost`, { store: c.key }));
      }
      await drains;
    }
    clearTimeout(timer);
    stopWatchdog();
    clearInterval(ringSweep);
    const open = [...new Set([...conns, ...connections.values()])];
    connections.clear();
    // destroy() terminates every thread: none may be inside a native SQLite call then (native-gate.ts). A store given
    // up above whose thread is inside a call that never returns keeps close() waiting for it.
    await Promise.all(ending.values());
    await claimGates(open.map((c) => gates.get(c)!));
    await pool.destroy();
    await checkpointer?.stop(); // after every store's writer closed, each closing the thread's connection first
    rings?.clear(); // a closed engine keeps no ring (its connections gave theirs back as they ended)
    if (errors.length > 0) throw errors[0];
  }

  async function terminate(store: StoreSpec): Promise<void> {
    const conn = connection(store);
    await conn.opened(); // the thread is known once the actor answered ready(); a hung actor is not asked again
    if (conn.threadId !== undefined) await endThread(conn.threadId);
  }
}

/**
 * How long an unused store stays open by default (StorageEngineOptions.idleStoreCloseMs): a new actor and a SQLite
 * open cost ~20 ms on a loaded 2-core machine (review r231 F4: 20 compactions of a store with no tier, one after
 * another, 30.2 ms each against 6.7 kept open). Two seconds covers a client's requests in a row; a tenant's store
 * that stays unused still goes within seconds.
 */
const DEFAULT_IDLE_STORE_CLOSE_MS = 2_000;

/**
 * How often the engine gives idle stores' rings back: a ring that took no record between two sweeps (1–2 s without a
 * paced write) goes; a store writing again takes one at its next paced write (two messages, the ring's handovers).
 */
const RING_SWEEP_MS = 1000;

function unresponsive(store: string, why: string, inNativeCall: boolean): StorageError {
  const end = inNativeCall
    ? "it is inside a SQLite call and is terminated when that call returns (a commit it makes meanwhile may be stored); the store reopens at its next operation, after that"
    : "it was terminated; the store reopens at its next operation";
  return new StorageError("worker-unresponsive", `the worker owning store ${store} ${why}: ${end}`, { store, ...(inNativeCall ? { inDoubt: true } : {}) });
}
