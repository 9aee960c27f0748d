/**
 * The engine's checkpointer thread, main-thread side (design §3.50): started with the first SQLite store an actor
 * writes, one for the whole engine whatever the number of stores, ended by the engine's close; one that dies is
 * started again (with backoff) and takes the live stores over. Its failures reach the engine's onError; they never
 * fail a write (a writer no live thread serves checkpoints itself at SQLite's 1000 frames).
 */
import { randomBytes } from "node:crypto";
import { Worker } from "node:worker_threads";
import { StorageError } from "../errors.js";
import { CHECKPOINT_FRAMES, LINK_BOUND_WAIT_MS, LINK_CAPPED_WAITS, LINK_DELIVERIES, LINK_WORDS, type CheckpointedStore, type CheckpointerCommand, type CheckpointerLink, type CheckpointerReport } from "./checkpoint-link.js";

/**
 * The thread starts once a SQLite store of the engine committed this many bytes (checked every START_CHECK_MS): an
 * engine that writes little (a tool's, a test's) never pays a thread's start and end, nor a thread and its ports it
 * does not need; its writers checkpoint themselves at SQLite's 1000 frames meanwhile. 1 MiB is ~130 pages, far below
 * the 1000 the thread's first checkpoint waits for.
 */
export const START_BYTES = 1 << 20;
const START_CHECK_MS = 250;
/** How long close() waits for the thread to end by itself (it closes its connections first). */
const STOP_WAIT_MS = 5000;
/**
 * A thread that died is started again after RESTART_FIRST_MS, doubling with each death in a row up to RESTART_MAX_MS,
 * at most RESTARTS times in a row (one that ran RESTART_RESET_MS starts the count afresh): a thread that dies at each
 * start is not restarted without end. Past that, a SQLite store opened next starts it again.
 */
export const RESTARTS = 8;
const RESTART_FIRST_MS = 250;
const RESTART_MAX_MS = 30_000;
const RESTART_RESET_MS = 60_000;

export class EngineCheckpointer {
  private worker: Worker | undefined;
  private stopped = false;
  private exited: Promise<void> | undefined;
  private watch: NodeJS.Timeout | undefined;
  private readonly link: CheckpointerLink;
  private readonly statsWaiting: Array<(stores: readonly CheckpointedStore[]) => void> = [];
  /** Threads started so far: each one's generation (CheckpointerLink.alive). */
  private generation = 0;
  /** Restarts in a row of a thread that died (reset by one that ran RESTART_RESET_MS, or a store's start). */
  private deaths = 0;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly entry: string,
    private readonly report: (err: Error, path: string | undefined) => void,
    /** The bytes a store committed so far, the most of the engine's SQLite stores (the start's trigger). */
    private readonly written: () => number,
    frames = CHECKPOINT_FRAMES,
    private readonly startBytes = START_BYTES,
    /** Tests only: how many times in a row a thread that died is started again (0: never, a thread gone for good). */
    private readonly restarts = RESTARTS,
  ) {
    this.link = { channel: `graphrefly-checkpointer:${process.pid}:${randomBytes(8).toString("hex")}`, alive: new SharedArrayBuffer(LINK_WORDS * 4), frames };
  }

  /** The link for an actor's options; the thread starts once a store wrote START_BYTES. Undefined once closed. */
  linkForActor(): CheckpointerLink | undefined {
    if (this.stopped) return undefined;
    // Actors that posted their store before the thread listened post it again at its hello.
    if (this.worker === undefined && this.watch === undefined && this.restartTimer === undefined) {
      this.deaths = 0;
      if (this.startBytes <= 0) this.start();
      else {
        this.watch = setInterval(() => {
          if (this.written() >= this.startBytes) this.start();
        }, START_CHECK_MS);
        this.watch.unref();
      }
    }
    return this.link;
  }

  private start(): void {
    clearInterval(this.watch);
    this.watch = undefined;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    if (this.stopped || this.worker !== undefined) return;
    const startedAt = performance.now();
    const alive = new Int32Array(this.link.alive);
    const generation = ++this.generation;
    // Live before the thread can say hello: an actor's close must wait for a connection the new thread may open (r335 F3).
    Atomics.store(alive, 0, generation);
    let worker: Worker;
    try {
      worker = new Worker(this.entry, {
        workerData: { channel: this.link.channel, frames: this.link.frames, generation },
        // Only this package's code runs there: the process's own flags (an --import of instrumentation) stay out.
        execArgv: [],
        // A connection per store and a 128-byte read buffer: a small heap is plenty.
        resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 4 },
      });
    } catch (err) {
      // No thread (e.g. the process is out of threads): the writers checkpoint themselves; tried again as a death.
      Atomics.compareExchange(alive, 0, generation, 0);
      if (!this.stopped) this.restartAfter(`could not start (${err instanceof Error ? err.message : String(err)})`, 0);
      return;
    }
    this.worker = worker;
    worker.unref(); // it must not keep a process alive that forgot engine.close()
    worker.on("message", (m: CheckpointerReport) => {
      if (m.t === "stats") {
        for (const r of this.statsWaiting.splice(0)) r(m.stores);
        return;
      }
      if (m.t !== "error") return;
      this.report(
        new StorageError("backend-error", `sqlite checkpointer: ${m.message} (${m.path}); the writer checkpoints the store itself`, {
          path: m.path,
          ...(m.code !== undefined ? { sqliteCode: m.code } : {}),
          ...(m.reason !== undefined ? { reason: m.reason } : {}),
          ...(m.file !== undefined ? { file: m.file } : {}),
        }),
        m.path,
      );
    });
    worker.on("error", (err: Error) => this.report(new StorageError("backend-error", `sqlite checkpointer thread failed: ${err.message}`), undefined));
    this.exited = new Promise<void>((resolve) =>
      worker.once("exit", (code: number) => {
        // Actors wait for it no more; their writers checkpoint themselves at 1000 frames from their next commit.
        Atomics.compareExchange(alive, 0, generation, 0);
        for (const r of this.statsWaiting.splice(0)) r([]); // a stats request it never answered (r335 F2)
        if (this.worker === worker) {
          this.worker = undefined;
          if (!this.stopped) this.restartAfter(`ended (exit code ${code})`, performance.now() - startedAt);
        }
        resolve();
      }),
    );
  }

  /**
   * A thread that ended without the engine's close: started again after a backoff, and its hello hands it the live
   * stores (a long-running engine with a fixed set of stores would otherwise lose it for good).
   */
  private restartAfter(how: string, ranMs: number): void {
    if (ranMs >= RESTART_RESET_MS) this.deaths = 0;
    if (this.deaths >= this.restarts) {
      this.report(
        new StorageError(
          "backend-error",
          `sqlite checkpointer thread ${how}, ${this.deaths + 1} times in a row: not started again until a SQLite store is opened; the writers checkpoint themselves`,
        ),
        undefined,
      );
      return;
    }
    const delay = Math.min(RESTART_MAX_MS, RESTART_FIRST_MS * 2 ** this.deaths);
    this.deaths++;
    this.report(
      new StorageError("backend-error", `sqlite checkpointer thread ${how}: started again in ${delay} ms; the writers checkpoint themselves meanwhile`),
      undefined,
    );
    this.restartTimer = setTimeout(() => this.start(), delay);
    this.restartTimer.unref();
  }

  /** Tests only (EngineTestAccess): the thread checkpoints nothing while held, as a stalled one. */
  hold(on: boolean): void {
    this.worker?.postMessage({ t: "hold", on } satisfies CheckpointerCommand);
  }

  /**
   * Tests only: the thread ends as a crash would end it (exit code 1, nothing closed), and is started again as one that
   * died. It ends itself from its message handler: a terminate() could land inside a native SQLite call (an open
   * arriving meanwhile), which aborts the process.
   */
  async kill(): Promise<void> {
    const worker = this.worker;
    if (worker === undefined) return;
    worker.postMessage({ t: "die" } satisfies CheckpointerCommand);
    await this.exited;
  }

  /** Tests only: the stores the thread serves now, with each connection's synchronous read back and its checkpoints. */
  stores(): Promise<readonly CheckpointedStore[]> {
    if (this.worker === undefined) return Promise.resolve([]);
    this.worker.postMessage({ t: "stats" } satisfies CheckpointerCommand);
    return new Promise((r) => this.statsWaiting.push(r));
  }

  /** Tests only: the messages the actors' threads received on the engine's checkpoint channel so far. */
  get deliveries(): number {
    return Atomics.load(new Int32Array(this.link.alive), LINK_DELIVERIES);
  }

  /** Tests only: the writers' waits at their bound for the thread's checkpoint that gave up at the cap, so far. */
  get cappedWaits(): number {
    return Atomics.load(new Int32Array(this.link.alive), LINK_CAPPED_WAITS);
  }

  /** Tests only: how long a writer past its bound waits for the thread's checkpoint (the default's 2 s otherwise). */
  set boundWaitMs(ms: number) {
    Atomics.store(new Int32Array(this.link.alive), LINK_BOUND_WAIT_MS, ms);
  }

  /** Whether the thread runs now. */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /** Ends the thread (after the stores closed): it closes what connections remain and exits. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.watch);
    clearTimeout(this.restartTimer);
    const worker = this.worker;
    if (worker === undefined) return;
    worker.postMessage({ t: "stop" } satisfies CheckpointerCommand);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), STOP_WAIT_MS)));
    const ended = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    // Never terminated inside a native SQLite call (that aborts the process, native-gate.ts): a thread that did not end
    // within the bound is left to end by itself (unref'd: it keeps no process alive).
    if (ended === "late") this.report(new StorageError("close-timeout", "sqlite checkpointer thread did not end within 5 s of the engine's close"), undefined);
  }
}
