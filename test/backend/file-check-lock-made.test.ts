/**
 * Task 364 (review r359 H1): a file store's check lock (`.graphrefly.lock-check`) is made once, when the store lock is
 * taken with no other handle of the store open, and a later open of it (a handle joining the store lock, a connection
 * opening the path again) finds that very file or refuses: `backend-error`, reason `store-moved`, file `check-lock`,
 * nothing written. Review r359 L1: a lock whose file kept being replaced for the whole wait ended in "another thread's
 * conditional write held the store"; now store-busy says the file kept being replaced (reason `lock-replaced`). Real
 * file stores, real SQLite lock databases, files removed and put there as another program would (at the fault seam's
 * "check-try" step: a try's connection open, before it takes the lock).
 */
import Database from "better-sqlite3";
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fileBackend, type FileBackend } from "../../src/backend/file.js";
import { setFileFaultHook } from "../../src/backend/file-faults.js";
import { CHECK_LOCK_FILE_NAME } from "../../src/backend/file-check-lock.js";
import { LOCK_FILE_NAME } from "../../src/backend/lock.js";
import { storageErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "file-check-made-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let stores = 0;
const freshDir = (): string => join(root, `store-${stores++}`);
const checkPath = (dir: string): string => join(dir, CHECK_LOCK_FILE_NAME);
const inode = (path: string): number => lstatSync(path).ino;

/** A claim of `key` (a conditional batch): true, or the StorageError it threw. */
function claim(b: FileBackend, key: string): unknown {
  try {
    return b.writeBatchIf({ key, value: undefined }, [{ op: "put", key, value: Uint8Array.of(1) }]);
  } catch (err) {
    return err;
  }
}

const MOVED = { code: "backend-error", details: { reason: "store-moved", file: "check-lock" } };

describe("the check lock is made by the store's first open handle only", () => {
  it("removed while two handles are open: a handle opened after makes none, every batch refuses; reopened, it is made anew", () => {
    const dir = freshDir();
    const first = fileBackend(dir);
    const second = fileBackend(dir);
    expect(claim(first, "a")).toBe(true);
    rmSync(checkPath(dir));
    const third = fileBackend(dir); // joins the store lock: before, its first batch made the file again
    expect(existsSync(checkPath(dir))).toBe(false);
    for (const b of [first, second, third]) expect(claim(b, "b")).toMatchObject(MOVED);
    expect(existsSync(checkPath(dir))).toBe(false);
    expect(first.read("b")).toBeUndefined();
    first.write("plain", Uint8Array.of(2)); // plain writes take no check lock
    for (const b of [first, second, third]) b.close();

    const again = fileBackend(dir);
    try {
      expect(claim(again, "b")).toBe(true);
      expect(existsSync(checkPath(dir))).toBe(true);
    } finally {
      again.close();
    }
  });

  it("replaced by a copy while open: refused; moved aside and back (the same file): batches apply again", () => {
    const dir = freshDir();
    const b = fileBackend(dir);
    try {
      expect(claim(b, "a")).toBe(true);
      const path = checkPath(dir);
      renameSync(path, `${path}.aside`);
      expect(claim(b, "b")).toMatchObject({ ...MOVED, details: { ...MOVED.details, osCode: "ENOENT" } });
      renameSync(`${path}.aside`, path);
      expect(claim(b, "b")).toBe(true);
      copyFileSync(path, `${path}.copy`);
      renameSync(`${path}.copy`, path);
      expect(claim(b, "c")).toMatchObject(MOVED);
      expect(b.read("c")).toBeUndefined();
    } finally {
      b.close();
    }
  });

  it("a check lock left by an earlier hold (a crash's) is taken as it is, not made again; a link there refuses the open", () => {
    const dir = freshDir();
    fileBackend(dir).close();
    const left = inode(checkPath(dir));
    const b = fileBackend(dir);
    try {
      expect(inode(checkPath(dir))).toBe(left);
      expect(claim(b, "a")).toBe(true);
    } finally {
      b.close();
    }
    const target = join(root, `link-target-${stores}`);
    rmSync(checkPath(dir));
    symlinkSync(target, checkPath(dir));
    expect(storageErrorOf(() => fileBackend(dir))).toMatchObject({ code: "corrupt-store", details: { reason: "lock-not-a-file", found: "a symbolic link" } });
    expect(existsSync(target)).toBe(false);
  });

  it("a regular file there that is no database: written over, named so; another file, replaced at the take; a directory refuses, saying it can be removed", () => {
    const dir = freshDir();
    fileBackend(dir).close();
    const junk = "some text another tool wrote here by mistake, long enough to be read as a header........";
    writeFileSync(checkPath(dir), junk); // over the file the take made: its inode is the one the row names
    const over = fileBackend(dir);
    try {
      // Handles may have it open: not replaced, but named for what it is (before: backend-error, no advice).
      expect(claim(over, "a")).toMatchObject({ code: "corrupt-store", details: { reason: "lock-not-a-database" } });
    } finally {
      over.close();
    }
    // Another file (renamed over it: a file made after a removal may get the removed one's inode, the same file to
    // the row): the take makes the check lock, no handle open.
    writeFileSync(`${checkPath(dir)}.junk`, junk);
    renameSync(`${checkPath(dir)}.junk`, checkPath(dir));
    const b = fileBackend(dir); // before (review r376 M4): failed backend-error, SQLITE_NOTADB, no advice
    try {
      expect(claim(b, "a")).toBe(true);
    } finally {
      b.close();
    }
    rmSync(checkPath(dir));
    mkdirSync(checkPath(dir));
    const err = storageErrorOf(() => fileBackend(dir));
    expect(err).toMatchObject({ code: "corrupt-store", details: { reason: "lock-not-a-file", found: "a directory" } });
    expect(err.message).toContain("holds no data, so it can be removed");
  });

  it("a store lock written by an older version (no side column) gets the check lock's identity at the next take", () => {
    const dir = freshDir();
    mkdirSync(dir);
    const old = new Database(join(dir, LOCK_FILE_NAME));
    old.exec("CREATE TABLE owner (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER, host TEXT, process TEXT, since TEXT)");
    old.prepare("INSERT INTO owner VALUES (1, 1, 'elsewhere', 'elsewhere/1/1', ?)").run(new Date(0).toISOString());
    old.close();
    const b = fileBackend(dir);
    try {
      expect(claim(b, "a")).toBe(true);
      rmSync(checkPath(dir));
      expect(claim(b, "b")).toMatchObject(MOVED);
    } finally {
      b.close();
    }
  });

  it("read-only handles never make it", () => {
    const dir = freshDir();
    mkdirSync(dir);
    const reader = fileBackend(dir, { readOnly: true });
    expect(storageErrorOf(() => reader.writeBatchIf({ key: "a", value: undefined }, []))).toMatchObject({ code: "read-only" });
    reader.close();
    expect(existsSync(checkPath(dir))).toBe(false);
  });
});

describe("L1: a check lock replaced at every try of one batch", () => {
  /** Renames a copy over the check lock at each try of a batch: every try locks a file no longer at the path. */
  function replacedAtEveryTry(): void {
    setFileFaultHook((step, path) => {
      if (step !== "check-try") return;
      copyFileSync(path, `${path}.copy`);
      renameSync(`${path}.copy`, path);
    });
  }

  it("without the store lock: store-busy after the wait, saying the file kept being replaced (not a thread holding it)", () => {
    const dir = freshDir();
    const b = fileBackend(dir, { lock: false });
    try {
      expect(claim(b, "a")).toBe(true);
      replacedAtEveryTry();
      const err = claim(b, "b");
      // Before: store-busy "another thread's conditional write held the store for more than 1000 ms".
      expect(err).toMatchObject({ code: "store-busy", details: { reason: "lock-replaced", path: checkPath(dir) } });
      expect((err as Error).message).toMatch(/kept being removed or replaced/);
      expect(b.read("b")).toBeUndefined();
    } finally {
      setFileFaultHook(undefined);
      b.close();
    }
  });

  it("holding the store lock: refused at the first try that finds another file (store-moved), nothing written", () => {
    const dir = freshDir();
    const b = fileBackend(dir);
    try {
      replacedAtEveryTry();
      expect(claim(b, "a")).toMatchObject(MOVED);
      expect(b.read("a")).toBeUndefined();
    } finally {
      setFileFaultHook(undefined);
      b.close();
    }
  });
});
