/**
 * The single-writer lock of a store, shared by every handle of the process that holds it.
 *
 * The lock is a tiny SQLite database beside the store. Its holder process keeps a read transaction open on it (a
 * SHARED lock, one per handle, in any thread) and its row names the holder. Taking the lock means committing our
 * own row, which needs SQLite's EXCLUSIVE lock and therefore fails while any handle of the holder is open. So:
 * - another process is refused, and told who holds the store (pid, host, since when);
 * - a second handle in the holder process (another tier, an engine actor in a worker thread) joins instead of
 *   being refused, and the lock lives until the last handle closes (SQLite counts the SHARED locks);
 * - the kernel drops the locks of a process killed with -9, so no stale lock survives its holder.
 */
import Database from "better-sqlite3";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { StorageError } from "../errors.js";
import { isSqliteBusy, sqliteError, storeLockedError, type LockOwner } from "./sqlite-errors.js";

/** Hidden sidecar file of a file store; list() ignores it like every other dot file. */
export const LOCK_FILE_NAME = ".graphrefly.lock";

/** The lock file of a SQLite store: beside it, named like SQLite's own -wal and -shm files. */
export function sqliteLockPath(dbPath: string): string {
  return `${dbPath}-lock`;
}

export function dirLockPath(dir: string): string {
  return join(dir, LOCK_FILE_NAME);
}

let identity: string | undefined;

/**
 * This process's identity, the same in every thread: host, pid and the kernel's start time of the process (Linux),
 * else the start time derived from the uptime (all threads share the process's uptime clock).
 */
export function processIdentity(): string {
  if (identity !== undefined) return identity;
  let start: string;
  try {
    // Field 22 of /proc/self/stat, after the parenthesised command name (which may contain spaces).
    const stat = readFileSync("/proc/self/stat", "utf8");
    start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
  } catch {
    start = String(Math.floor(Date.now() / 1000 - process.uptime()));
  }
  identity = `${hostname()}/${process.pid}/${start}`;
  return identity;
}

export type { LockOwner };

export interface StoreLock {
  readonly path: string;
  /** Releases this handle's share of the lock. Idempotent. */
  release(): void;
}

const SCHEMA = "CREATE TABLE IF NOT EXISTS owner (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER, host TEXT, process TEXT, since TEXT)";

function readOwner(db: Database.Database): LockOwner | undefined {
  try {
    return db.prepare<[], LockOwner>("SELECT pid, host, process, since FROM owner WHERE id = 1").get();
  } catch (err) {
    if (isSqliteBusy(err)) throw err;
    return undefined; // no table yet: nobody ever held it
  }
}

/**
 * Takes (or, from a process that holds it already, joins) the lock of the store whose lock file is `lockPath`.
 * Throws StorageError("store-locked") naming the holder when another process holds it.
 */
export function acquireStoreLock(lockPath: string, storePath: string): StoreLock {
  const me = processIdentity();
  let db: Database.Database | undefined;
  try {
    // Busy timeout 0: a holder keeps the lock for its whole life, so waiting cannot help.
    db = new Database(lockPath, { timeout: 0 });
    let owner = readOwner(db);
    if (owner?.process !== me) {
      try {
        db.exec(SCHEMA);
        db.prepare("INSERT OR REPLACE INTO owner (id, pid, host, process, since) VALUES (1, ?, ?, ?, ?)").run(
          process.pid,
          hostname(),
          me,
          new Date().toISOString(),
        );
      } catch (err) {
        if (!isSqliteBusy(err)) throw err;
        if (db.inTransaction) db.exec("ROLLBACK");
        throw storeLockedError(storePath, readOwner(db), err);
      }
    }
    // Hold a SHARED lock for the handle's life, then check that the row is still ours: a process that committed
    // its row between our commit and this read holds the store, not us.
    db.exec("BEGIN");
    owner = readOwner(db);
    if (owner?.process !== me) {
      db.exec("ROLLBACK");
      throw storeLockedError(storePath, owner);
    }
  } catch (err) {
    db?.close();
    if (err instanceof StorageError) throw err;
    throw sqliteError(err, `cannot lock store ${storePath}`, lockPath);
  }
  const held = db;
  let released = false;
  return {
    path: lockPath,
    release() {
      if (released) return;
      released = true;
      held.close();
    },
  };
}
