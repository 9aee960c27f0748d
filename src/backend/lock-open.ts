/**
 * Opening a lock database (the store lock, a file store's check lock) by name without following a symbolic link.
 * SQLite follows one, and better-sqlite3 offers no SQLITE_OPEN_NOFOLLOW: a store directory another program wrote
 * with `.graphrefly.lock` linked elsewhere made a writer create an SQLite file at the link's target, or add its
 * owner table to another database there (review r232). The name is looked at (lstat) before the open; after it,
 * the name must be a regular file, still the one seen (device and inode): another regular file there is opened again,
 * a link swapped in meanwhile is refused. What stays open: a link swapped in before SQLite's open and out before the
 * second look (SQLite gives no descriptor to check, and a file created there meanwhile stays); a store directory
 * writable by a hostile program is not a safe place for any file.
 */
import Database from "better-sqlite3";
import { lstatSync, type BigIntStats } from "node:fs";
import { StorageError } from "../errors.js";
import { fileKind } from "./file-kind.js";
import { assertSqliteSideFiles } from "./sqlite-side-files.js";

/** An error's `code` (an errno name, a SQLite code), whatever was thrown. */
export const errnoCode = (err: unknown): unknown => (err as { code?: unknown } | null)?.code;

/** StorageError `corrupt-store`: the lock file is not a regular file of its own (a symbolic link, a FIFO…). */
function notALockFile(path: string, what: string, found: string): StorageError {
  return new StorageError(
    "corrupt-store",
    `${what}: ${path} is ${found}, not a lock file: another program put it there; it is not opened (nothing was written through it)`,
    { path, found, reason: "lock-not-a-file" },
  );
}

/**
 * What is at `path` now: undefined when nothing (SQLite creates it), else a regular file, or a typed refusal. Only
 * looked at, never opened: closing any descriptor of a file drops every POSIX lock this process holds on it, the
 * SQLite locks of the store's other handles included (they share the lock: lock.ts).
 */
function ownFile(path: string, what: string): BigIntStats | undefined {
  let stats: BigIntStats;
  try {
    stats = lstatSync(path, { bigint: true });
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return undefined;
    throw err;
  }
  if (!stats.isFile()) throw notALockFile(path, what, fileKind(stats));
  return stats;
}

/** A lock database's file as its connection opened it: device and inode (bigints, as lstat gives them). */
export interface LockFileId {
  readonly dev: bigint;
  readonly ino: bigint;
}

/** Whether `a` and `b` are one file (device and inode); false when either is not known. */
export function sameLockFile(a: LockFileId | undefined, b: LockFileId | undefined): boolean {
  return a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino;
}

/** `new Database(path, options)`, refused (StorageError `corrupt-store`) when `path` is not a regular file of its own. */
export function openLockDatabase(path: string, options: Database.Options, what: string, store?: string): Database.Database {
  return openLockFile(path, options, what, store).db;
}

/**
 * openLockDatabase, with the identity of the file the connection opened (looked at right after the open): a holder
 * that checks, each time it takes the lock, that this file is still the one at `path` (file-check-lock.ts) tells a
 * lock file removed or replaced under its open connection, whose lock no connection opened since can see.
 */
export function openLockFile(
  path: string,
  options: Database.Options,
  what: string,
  store?: string,
): { readonly db: Database.Database; readonly id: LockFileId } {
  for (let tries = 1; ; tries++) {
    const seen = ownFile(path, what);
    // Its -journal too is rolled back by the open: one naming a super-journal is refused as a store's is.
    // Its refusal names the store it locks (`store`), and says its side files go without a loss (review r353 F4).
    assertSqliteSideFiles(path, store === undefined ? `the lock database ${path}` : `the lock database ${path} of store ${store}`, store);
    const db = new Database(path, options);
    let now: BigIntStats;
    try {
      now = lstatSync(path, { bigint: true });
      if (!now.isFile()) throw notALockFile(path, what, fileKind(now));
    } catch (err) {
      db.close();
      throw err;
    }
    if (seen === undefined || (now.dev === seen.dev && now.ino === seen.ino)) return { db, id: { dev: now.dev, ino: now.ino } };
    db.close();
    // A regular file, not the one looked at: the name was replaced meanwhile (a lock file removed and made again, by
    // another opener or program), and which file SQLite opened cannot be told. It is a lock file all the same, not
    // another program's link (review r359 L2): looked at and opened again; one replaced at every try is refused.
    if (tries >= REPLACED_TRIES) {
      throw new StorageError(
        "store-busy",
        `${what}: ${path} was replaced by another file while it was being opened, ${REPLACED_TRIES} times in a row (another program keeps removing or replacing it); nothing was written through it, try again`,
        { path, reason: "lock-replaced" },
      );
    }
  }
}

/** Opens of a lock file replaced while it was opened (see openLockFile) before it is refused. */
const REPLACED_TRIES = 3;
