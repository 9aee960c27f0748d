/**
 * A worker thread that ends with a shared-WAL group open (docs/design.md §3.10, "Folds the engine starts itself"; task
 * 228). Its live groups with a memory member publish their floors in its buffer (shared-wal-floors.ts), and a store
 * actor keeps every buffer it adopts: the question was whether an ended thread's floors stay in such an actor and
 * hold every later fold of the graph below them. They cannot: only the thread's own tiers and jobs send its buffer,
 * so only the actors of the engines it opened adopt it, and those run on worker threads it started (piscina's), which
 * Node stops when it ends:
 * - a worker thread pairing a memory store with the WAL through its own engine: the engine's fold keeps the frames
 *   while the group lives; ended by terminate() or by an uncaught error, the thread and its engine's actor threads are
 *   gone, and a fold afterwards deletes every frame the floor held (passes before too: a guard on that premise).
 * - except for a job the thread forwards to another thread's engine (compactGraphInEngine takes any `runJob`; a
 *   worker asking the main thread's engine): that engine's actor adopts the worker's buffer and outlives it. Ended
 *   with its group open, the worker's floor held every later fold of the graph on that store for good (0 frames
 *   deleted, the WAL growing without bound); the actor now drops the buffer of an ended thread. A live worker's
 *   floor still holds them (control).
 * - a thread id reused: a buffer whose owner cells name a live thread id with another start time is dropped (a kernel
 *   thread id cannot be made to come round again in a test; the owner cells are set by hand in a live worker's buffer).
 * - a process whose /proc is another PID namespace's (process.pid is not /proc/thread-self's pid): no thread can be
 *   told ended, so an ended worker's floors are kept, as before (fixtures/floors-pid-namespace.mjs).
 * Real worker threads, real SQLite files, real engines; /proc tells the threads gone (Linux); no timing.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import type { StoreSpec } from "../../src/engine/protocol.js";
import { compactGraphInEngine, type CompactionResult } from "../../src/persistence/compaction.js";
import { adoptSharedWalFloors, adoptedSharedWalFloor } from "../../src/persistence/shared-wal-floors.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { until } from "../support/wait.js";
import { storedSeqs } from "./fixtures/shared-wal.js";

const tmp = tempDir("shared-wal-ended-thread");
afterAll(() => tmp.remove());

const WORKER = new URL("./fixtures/ended-thread-worker.mjs", import.meta.url);
const ACTOR_ENTRY = fileURLToPath(new URL("./fixtures/ended-thread-actor.mjs", import.meta.url));
const OWNER_WORKER = new URL("./fixtures/floors-owner-worker.mjs", import.meta.url);

/** Whether the kernel thread `tid` of this process is still there. */
const threadAlive = (tid: string): boolean => existsSync(`/proc/${process.pid}/task/${tid}`);

describe.each([
  ["terminated (worker.terminate())", "terminate"],
  ["ended by an uncaught error", "throw"],
] as const)("a worker thread with a memory store paired with the WAL through its own engine, %s with the group open", (_n, how) => {
  it("its engine's fold kept the frames while it lived; once it ended, no actor holds its floor: a fold deletes them", async () => {
    const one = tmp.path(`${how}.db`);
    const tidsFile = tmp.path(`${how}-actor-tids`);
    const worker = new Worker(WORKER, { workerData: { one, tidsFile, actorEntry: ACTOR_ENTRY } });
    const errors: Error[] = [];
    worker.on("error", (err) => errors.push(err));
    const exited = new Promise<number>((resolve) => worker.once("exit", resolve));
    const ready = await Promise.race([
      new Promise<{ tid: string; fold: CompactionResult }>((resolve) => worker.once("message", resolve)),
      exited.then((code) => Promise.reject(new Error(`the worker exited (${code}) before it attached: ${errors.join("; ")}`))),
    ]);
    // The control: the live group's floor (its memory store's baseline, at the attach) reached its engine's actor
    // and held the fold to it.
    expect(ready.fold.deletedFrames).toBe(0);
    expect(ready.fold.keptFrames).toBeGreaterThan(0);
    const framesBefore = storedSeqs(one).frames;
    expect(framesBefore.length).toBe(ready.fold.keptFrames);
    const actorThreads = readFileSync(tidsFile, "utf8").trim().split("\n");
    expect(ready.tid).toMatch(/^\d+$/);
    expect(actorThreads.length).toBeGreaterThan(0);
    for (const tid of [ready.tid, ...actorThreads]) expect(threadAlive(tid)).toBe(true);

    if (how === "terminate") await worker.terminate();
    else worker.postMessage("throw");
    await exited;
    if (how === "throw") expect(errors.map((e) => e.message)).toEqual([expect.stringContaining("ends with its group open")]);
    // The only actors that adopted its buffer end with it: Node stops a thread's worker threads when it ends.
    await until(() => [ready.tid, ...actorThreads].every((tid) => !threadAlive(tid)), "the worker and its engine's actor threads to end", {
      timeoutMs: 60_000,
    });

    const engine = openStorageEngine({ threads: 1, onError: () => {} });
    try {
      const fold = await compactGraphInEngine(engine, { kind: "sqlite", path: one }, "g");
      expect(fold.deletedFrames).toBe(framesBefore.length);
      expect(storedSeqs(one).frames).toEqual([]);
    } finally {
      await engine.close();
    }
  }, 180_000);
});

/** A message of floors-owner-worker.mjs. */
type OwnerMessage =
  | { type: "runJob"; id: number; store: StoreSpec; name: string; args: unknown }
  | { type: "ready"; fold?: CompactionResult; buffer?: SharedArrayBuffer };

/**
 * Starts floors-owner-worker.mjs in `mode`, running the jobs it forwards on `engine`; resolves with its "ready"
 * message, and `ended` once it exited (with the errors it raised).
 */
async function ownerWorker(
  mode: "forward" | "publish",
  engine: StorageEngine | undefined,
  one?: string,
): Promise<{ worker: Worker; ready: Extract<OwnerMessage, { type: "ready" }>; ended: Promise<Error[]> }> {
  const worker = new Worker(OWNER_WORKER, { workerData: { mode, one } });
  const errors: Error[] = [];
  worker.on("error", (err) => errors.push(err));
  const ended = new Promise<Error[]>((resolve) => worker.once("exit", () => resolve(errors)));
  const ready = new Promise<Extract<OwnerMessage, { type: "ready" }>>((resolve) => {
    worker.on("message", (m: OwnerMessage) => {
      if (m.type === "ready") return resolve(m);
      engine!.runJob(m.store, m.name, m.args).then(
        (result) => worker.postMessage({ type: "ran", id: m.id, result }),
        (err: unknown) => worker.postMessage({ type: "ran", id: m.id, error: String(err) }),
      );
    });
  });
  const first = await Promise.race([ready, ended.then((e) => Promise.reject(new Error(`the worker exited before it was ready: ${e.join("; ")}`)))]);
  return { worker, ready: first, ended };
}

describe.each([
  ["terminated (worker.terminate())", "terminate"],
  ["ended by an uncaught error", "throw"],
] as const)("a worker thread with a memory store paired with the WAL (inline tiers), its fold run by the main thread's engine, %s", (_n, how) => {
  it("its floor holds the engine's folds while it lives; once it ended, a fold deletes the frames only it held", async () => {
    const one = tmp.path(`forward-${how}.db`);
    const engine = openStorageEngine({ threads: 1, onError: () => {} });
    const spec: StoreSpec = { kind: "sqlite", path: one };
    try {
      const { worker, ready, ended } = await ownerWorker("forward", engine, one);
      // Its own fold kept the frames (its group's floor went with the job, which the main engine's actor adopted).
      expect(ready.fold?.deletedFrames).toBe(0);
      const framesBefore = storedSeqs(one).frames;
      expect(framesBefore.length).toBeGreaterThan(0);
      // The control: a fold the main thread asks for, whose thread has no group, is held by the live worker's floor.
      expect((await compactGraphInEngine(engine, spec, "g")).deletedFrames).toBe(0);
      expect(storedSeqs(one).frames).toEqual(framesBefore);

      if (how === "terminate") await worker.terminate();
      else worker.postMessage("throw");
      const errors = await ended;
      if (how === "throw") expect(errors.map((e) => e.message)).toEqual([expect.stringContaining("ends with its floors published")]);

      // Before: 0 deleted, for as long as the engine's actor lived (its floor at the memory store's attach baseline).
      const fold = await compactGraphInEngine(engine, spec, "g");
      expect(fold.deletedFrames).toBe(framesBefore.length);
      expect(storedSeqs(one).frames).toEqual([]);
    } finally {
      await engine.close();
    }
  }, 180_000);
});

describe("a floors buffer whose owner cells name a live thread id with another start time (the id reused)", () => {
  it("is dropped, while the same owner's buffer with its own start time counts", async () => {
    const live = await ownerWorker("publish", undefined);
    const reused = await ownerWorker("publish", undefined);
    try {
      const liveCells = new Int32Array(live.ready.buffer!);
      const reusedCells = new Int32Array(reused.ready.buffer!);
      // The owner cells are the layout's last three: the kernel thread id, then the start time's high and low words.
      const owner = liveCells.length - 3;
      expect(liveCells[owner]).toBeGreaterThan(0); // procfs told the worker its identity
      // The second worker's buffer now names the first worker's (live) thread id, started one tick later: what a
      // buffer of an ended thread looks like once the kernel gave its id to a new thread.
      Atomics.store(reusedCells, owner, liveCells[owner]!);
      Atomics.store(reusedCells, owner + 1, liveCells[owner + 1]!);
      Atomics.store(reusedCells, owner + 2, (liveCells[owner + 2]! + 1) | 0);
      adoptSharedWalFloors(reused.ready.buffer);
      // Before: 7 (no owner check).
      expect(adoptedSharedWalFloor("store", "g")).toBe(Number.POSITIVE_INFINITY);
      adoptSharedWalFloors(live.ready.buffer);
      expect(adoptedSharedWalFloor("store", "g")).toBe(7);
    } finally {
      await live.worker.terminate();
      await reused.worker.terminate();
    }
    // Ended: its buffer is dropped too.
    expect(adoptedSharedWalFloor("store", "g")).toBe(Number.POSITIVE_INFINITY);
  }, 180_000);
});

describe("a process whose /proc is another PID namespace's", () => {
  it("has no kernel identity and keeps an ended thread's floors (they cannot be told ended)", async () => {
    const child = new URL("./fixtures/floors-pid-namespace.mjs", import.meta.url);
    const { stdout } = await promisify(execFile)(process.execPath, [fileURLToPath(child)]);
    expect(JSON.parse(stdout.trim())).toEqual({ identity: null, floor: 7 });
  }, 180_000);
});
