/**
 * The files SQLite opens beside a database before it reads a page: its -journal (a hot one is rolled back first), its
 * -wal and its -shm, all named after the database's real path. Two of what another program can leave there make any
 * open, a read-only handle's too, harmful (review r342 F1, task 347):
 * - a -journal naming a super-journal (a multi-database transaction's; this package never writes one): SQLite's
 *   rollback of it deletes the named file, wherever it is, as the opening user (after reading it as a list of child
 *   journals), or blocks for good opening a FIFO there;
 * - a side file that is not a regular file: a FIFO as the -wal (or -journal) blocks the open for good.
 * Both are refused before any connection opens the store, writers and readers alike: `StorageError("corrupt-store")`,
 * `details.reason` `"super-journal"` or `"side-not-a-file"`. A -journal without such a name is left to SQLite, which
 * rolls it back as before (a store killed mid-transaction while still in rollback mode).
 *
 * A -journal this user cannot read is refused too (`"side-unreadable"`): what it names cannot be told, and SQLite
 * would fail SQLITE_CANTOPEN naming no file (review r353 F3). On a store not in WAL mode SQLite looks for a hot
 * journal again at each read transaction (r353 F1), and for a -wal, which it opens with its -shm when there is one: a
 * FIFO there that this user cannot open read-write is opened read-only, which blocks for good. A read-only handle
 * looks at all three before each read transaction until its connection is in WAL mode (sqlite.ts; task 366): one that
 * has read in WAL mode keeps its -wal and -shm open and never looks for a -journal, and no other connection can take
 * the store out of WAL mode while it is open (review r374).
 *
 * What stays open: the look and SQLite's open are not atomic. A -journal (or FIFO) put there between them is rolled
 * back (or opened) as before; only someone who can already write the store's directory can do that, and such a user
 * can do worse to the store than this. The engine's checkpointer thread opens a store its writer holds, but that
 * writer's actor may have died between its hand-over and the thread's open (review r353 F5): the thread looks first
 * too (src/engine/side-files.ts).
 */
import { Buffer } from "node:buffer";
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, type Stats } from "node:fs";
import { StorageError } from "../errors.js";
import { fileKind } from "./file-kind.js";
import { storeRealPath } from "./real-path.js";

/** The refusals of assertSqliteSideFiles, by `details.reason`. */
export function isSideFileRefusal(err: unknown): err is StorageError {
  return err instanceof StorageError && err.code === "corrupt-store" && (err.details.reason === "super-journal" || err.details.reason === "side-not-a-file" || err.details.reason === "side-unreadable");
}

/** The side files SQLite may open before the first read, after the database file's real path. */
const SIDE_SUFFIXES = ["-journal", "-wal", "-shm"] as const;
/** The rollback journal's magic, which also ends a super-journal name's trailer. */
const JOURNAL_MAGIC = Buffer.from("d9d505f920a163d7", "hex");
/** The trailer after the name: its length (u32), its checksum (u32), the magic. */
const TRAILER = 16;

/**
 * Refuses the SQLite store at `path` (about to be opened, by any connection) when a side file beside its real path is
 * not a regular file, or its -journal names a super-journal. Nothing there, or what cannot be looked at (SQLite's own
 * open then fails the same way), passes. `what` names the database in the message (a store lock's own database is
 * checked too: lock-open.ts).
 */
export function assertSqliteSideFiles(path: string, what = `sqlite store ${path}`, lockOf?: string): void {
  let base: string;
  try {
    base = storeRealPath(path);
  } catch {
    return; // the path cannot be resolved: the open fails on it and says why
  }
  assertSqliteSideFilesAt(base, path, what, lockOf);
}

/**
 * assertSqliteSideFilesAt at `base`, the database's real path as resolved when its connection opened (SQLite names the
 * side files after that one, whatever the path names since): a read-only handle's look before a read transaction,
 * when SQLite may open them again (sqlite.ts): an lstat each, no more for one that is not there.
 * `lockOf`: the store whose lock database this is (its messages and `details.path` name that store). `atRead`: the
 * look is an open handle's, before a read (its refusal says nothing was read, and to read again).
 */
export function assertSqliteSideFilesAt(base: string, path: string, what = `sqlite store ${path}`, lockOf?: string, atRead = false): void {
  const at: Place = { what, path, lockOf, atRead };
  for (const suffix of SIDE_SUFFIXES) {
    const file = base + suffix;
    let st: Stats | undefined;
    try {
      st = lstatSync(file, { throwIfNoEntry: false }); // none is the common case: no error made (~10 µs each)
    } catch {
      continue; // not to be looked at: SQLite cannot open it either
    }
    if (st === undefined) continue;
    if (!st.isFile()) throw notAFile(at, file, suffix, fileKind(st));
    if (suffix === "-journal") assertNoSuperJournal(at, file);
  }
}

/**
 * Opens the side file `suffix` of the SQLite store at `path` (beside its real path) for reading, as a regular file
 * only: never through a symbolic link, and never blocking on a FIFO put there since the look (a plain open of one
 * blocks for good). The engine's checkpointer thread, and a writer past its bound while that thread checkpoints, read
 * the store's -shm so (review r353 F5). Throws the look's refusal for anything else there, and the open's own error
 * (ENOENT…) as it is.
 */
export function openSqliteSideFile(path: string, suffix: string): number {
  const at: Place = { what: `sqlite store ${path}`, path, lockOf: undefined, atRead: false };
  const file = storeRealPath(path) + suffix;
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ELOOP") throw notAFile(at, file, suffix, "a symbolic link");
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw notAFile(at, file, suffix, fileKind(st));
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** What a refusal names: the database (`what`, `path`), and the store when the database is that store's lock. */
interface Place {
  readonly what: string;
  readonly path: string;
  readonly lockOf: string | undefined;
  /** An open handle's look before a read, not an open's. */
  readonly atRead: boolean;
}

/** How a refusal starts: what could not be done, to what. */
function cannot(at: Place): string {
  return `cannot ${at.atRead ? "read" : "open"} ${at.what}`;
}

/** What the refusal left undone: an open handle's read met a side file put there since its open (review r374 L5). */
function nothingDone(at: Place): string {
  return at.atRead ? "a side file put there since the open; nothing was read" : "nothing was opened";
}

/** `details` of a refusal: the store's path; for a lock database, the store's and the lock database's. */
function placeDetails(at: Place): { path: string; lockDatabase?: string } {
  return at.lockOf === undefined ? { path: at.path } : { path: at.lockOf, lockDatabase: at.path };
}

/** What to do about a side file: a lock database holds no data, so its -journal (or FIFO) goes without a loss. */
function lockAdvice(at: Place): string {
  return at.lockOf === undefined ? "" : ` (a lock database of the store, which holds no data: removing its side files loses nothing)`;
}

function notAFile(at: Place, file: string, suffix: string, found: string): StorageError {
  return new StorageError(
    "corrupt-store",
    `${cannot(at)}: its ${suffix} file ${file} is ${found}, not a regular file (no graphrefly-storage writer makes one; SQLite would open it, and a FIFO blocks that open for good); ${nothingDone(at)}: remove it${lockAdvice(at)} and ${at.atRead ? "read" : "open"} again`,
    { ...placeDetails(at), file, found, reason: "side-not-a-file" },
  );
}

/**
 * The trailer as SQLite reads it, at the end of the -journal: the name, its length, a checksum and the magic, last.
 * Refused whatever the checksum (SQLite ignores a name whose checksum is wrong; a -journal of this package has no
 * name at all). Opened without following a link and without blocking, and checked again to be a regular file: what
 * lstat saw may have been swapped meanwhile.
 */
function assertNoSuperJournal(at: Place, journal: string): void {
  let fd: number;
  try {
    fd = openSync(journal, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw notAFile(at, journal, "-journal", "a symbolic link"); // swapped in since the lstat
    if (code === "EACCES" || code === "EPERM") throw unreadableJournal(at, journal, code);
    return; // gone meanwhile: nothing to roll back
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw notAFile(at, journal, "-journal", fileKind(st));
    if (st.size < TRAILER) return;
    const tail = Buffer.alloc(TRAILER);
    if (readSync(fd, tail, 0, TRAILER, st.size - TRAILER) !== TRAILER) return;
    const len = tail.readUInt32BE(0);
    if (!tail.subarray(8).equals(JOURNAL_MAGIC) || len === 0 || len > st.size - TRAILER) return;
    const name = Buffer.alloc(len);
    const got = readSync(fd, name, 0, len, st.size - TRAILER - len);
    throw new StorageError(
      "corrupt-store",
      `${cannot(at)}: its -journal ${journal} names a super-journal (a multi-database transaction's, which graphrefly-storage never writes), and SQLite's rollback of it would delete the file of that name as this user; ${nothingDone(at)}: ${
        at.lockOf === undefined
          ? "check where the -journal came from, then remove it (its transaction is then not rolled back) or restore the store from a backup"
          : `it is the -journal of a lock database of store ${at.lockOf}, which holds no data: removing it is harmless (the store itself is not touched)`
      }`,
      { ...placeDetails(at), file: journal, superJournal: name.subarray(0, got).toString("utf8"), reason: "super-journal" },
    );
  } finally {
    closeSync(fd);
  }
}

/**
 * A -journal this user cannot read: SQLite cannot open it either (SQLITE_CANTOPEN, naming no file), and whether it
 * names a super-journal cannot be told. Refused with its name (review r353 F3).
 */
function unreadableJournal(at: Place, journal: string, errno: string): StorageError {
  return new StorageError(
    "corrupt-store",
    `${cannot(at)}: its -journal ${journal} cannot be read by this user (${errno}), so it cannot be checked before SQLite rolls it back (nor can SQLite open it); ${nothingDone(at)}: ${
      at.lockOf === undefined
        ? "its owner (or a user who can read it) should open the store, or check where the -journal came from and remove it (its transaction is then not rolled back)"
        : `it is the -journal of a lock database of store ${at.lockOf}, which holds no data: removing it is harmless`
    }`,
    { ...placeDetails(at), file: journal, errno, reason: "side-unreadable" },
  );
}
