/**
 * The single-writer lock of a store, shared by every handle of the process that holds it.
 *
 * The lock is a tiny SQLite database beside the store. Its holder process keeps a read transaction open on it (a
 * SHARED lock, one per handle, in any thread) and its row names the holder. Taking the lock means committing our
 * own row, which needs SQLite's EXCLUSIVE lock and therefore fails while any handle of the holder is open. So:
 * - another process is refused, and told who holds the store (pid, host, since when);
 * - a second handle in the holder process (another tier, an engine actor in a worker thread) joins instead of
 *   being refused, and the lock lives until the last handle closes (SQLite counts the SHARED locks);
 * - the kernel drops the locks of a process killed with -9, so no stale lock survives its holder;
 * - an open that finds the lock database busy with a write (another thread or process committing its row at that
 *   moment) waits for it, briefly, and then decides from the row: its own process's row is joined.
 * The row also says which hold it is and which hold came before it (tenure.ts): a hold is named by its process and
 * the time it was taken (`since`), and a process taking the lock over another's row writes that row's hold as
 * `prev`. Every handle of a hold, the one that took it and those that joined it, reads both from the row.
 */
import Database from "better-sqlite3";
import { readFileSync, statSync, type Stats } from "node:fs";
import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import { join } from "node:path";
import { StorageError } from "../errors.js";
import { fileKind } from "./file-kind.js";
import { inNative } from "./native-gate.js";
import { fileAt, lockReplacedError, openLockFile, replacedUnder, sameLockFile, type LockFileId } from "./lock-open.js";
import { descriptorsOn } from "./lock-older-hold.js";
import { realFilePath } from "./real-path.js";
import type { WriterTenure } from "./tenure.js";
import { isSqliteBusy, sqliteError, storeLockedError, type LockOwner } from "./sqlite-errors.js";

/** Hidden sidecar file of a file store; list() ignores it like every other dot file. */
export const LOCK_FILE_NAME = ".graphrefly.lock";

/**
 * The lock file of a SQLite store: beside the real database file, named like SQLite's own -wal and -shm files (SQLite
 * too names them after the file a symbolic link leads to). Named after the path given, a second name of the store (a
 * link) would get a lock of its own and admit a second writer.
 */
export function sqliteLockPath(dbPath: string): string {
  return `${realFilePath(dbPath)}-lock`;
}

/**
 * Refuses a database file with several names (hard links): SQLite names its -wal and -shm files, and we the lock,
 * after the name a connection used, so two names of one file would be two stores' worth of journals and locks over one
 * database (two writers; a reader missing the writer's WAL). Nothing tells the names apart, so the file is refused.
 */
export function assertSingleName(path: string): void {
  let st: Stats;
  try {
    st = statSync(path);
  } catch {
    return; // not created yet (or unreadable: opening it reports why)
  }
  // A directory has two or more links by itself: "hard links" would send the user looking for the wrong mistake.
  if (st.isDirectory()) {
    throw new StorageError(
      "invalid-argument",
      `${path} is a directory: a SQLite store is a file (give a file path such as ${join(path, "app.db")}, or open the directory as a file store)`,
      { path, reason: "directory" },
    );
  }
  // A FIFO, device or socket: refused before anything is made beside it (SQLite would fail later, a lock file left).
  if (!st.isFile()) {
    throw new StorageError("invalid-argument", `${path} is ${fileKind(st)}: a SQLite store is a regular file`, {
      path,
      reason: "not-a-file",
      found: fileKind(st),
    });
  }
  const links = st.nlink;
  if (links > 1) {
    throw new StorageError(
      "invalid-argument",
      `${path} has ${links} hard links: a SQLite store must have one name (each name would get its own journal and lock, and two writers one store); remove the other links`,
      { path, reason: "hard-links", links },
    );
  }
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
/** Kept here for its importers (the CLI's output-file checks, tests): the function lives in real-path.ts. */
export { realFilePath };

export interface StoreLock {
  readonly path: string;
  /** The hold this handle shares (tenure.ts): its process and the time it was taken, as the lock's row names them. */
  readonly hold: string;
  /** The hold before it, as the row keeps it; undefined when the store never had one (or a row too old to say). */
  readonly before: string | undefined;
  /**
   * The side file (`LockSide`) the row names: the one made or taken when the store's first open handle took the lock;
   * undefined when none was asked for, or the row names none.
   */
  readonly side: LockFileId | undefined;
  /** Releases this handle's share of the lock. Idempotent. */
  release(): void;
}

/**
 * A file kept beside the lock for the life of the store's open handles (a file store's check lock, file-check-lock.ts)
 * that must be one and the same file for all of them: made (or taken, as a crash left it) by a take, and its identity
 * kept in the lock's row, which no one can change while a handle is open (every handle holds the lock database's
 * SHARED lock, and a commit needs it free): every handle open at once reads the same one (`markSide`). A handle
 * finding another file there, or none, can tell: the file was removed or replaced while handles were open.
 */
export interface LockSide {
  /** The identity of the regular file at the side file's path now; undefined when there is none. Never makes it. */
  find(): LockFileId | undefined;
  /** Makes the file, or takes the regular file there: its identity. Refuses anything else (a link: corrupt-store). */
  make(): LockFileId;
}

/**
 * `prev`: the hold before the row's (holdId), written by the process that took the lock over it. Lock databases
 * written before 2026-12-06 have no such column: the first take by this version adds it (`ensurePrevColumn`), and
 * versions before it write their rows without it (their `prev` reads as none).
 */
const SCHEMA =
  "CREATE TABLE IF NOT EXISTS owner (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER, host TEXT, process TEXT, since TEXT, prev TEXT)";

/** The lock's row: its holder, and the hold before the holder's. */
interface OwnerRow extends LockOwner {
  readonly prev: string | null | undefined;
  /** The side file's identity (`<dev>:<ino>`); absent from rows of older versions and of stores without one. */
  readonly side?: string | null;
}

const sideText = (id: LockFileId): string => `${id.dev}:${id.ino}`;

function parseSide(text: string | null | undefined): LockFileId | undefined {
  const m = /^(\d+):(\d+)$/.exec(text ?? "");
  return m === null ? undefined : { dev: BigInt(m[1]!), ino: BigInt(m[2]!) };
}

/**
 * A hold's id: the process and the time it took the lock. The process alone named a hold before: a process that
 * took the store over another process twice (its engines' actors, one lost in between) had one id for both, and a
 * handle of the second hold was told it followed the first (review r203).
 */
function holdId(row: LockOwner): string {
  return `${row.process}@${row.since}`;
}

/** A hold of the lock (tenure.ts): the hold the row names, after the hold the row keeps as `prev`. */
export function lockTenure(lock: StoreLock): WriterTenure {
  return { id: lock.hold, after: lock.before };
}

function readOwner(db: Database.Database): OwnerRow | undefined {
  try {
    // `*`: a row of a lock database without the `prev` column (older versions) reads too.
    return db.prepare<[], OwnerRow>("SELECT * FROM owner WHERE id = 1").get();
  } catch (err) {
    if (isSqliteBusy(err) || !/no such table/.test((err as Error | null)?.message ?? "")) throw err;
    return undefined; // no table yet: nobody ever held it
  }
}

/** Adds `prev` to a lock database created before it (inside our write transaction, so no other writer races it). */
function ensurePrevColumn(db: Database.Database): void {
  const columns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('owner')").all();
  if (!columns.some((c) => c.name === "prev")) db.exec("ALTER TABLE owner ADD COLUMN prev TEXT");
}

/**
 * The `since` of a hold taken over `previous`: now, or just after the previous hold's own `since` when the clock
 * says otherwise (the same millisecond, a clock set back, another host's clock ahead). Each hold's `since` thus comes
 * after the one before, so a chain of holds never names two of them alike (a process's hold taken back over another
 * process's in the millisecond its first was taken).
 */
function sinceAfter(previous: OwnerRow | undefined): string {
  const now = Date.now();
  const last = previous === undefined ? Number.NaN : Date.parse(previous.since);
  return new Date(Number.isFinite(last) && last >= now ? last + 1 : now).toISOString();
}

/** The lock's owner, or undefined when it cannot be read now (busy again). */
function readOwnerOnce(db: Database.Database): LockOwner | undefined {
  try {
    if (db.inTransaction) db.exec("ROLLBACK");
    return readOwner(db);
  } catch {
    return undefined;
  }
}

/**
 * Takes (or, from a process that holds it already, joins) the lock of the store whose lock file is `lockPath`.
 * Throws StorageError("store-locked") naming the holder when another process holds it.
 */
export function acquireStoreLock(lockPath: string, storePath: string, side?: LockSide): StoreLock {
  // One native region, as every better-sqlite3 call of a thread an engine may terminate (native-gate.ts): the file
  // backend takes and releases its lock outside any region of its own.
  return inNative(() => takeStoreLock(lockPath, storePath, side));
}

/**
 * How long, in all, an open waits while the lock database is busy with a write (a handle committing its row: another
 * thread of this process opening the store at the same moment, or another process) before it decides from the row.
 * The wait is for a commit of one row, not for a holder (a holder keeps no write lock): it ends in milliseconds.
 */
export const LOCK_WRITE_WAIT_MS = 2_000;

/**
 * Looks, each after a short pause, that must find our row blocked by open handles while the row names another
 * process before the open is refused. A holder's handles block it for their life; a handle merely reading the row
 * (another opener's first look) blocks it for microseconds, and must not make a free store look held.
 */
const HOLDER_LOOKS = 5;

/** Longest pause between two tries (they start at 1 ms and double). */
const MAX_PAUSE_MS = 20;

const pauseCell = new Int32Array(new SharedArrayBuffer(4));

/** Blocks this thread `ms` (the lock is taken synchronously, inside a native region). */
function pause(ms: number): void {
  Atomics.wait(pauseCell, 0, 0, ms);
}

/** One try at the lock: held (with our row, read under the SHARED lock), or why not. */
type LockTry =
  | { readonly kind: "held"; readonly row: OwnerRow }
  /** Another process's row is there while we hold a SHARED lock: it committed it after our look, and holds the store. */
  | { readonly kind: "taken"; readonly owner: LockOwner | undefined }
  /** A write is in progress (a reader was refused, or our write could not begin): it ends soon, look again. */
  | { readonly kind: "writing"; readonly cause: unknown }
  /** Our row could not commit: open handles hold the lock database. `owner`: the row then, if it could be read. */
  | { readonly kind: "open-handles"; readonly owner: LockOwner | undefined; readonly cause: unknown };

/**
 * How long a take naming a side file waits for the lock database's other connections to let go (SQLite's busy wait):
 * another open's look or commit lets go in microseconds, an open handle never. Waited only while the side file the
 * row names is not at its path (a new hold, or one removed since).
 */
const SIDE_WAIT_MS = 500;
/**
 * The wait instead while another handle of this process is open on a row naming a side file not in place: a take's
 * look lets go in microseconds (a preempted one within a few ms), and an open handle never. Joiners wait it side by
 * side, not one after another (no try holds a lock while it waits): far inside the take's own wait (review r376 M1).
 */
const HANDLES_SIDE_WAIT_MS = 200;
/** Pauses between a side file's tries, in ms: short first (another take's look or commit), then longer. */
const SIDE_PAUSES_MS = [0.2, 0.5, 1, 2, 5, 10];

function takeStoreLock(lockPath: string, storePath: string, side: LockSide | undefined): StoreLock {
  const me = processIdentity();
  let db: Database.Database | undefined;
  let opened: LockFileId | undefined;
  let row: OwnerRow;
  try {
    // Busy timeout 0: SQLite's busy handler would wait on a holder, which keeps its lock for its whole life; the
    // loop below waits only for a write in progress, and decides from the row who holds the store.
    ({ db, id: opened } = openLockFile(lockPath, { timeout: 0 }, `cannot lock store ${storePath}`, storePath)); // never through a link
    const giveUpAt = performance.now() + LOCK_WRITE_WAIT_MS;
    let holderLooks = 0;
    let wait = 1;
    for (;;) {
      const got = tryStoreLock(db, me, side);
      if (got.kind === "held") {
        row = got.row;
        break;
      }
      if (got.kind === "taken") {
        // No row at all under our SHARED lock, right after ours was committed or found there: the lock's files were
        // removed under the take (its journal during a commit), not another process's hold: it was store-locked,
        // "locked by another process", in a process alone (task 385).
        if (got.owner === undefined) throw lockReplacedError(`cannot lock store ${storePath}`, lockPath, "while the open took it");
        throw storeLockedError(storePath, got.owner);
      }
      // Our row blocked by open handles while another process's row is there: that process holds the store (its
      // handles keep their SHARED locks for their life), unless the handles were only passing readers: look again a
      // few times. When the row names this process, the handles are another thread's, which has just taken the
      // lock: the next try joins it (the "another process" refusal that two engines of one process met, task 196).
      const named = got.kind === "open-handles" && got.owner !== undefined && got.owner.process !== me;
      if (named && ++holderLooks >= HOLDER_LOOKS) throw storeLockedError(storePath, got.owner, got.cause);
      if (performance.now() >= giveUpAt) {
        const now = got.kind === "open-handles" ? got.owner : readOwnerOnce(db);
        // Still busy after the whole wait: another process's store, or (our own row) a lock database some other
        // program keeps writing: that one stays store-busy, which callers retry.
        // Unreadable all along: nothing says another process holds it (review r376 M1), so store-busy (sqliteError).
        if (now !== undefined && now.process !== me) throw storeLockedError(storePath, now, got.cause);
        throw got.cause;
      }
      pause(wait);
      wait = Math.min(wait * 2, MAX_PAUSE_MS);
    }
  } catch (err) {
    // Named before the lock database is closed, so an OS cause is diagnosed as the failure met it (descriptors). The
    // lock file (or its journal) removed or replaced while the take had it open fails SQLite's write or commit: it
    // was backend-error (review r376 L1, task 385); nothing was taken, and an open again takes the file at the path.
    const failure =
      err instanceof StorageError
        ? err
        : opened !== undefined && replacedUnder(err, lockPath, opened)
          ? lockReplacedError(`cannot lock store ${storePath}`, lockPath, "while the open took it", err)
          : sqliteError(err, `cannot lock store ${storePath}`, lockPath);
    db?.close();
    throw failure;
  }
  const held = db;
  let released = false;
  return {
    path: lockPath,
    hold: holdId(row),
    before: row.prev ?? undefined,
    side: side === undefined ? undefined : parseSide(row.side),
    release() {
      if (released) return;
      inNative(() => held.close());
      released = true;
    },
  };
}

/**
 * One try: looks at the row, commits ours unless it names this process already, then keeps a SHARED lock (a read
 * transaction) for the handle's life and checks the row is this process's. Every SQLite busy is an answer, not a
 * failure: the caller waits or decides. The hold and the one before it come from the row read under that SHARED lock,
 * never from what this try found first: a try whose commit went through but whose check met a write is followed by
 * one that finds our row already there (and joins it), and the row is what still knows the hold we took over.
 */
function tryStoreLock(db: Database.Database, me: string, side: LockSide | undefined): LockTry {
  let owner: OwnerRow | undefined;
  try {
    owner = readOwner(db);
  } catch (err) {
    if (!isSqliteBusy(err)) throw err;
    return { kind: "writing", cause: err }; // a commit holds the database's EXCLUSIVE (or PENDING) lock
  }
  if (owner?.process !== me) {
    // IMMEDIATE takes the write lock first: refused only while another write is in progress, never by readers.
    try {
      db.exec("BEGIN IMMEDIATE");
    } catch (err) {
      if (!isSqliteBusy(err)) throw err;
      return { kind: "writing", cause: err };
    }
    try {
      db.exec(SCHEMA);
      ensurePrevColumn(db);
      // Read again inside the write transaction: the row we replace, whatever committed since our first look.
      const previous = readOwner(db);
      db.prepare("INSERT OR REPLACE INTO owner (id, pid, host, process, since, prev) VALUES (1, ?, ?, ?, ?, ?)").run(
        process.pid,
        hostname(),
        me,
        sinceAfter(previous),
        previous === undefined ? null : holdId(previous),
      );
      db.exec("COMMIT");
    } catch (err) {
      if (db.inTransaction) db.exec("ROLLBACK");
      if (!isSqliteBusy(err)) throw err;
      // The commit needs every other connection's SHARED lock gone: handles of the holder keep theirs.
      return { kind: "open-handles", owner: readOwnerOnce(db), cause: err };
    }
  }
  if (side !== undefined) {
    try {
      const busy = markSide(db, me, side);
      if (busy !== undefined) return { kind: "writing", cause: busy };
    } catch (err) {
      if (!isSqliteBusy(err)) throw err;
      return { kind: "writing", cause: err };
    }
  }
  db.exec("BEGIN");
  try {
    owner = readOwner(db);
  } catch (err) {
    db.exec("ROLLBACK");
    if (!isSqliteBusy(err)) throw err;
    return { kind: "writing", cause: err };
  }
  if (owner?.process !== me) {
    db.exec("ROLLBACK");
    return { kind: "taken", owner };
  }
  return { kind: "held", row: owner };
}

/**
 * Names the side file in our row when the row names none, or another than the one at its path: makes it (or takes
 * the regular file there) and commits its identity, under SQLite's EXCLUSIVE lock, which it gets only while no other
 * connection is in the lock database: it waits for another open's look or commit (SIDE_WAIT_MS; HANDLES_SIDE_WAIT_MS
 * beside another handle of this process), and never gets it while a handle of the store is open anywhere (each keeps
 * its SHARED lock for life). Then nothing is made, and the row stands as those handles read it: each of them, this
 * one too, refuses the file now at the path, or its absence (file-check-lock.ts). So every handle open at once on
 * this lock database reads one file's identity, and a take makes the file only while no handle is open on it; a take
 * after the lock database itself was removed makes both anew beside handles still open on the old ones
 * (file-check-lock.ts olderHoldError refuses that within a process).
 */
function markSide(db: Database.Database, me: string, side: LockSide): StorageError | undefined {
  const looked = readOwner(db);
  if (looked?.process !== me || sideInPlace(looked, side)) return undefined;
  // A row naming no side file is a new hold's (its take's row names none): no handle is open on it, as none goes on
  // without the file (below), so what else this process has open on the lock database is another thread's take
  // between its look and its commit. Another handle of this process on a row naming a file keeps its SHARED lock for
  // its life, and the row stands: a short wait, for a take's look (review r376 M1: each joiner waited the whole
  // wait, one after another, and a later one ran out of the take's own wait, "locked by another process"); none (or
  // a new hold): the lock database is busy only for a moment, or with another program's reader.
  const newHold = parseSide(looked.side) === undefined;
  const others = newHold ? false : otherHandles(db.name);
  const deadline = performance.now() + (others === true ? HANDLES_SIDE_WAIT_MS : SIDE_WAIT_MS);
  // Tries without SQLite's busy wait, the row read again between them: another thread's take that names the file
  // meanwhile is joined at once. A single try went on without the file when it met another take's look, and then so
  // did that take (each one's SHARED lock kept the other's EXCLUSIVE out): every batch of both failed store-moved
  // (two engines' actors opening one store at once; review r387 M1 for a row naming a removed file). SQLite's own
  // wait, which never reads the row, held a joiner the whole wait (review r387 L1).
  for (let tries = 0; ; tries++) {
    const taken = trySide(db, me, side);
    if (taken) return undefined;
    const now = readOwner(db);
    if (now?.process !== me || sideInPlace(now, side)) return undefined;
    const left = deadline - performance.now();
    // Open handles: their row stands (file-check-lock.ts refuses their batches). Without them (review r376 M2: the
    // take went on with no check lock and every batch failed "removed while open"), the take waits again and at the
    // end says why. Unknown (no /proc): as open handles.
    if (left <= 0) return others === false ? sideBusy(db.name) : undefined;
    pause(Math.min(SIDE_PAUSES_MS[Math.min(tries, SIDE_PAUSES_MS.length - 1)]!, left));
  }
}

/**
 * One try for the lock database's EXCLUSIVE lock (no busy wait): false when another connection holds a lock on it;
 * taken, names the side file in our row unless another process's row is there now or the file named is in place.
 */
function trySide(db: Database.Database, me: string, side: LockSide): boolean {
  try {
    db.exec("BEGIN EXCLUSIVE");
  } catch (err) {
    if (!isSqliteBusy(err)) throw err;
    return false;
  }
  try {
    const owner = readOwner(db);
    // Another process's row: it took the store since our look; the caller's next look says so.
    if (owner?.process === me && !sideInPlace(owner, side)) {
      ensureSideColumn(db);
      db.prepare("UPDATE owner SET side = ? WHERE id = 1").run(sideText(side.make()));
    }
    db.exec("COMMIT");
  } finally {
    if (db.inTransaction) db.exec("ROLLBACK");
  }
  return true;
}

/**
 * Whether a handle of this process other than the caller's is open on the lock database at `path`: more than one
 * descriptor of this process on its file (one per connection). Undefined when that cannot be told.
 */
function otherHandles(path: string): boolean | undefined {
  let real: string;
  try {
    real = realFilePath(path);
  } catch {
    return undefined;
  }
  const id = fileAt(real);
  const count = id === undefined ? undefined : descriptorsOn(real, id);
  return count === undefined ? undefined : count > 1;
}

/** store-busy: no handle of this process open, yet another connection kept the lock database from the side's commit. */
function sideBusy(path: string): StorageError {
  return new StorageError(
    "store-busy",
    `cannot open the store: another connection to its lock database ${path} (another program reading it: a sqlite3 shell, a backup) kept it busy, so the lock's side file (a file store's check lock) could not be made; nothing was written, try again once that connection ends`,
    { path, reason: "lock-database-busy" },
  );
}

/** Whether the side file the row names is the file at its path. */
function sideInPlace(row: OwnerRow, side: LockSide): boolean {
  const found = side.find(); // looked at even when the row names none
  return sameLockFile(parseSide(row.side), found);
}

/** Adds `side` to a lock database without it (older versions; a store lock that never had a side file). */
function ensureSideColumn(db: Database.Database): void {
  const columns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('owner')").all();
  if (!columns.some((c) => c.name === "side")) db.exec("ALTER TABLE owner ADD COLUMN side TEXT");
}
