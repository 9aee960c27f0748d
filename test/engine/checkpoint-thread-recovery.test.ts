/**
 * The checkpointer thread's recovery paths (docs/design.md §3.50; review r335 F2–F4, fixed in d801651; the restart
 * with backoff of 85b275b): the liveness word set before the thread can say hello, a thread that cannot start retried
 * as a death, a stats request to an ending thread answered, one store's failed hand-over skipping no other, and the
 * restart's limits (backoff growing and capped, the writer inline at SQLite's 1000 frames while no thread serves it,
 * a thread that comes back taking the store over), and a writer waiting at its bound for a checkpoint of a thread
 * killed while its checkpoint is stalled (task 367; the stall is before wal_checkpoint, not inside SQLite's copy), or
 * whose look at the -shm met a FIFO put there since (task 366).
 *
 * Real parts: the checkpointer thread (dist/workers/checkpointer.js), SQLite files, and the store's writer on a worker
 * thread of its own (fixtures/checkpoint-writer.mjs: a SqliteBackend handed over by side-checkpoint, as an actor's).
 * Test seams, this file only: node:worker_threads' Worker is wrapped so that a checkpointer thread's start can be made
 * to fail for real (a stack no thread can get: Node's ERR_WORKER_INIT_FAILED, as when the process is out of threads)
 * and so that the main thread can stand still just after a start made its Worker (the gate of the F3 test), and the
 * last Worker made is kept (a test terminates it while the thread's "stall" hook holds its checkpoint);
 * fixtures/checkpoint-writer.mjs reads each store's control block and can make a hand-over's post throw. Ordering is by
 * events: the threads' messages, the store blocks' shared words, and fake timers for the restart's backoff.
 */
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { execFileSync } from "node:child_process";
import { closeSync, constants, existsSync, openSync, unlinkSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { EngineCheckpointer, RESTARTS } from "../../src/engine/checkpointer.js";
import { CTL_CHECKPOINTING, CTL_WRITER_CHECKPOINT, type CheckpointerCommand, type CheckpointerLink } from "../../src/engine/checkpoint-link.js";
import { openStorageEngineForTests, workerEntryPath } from "../../src/engine/engine.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { StorageError } from "../../src/errors.js";
import { until } from "../support/wait.js";
import { WriterThread } from "./fixtures/checkpoint-writer-thread.js";
import { tempRoot } from "./fixtures/helpers.js";

const seam = vi.hoisted(() => ({
  /** A checkpointer thread's start fails (for real, in Node's thread creation) while set. */
  failStarts: false,
  /** Checkpointer Workers constructed (or tried). */
  starts: 0,
  /** Called on the main thread just after a checkpointer Worker was made, inside the checkpointer's start. */
  afterStart: undefined as (() => void) | undefined,
  /** The checkpointer Worker made last (a test terminates it). */
  worker: undefined as import("node:worker_threads").Worker | undefined,
}));

vi.mock("node:worker_threads", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:worker_threads")>();
  class Worker extends real.Worker {
    constructor(file: string | URL, options?: import("node:worker_threads").WorkerOptions) {
      const checkpointer = String(file).endsWith("checkpointer.js");
      if (checkpointer) seam.starts++;
      // No thread can have a stack of ~1 TB: Node throws ERR_WORKER_INIT_FAILED (EAGAIN) from the constructor.
      super(file, checkpointer && seam.failStarts ? { ...options, resourceLimits: { ...options?.resourceLimits, stackSizeMb: 1e6 } } : options);
      if (checkpointer) {
        seam.worker = this;
        seam.afterStart?.();
      }
    }
  }
  return { ...real, Worker }; // src imports it by name only
});

const root = tempRoot("checkpoint-recovery");
afterAll(() => root.remove());

const FRAMES = 40;
/** The writer's autocheckpoint while a live thread serves its store (4× the threshold), and SQLite's own. */
const BOUND = 4 * FRAMES;
const SQLITE_AUTOCHECKPOINT = 1000;
/** A writer's bound wait cap (EngineCheckpointer.boundWaitMs) longer than a run's wait ever is, loaded or not. */
const CAP_NO_RUN_REACHES_MS = 45_000;
const ENTRY = fileURLToPath(new URL("../../dist/workers/checkpointer.js", import.meta.url));

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  vi.useRealTimers();
  seam.failStarts = false;
  seam.afterStart = undefined;
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Words {
  alive: number;
  owner: number;
  state: number;
  closed: number;
}

/** A checkpointer as the engine makes one (threshold FRAMES, started by the first store), its reports kept. */
function checkpointer(): { cp: EngineCheckpointer; link: CheckpointerLink; reports: string[] } {
  const reports: string[] = [];
  const cp = new EngineCheckpointer(
    ENTRY,
    (err) => {
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).code).toBe("backend-error");
      reports.push(err.message);
    },
    () => 0,
    FRAMES,
    0,
  );
  cleanups.push(() => cp.stop());
  const link = cp.linkForActor()!;
  return { cp, link, reports };
}

async function servedPaths(cp: EngineCheckpointer): Promise<string[]> {
  return (await cp.stores()).map((s) => s.path);
}

/**
 * A writer thread linked to `link` with a FULL store named `name` open, served by thread generation 1 and blocked
 * (its control block shared): where the stalled-checkpoint cases start.
 */
async function blockedWriter(link: CheckpointerLink, name: string): Promise<{ writer: WriterThread; path: string; ctl: Int32Array }> {
  const writer = new WriterThread(cleanups);
  await writer.call("link", { link });
  const path = root.fresh(name);
  await writer.call("open", { path, synchronous: "FULL" });
  await writer.call("served", { path, generation: 1 });
  const ctl = new Int32Array((await writer.call<{ ctl: SharedArrayBuffer }>("block", { path })).ctl);
  return { writer, path, ctl };
}

describe("the checkpointer thread's recovery", () => {
  it("the liveness word holds the new thread's generation when its hello hands a store over (review r335 F3)", async () => {
    // Before d801651 the word was set only after the Worker was made: a hello answered in between found no live
    // thread, so the writer went back to 1000 frames and its close did not wait for the new thread's connection (the
    // writer's close was then not SQLite's last). Here the main thread stands still right after the new Worker was
    // made, until the writer's thread has seen the new thread take the store, committed and closed.
    const { cp, link } = checkpointer();
    const writer = new WriterThread(cleanups);
    await writer.call("link", { link });
    const path = root.fresh("hello-word.db");
    await writer.call("open", { path });
    const first = await writer.call<Words>("served", { path });
    expect(first.owner).toBe(1);
    await cp.kill(); // the restart follows in 250 ms
    const gate = new Int32Array(new SharedArrayBuffer(4));
    const report = writer.call<{ atTakeOver: Words; afterCommit: number; closed: Words & { walLeft: boolean } }>("takeOver", {
      path,
      gate: gate.buffer,
      before: 1,
      from: 100,
    });
    let waited: string | undefined;
    seam.afterStart = () => {
      seam.afterStart = undefined;
      waited = Atomics.wait(gate, 0, 0, 30_000); // the deadline only ends a hung test
    };
    const { atTakeOver, afterCommit, closed } = await report;
    expect(waited).not.toBe("timed-out");
    expect(atTakeOver.owner).toBe(2);
    expect(atTakeOver.alive).toBe(2); // live when its hello was answered
    expect(afterCommit).toBe(BOUND); // served: the writer at the bound, not back at 1000
    expect(closed.closed).toBe(1); // the close waited for the thread's connection to close
    expect(closed.walLeft).toBe(false); // so the writer's close was SQLite's last, which removes the WAL
    expect(await servedPaths(cp)).toStrictEqual([]);
  });

  it("a thread that cannot start is retried as a death: reported, started again after the backoff, and it takes the store over (d801651)", async () => {
    // Before d801651 the Worker constructor's throw left the start: here, from the engine's first SQLite store, the
    // store's open threw ERR_WORKER_INIT_FAILED; from the restart timer, an uncaught exception; never tried again.
    const errors: Error[] = [];
    const access = openStorageEngineForTests({ threads: 1, onError: (err) => void errors.push(err) }, workerEntryPath(), {
      checkpointFrames: FRAMES,
      checkpointStartBytes: 0,
    });
    cleanups.push(() => access.engine.close());
    const path = root.fresh("cannot-start.db");
    seam.failStarts = true;
    seam.starts = 0;
    const kv = access.engine.kv<string>({ kind: "sqlite", path }, { name: "kv" });
    kv.save("a", "1");
    await kv.flush(); // the write never waits for the thread
    expect(seam.starts).toBeGreaterThanOrEqual(1);
    expect(access.checkpointer!.running).toBe(false);
    const failed = errors.find((e) => e.message.includes("could not start"));
    expect(failed).toBeInstanceOf(StorageError);
    expect((failed as StorageError).code).toBe("backend-error");
    expect(failed!.message).toContain("could not start (EAGAIN)"); // Node's ERR_WORKER_INIT_FAILED
    expect(failed!.message).toContain("started again in 250 ms");
    seam.failStarts = false; // the process has threads again: the next restart makes one
    await until(async () => (await access.checkpointer!.stores()).some((s) => s.path === path), "the restarted thread serves the store", {
      timeoutMs: 20_000,
      intervalMs: 20,
    });
    expect(access.checkpointer!.running).toBe(true);
    kv.save("b", "2");
    await kv.flush();
    await access.engine.close();
    expect(existsSync(`${path}-wal`)).toBe(false);
  });

  it("a stats request to a thread that is ending is answered empty, when the thread dies and when the engine's close ends it (review r335 F2)", async () => {
    // Before d801651 the request stayed pending for ever: the thread ended before it read it, and nothing else answered.
    const { cp, link } = checkpointer();
    const writer = new WriterThread(cleanups);
    await writer.call("link", { link });
    const path = root.fresh("stats-ending.db");
    await writer.call("open", { path });
    await writer.call("served", { path });
    const answered = async (end: () => Promise<void>): Promise<readonly unknown[] | undefined> => {
      const ending = end(); // "die" or "stop" posted first: the thread ends before it reads the request
      let answer: readonly unknown[] | undefined;
      void cp.stores().then((stores) => (answer = stores));
      await ending; // its exit answered the request before it let the end's promise go
      return answer;
    };
    expect(await answered(() => cp.kill())).toStrictEqual([]);
    // The dead thread is started again (250 ms) and takes the store; the engine's close (stop) ends that one.
    await writer.call("served", { path, generation: 2 });
    expect(await answered(() => cp.stop())).toStrictEqual([]);
    expect(cp.running).toBe(false);
    expect((await writer.call<{ walLeft: boolean }>("close", { path })).walLeft).toBe(false);
  });

  it("one store whose hand-over throws at a new thread's hello skips no other store (review r335 F4)", async () => {
    // Before d801651 the throw left the hello's loop, and the channel's handler: an uncaught exception on the writer's
    // thread (an engine's actor worker, with every store on it), and the stores after it were never handed over.
    const { cp, link } = checkpointer();
    const writer = new WriterThread(cleanups);
    await writer.call("link", { link });
    const [x1, bad, x2, probe] = ["x1", "bad", "x2", "probe"].map((n) => root.fresh(`hand-over-${n}.db`));
    for (const path of [x1, bad, x2]) {
      await writer.call("open", { path });
      expect((await writer.call<Words>("served", { path })).owner).toBe(1);
    }
    await writer.call("fail", { path: bad, on: true });
    await cp.kill();
    await writer.call("served", { path: x1, generation: 2 }); // the hello's loop ran (x1's hand-over comes first)
    // A store opened now posts after whatever that loop posted, on the same channel: once the thread took it, it has
    // read x2's hand-over too, if there was one.
    await writer.call("open", { path: probe });
    await writer.call("served", { path: probe, generation: 2 });
    const words = await writer.call<Words>("words", { path: x2 });
    expect(words.owner).toBe(2);
    expect(words.state).toBe(1); // STATE_OPEN
    expect(await servedPaths(cp)).toEqual(expect.arrayContaining([x1, x2, probe]));
    expect(await servedPaths(cp)).not.toContain(bad);
    // x2's writer is back at the bound, and its close waits for the new thread's connection.
    expect((await writer.call<{ autocheckpoint: number }>("write", { path: x2, count: 1 })).autocheckpoint).toBe(BOUND);
    for (const path of [x1, bad, x2, probe]) expect((await writer.call<{ walLeft: boolean }>("close", { path })).walLeft).toBe(false);
  });

  it("a store whose hand-over cannot be posted is served by no thread: its writer checkpoints at SQLite's 1000 frames, and a later hello hands it over", async () => {
    // Before: the block stayed pending, which reads as served while a thread lives, so the writer stayed at the bound
    // (4000 frames, ~32 MiB of -wal) though no thread would ever take the store.
    const { cp, link } = checkpointer();
    const writer = new WriterThread(cleanups);
    await writer.call("link", { link });
    const [atHello, atOpen, probe] = ["at-hello", "at-open", "probe"].map((n) => root.fresh(`unposted-${n}.db`));
    await writer.call("open", { path: atHello });
    await writer.call("served", { path: atHello, generation: 1 });
    await writer.call("fail", { path: atHello, on: true });
    await writer.call("fail", { path: atOpen, on: true });
    await expect(writer.call("open", { path: atOpen })).rejects.toThrow(/hand-over .* failed \(test\)/); // as an actor's open hears it
    await cp.kill();
    // The new thread's hello was answered once it took a store opened after it (posted after the hello's loop).
    await writer.call("open", { path: probe });
    await writer.call("served", { path: probe, generation: 2 });
    let from = 0;
    for (const path of [atHello, atOpen]) {
      const w = await writer.call<{ most: number; autocheckpoint: number }>("write", { path, count: 150, from });
      from += 150;
      expect(w.autocheckpoint).toBe(SQLITE_AUTOCHECKPOINT);
      expect(w.most).toBeLessThan(SQLITE_AUTOCHECKPOINT + 20);
      expect((await writer.call<Words>("words", { path })).state).toBe(4); // STATE_REFUSED
    }
    expect(await servedPaths(cp)).toStrictEqual([probe]);
    // Posts work again: the next thread's hello hands both over, and their writers go back to the bound.
    await writer.call("fail", { path: atHello, on: false });
    await writer.call("fail", { path: atOpen, on: false });
    await cp.kill();
    for (const path of [atHello, atOpen, probe]) {
      await writer.call("served", { path, generation: 3 });
      expect((await writer.call<{ autocheckpoint: number }>("write", { path, count: 1, from: from++ })).autocheckpoint).toBe(BOUND);
    }
    for (const path of [atHello, atOpen, probe]) expect((await writer.call<{ walLeft: boolean }>("close", { path })).walLeft).toBe(false);
  });

  it("the close of a store whose hand-over could not be posted posts nothing and leaves the channel, also when every post of the channel throws (review r356)", async () => {
    // Before: the block said refused, not pending, so the close asked a thread that never took the store to close it;
    // when that post threw too, the close skipped leaving the channel, which stayed open with the store's hello
    // handler (holding its closed database) registered.
    const { link } = checkpointer();
    for (const all of [false, true]) {
      const writer = new WriterThread(cleanups); // a thread of its own: its channel carries this store alone
      await writer.call("link", { link });
      const path = root.fresh(`unposted-close-${all ? "all" : "open"}.db`);
      await writer.call("fail", { path, on: true, all });
      await expect(writer.call("open", { path })).rejects.toThrow(/hand-over .* failed \(test\)/);
      expect((await writer.call<{ autocheckpoint: number }>("write", { path, count: 1 })).autocheckpoint).toBe(SQLITE_AUTOCHECKPOINT);
      const closed = await writer.call<Words & { walLeft: boolean }>("close", { path });
      expect(closed.walLeft).toBe(false);
      expect(closed.state).toBe(2); // STATE_RELEASED: nothing was taken, nothing to close
      expect(await writer.call("channel", { path })).toMatchObject({ open: false, closePosts: 0 });
    }
  });

  it("a close whose post throws still waits for the thread to close its connection, and leaves the channel (review r356)", async () => {
    // Before: the post's throw ended the release there: the writer closed while the thread's connection was open (its
    // close not SQLite's last, the -wal left), and the channel stayed open.
    const { link } = checkpointer();
    const writer = new WriterThread(cleanups);
    await writer.call("link", { link });
    const path = root.fresh("close-post-throws.db");
    await writer.call("open", { path });
    await writer.call("served", { path, generation: 1 });
    await writer.call("write", { path, count: 1 });
    await writer.call("fail", { path, on: true, all: true });
    const closed = await writer.call<Words & { walLeft: boolean }>("close", { path });
    expect(closed.closed).toBe(1); // the thread closed its connection (it saw the block's close word)
    expect(closed.walLeft).toBe(false);
    expect(await writer.call("channel", { path })).toMatchObject({ open: false, closePosts: 1 });
  });

  it("a thread that dies again and again: the backoff doubles from 250 ms to its 30 s cap, 8 restarts in a row at most; the writer inline at SQLite's 1000 frames meanwhile; a thread back takes the store over", async () => {
    const { cp, link, reports } = checkpointer();
    const writer = new WriterThread(cleanups);
    await writer.call("link", { link });
    const path = root.fresh("restart-limits.db");
    await writer.call("open", { path });
    await writer.call("served", { path, generation: 1 });
    let keys = 0;
    /** 150 commits, ~1500 WAL frames (8 KiB pages, ~10 frames each): the most frames seen and the writer's setting. */
    const burst = async (): Promise<{ most: number; autocheckpoint: number }> => {
      const r = await writer.call<{ most: number; autocheckpoint: number }>("write", { path, count: 150, from: keys });
      keys += 150;
      return r;
    };
    /**
     * Served by a live thread: the writer at the bound, which holds the WAL with the thread stalled (held: it
     * checkpoints nothing, so the writer's own checkpoints are what bound it).
     */
    const expectServed = async (): Promise<void> => {
      await writer.call("served", { path });
      expect(await servedPaths(cp)).toStrictEqual([path]);
      cp.hold(true);
      await cp.stores(); // the hold answered
      // The first commit puts the writer at the bound and checkpoints what the WAL held before; the next restarts it.
      await writer.call("write", { path, count: 2, from: 1_000_000 + keys });
      const w = await burst();
      cp.hold(false);
      expect(w.autocheckpoint).toBe(BOUND);
      expect(w.most).toBeLessThan(BOUND + 20);
    };
    /** No live thread: the writer checkpoints itself at SQLite's 1000 frames, so the WAL reaches it and no further. */
    const expectInline = async (): Promise<void> => {
      const w = await burst();
      expect(w.autocheckpoint).toBe(SQLITE_AUTOCHECKPOINT);
      expect(w.most).toBeGreaterThan(SQLITE_AUTOCHECKPOINT - 20);
      expect(w.most).toBeLessThan(SQLITE_AUTOCHECKPOINT + 20);
    };
    await expectServed();

    // The restart timer's clock is faked (nothing else of this test's main thread waits on a timer): each start happens
    // at its delay to the millisecond, neither before nor after.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const restartAt = (delay: number, comesBack: boolean): void => {
      const before = seam.starts;
      seam.failStarts = !comesBack;
      vi.advanceTimersByTime(delay - 1);
      expect(seam.starts).toBe(before);
      vi.advanceTimersByTime(1);
      expect(seam.starts).toBe(before + 1);
    };
    const ends = (): string[] => reports.filter((m) => m.startsWith("sqlite checkpointer thread "));
    seam.failStarts = true;
    await cp.kill();
    await expectInline(); // no thread for now
    restartAt(250, false);
    restartAt(500, false);
    await expectInline();
    restartAt(1000, true); // the process has threads again
    await expectServed();
    // It ran less than 60 s: its death counts on from the three before it.
    await cp.kill();
    for (const delay of [2000, 4000, 8000, 16000, 30_000]) restartAt(delay, false);
    expect(vi.getTimerCount()).toBe(0); // not started again, however long it waits
    await expectInline();
    const way = (how: string, delay: number): string => `sqlite checkpointer thread ${how}: started again in ${delay} ms; the writers checkpoint themselves meanwhile`;
    const failed = "could not start (EAGAIN)";
    expect(ends()).toStrictEqual([
      way("ended (exit code 1)", 250),
      way(failed, 500),
      way(failed, 1000),
      way("ended (exit code 1)", 2000),
      way(failed, 4000),
      way(failed, 8000),
      way(failed, 16000),
      way(failed, 30_000),
      `sqlite checkpointer thread ${failed}, ${RESTARTS + 1} times in a row: not started again until a SQLite store is opened; the writers checkpoint themselves`,
    ]);
    vi.useRealTimers();

    // A SQLite store opened next starts a thread (no timer: at once), which takes the live store over.
    seam.failStarts = false;
    const starts = seam.starts;
    cp.linkForActor();
    expect(seam.starts).toBe(starts + 1);
    await expectServed();
    expect((await writer.call<{ walLeft: boolean }>("close", { path })).walLeft).toBe(false);
  });

  it("a thread that ran 60 s before it died starts the count of restarts in a row afresh", async () => {
    // The restart clock and the run's clock (performance.now) faked from before the first start.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const { cp, link, reports } = checkpointer();
    const writer = new WriterThread(cleanups);
    await writer.call("link", { link });
    const path = root.fresh("restart-reset.db");
    await writer.call("open", { path });
    await writer.call("served", { path, generation: 1 });
    await cp.kill();
    vi.advanceTimersByTime(250);
    await writer.call("served", { path, generation: 2 });
    await cp.kill(); // ran no time: the second in a row
    vi.advanceTimersByTime(500);
    await writer.call("served", { path, generation: 3 });
    vi.advanceTimersByTime(59_999);
    await cp.kill(); // ran 1 ms short of 60 s: the third in a row
    vi.advanceTimersByTime(1000);
    await writer.call("served", { path, generation: 4 });
    vi.advanceTimersByTime(60_000);
    await cp.kill(); // ran 60 s: counted afresh
    vi.advanceTimersByTime(250);
    await writer.call("served", { path, generation: 5 });
    expect(reports.map((m) => /started again in (\d+) ms/.exec(m)?.[1])).toStrictEqual(["250", "500", "1000", "250"]);
    vi.useRealTimers();
    expect((await writer.call<{ walLeft: boolean }>("close", { path })).walLeft).toBe(false);
  });

  it("a writer waiting at its bound for the thread's checkpoint goes on when the thread is killed while its checkpoint is stalled: the commit completes, every write is stored, and the writer, then a new thread, checkpoint (task 367)", async () => {
    const { cp, link, reports } = checkpointer();
    // The wait must end by the thread's death, seen through the liveness word, not by its cap (2 s, which a test
    // thread slow to terminate the stalled thread could pass): a cap no run reaches, and no wait ended by it (r374).
    cp.boundWaitMs = CAP_NO_RUN_REACHES_MS;
    const { writer, path, ctl } = await blockedWriter(link, "killed-mid-checkpoint.db");
    const first = seam.worker!;
    first.postMessage({ t: "stall" } satisfies CheckpointerCommand);
    await cp.stores(); // the stall reached the thread
    // ~1,000 frames: the thread's checkpoint at the threshold (40) stands still with its word raised, and the writer's
    // commit past the bound (160) waits for it, blocking the writer's thread.
    const wrote = writer.call<{ restarts: number; autocheckpoint: number }>("write", { path, count: 100 });
    await until(() => Atomics.load(ctl, CTL_CHECKPOINTING) === 1 && Atomics.load(ctl, CTL_WRITER_CHECKPOINT) === 1, "the writer waits for the stalled checkpoint", { timeoutMs: 30_000 });
    // Its checkpoint stalled before wal_checkpoint, at a JS point (a terminate inside a native call aborts the process).
    await first.terminate();
    // The wait ended (the thread that took the store is no longer the live one), and the writer copied the WAL itself:
    // the next commit restarted it. No live thread serves the store: SQLite's 1000 frames.
    const afterKill = await wrote;
    expect(cp.cappedWaits, "a wait ended at its cap, not at the thread's death").toBe(0);
    expect(afterKill.restarts).toBeGreaterThan(0);
    expect(afterKill.autocheckpoint).toBe(SQLITE_AUTOCHECKPOINT);
    // Every write acknowledged is there, read by another connection while the writer holds the store.
    const stored = (keys: readonly number[]): void => {
      const reader = sqliteBackend(path, { readOnly: true });
      try {
        for (const i of keys) expect(reader.read(`k${i}`)?.length, `k${i}`).toBe(56_000);
      } finally {
        reader.close();
      }
    };
    const firstKeys = [...Array(100).keys()];
    stored(firstKeys);
    // The thread started again takes the store over and checkpoints it, the writer back at the bound.
    await writer.call("served", { path, generation: 2 });
    const before = (await writer.call<{ checkpoints: number }>("words", { path })).checkpoints;
    const served = await writer.call<{ restarts: number; autocheckpoint: number }>("write", { path, count: 40, from: 1000 });
    expect(served.autocheckpoint).toBe(BOUND);
    expect((await writer.call<{ checkpoints: number }>("words", { path })).checkpoints).toBeGreaterThan(before);
    expect(served.restarts).toBeGreaterThan(0);
    expect(reports.some((m) => m.includes("ended (exit code 1)"))).toBe(true);
    expect((await writer.call<{ walLeft: boolean }>("close", { path })).walLeft).toBe(false);
    stored([...firstKeys, ...Array.from({ length: 40 }, (_, i) => 1000 + i)]); // in the database file, the WAL gone
  }, 120_000);

  it("a writer past its bound while the thread checkpoints opens the -shm without blocking: a FIFO put there since does not hang its commit (task 366)", async () => {
    // The writer reads the WAL's length from the -shm, which it opened the first time a thread's checkpoint ran past
    // its bound. A plain open of a FIFO put there blocked the writer's thread for good (every store of an engine's
    // worker with it); it is refused now as the side-file look refuses one, and the commit goes on.
    const { cp, link } = checkpointer();
    const { writer, path, ctl } = await blockedWriter(link, "shm-fifo.db");
    const thread = seam.worker!;
    cleanups.push(() => thread.terminate()); // a stalled thread answers no stop
    // ~50 frames while the thread is held (no checkpoint runs, so the writer never looks at the -shm), then its
    // checkpoint at the threshold stands still.
    cp.hold(true);
    await cp.stores(); // the hold reached the thread
    await writer.call("write", { path, count: 5 });
    thread.postMessage({ t: "stall" } satisfies CheckpointerCommand);
    cp.hold(false);
    await until(() => Atomics.load(ctl, CTL_CHECKPOINTING) === 1, "the thread's checkpoint stands still");
    const shm = `${path}-shm`;
    unlinkSync(shm); // the writer's connection keeps its own mapping of the file
    execFileSync("mkfifo", ["-m", "0644", shm]);
    cleanups.push(() => {
      try {
        closeSync(openSync(shm, constants.O_WRONLY | constants.O_NONBLOCK)); // lets a writer blocked there on
      } catch {
        // ENXIO: no one was blocked there
      }
    });
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<"hung">((resolve) => (timer = setTimeout(() => resolve("hung"), 20_000)));
    const committed = await Promise.race([writer.call<{ autocheckpoint: number }>("commit", { path, count: 40 }), hung]); // ~400 frames
    clearTimeout(timer);
    expect(committed, "the writer's commit blocked opening the -shm").not.toBe("hung");
    await thread.terminate(); // inside its stalled checkpoint, at a JS point
    expect((await writer.call<{ walLeft: boolean }>("close", { path })).walLeft).toBe(false);
    const reader = sqliteBackend(path, { readOnly: true });
    try {
      expect(reader.read("c39")?.length).toBe(56_000); // the commit's last write is in the database file
    } finally {
      reader.close();
    }
  });
});
