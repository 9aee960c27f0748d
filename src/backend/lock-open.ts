/**
 * Opening a lock database (the store lock, a file store's check lock) by name without following a symbolic link.
 * SQLite follows one, and better-sqlite3 offers no SQLITE_OPEN_NOFOLLOW: a store directory another program wrote
 * with `.graphrefly.lock` linked elsewhere made a writer create an SQLite file at the link's target, or add its
 * owner table to another database there (review r232). The name is created (O_NOFOLLOW) and looked at before the
 * open; after it, the name must still be that file (device and inode), so a link swapped in meanwhile is refused
 * too. What stays open: a swap and a swap back between the open and the second look (SQLite gives no descriptor to
 * check); a store directory writable by a hostile program is not a safe place for any file.
 */
import Database from "better-sqlite3";
import { closeSync, constants, lstatSync, openSync, type Stats } from "node:fs";
import { StorageError } from "../errors.js";

const errnoCode = (err: unknown): unknown => (err as { code?: unknown } | null)?.code;

/** StorageError `corrupt-store`: the lock file is not a regular file of its own (a symbolic link, a FIFO…). */
function notALockFile(path: string, what: string, found: string): StorageError {
  return new StorageError(
    "corrupt-store",
    `${what}: ${path} is ${found}, not a lock file: another program put it there; it is not opened (nothing was written through it)`,
    { path, found, reason: "lock-not-a-file" },
  );
}

function kindOf(stats: Stats): string {
  if (stats.isSymbolicLink()) return "a symbolic link";
  if (stats.isDirectory()) return "a directory";
  if (stats.isFIFO()) return "a FIFO";
  return "not a regular file";
}

/** The regular file at `path` (created empty when missing, never through a link), or a typed refusal. */
function ownFile(path: string, what: string): Stats {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o644);
  } catch (err) {
    // ELOOP: the name is a symbolic link (O_NOFOLLOW); the lstat below names what is there.
    if (errnoCode(err) !== "ELOOP") throw err;
  }
  if (fd !== undefined) closeSync(fd);
  const stats = lstatSync(path);
  if (!stats.isFile()) throw notALockFile(path, what, kindOf(stats));
  return stats;
}

/** `new Database(path, options)`, refused (StorageError `corrupt-store`) when `path` is not a regular file of its own. */
export function openLockDatabase(path: string, options: Database.Options, what: string): Database.Database {
  const seen = ownFile(path, what);
  const db = new Database(path, options);
  try {
    const now = lstatSync(path);
    if (!now.isFile()) throw notALockFile(path, what, kindOf(now));
    if (now.dev !== seen.dev || now.ino !== seen.ino) throw notALockFile(path, what, "another file than the one looked at (replaced while opening)");
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}
