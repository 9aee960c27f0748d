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
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { StorageError } from "../errors.js";
import { fileFault } from "./file-faults.js";
import { LOCK_FILE_NAME } from "./lock.js";
import { inNative } from "./native-gate.js";
import { openLockDatabase } from "./lock-open.js";
import { isSqliteBusy, sqliteError } from "./sqlite-errors.js";

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

export class CheckLock {
  private db: Database.Database | undefined;

  constructor(private readonly dir: string) {}

  get path(): string {
    return join(this.dir, CHECK_LOCK_FILE_NAME);
  }

  /** Runs `fn` (synchronous: the check and the writes) holding the lock; the store directory must exist. */
  run<T>(fn: () => T): T {
    const db = this.connection();
    const deadline = performance.now() + CHECK_LOCK_WAIT_MS;
    for (let tries = 0; !this.tryLock(db); tries++) {
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new StorageError(
          "store-busy",
          `file store ${this.dir}: another thread's conditional write held the store for more than ${CHECK_LOCK_WAIT_MS} ms; nothing was written, try again`,
          { dir: this.dir, waitedMs: CHECK_LOCK_WAIT_MS },
        );
      }
      fileFault("check-busy", this.path);
      // Outside inNative: the engine may end this thread now (a watchdog's claim of its gates need not wait out the
      // whole wait). Asleep, the thread burns no CPU; it still runs nothing else (a conditional batch is synchronous).
      Atomics.wait(PAUSE, 0, 0, Math.min(RETRY_PAUSES_MS[Math.min(tries, RETRY_PAUSES_MS.length - 1)]!, left));
    }
    try {
      return fn();
    } finally {
      // Nothing was written in the transaction: ending it only drops the lock.
      inNative(() => db.exec("ROLLBACK"));
    }
  }

  /** One try for SQLite's write lock (no busy wait: the connection's busy timeout is 0 once open). */
  private tryLock(db: Database.Database): boolean {
    return inNative(() => {
      try {
        db.exec("BEGIN IMMEDIATE");
        return true;
      } catch (err) {
        if (!isSqliteBusy(err)) throw sqliteError(err, `cannot take the check lock of file store ${this.dir}`, this.path);
        return false;
      }
    });
  }

  close(): void {
    const db = this.db;
    this.db = undefined;
    if (db !== undefined) inNative(() => db.close());
  }

  private connection(): Database.Database {
    if (this.db !== undefined) return this.db;
    try {
      this.db = inNative(() => {
        const db = openLockDatabase(this.path, { timeout: CHECK_LOCK_WAIT_MS }, `cannot open the check lock of file store ${this.dir}`);
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
        return db;
      });
    } catch (err) {
      if (err instanceof StorageError) throw err; // a lock file that is a link (lock-open.ts)
      throw sqliteError(err, `cannot open the check lock of file store ${this.dir}`, this.path);
    }
    return this.db;
  }
}
