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
 * database holds one page, written when it is made; a batch only locks it (no journal file, no write).
 *
 * The file is made (or a crash's leftover taken) by the store lock's take, and its identity kept in the store lock's
 * row, which changes only while no handle of the store is open (`checkLockSide`, lock.ts LockSide); every handle's
 * connection then opens that very file, never makes one (SQLite's fileMustExist). A check lock removed or replaced
 * while handles are open is refused (`store-moved`, nothing written) until every handle is closed and the store opened
 * again: a connection cannot see which file another one locks, so two handles locking two files at one path ran their
 * batches together (review r359 H1: acknowledged increments lost while another program removed the file every 2 ms).
 * A handle without the store lock (`lock: false`, unsafe beside other writers anyway) opens the path as before, making
 * the file if it is missing. Layer 1.
 */
import Database from "better-sqlite3";
import { lstatSync, unlinkSync, type BigIntStats } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { StorageError } from "../errors.js";
import { fileFault } from "./file-faults.js";
import { LOCK_FILE_NAME, type LockSide } from "./lock.js";
import { inNative } from "./native-gate.js";
import { errnoCode, fileAt, lockReplacedError, openLockFile, replacedUnder, sameLockFile, type LockFileId } from "./lock-open.js";
import { olderLockFileHeld } from "./lock-older-hold.js";
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

/** Opens of the made check lock tried while SQLite cannot open it but it is at its path (CheckLock.openMade). */
const MADE_OPEN_TRIES = 5;

/** Why the lock a try took does not count: its file is no longer at the lock's path (removed or replaced). */
const MOVED = Symbol("check lock moved");

/**
 * Opens the check lock's database at `path` (never through a link: lock-open.ts) and writes its one page if it has
 * none yet: on an empty database every BEGIN IMMEDIATE writes the first page, a journal file made and removed in the
 * store's directory per batch (two more system calls touching it, ~2 ms a batch measured). `mustExist`: SQLite's
 * fileMustExist, nothing made. `accept` refuses (throws) a file by its identity before anything is written to it.
 * The caller closes it.
 */
function openCheckDatabase(
  path: string,
  dir: string,
  mustExist: boolean,
  accept?: (id: LockFileId) => void,
): { readonly db: Database.Database; readonly id: LockFileId } {
  const what = `cannot open the check lock of file store ${dir}`;
  const opened = openLockFile(path, { timeout: CHECK_LOCK_WAIT_MS, fileMustExist: mustExist }, what, dir);
  try {
    accept?.(opened.id);
    if (opened.db.pragma("user_version", { simple: true }) === 0) opened.db.pragma("user_version = 1");
  } catch (err) {
    opened.db.close();
    // Removed (or its journal) since the open looked at it: SQLite's write failed "disk I/O error" or on a moved
    // database, backend-error (task 385). The file holds no data: nothing is lost, an open again makes or takes it.
    if (!(err instanceof StorageError) && replacedUnder(err, path, opened.id)) {
      throw lockReplacedError(what, path, "while it was being opened", err);
    }
    throw err;
  }
  return opened;
}

/**
 * Makes the check lock's database, or takes the one there. A regular file that is no database (SQLITE_NOTADB: another
 * tool's text written there) is replaced: it holds no data, and no handle has it open while a take makes the file
 * (the lock database's EXCLUSIVE lock, lock.ts markSide). It failed the writer's open, `backend-error`, with no advice
 * (review r376 M4).
 */
function makeCheckDatabase(path: string, dir: string): LockFileId {
  let opened: { readonly db: Database.Database; readonly id: LockFileId };
  try {
    opened = openCheckDatabase(path, dir, false);
  } catch (err) {
    if (errnoCode(err) !== "SQLITE_NOTADB") throw err;
    try {
      unlinkSync(path);
    } catch (gone) {
      if (errnoCode(gone) !== "ENOENT") throw gone; // removed meanwhile (another program): the open below makes it
    }
    opened = openCheckDatabase(path, dir, false);
  }
  opened.db.close();
  return opened.id;
}

/**
 * The check lock as the store lock's side file (lock.ts): made, or a crash's leftover taken (an empty SQLite database,
 * a regular file of its own: a link or a FIFO is refused), by the store's first open handle.
 */
export function checkLockSide(dir: string): LockSide {
  const path = join(dir, CHECK_LOCK_FILE_NAME);
  return {
    find() {
      return fileAt(path); // cannot tell (EACCES): as if not there, so the open that can make it looks again
    },
    make() {
      try {
        return makeCheckDatabase(path, dir);
      } catch (err) {
        if (err instanceof StorageError && err.details?.reason === "lock-not-a-file") {
          // What it is stays (another program's), but the check lock holds no data: say so (review r376 M4).
          throw new StorageError(err.code, `${err.message}; the check lock holds no data, so it can be removed, and the store's next open makes it`, err.details);
        }
        if (err instanceof StorageError) throw err;
        throw sqliteError(err, `cannot make the check lock of file store ${dir}`, path);
      }
    },
  };
}

/**
 * backend-error `store-moved` when this process still has a descriptor on the store lock or the check lock of `dir`
 * that is not the file now at its path (`made`: the check lock the row names), undefined otherwise. Asked right after
 * a take: a handle of an older hold of this process may be inside a batch locked on the removed file, and a new
 * handle on the files made since would run beside it (review r376 H1). Refused until those handles are closed, as
 * their own batches are (store-moved). Other processes' handles are not seen (lock-older-hold.ts).
 */
export function olderHoldError(dir: string, made: LockFileId | undefined): StorageError | undefined {
  let real: string;
  try {
    real = storeRealPath(dir);
  } catch {
    return undefined; // not to be told by name now; the lock's take just reached it
  }
  const lock = join(real, LOCK_FILE_NAME);
  const check = join(real, CHECK_LOCK_FILE_NAME);
  const held = olderLockFileHeld([
    { path: lock, current: fileAt(lock) },
    { path: check, current: made },
  ]);
  if (held === undefined) return undefined;
  const file = held.path === lock ? "lock" : "check-lock";
  return new StorageError(
    "backend-error",
    `file store ${dir}: its ${file === "lock" ? "store lock" : "check lock"} ${held.path} was removed or replaced while another handle of this process had it open (that handle may be inside a conditional batch, which a handle on the new file would not exclude); not opened, nothing written: close every handle of the store and open it again`,
    { dir, path: held.path, reason: "store-moved", file },
  );
}

export class CheckLock {
  private db: Database.Database | undefined;
  /** The file `db` opened (lock-open.ts): checked against the path each time the lock is taken (`inPlace`). */
  private id: LockFileId | undefined;
  /** The side files of `db` (its -journal, -wal and -shm), named after the lock's real path at its open. */
  private sides: readonly string[] = [];

  /**
   * `held`: the store lock's, for a handle that holds it: `made` is the check lock's file as its row names it (made
   * when the store's first open handle took the lock; undefined: none could be, and every batch is refused). Without
   * it (a handle opened with `lock: false`), the path is opened as it is, and made when missing.
   */
  constructor(
    private readonly dir: string,
    private readonly held?: { readonly made: LockFileId | undefined },
  ) {}

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
   * connection is open leaves it locking a file no connection opened since can see (review r349 H3). A lock on a file
   * no longer there is dropped and the path opened again, within the same wait: a holder of the store lock finds the
   * file made at its take there (moved aside and back) or is refused (store-moved) (review r359 H1: a removal during
   * one batch, after its look, and another handle making the new file before that batch ended ran the two together).
   * Not a proof that two handles never lock two files: a take after both lock files were removed makes both anew, and
   * only this process's old descriptors are seen (olderHoldError); a program swapping a file in and out while SQLite
   * opens the path is not seen at all (design §3.13). A handle without the store lock opens whatever is there.
   */
  run<T>(fn: () => T): T {
    const deadline = performance.now() + CHECK_LOCK_WAIT_MS;
    for (let tries = 0; ; tries++) {
      const db = this.connection();
      try {
        this.assertSideFiles();
      } catch (err) {
        this.close(); // the next batch opens afresh, and its open looks at the side files again
        throw err;
      }
      fileFault("check-try", this.path);
      const got = this.tryLock(db);
      if (got === true) break;
      if (got === MOVED) {
        this.close(); // drops the lock on the file no longer at the path; the next try opens the path
        tries = -1; // the new file's first try waits no pause
      }
      const left = deadline - performance.now();
      if (left <= 0) throw this.waitedOut(got === MOVED);
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
      // Nothing was written in the transaction: ending it only drops the lock. A connection that cannot is not kept.
      try {
        inNative(() => db.exec("ROLLBACK"));
      } catch {
        this.close();
      }
    }
  }

  /**
   * store-busy after the whole wait: another thread's batch held the lock, or (`moving`: the last try found its file
   * gone from the path, and the path opened again was gone or replaced again) the lock's file kept being replaced
   * (review r359 L1: that was reported as a thread holding the lock).
   */
  private waitedOut(moving: boolean): StorageError {
    const why = moving
      ? `its check lock ${this.path} kept being removed or replaced (another program's doing) for ${CHECK_LOCK_WAIT_MS} ms`
      : `another thread's conditional write held the store for more than ${CHECK_LOCK_WAIT_MS} ms`;
    return new StorageError("store-busy", `file store ${this.dir}: ${why}; nothing was written, try again`, {
      dir: this.dir,
      waitedMs: CHECK_LOCK_WAIT_MS,
      ...(moving ? { reason: "lock-replaced", path: this.path } : {}),
    });
  }

  /**
   * backend-error `store-moved` (`file` "check-lock"): the check lock's file is not the one made when the store lock
   * was taken (removed, or another file there). Handles still open may lock the old file, and a handle locking another
   * one would run its batch beside theirs: refused, until every handle is closed and the store's next open makes it.
   */
  private moved(osCode?: string): StorageError {
    return new StorageError(
      "backend-error",
      `file store ${this.dir}: its check lock ${this.path} was removed or replaced while the store was open, so conditional batches of its handles can no longer exclude each other; nothing was written (plain writes go on; close every handle of the store and open it again to make the check lock anew)`,
      { dir: this.dir, path: this.path, reason: "store-moved", file: "check-lock", ...(osCode === undefined ? {} : { osCode }) },
    );
  }

  /** corrupt-store `lock-not-a-database`: the check lock's file was written over; it holds no data. */
  private notADatabase(cause: unknown): StorageError {
    return new StorageError(
      "corrupt-store",
      `file store ${this.dir}: its check lock ${this.path} is not a database (another program wrote over it); nothing was written (plain writes go on). It holds no data: close every handle of the store, remove it, and the next open makes it`,
      { dir: this.dir, path: this.path, reason: "lock-not-a-database" },
      cause,
    );
  }

  /**
   * One try for SQLite's write lock (no busy wait: the connection's busy timeout is 0 once open): true when taken on
   * the file at the lock's path, false when another connection holds it, MOVED (not held) when the file this
   * connection opened is no longer at the path.
   */
  private tryLock(db: Database.Database): boolean | typeof MOVED {
    try {
      return inNative(() => {
        try {
          db.exec("BEGIN IMMEDIATE");
        } catch (err) {
          if (isSqliteBusy(err)) return false;
          throw err;
        }
        if (this.inPlace()) return true;
        db.exec("ROLLBACK");
        return MOVED;
      });
    } catch (err) {
      // A connection SQLite failed otherwise than busy may stay failed (SQLITE_IOERR_FSTAT on its descriptor): kept,
      // it failed every later batch of the handle (review r359 H2). Closed, the next batch opens the path afresh.
      this.close();
      throw sqliteError(err, `cannot take the check lock of file store ${this.dir}`, this.path);
    }
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
      const code = errnoCode(err);
      return code !== "ENOENT" && code !== "ENOTDIR";
    }
    return sameLockFile(now, this.id);
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
        const held = this.held;
        if (held !== undefined) this.assertMade();
        // Not the file made: refused before anything is written to it (another hold's, being made: it failed the write).
        const accept = held === undefined ? undefined : (id: LockFileId) => {
          if (!sameLockFile(id, held.made)) throw this.moved();
        };
        const { db, id } = this.openMade(held !== undefined, accept);
        try {
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
      if (err instanceof StorageError) throw err; // a lock file that is a link (lock-open.ts), or moved
      if (this.held !== undefined) {
        // Gone or replaced between the look and SQLite's open (fileMustExist: SQLITE_CANTOPEN): moved, as the look
        // would have said (one made again meanwhile by another hold's take failed the open backend-error, task 385).
        const notMade = this.notMade();
        if (notMade !== undefined) throw notMade;
      }
      // Written over by another program (the file the take made, its inode kept): handles may have it open, so it is
      // not replaced here; the next take, with every handle closed, makes it once it is removed (review r376 M4).
      if (errnoCode(err) === "SQLITE_NOTADB") throw this.notADatabase(err);
      throw sqliteError(err, `cannot open the check lock of file store ${this.dir}`, this.path);
    }
    return this.db;
  }

  /** The lock's path looked at: undefined when nothing is there (its stat otherwise, whatever the file is). */
  private lookAt(): BigIntStats | undefined {
    try {
      return lstatSync(this.path, { bigint: true });
    } catch (err) {
      const code = errnoCode(err);
      if (code === "ENOENT" || code === "ENOTDIR") return undefined;
      throw err;
    }
  }

  /**
   * store-moved when the lock's file is not the one made: nothing there, or another regular file; undefined otherwise.
   * What is not a regular file is left to the open, which says what it is (corrupt-store, lock-not-a-file). A look
   * that fails (EACCES) throws.
   */
  private notMadeAt(): StorageError | undefined {
    const at = this.lookAt();
    if (at === undefined) return this.moved("ENOENT");
    if (at.isFile() && !sameLockFile(at, this.held!.made)) return this.moved();
    return undefined;
  }

  /**
   * openCheckDatabase of the lock's path. A holder's open (fileMustExist) that SQLite failed CANTOPEN is looked at
   * again: the file gone or another one is store-moved; the file made back at the path is opened again (another
   * program moved it aside and back in between: the batch said backend-error, SQLite's "unable to open database
   * file", no reason). A few times only: a descriptor limit fails the same way, and then says so.
   */
  private openMade(mustExist: boolean, accept: ((id: LockFileId) => void) | undefined): { readonly db: Database.Database; readonly id: LockFileId } {
    for (let tries = 1; ; tries++) {
      try {
        return openCheckDatabase(this.path, this.dir, mustExist, accept);
      } catch (err) {
        if (!mustExist || errnoCode(err) !== "SQLITE_CANTOPEN") throw err;
        const notMade = this.notMade();
        if (notMade !== undefined) throw notMade; // not there, or another file: what the look before the open says
        if (tries === MADE_OPEN_TRIES) throw err;
      }
    }
  }

  /** notMadeAt, undefined when the look fails (an open's failure then says why). */
  private notMade(): StorageError | undefined {
    try {
      return this.notMadeAt();
    } catch {
      return undefined;
    }
  }

  /** Refuses (store-moved) before the open when the lock's file is not the one made (notMadeAt). */
  private assertMade(): void {
    const moved = this.notMadeAt();
    if (moved !== undefined) throw moved;
  }
}
