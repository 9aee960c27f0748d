/**
 * Review r376 M1, M2 (task 381): the store lock's take makes a missing check lock under the lock database's EXCLUSIVE
 * lock, waiting up to 500 ms for it. M2: another program's transaction on the lock database through that wait, at an
 * open with no handle of the store open, left the store without a check lock, silently: every conditional batch then
 * failed store-moved, "removed while open". Now the take waits again and fails store-busy (reason
 * lock-database-busy). M1: with a handle open (its SHARED lock kept for life) each joining open waited the 500 ms, one
 * after another, and a later one ran out of the take's own wait and was told another process held the store. Now a
 * joiner tries once. L1: the lock file removed while the take had it open failed the open backend-error (SQLite's
 * write on a moved database); it is store-busy, reason lock-replaced. Real files, a real other process (sqlite-locker), real worker threads (the moved-worker fixture,
 * dist/: build first).
 */
import Database from "better-sqlite3";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { afterAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { CHECK_LOCK_FILE_NAME, checkLockSide } from "../../src/backend/file-check-lock.js";
import { LOCK_FILE_NAME, acquireStoreLock, type LockSide } from "../../src/backend/lock.js";
import { lockSqliteFile } from "../support/sqlite-locker.js";
import { sleep, storageErrorOf } from "../support/wait.js";

const WORKER = new URL("./fixtures/file-check-moved-worker.mjs", import.meta.url);
const root = mkdtempSync(join(tmpdir(), "file-check-open-busy-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let stores = 0;

/** A store written once and closed, its check lock then removed: the next take must make it. */
function storeWithoutCheckLock(): string {
  const dir = join(root, `store-${stores++}`);
  const b = fileBackend(dir);
  b.writeBatchIf({ key: "k", value: undefined }, [{ op: "put", key: "k", value: Uint8Array.of(1) }]);
  b.close();
  rmSync(join(dir, CHECK_LOCK_FILE_NAME));
  return dir;
}

describe("the check lock made at the store lock's take", () => {
  it("another program's transaction on the lock database through the wait fails the open store-busy", async () => {
    const dir = storeWithoutCheckLock();
    const locker = await lockSqliteFile(join(dir, LOCK_FILE_NAME));
    try {
      // Before: opened, and every conditional batch failed store-moved ("removed while open").
      const err = storageErrorOf(() => fileBackend(dir).close());
      expect(err).toMatchObject({ code: "store-busy", details: { reason: "lock-database-busy" } });
    } finally {
      await locker.release();
    }
    const b = fileBackend(dir);
    try {
      expect(b.writeBatchIf({ key: "k", value: Uint8Array.of(1) }, [{ op: "put", key: "k", value: Uint8Array.of(2) }])).toBe(true);
    } finally {
      b.close();
    }
  });

  it("threads joining a handle's hold at once are not refused as another process's (store-locked)", async () => {
    const dir = storeWithoutCheckLock();
    const held = fileBackend(dir); // its take made the check lock: remove it while the handle is open
    rmSync(join(dir, CHECK_LOCK_FILE_NAME));
    const workers = Array.from({ length: 8 }, () => new Worker(WORKER, { workerData: { dir, cell: new SharedArrayBuffer(4), index: 0 } }));
    try {
      const answers = workers.map((w) => new Promise((r) => w.once("message", r)));
      for (const w of workers) w.postMessage({ task: "open" });
      // Each opens (before: the later ones got store-locked, "locked by another process") and its batch is refused:
      // the check lock was removed while a handle was open.
      const moved = { ok: false, code: "backend-error", reason: "store-moved" };
      expect(await Promise.all(answers)).toEqual(workers.map(() => expect.objectContaining(moved)));
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
      held.close();
    }
  });

  /**
   * A worker's open (and its first conditional batch) while the test's own read transaction on the lock database,
   * standing in for another thread's take looking at the row, is held for `lookMs`, then let go: its answer.
   */
  async function openBesideALook(dir: string, lookMs: number): Promise<unknown> {
    const lockDb = new Database(join(dir, LOCK_FILE_NAME));
    const worker = new Worker(WORKER, { workerData: { dir, cell: new SharedArrayBuffer(4), index: 0 } });
    try {
      const ready = new Promise((r) => worker.once("message", r));
      worker.postMessage({ task: "ready" });
      await ready;
      lockDb.exec("BEGIN");
      lockDb.prepare("SELECT * FROM owner").get();
      const answer = new Promise((r) => worker.once("message", r));
      worker.postMessage({ task: "open" });
      await sleep(lookMs);
      lockDb.exec("ROLLBACK");
      return await answer;
    } finally {
      lockDb.close();
      await worker.terminate();
    }
  }

  it("a thread's open meeting another thread's look at a new hold's row waits for it and makes the check lock", async () => {
    // Two threads opening one new store at once (two engines' actors): the first commits its row, naming no check lock
    // yet; the joiner, seeing another connection of this process on the lock database, tried once for the EXCLUSIVE
    // lock, met the first thread's look (its read of the row), and went on without the file; so did the first thread,
    // the joiner's SHARED lock now kept. Every conditional batch of both then failed store-moved.
    const dir = storeWithoutCheckLock();
    const row = new Database(join(dir, LOCK_FILE_NAME));
    row.exec("UPDATE owner SET side = NULL"); // this process's row, as a take's commit leaves it: no check lock named
    row.close();
    // Before: { ok: false, code: "backend-error", reason: "store-moved" }.
    expect(await openBesideALook(dir, 150)).toEqual({ opened: true });
  });

  it("a thread's open meeting another thread's look at a row naming a removed check lock waits for it and makes it (review r387 M1)", async () => {
    // The same race where this process held the store before and its check lock was removed while no handle was open
    // (as the refusals advise): the row names that file, so the other connection counted as an open handle and the
    // take tried once. Now it tries again for a while, reading the row between tries.
    const dir = storeWithoutCheckLock();
    // Before: { ok: false, code: "backend-error", reason: "store-moved" }.
    expect(await openBesideALook(dir, 100)).toEqual({ opened: true });
  });

  it("the lock file removed while the take has it open fails the open store-busy, lock-replaced", () => {
    const dir = join(root, `store-${stores++}`);
    mkdirSync(dir);
    const lockPath = join(dir, LOCK_FILE_NAME);
    const check = checkLockSide(dir);
    let removed = false;
    // The store's own check lock, its first look removing the lock file the take opened (between its row and the side's).
    const side: LockSide = {
      find() {
        if (!removed) {
          removed = true;
          rmSync(lockPath);
        }
        return check.find();
      },
      make: () => check.make(),
    };
    // Before: backend-error, SQLite's failure on a moved database.
    expect(storageErrorOf(() => acquireStoreLock(lockPath, dir, side).release())).toMatchObject({
      code: "store-busy",
      details: { reason: "lock-replaced", path: lockPath },
    });
    acquireStoreLock(lockPath, dir, side).release(); // an open again takes the file at the path
  });
});
