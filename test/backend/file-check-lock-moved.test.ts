/**
 * Review r349 H3 (task 352): the check lock of a file store (`.graphrefly.lock-check`, taken by every conditional
 * batch) was opened once per handle and never looked at again. Removed (or replaced) while handles had it open, the
 * old handles kept locking the file no longer at the path, and a handle opening the lock afterwards (another thread's
 * first conditional batch) made a new one: both passed their checks at once, and read-increment writes acknowledged
 * `true` were lost. Now each take of the lock checks its file is still the one at the path; since task 364 (review r359
 * H1) a file other than the one made at the store lock's take, or none, is refused (store-moved). The same class of hole in the files around it: the store lock is looked at again once the check
 * lock is held (the wait may have lasted a second, the store taken meanwhile), and the check lock's side files
 * before each try (its connection holds no lock between batches, so SQLite rolled back a -journal put there later,
 * deleting the file it named). Real worker threads (fixtures/file-check-moved-worker.mjs, dist/: build first), real
 * files removed between the threads' steps, which the fault seam holds still.
 */
import { copyFileSync, existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { CHECK_LOCK_FILE_NAME } from "../../src/backend/file-check-lock.js";
import { LOCK_FILE_NAME } from "../../src/backend/lock.js";
import { craftSuperJournal } from "../support/sqlite-journal.js";
import { storageErrorOf } from "../support/wait.js";

const WORKER = new URL("./fixtures/file-check-moved-worker.mjs", import.meta.url);
const root = mkdtempSync(join(tmpdir(), "file-check-moved-"));
let stores = 0;
const freshDir = (): string => join(root, `store-${stores++}`);
const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Message {
  opened?: boolean;
  atApply?: boolean;
  waiting?: boolean;
  ok?: boolean;
  code?: string;
  reason?: string;
  message?: string;
}

/** A worker thread of the fixture, and its messages in order (`next` takes the first not taken yet). */
interface Thread {
  readonly worker: Worker;
  next(): Promise<Message>;
  send(m: object): void;
  /** Lets the thread go on from where its hook holds it. */
  release(): void;
}

function thread(dir: string, cell: SharedArrayBuffer, index: number): Thread {
  const worker = new Worker(WORKER, { workerData: { dir, cell, index } });
  workers.push(worker);
  const queue: Message[] = [];
  const waiters: Array<(m: Message) => void> = [];
  worker.on("message", (m: Message) => {
    const w = waiters.shift();
    if (w === undefined) queue.push(m);
    else w(m);
  });
  const go = new Int32Array(cell);
  return {
    worker,
    next: () => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((r) => waiters.push(r))),
    send: (m) => worker.postMessage(m),
    release: () => {
      Atomics.store(go, index, 1);
      Atomics.notify(go, index);
    },
  };
}

/** A thread (as `thread`) whose handle of the store is open. */
async function openedThread(dir: string, cell: SharedArrayBuffer, index: number): Promise<Thread> {
  const t = thread(dir, cell, index);
  t.send({ task: "open" });
  expect(await t.next()).toEqual({ opened: true });
  return t;
}

const one = (v: number): Uint8Array => Uint8Array.of(v);

describe("a file store's check lock removed or replaced while handles have it open", () => {
  it.each(["removed", "replaced"] as const)(
    "%s: neither a thread holding the old file nor a thread opening the lock after it applies a read-increment",
    async (how) => {
      const dir = freshDir();
      const b = fileBackend(dir);
      try {
        b.write("n", one(0));
        const cell = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
        const old = await openedThread(dir, cell, 0);

        const lockPath = join(dir, CHECK_LOCK_FILE_NAME);
        if (how === "removed") {
          rmSync(lockPath);
        } else {
          copyFileSync(lockPath, `${lockPath}.copy`);
          renameSync(`${lockPath}.copy`, lockPath);
        }
        // Its first conditional batch opens the check lock: before task 364 it made (or took) the file at the path and
        // ran beside a batch of the old file's (task 352 moved the old handles over one at a time, but a removal during
        // a batch still let the two run together: review r359 H1). Now only the file made at the store lock's take counts.
        const fresh = thread(dir, cell, 1);
        fresh.send({ task: "open" });
        const moved = { ok: false, code: "backend-error", reason: "store-moved" };
        expect(await fresh.next()).toMatchObject(moved);
        old.send({ task: "batch", key: "n", from: 0, to: 1 });
        expect(await old.next()).toMatchObject(moved);
        expect(Array.from(b.read("n")!)).toEqual([0]);
      } finally {
        b.close();
      }
    },
  );

  it("a batch that waited for the check lock while the store lock was removed writes nothing (store-moved)", async () => {
    const dir = freshDir();
    const b = fileBackend(dir);
    try {
      b.write("n", one(0));
      b.write("m", one(0));
      const cell = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
      const holder = thread(dir, cell, 0);
      const waiter = thread(dir, cell, 1);
      holder.send({ task: "open" });
      waiter.send({ task: "open" });
      expect([await holder.next(), await waiter.next()]).toEqual([{ opened: true }, { opened: true }]);

      holder.send({ task: "batch", key: "n", from: 0, to: 1, hold: "apply" });
      expect(await holder.next()).toEqual({ atApply: true });
      // Looked at the store lock (in place) before its temp file; now waits for the check lock.
      waiter.send({ task: "batch", key: "m", from: 0, to: 5, hold: "busy" });
      expect(await waiter.next()).toEqual({ waiting: true });
      rmSync(join(dir, LOCK_FILE_NAME)); // another process could take the store now
      holder.release();
      expect(await holder.next()).toEqual({ ok: true }); // its look came before the removal
      waiter.release();
      // Before: { ok: true }, m written with the store's lock gone.
      expect(await waiter.next()).toMatchObject({ ok: false, code: "backend-error", reason: "store-moved" });
      expect(Array.from(b.read("m")!)).toEqual([0]);
    } finally {
      b.close();
    }
  });

  it("both lock files removed during a batch: a thread's new handle is refused while the old handle is open (store-moved)", async () => {
    const dir = freshDir();
    const b = fileBackend(dir);
    try {
      b.write("n", one(0));
      const cell = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
      const holder = await openedThread(dir, cell, 0);
      holder.send({ task: "batch", key: "n", from: 0, to: 1, hold: "apply" });
      expect(await holder.next()).toEqual({ atApply: true });
      rmSync(join(dir, LOCK_FILE_NAME));
      rmSync(join(dir, CHECK_LOCK_FILE_NAME));
      // Before (review r376 H1): the take made both files anew, and this handle's batch ran beside the holder's.
      const fresh = thread(dir, cell, 1);
      fresh.send({ task: "open" });
      expect(await fresh.next()).toMatchObject({ ok: false, code: "backend-error", reason: "store-moved" });
      holder.release();
      expect(await holder.next()).toEqual({ ok: true }); // its look came before the removal
      expect(Array.from(b.read("n")!)).toEqual([1]);
    } finally {
      b.close();
    }
  });

  it("a -journal naming a super-journal put beside the check lock after its open is refused, not rolled back", () => {
    const dir = freshDir();
    const victim = join(root, "victim.txt");
    writeFileSync(victim, "kept");
    const b = fileBackend(dir);
    try {
      const claim = (key: string): boolean => b.writeBatchIf({ key, value: undefined }, [{ op: "put", key, value: one(1) }]);
      expect(claim("a")).toBe(true); // the check lock's connection is open
      const lockPath = join(dir, CHECK_LOCK_FILE_NAME);
      craftSuperJournal(lockPath, victim, 4096);
      // Before: the batch's try rolled the -journal back, deleting the victim, and answered true.
      const err = storageErrorOf(() => claim("b"));
      expect(err).toMatchObject({ code: "corrupt-store", details: { reason: "super-journal", superJournal: victim } });
      expect(existsSync(victim)).toBe(true);
      expect(b.read("b")).toBeUndefined();
      rmSync(`${lockPath}-journal`);
      expect(claim("b")).toBe(true);
    } finally {
      b.close();
    }
  });
});
