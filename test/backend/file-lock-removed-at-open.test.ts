/**
 * Task 385: another program removing a file store's lock files (`rm -f .graphrefly.lock*` in a loop) while a writer
 * opens the store. Two failures came out as a plain backend-error with the OS's or SQLite's word and no reason: the
 * lock file gone at the look right after SQLite's open (ENOENT, lock-open.ts openLockFile), and the check lock removed
 * after that look, before its one page was written ("disk I/O error", SQLITE_IOERR_FSTAT: SQLite makes a journal beside
 * a database no longer there). Now the first is looked at and opened again (store-busy, reason lock-replaced, only
 * when it is removed at every try) and the second is store-busy, lock-replaced; an open again succeeds. The removals
 * are real, placed at those exact steps by the file store's fault seam (file-faults.ts "lock-open", "lock-opened");
 * backend/file-lock-rm-churn runs the real churn.
 */
import { mkdtempSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { CHECK_LOCK_FILE_NAME } from "../../src/backend/file-check-lock.js";
import { setFileFaultHook, type FileStep } from "../../src/backend/file-faults.js";
import { LOCK_FILE_NAME } from "../../src/backend/lock.js";
import { storageErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "file-lock-removed-at-open-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => setFileFaultHook(undefined));
let stores = 0;

/** Removes the file at `path` at `step` of its open, `times` times (every time: Infinity). */
function removeAt(step: FileStep, path: string, times: number): void {
  let left = times;
  setFileFaultHook((at, p) => {
    if (at === step && p === path && left > 0) {
      left--;
      unlinkSync(path);
    }
  });
}

/** A writer's open, one conditional batch through it, and its close: what the store answers then. */
function openAndBatch(dir: string): boolean {
  const b = fileBackend(dir);
  try {
    return b.writeBatchIf({ key: "k", value: undefined }, [{ op: "put", key: "k", value: Uint8Array.of(1) }]);
  } finally {
    b.close();
  }
}

it("the store lock removed between SQLite's open and the look after it: opened again, the open succeeds", () => {
  const dir = join(root, `store-${stores++}`);
  removeAt("lock-open", join(dir, LOCK_FILE_NAME), 1);
  // Before: backend-error, "ENOENT: no such file or directory, lstat '.../.graphrefly.lock'", no reason.
  expect(openAndBatch(dir)).toBe(true);
});

it("the store lock removed at every try of the open: store-busy, lock-replaced, then an open succeeds", () => {
  const dir = join(root, `store-${stores++}`);
  const lockPath = join(dir, LOCK_FILE_NAME);
  removeAt("lock-open", lockPath, Number.POSITIVE_INFINITY);
  // Before: backend-error, ENOENT at the first try.
  expect(storageErrorOf(() => openAndBatch(dir))).toMatchObject({ code: "store-busy", details: { reason: "lock-replaced", path: lockPath } });
  setFileFaultHook(undefined);
  expect(openAndBatch(dir)).toBe(true);
});

it("the check lock removed between SQLite's open and the look after it, as the take makes it: opened again", () => {
  const dir = join(root, `store-${stores++}`);
  removeAt("lock-open", join(dir, CHECK_LOCK_FILE_NAME), 1);
  // Before: backend-error, "cannot make the check lock ...: ENOENT ... lstat", no reason.
  expect(openAndBatch(dir)).toBe(true);
});

it("the check lock removed after that look, before its page is written: store-busy, lock-replaced, then an open succeeds", () => {
  const dir = join(root, `store-${stores++}`);
  const checkPath = join(dir, CHECK_LOCK_FILE_NAME);
  removeAt("lock-opened", checkPath, 1);
  // Before: backend-error, "cannot make the check lock ...: disk I/O error" (SQLITE_IOERR_FSTAT), no reason.
  expect(storageErrorOf(() => openAndBatch(dir))).toMatchObject({ code: "store-busy", details: { reason: "lock-replaced", path: checkPath } });
  expect(openAndBatch(dir)).toBe(true);
});
