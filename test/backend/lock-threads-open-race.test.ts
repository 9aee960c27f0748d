/**
 * Task 196: threads of ONE process opening one store at the same moment (two engines, an engine's actor beside an
 * inline tier). The store lock is per process, so each of them must join it. The lock database waited 0 ms: a thread
 * whose row met another thread's commit (or its read transaction, kept for the handle's life) was refused
 * store-locked "by another process", or named this very process as the holder; with 4 threads, 3 of 4 opens failed.
 * Then a new SQLite store's setup (its switch to WAL, its table): a thread whose setup met another's past the writer
 * turn's and SQLite's 50 ms bounds (a loaded machine) failed its open store-busy.
 * Real worker threads (released together by a shared counter), real SQLite files and directories, and a real other
 * process for what must still be refused. No timing asserted.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { realFilePath } from "../../src/backend/lock.js";
import { writerSlot, writerTurnHolder } from "../../src/backend/sqlite-turns.js";
import { lockSqliteFile } from "../support/sqlite-locker.js";
import { sleep } from "../support/wait.js";
import { killAllStoreChildren, openStoreInChild } from "./store-holder.js";

const WORKER = new URL("./fixtures/open-at-once-worker.mjs", import.meta.url);
const THREADS = 4;
const ROUNDS = 6;

const dir = mkdtempSync(join(tmpdir(), "grf-lock-threads-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => killAllStoreChildren());

interface Answer {
  code: string;
  message?: string;
}

interface Racers {
  answers: Answer[];
  /** Closes every opened store and waits for the threads to end. */
  end(): Promise<void>;
}

/**
 * Starts `threads` threads that open `path` at the same moment; resolves with each one's answer once they answered
 * and `started` (given the threads at once) is done.
 */
async function race(kind: "sqlite" | "file", path: string, threads = THREADS, started?: (workers: Worker[]) => Promise<void>): Promise<Racers> {
  const arrived = new SharedArrayBuffer(4);
  const workers = Array.from({ length: threads }, () => new Worker(WORKER, { workerData: { kind, path, arrived, threads } }));
  const answering = Promise.all(
    workers.map(
      (w) =>
        new Promise<Answer>((resolve, reject) => {
          w.once("message", resolve);
          w.once("error", reject);
          w.once("exit", (code) => reject(new Error(`opener thread exited (${code}) before answering`)));
        }),
    ),
  );
  const [answers] = await Promise.all([answering, started?.(workers)]);
  return {
    answers,
    async end() {
      await Promise.all(
        workers.map((w) => {
          const exited = new Promise<void>((r) => w.once("exit", () => r()));
          w.postMessage("close");
          return exited;
        }),
      );
    },
  };
}

describe.each(["sqlite", "file"] as const)("%s store: threads of one process opening it at once", (kind) => {
  const storePath = (name: string): string => join(dir, kind === "sqlite" ? `${name}.db` : name);

  it(`every one of ${THREADS} threads opens a store another process held before (${ROUNDS} rounds)`, async () => {
    const failed: Answer[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const path = storePath(`held-before-${round}`);
      // The lock's row names another process, gone now: the store is free, and the lock database exists.
      const before = await openStoreInChild(kind, path);
      expect(before.report.code).toBe("acquired");
      await before.release();
      const { answers, end } = await race(kind, path);
      await end();
      failed.push(...answers.filter((a) => a.code !== "opened"));
    }
    // Before the fix: store-locked "by another process" (or naming this process) for most threads of each round.
    expect(failed).toEqual([]);
  }, 120_000);

  it("while its threads hold the store, another process is still refused, naming this one; after, it opens", async () => {
    const path = storePath("held-by-threads");
    const { answers, end } = await race(kind, path);
    expect(answers.map((a) => a.code)).toEqual(Array<string>(THREADS).fill("opened"));
    const refused = await openStoreInChild(kind, path);
    expect(refused.report.code).toBe("store-locked");
    expect(refused.report.details).toMatchObject({ pid: process.pid });
    await refused.release();
    await end();
    const after = await openStoreInChild(kind, path);
    expect(after.report.code).toBe("acquired");
    await after.release();
  }, 120_000);
});

describe("file store: threads of one process opening a new store at once", () => {
  it(`every one of ${THREADS} threads opens it (${ROUNDS} rounds)`, async () => {
    const failed: Answer[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const { answers, end } = await race("file", join(dir, `new-${round}`));
      await end();
      failed.push(...answers.filter((a) => a.code !== "opened"));
    }
    expect(failed).toEqual([]);
  }, 120_000);
});

describe("SQLite: a new store's setup met by another handle's lock at open", () => {
  it(`every one of ${THREADS} threads opens a new store (${ROUNDS} rounds)`, async () => {
    const failed: Answer[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const { answers, end } = await race("sqlite", join(dir, `new-${round}.db`));
      await end();
      failed.push(...answers.filter((a) => a.code !== "opened"));
    }
    expect(failed).toEqual([]);
  }, 120_000);

  it("an open whose setup meets a lock held past SQLite's busy timeout waits for it and opens", async () => {
    // Stands in for another thread's slow setup (deterministically): another process holds the new file's write
    // lock, so the open's switch to WAL is refused until it lets go. It lets go only once the opening thread has
    // been in its setup (its writer turn) a while: before the fix that open had failed store-busy by then.
    const path = join(dir, "setup-waits.db");
    const locker = await lockSqliteFile(path);
    try {
      const slot = writerSlot(realFilePath(path));
      const { answers, end } = await race("sqlite", path, 1, async ([opener]) => {
        for (let i = 0; i < 10_000 && writerTurnHolder(slot) !== opener!.threadId; i++) await sleep(1);
        await sleep(300);
        await locker.release();
      });
      await end();
      expect(answers).toEqual([{ code: "opened" }]);
    } finally {
      locker.kill();
    }
  }, 60_000);
});
