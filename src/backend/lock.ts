/**
 * Single-writer lock for a store, held through SQLite's own file locking so the kernel releases it
 * when the holder dies (kill -9 leaves no stale lock, unlike a pid file), and so a second
 * connection in the same process is refused too (SQLite tracks locks per inode, not per fd).
 */
import Database from "better-sqlite3";
import { join } from "node:path";
import { StorageError, asStorageError } from "../errors.js";

/** Hidden sidecar file; list() ignores it like every other dot file. */
export const LOCK_FILE_NAME = ".graphrefly.lock";

/** True for SQLITE_BUSY and its extended codes: another connection holds the lock. */
export function isSqliteBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_BUSY");
}

export function storeLockedError(path: string, cause?: unknown): StorageError {
  return new StorageError("store-locked", `store ${path} is locked by another process`, { path }, cause);
}

export interface DirLock {
  readonly path: string;
  /** Releases the lock. Idempotent. */
  release(): void;
}

/**
 * Takes the exclusive lock of store directory `dir` (which must exist).
 * Throws StorageError("store-locked") if another process or connection holds it.
 */
export function acquireDirLock(dir: string): DirLock {
  const path = join(dir, LOCK_FILE_NAME);
  let db: Database.Database | undefined;
  try {
    // Busy timeout 0: the holder keeps the lock for its whole life, so waiting cannot help.
    db = new Database(path, { timeout: 0 });
    db.pragma("locking_mode = EXCLUSIVE");
    // In EXCLUSIVE locking mode the lock taken by this transaction is kept after COMMIT.
    db.exec("BEGIN EXCLUSIVE; COMMIT");
  } catch (err) {
    db?.close();
    if (isSqliteBusy(err)) throw storeLockedError(dir, err);
    throw asStorageError(err, `cannot lock store ${dir}`, { path });
  }
  const held = db;
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      held.close();
    },
  };
}
