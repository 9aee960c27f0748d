/**
 * The check lock of a file store: held for the check and the renames of one conditional batch (writeBatchIf), so
 * that two handles of one store in different threads of the holder process (two engines, an engine beside an inline
 * tier), which share the store's single-writer lock (lock.ts), cannot both pass their check and then overwrite each
 * other. Plain writes never take it.
 *
 * It is a SQLite write lock (BEGIN IMMEDIATE on an empty database, `.graphrefly.lock-check` beside the store lock),
 * because SQLite excludes its connections in every thread of a process as well as across processes, and the lock
 * never outlives its holder: the kernel drops a dead process's locks, and a terminated worker thread's connections
 * are closed (better-sqlite3 closes its databases when a thread's environment is torn down). An O_EXCL lock file
 * would need a guess about whether its holder still runs: Node cannot tell whether another thread is alive. A
 * SharedArrayBuffer is shared only with the workers started after it was made (sqlite-turns.ts): not a lock. The
 * database holds one page, written at its first open; a batch only locks it (no journal file, no write). Layer 1.
 */
import Database from "better-sqlite3";
import { lstatSync, type BigIntStats } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { StorageError } from "../errors.js";
import { fileFault } from "./file-faults.js";
import { LOCK_FILE_NAME } from "./lock.js";
import { inNative } from "./native-gate.js";
import { openLockFile, type LockFileId } from "./lock-open.js";
import { isSqliteBusy, sqliteError } from "./sqlite-errors.js";
import { assertSqliteSideFiles } from "./sqlite-side-files.js";
import { storeRealPath } from "./real-path.js";

/** The files SQLite opens beside a database before it reads a page (sqlite-side-files.ts), the -journal first. */
const SIDE_SUFFIXES = ["-journal", "-wal", "-shm"] as const;

/** Named after the store lock, so whatever treats `.graphrefly.lock*` as the lock's sidecar files treats this too. */
export const CHECK_LOCK_FILE_NAME = `${LOCK_FILE_NAME}-check`;

/**
 * How long a conditional batch waits for another thread's check and renames (blocking its thread). A holder keeps it
 * for reads, renames and one directory fsync; past this, the batch fails store-busy, nothing written. A first open of
 * the lock's database waits as long in SQLite's own busy wait.
 */
export const CHECK_LOCK_WAIT_MS = 1_000;

/** Pauses between tries of a held check lock, in ms (as SQLite's busy handler steps: short first, then 25 ms). */
const RETRY_PAUSES_MS = [1, 2, 5, 10, 15, 20, 25];
/**
 * What a waiting batch sleeps on (Atomics.wait wants an Int32Array over a SharedArrayBuffer): this module's own,
 * given to no other thread and never notified, so each wait lasts its timeout.
 */
const PAUSE = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));

/** Why the lock a try took does not count: its file is no longer at the lock's path (removed or replaced). */
const MOVED = Symbol("check lock moved");

export class CheckLock {
  private db: Database.Database | undefined;
  /** The file `db` opened (lock-open.ts): checked against the path each time the lock is taken (`inPlace`). */
  private id: LockFileId | undefined;
  /** The side files of `db` (its -journal, -wal and -shm), named after the lock's real path at its open. */
  private sides: readonly string[] = [];

  constructor(private readonly dir: string) {}

  get path(): string {
    return join(this.dir, CHECK_LOCK_FILE_NAME);
  }

  /**
   * Runs `fn` (synchronous: the check and the writes) holding the lock; the store directory must exist.
   *
   * Each try first looks at the lock's side files (sqlite-side-files.ts): a try takes SQLite's shared lock, which rolls
   * a hot -journal back (one naming a super-journal deletes the file it names) or opens a -wal, and this connection,
   * idle between batches, holds no lock that would keep another program's file from that. Its open looked once;
   * a file put there since was rolled back at the next batch (review r349).
   *
   * The lock taken, the file it is on must still be the one at the path: a lock file removed (or replaced) while this
   * connection is open leaves it locking a file no connection opened since can see, and a handle opening the lock
   * then (another thread's first conditional batch) made a new one at the path and ran beside it: two threads'
   * read-increment writes both applied (review r349 H3: 2-8 of 600 lost). A lock on a file no longer there is
   * dropped and the path opened again, within the same wait. Every handle takes the lock before it looks, so the
   * handles that had the old file open move to the new one one at a time, after the old one's holder is done. What
   * stays open: a removal during a batch (after its look), and another handle opening the new file before that
   * batch ends: the two run together once (a connection cannot see which file another one opened).
   */
  run<T>(fn: () => T): T {
    const deadline = performance.now() + CHECK_LOCK_WAIT_MS;
    for (let tries = 0; ; tries++) {
      const db = this.connection();
      this.assertSideFiles();
      const got = this.tryLock(db);
      if (got === true) break;
      if (got === MOVED) {
        this.close(); // drops the lock on the file no longer at the path; the next try opens the path
        tries = -1; // the new file's first try waits no pause
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new StorageError(
          "store-busy",
          `file store ${this.dir}: another thread's conditional write held the store for more than ${CHECK_LOCK_WAIT_MS} ms; nothing was written, try again`,
          { dir: this.dir, waitedMs: CHECK_LOCK_WAIT_MS },
        );
      }
      if (got === MOVED) continue;
      fileFault("check-busy", this.path);
      // Outside inNative: the engine may end this thread now (a watchdog's claim of its gates need not wait out the
      // whole wait). Asleep, the thread burns no CPU; it still runs nothing else (a conditional batch is synchronous).
      Atomics.wait(PAUSE, 0, 0, Math.min(RETRY_PAUSES_MS[Math.min(tries, RETRY_PAUSES_MS.length - 1)]!, left));
    }
    const db = this.db!;
    try {
      return fn();
    } finally {
      // Nothing was written in the transaction: ending it only drops the lock.
      inNative(() => db.exec("ROLLBACK"));
    }
  }

  /**
   * One try for SQLite's write lock (no busy wait: the connection's busy timeout is 0 once open): true when taken on
   * the file at the lock's path, false when another connection holds it, MOVED (not held) when the file this
   * connection opened is no longer at the path.
   */
  private tryLock(db: Database.Database): boolean | typeof MOVED {
    return inNative(() => {
      try {
        db.exec("BEGIN IMMEDIATE");
      } catch (err) {
        if (!isSqliteBusy(err)) throw sqliteError(err, `cannot take the check lock of file store ${this.dir}`, this.path);
        return false;
      }
      if (this.inPlace()) return true;
      db.exec("ROLLBACK");
      return MOVED;
    });
  }

  /**
   * Refuses a try while a side file SQLite would open or roll back is there, not a regular file or naming a
   * super-journal (sqlite-side-files.ts). Looked for at the names SQLite gave them at this connection's open (beside
   * the real path then); nothing there, the usual case, costs three lstat calls that throw nothing.
   */
  private assertSideFiles(): void {
    const absent = (side: string): boolean => {
      try {
        return lstatSync(side, { throwIfNoEntry: false }) === undefined;
      } catch {
        return false; // cannot tell (EACCES): the full look decides
      }
    };
    if (this.sides.every(absent)) return;
    assertSqliteSideFiles(this.sides[0]!.slice(0, -SIDE_SUFFIXES[0].length), `the check lock of file store ${this.dir}`, this.dir);
  }

  /**
   * Whether the file this connection opened is still at the lock's path. Nothing there or another file is not; a look
   * that fails otherwise (EACCES on the directory) cannot tell, and the lock held counts (the batch's renames fail
   * there the same way).
   */
  private inPlace(): boolean {
    let now: BigIntStats;
    try {
      now = lstatSync(this.path, { bigint: true });
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      return code !== "ENOENT" && code !== "ENOTDIR";
    }
    return now.dev === this.id!.dev && now.ino === this.id!.ino;
  }

  close(): void {
    const db = this.db;
    this.db = undefined;
    this.id = undefined;
    if (db !== undefined) inNative(() => db.close());
  }

  private connection(): Database.Database {
    if (this.db !== undefined) return this.db;
    try {
      const opened = inNative(() => {
        const { db, id } = openLockFile(this.path, { timeout: CHECK_LOCK_WAIT_MS }, `cannot open the check lock of file store ${this.dir}`, this.dir);
        try {
          // On an empty database every BEGIN IMMEDIATE writes the first page: a journal file made and removed in the
          // store's directory per batch (two more system calls touching it, ~2 ms a batch measured). Written once here.
          if (db.pragma("user_version", { simple: true }) === 0) db.pragma("user_version = 1");
          // Batches try the lock once and pause in run(), outside the native call, instead of SQLite's busy wait.
          db.pragma("busy_timeout = 0");
        } catch (err) {
          db.close();
          throw err;
        }
        return { db, id };
      });
      this.db = opened.db;
      this.id = opened.id;
      let real: string;
      try {
        real = storeRealPath(this.path);
      } catch {
        real = this.path; // not to be resolved now: SQLite's open resolved it, and the look is by the path given
      }
      this.sides = SIDE_SUFFIXES.map((suffix) => real + suffix);
    } catch (err) {
      if (err instanceof StorageError) throw err; // a lock file that is a link (lock-open.ts)
      throw sqliteError(err, `cannot open the check lock of file store ${this.dir}`, this.path);
    }
    return this.db;
  }
}
