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
 * What stays open: the look and SQLite's open are not atomic. A -journal (or FIFO) put there between them is rolled
 * back (or opened) as before; only someone who can already write the store's directory can do that, and such a user
 * can do worse to the store than this. A connection opened while another of any process holds the store in WAL mode
 * cannot roll a -journal back at all (that needs the exclusive lock the holder's shared lock keeps off: SQLITE_BUSY),
 * so the engine's checkpointer, which opens a store only while its writer has it open, needs no look of its own.
 */
import { Buffer } from "node:buffer";
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, type Stats } from "node:fs";
import { StorageError } from "../errors.js";
import { fileKind } from "./file-kind.js";
import { storeRealPath } from "./real-path.js";

/** The refusals of assertSqliteSideFiles, by `details.reason`. */
export function isSideFileRefusal(err: unknown): err is StorageError {
  return err instanceof StorageError && err.code === "corrupt-store" && (err.details.reason === "super-journal" || err.details.reason === "side-not-a-file");
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
export function assertSqliteSideFiles(path: string, what = `sqlite store ${path}`): void {
  let base: string;
  try {
    base = storeRealPath(path);
  } catch {
    return; // the path cannot be resolved: the open fails on it and says why
  }
  for (const suffix of SIDE_SUFFIXES) {
    const file = base + suffix;
    let st: Stats;
    try {
      st = lstatSync(file);
    } catch {
      continue; // none (or not to be looked at: SQLite cannot open it either)
    }
    if (!st.isFile()) throw notAFile(what, path, file, suffix, fileKind(st));
    if (suffix === "-journal") assertNoSuperJournal(what, path, file);
  }
}

function notAFile(what: string, path: string, file: string, suffix: string, found: string): StorageError {
  return new StorageError(
    "corrupt-store",
    `cannot open ${what}: its ${suffix} file ${file} is ${found}, not a regular file (no graphrefly-storage writer makes one; SQLite would open it, and a FIFO blocks that open for good); nothing was opened: remove it and open again`,
    { path, file, found, reason: "side-not-a-file" },
  );
}

/**
 * The trailer as SQLite reads it, at the end of the -journal: the name, its length, a checksum and the magic, last.
 * Refused whatever the checksum (SQLite ignores a name whose checksum is wrong; a -journal of this package has no
 * name at all). Opened without following a link and without blocking, and checked again to be a regular file: what
 * lstat saw may have been swapped meanwhile.
 */
function assertNoSuperJournal(what: string, path: string, journal: string): void {
  let fd: number;
  try {
    fd = openSync(journal, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw notAFile(what, path, journal, "-journal", "a symbolic link"); // swapped in since the lstat
    return; // gone meanwhile, or unreadable to this user: then SQLite cannot read it to roll it back either
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw notAFile(what, path, journal, "-journal", fileKind(st));
    if (st.size < TRAILER) return;
    const tail = Buffer.alloc(TRAILER);
    if (readSync(fd, tail, 0, TRAILER, st.size - TRAILER) !== TRAILER) return;
    const len = tail.readUInt32BE(0);
    if (!tail.subarray(8).equals(JOURNAL_MAGIC) || len === 0 || len > st.size - TRAILER) return;
    const name = Buffer.alloc(len);
    const got = readSync(fd, name, 0, len, st.size - TRAILER - len);
    throw new StorageError(
      "corrupt-store",
      `cannot open ${what}: its -journal ${journal} names a super-journal (a multi-database transaction's, which graphrefly-storage never writes), and SQLite's rollback of it would delete the file of that name as this user; nothing was opened: check where the -journal came from, then remove it (its transaction is then not rolled back) or restore the store from a backup`,
      { path, file: journal, superJournal: name.subarray(0, got).toString("utf8"), reason: "super-journal" },
    );
  } finally {
    closeSync(fd);
  }
}
