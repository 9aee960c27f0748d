/**
 * Opening a lock database (the store lock, a file store's check lock) by name without following a symbolic link.
 * SQLite follows one, and better-sqlite3 offers no SQLITE_OPEN_NOFOLLOW: a store directory another program wrote
 * with `.graphrefly.lock` linked elsewhere made a writer create an SQLite file at the link's target, or add its
 * owner table to another database there (review r232). The name is looked at (lstat) before the open; after it,
 * the name must be a regular file, still the one seen (device and inode): another regular file there is opened again,
 * a link swapped in meanwhile is refused. What stays open: a link swapped in before SQLite's open and out before the
 * second look (SQLite gives no descriptor to check, and a file created there meanwhile stays); a store directory
 * writable by a hostile program is not a safe place for any file.
 *
 * Another program removing the lock files in a loop (`rm -f .graphrefly.lock*`) fails SQLite and the looks in ways of
 * their own (the name gone at the second look; a write on a database removed since its open, SQLITE_READONLY_DBMOVED,
 * or beside it, SQLITE_IOERR_FSTAT; its journal removed before SQLite removes it, SQLITE_IOERR_DELETE_NOENT): each is
 * `store-busy`, reason `lock-replaced` (`replacedUnder`, `lockReplacedError`), nothing written, never SQLite's word
 * alone as `backend-error` (task 385).
 */
import Database from "better-sqlite3";
import { lstatSync, type BigIntStats } from "node:fs";
import { StorageError } from "../errors.js";
import { fileFault } from "./file-faults.js";
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

/** The regular file at `path` now, undefined when there is none or it cannot be told. */
export function fileAt(path: string): LockFileId | undefined {
  try {
    const at = lstatSync(path, { bigint: true, throwIfNoEntry: false });
    return at?.isFile() === true ? { dev: at.dev, ino: at.ino } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * SQLite's own words for a file of its removed under a connection: the database no longer at its name (a write),
 * its journal gone when SQLite came to remove it (a commit's end).
 */
const REMOVED_UNDER_SQLITE = new Set(["SQLITE_READONLY_DBMOVED", "SQLITE_IOERR_DELETE_NOENT"]);

/**
 * Whether `err`, met by a connection to the lock file `opened` at `path`, came of that file (or its journal) removed or
 * replaced under it: SQLite says so, or the file is no longer at the path (SQLite fails otherwise then: making a
 * journal beside a database removed since its open fails SQLITE_IOERR_FSTAT, "disk I/O error").
 */
export function replacedUnder(err: unknown, path: string, opened: LockFileId | undefined): boolean {
  if (REMOVED_UNDER_SQLITE.has(errnoCode(err) as string)) return true;
  return opened !== undefined && !sameLockFile(fileAt(path), opened);
}

/**
 * store-busy `lock-replaced`: a lock file (`path`) removed or replaced by another program `when` (while an open took
 * it, made it, opened it): nothing was written through it, and an open again takes the file at the path.
 */
export function lockReplacedError(what: string, path: string, when: string, cause?: unknown): StorageError {
  return new StorageError(
    "store-busy",
    `${what}: ${path} was removed or replaced ${when} (another program's doing); nothing was written, try again`,
    { path, reason: "lock-replaced" },
    cause,
  );
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
    fileFault("lock-open", path);
    let now: BigIntStats | undefined;
    try {
      now = lstatSync(path, { bigint: true, throwIfNoEntry: false });
      if (now !== undefined && !now.isFile()) throw notALockFile(path, what, fileKind(now));
    } catch (err) {
      db.close();
      throw err;
    }
    if (now !== undefined && (seen === undefined || (now.dev === seen.dev && now.ino === seen.ino))) {
      fileFault("lock-opened", path);
      return { db, id: { dev: now.dev, ino: now.ino } };
    }
    db.close();
    // Nothing there now, or a regular file not the one looked at: the name was removed or replaced meanwhile (a lock
    // file removed and made again, by another opener or program), and which file SQLite opened cannot be told. It is
    // a lock file all the same, not another program's link (review r359 L2): looked at and opened again; one removed
    // or replaced at every try is refused. Gone, it failed the open backend-error, ENOENT (task 385).
    if (tries >= REPLACED_TRIES) {
      throw lockReplacedError(what, path, `while it was being opened, ${REPLACED_TRIES} times in a row`);
    }
  }
}

/** Opens of a lock file replaced while it was opened (see openLockFile) before it is refused. */
const REPLACED_TRIES = 3;
