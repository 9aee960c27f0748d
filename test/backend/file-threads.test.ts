/**
 * Task 195 (b, c): handles of one file store in several worker threads of one process (two engines, an engine beside
 * an inline tier), which share the store's single-writer lock. Real threads (fixtures/file-threads-worker.mjs, dist/),
 * real files.
 * (b) A conditional batch (writeBatchIf) checked its expected values, then renamed: another thread's conditional
 *     batch could pass its check in between, and one overwrote the other (a lost update answered `true`). Now every
 *     conditional batch holds the store's check lock for its check and renames. Before: counters lost increments,
 *     and a new key was won by two threads.
 * (c) Every thread's first write swept the store's temp files, another thread's in-flight ones too: that thread's
 *     rename then failed ENOENT. Now only other processes', this thread's and ended threads' temp files are swept.
 */
import { once } from "node:events";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";

const WORKER = new URL("./fixtures/file-threads-worker.mjs", import.meta.url);
const root = mkdtempSync(join(tmpdir(), "file-threads-"));
let counter = 0;
const freshDir = (): string => join(root, `store-${counter++}`);
const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Answer {
  ok: boolean;
  code?: string;
  message?: string;
  won?: number[];
}

function startThreads(n: number): Worker[] {
  const sync = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
  const started = Array.from({ length: n }, (_, index) => new Worker(WORKER, { workerData: { index, threads: n, sync } }));
  workers.push(...started);
  return started;
}

async function ask(w: Worker, msg: object): Promise<Answer> {
  const answer = once(w, "message") as Promise<[Answer]>;
  w.postMessage(msg);
  return (await answer)[0];
}

const THREADS = 4;

describe("several threads of one process on one file store", () => {
  it("first writes of a new store, by every thread at once, all succeed (50 stores)", async () => {
    const threads = startThreads(THREADS);
    const failures: Answer[] = [];
    for (let round = 0; round < 50; round++) {
      const dir = freshDir();
      const answers = await Promise.all(threads.map((w) => ask(w, { task: "firstWrite", dir, round })));
      failures.push(...answers.filter((a) => !a.ok));
      if (failures.length === 0) {
        const b = fileBackend(dir, { readOnly: true });
        expect(b.list()).toHaveLength(3 * THREADS);
        b.close();
      }
    }
    expect(failures).toEqual([]);
  });

  /** Every thread runs `race` (fixtures) on one new store; the answers, and the store read after. */
  async function race(increments: number, keys: number): Promise<{ answers: Answer[]; b: ReturnType<typeof fileBackend> }> {
    const dir = freshDir();
    const answers = await Promise.all(startThreads(THREADS).map((w) => ask(w, { task: "race", dir, increments, keys })));
    expect(answers.filter((a) => !a.ok)).toEqual([]);
    return { answers, b: fileBackend(dir, { readOnly: true }) };
  }

  it("conditional read-modify-writes of one key by every thread lose no update", async () => {
    const increments = 25;
    const { b } = await race(increments, 0);
    try {
      const n = b.read("counter")!;
      expect(new DataView(n.buffer, n.byteOffset, 4).getUint32(0)).toBe(THREADS * increments);
    } finally {
      b.close();
    }
  });

  it("a new key taken by claims and by checked batches of other threads at once is won once", async () => {
    const keys = 80;
    const { answers, b } = await race(0, keys);
    try {
      const winners = new Map<number, number[]>();
      answers.forEach((a, index) => {
        for (const i of a.won!) winners.set(i, [...(winners.get(i) ?? []), index]);
      });
      for (let i = 0; i < keys; i++) {
        const won = winners.get(i) ?? [];
        expect({ key: i, won: won.length }).toEqual({ key: i, won: 1 });
        expect(Array.from(b.read(`new-${i}`)!)).toEqual(won);
      }
    } finally {
      b.close();
    }
  });

  it("a thread terminated inside a conditional batch leaves the store's check lock free, and its temp file is swept", async () => {
    const dir = freshDir();
    const mine = fileBackend(dir);
    try {
      const [w] = startThreads(1);
      const holding = once(w!, "message");
      w!.postMessage({ task: "hold", dir });
      expect((await holding)[0]).toEqual({ holding: true });
      // The thread holds the check lock now: terminated there, as an engine's watchdog does a hung worker.
      await w!.terminate();
      const temps = (): string[] => readdirSync(dir).filter((n) => n.startsWith(".tmp-"));
      expect(temps()).toHaveLength(1); // its staged put
      // This handle's first write sweeps a dead thread's temp files (a live thread's it leaves alone, test above).
      // Its batch stopped before its renames: the key holds what it held.
      expect(mine.writeBatchIf({ key: "k", value: Uint8Array.of(0) }, [{ op: "put", key: "k", value: Uint8Array.of(1) }])).toBe(true);
      expect(mine.writeBatchIf({ key: "j", value: undefined }, [{ op: "put", key: "j", value: Uint8Array.of(2) }])).toBe(true);
      expect([mine.read("k"), mine.read("j")].map((v) => Array.from(v!))).toEqual([[1], [2]]);
      expect(temps()).toEqual([]);
    } finally {
      mine.close();
    }
  });
});
