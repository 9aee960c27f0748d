/**
 * SQLite backend on better-sqlite3: one table `graphrefly_storage(k TEXT PRIMARY KEY, v BLOB NOT NULL)`,
 * the schema of the TS reference, so either implementation can open the other's file. It keeps the
 * rowid table rather than WITHOUT ROWID: values include whole graph snapshots, and SQLite advises
 * WITHOUT ROWID only for small rows. WAL journal in normal locking mode, so read-only handles in other processes
 * read while the writer writes; the single writer is enforced by the store lock beside the file (lock.ts).
 * A batch is one transaction.
 */
import { existsSync, mkdirSync, statSync, statfsSync } from "node:fs";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import Database from "better-sqlite3";
import { refuseUnknownKeys } from "../base/options.js";
import { isRecord } from "../base/records.js";
import { StorageError, asStorageError } from "../errors.js";
import { assertBytes, assertKeyArray, assertPrefixLength, assertValidBatch, assertValidKey, compareKeys, prefixUpperBound } from "./keys.js";
import { LOCK_WRITE_WAIT_MS, acquireStoreLock, assertSingleName, lockTenure, sqliteLockPath, type StoreLock } from "./lock.js";
import { setWriterTenure } from "./tenure.js";
import { SQLITE_BUSY_TIMEOUT_MS, errorCode, isSqliteBusy, sqliteError, sqliteWriteError } from "./sqlite-errors.js";
import { inNative } from "./native-gate.js";
import { inWriterTurn, writerSlot } from "./sqlite-turns.js";
import { STORE_TABLE, checkStoreSchema } from "./sqlite-schema.js";
import { assertSqliteSideFiles, assertSqliteSideFilesAt } from "./sqlite-side-files.js";
import { readOnlyError } from "./read-only.js";
import { claimsOnly, expectedList, holdsAll } from "./conditional.js";
import { markOnDiskStore } from "./on-disk.js";
import { dirIdText, StorePlace, type MovedFile } from "./store-place.js";
import { assertReopenable, setLockDir } from "./reopen.js";
import { assertOneMeaning, realFilePath, storeRealPath } from "./real-path.js";
import type { BackendSupports, BatchOp, ExpectedValue, SyncStorageBackend } from "./types.js";

export type SqliteSynchronous = "OFF" | "NORMAL" | "FULL" | "EXTRA";

export interface SqliteBackendOptions {
  /**
   * `PRAGMA synchronous` (default "FULL": a returned write survives power loss). "NORMAL" in WAL mode
   * keeps the file consistent but may lose the last commits on power loss (not on a process crash).
   */
  readonly synchronous?: SqliteSynchronous;
  /**
   * Hold the store's single-writer lock for the backend's life (default true). Other handles of this process share
   * it; another process is refused with "store-locked" naming the holder.
   */
  readonly lock?: boolean;
  /**
   * Open an existing store for reading only, without the lock: works while another process writes, sees each
   * statement at one point in time, refuses writes with StorageError("read-only"), and leaves no file behind.
   */
  readonly readOnly?: boolean;
}

/** SqliteBackendOptions' keys: any other is refused (docs/design.md §3.3). */
const SQLITE_BACKEND_OPTIONS = ["synchronous", "lock", "readOnly"] as const;

/** A SQLite backend (synchronous, every optional method present). */
export interface SqliteBackend extends SyncStorageBackend {
  readonly path: string;
  /** The underlying connection, for tools and benchmarks. */
  readonly db: Database.Database;
  readonly readOnly: boolean;
  changeCounter(): number;
  /**
   * Read-only handles: runs `fn` with every read of this handle made meanwhile (its own and any other caller's)
   * inside one read transaction, so they all see the store as it was when the call began, whatever another
   * process commits meanwhile (a restore over tiers on this handle never starts over). Calls nest. A transaction
   * already open on `db` is joined (its point in time taken now if it has not read yet) and left open: its opener
   * ends it. Otherwise, on a store not in WAL mode the reads run as usual (a read transaction there would hold the
   * writer off). A writer's handle refuses it: StorageError("invalid-argument").
   */
  readConsistent<T>(fn: () => Promise<T>): Promise<T>;
  /** Rows another program wrote with the wrong types (a key not TEXT, a value not BLOB), as the errors reading them throws. */
  corruptRows(): StorageError[];
}

const SYNCHRONOUS_MODES: readonly SqliteSynchronous[] = ["OFF", "NORMAL", "FULL", "EXTRA"];
/**
 * How long a statement waits for another connection's lock (handles of this process share the store, each with its
 * own connection; another program may hold a transaction on the file). Short on purpose: better-sqlite3 waits
 * synchronously, so a long wait froze the caller's thread (5 s per attempt: an inline main thread's event loop, or an
 * engine worker the watchdog then took for hung). Past it the statement fails store-busy and the tier's retry waits,
 * asynchronously (design §3.12).
 */
const BUSY_TIMEOUT_MS = SQLITE_BUSY_TIMEOUT_MS;
const TABLE = STORE_TABLE;
/**
 * Page size of a store this backend creates (SQLite's default is 4096). A batch of WAL frames (~500 bytes each)
 * commits ~0.5 µs of CPU per frame cheaper with 8 KiB pages (half the pages to write to the WAL, checksum and
 * checkpoint; 16 KiB gained no more), and a one-put commit costs the same (its fsync dominates). Docs §3.12.
 */
export const NEW_STORE_PAGE_SIZE = 8192;
/** SQLite's default wal_autocheckpoint (frames), which a writer keeps unless the engine's checkpointer sets another. */
const SQLITE_AUTOCHECKPOINT = 1000;
/**
 * The share of the disk's free space (with the WAL's own file, which a checkpoint gives back) the WAL may take before
 * the writer checkpoints: the rest is for the database file, which a checkpoint grows, and for everything else on the
 * disk (design §3.60).
 */
const WAL_SHARE_OF_FREE = 4;
/** The fewest frames a WAL capped by a small disk checkpoints at (each checkpoint costs a database fsync). */
const MIN_WAL_FRAMES = 16;
/** A WAL frame's header, beside its page. */
const WAL_FRAME_HEADER = 24;

/**
 * Consecutive puts of a batch are inserted this many rows per statement: one multi-row INSERT costs less than as
 * many single-row runs (fewer native calls, statement resets and result objects); ~25 % off a WAL frame's insert.
 */
const PUT_ROWS = 32;
/**
 * readMany scans the keys' range once when it is dense: it stops after this many rows beyond twice the keys asked
 * for, and reads what it did not reach one key at a time (a range holding other keys in between costs no more).
 */
const SCAN_SLACK = 64;
/** Below this many keys, readMany reads each (a range scan's setup would not pay). */
const SCAN_MIN_KEYS = 4;

/** A row another program wrote with the wrong type: SQLite's dynamic typing lets TEXT or INTEGER into the BLOB column. */
function corruptRow(path: string, key: unknown, found: string): StorageError {
  const shown = typeof key === "string" ? key : Buffer.isBuffer(key) ? `0x${key.toString("hex")}` : String(key);
  return new StorageError(
    "corrupt-store",
    `sqlite store ${path}: row ${JSON.stringify(shown)} holds ${found}, not what graphrefly-storage writes (a TEXT key and a BLOB value)`,
    { path, key: shown, found },
  );
}

/** sqlTypeOf's words for SQLite's typeof() of a value. */
const SQL_TYPES: Readonly<Record<string, string>> = { text: "TEXT", integer: "a number", real: "a number", null: "NULL" };

function sqlTypeOf(v: unknown): string {
  if (Buffer.isBuffer(v)) return "a BLOB";
  if (typeof v === "string") return "TEXT";
  if (typeof v === "number" || typeof v === "bigint") return "a number";
  return v === null ? "NULL" : typeof v;
}

/** Keys as listed, refusing non-TEXT keys (a BLOB key would otherwise surface as a Buffer where a string is due). */
function checkedKeys(path: string, keys: unknown[]): string[] {
  for (const k of keys) if (typeof k !== "string") throw corruptRow(path, k, `a key of type ${sqlTypeOf(k)}`);
  return keys as string[];
}

/** Checks each key; the lowest and highest of them (undefined for none). */
function keyRange(keys: readonly string[]): [string, string] | undefined {
  if (keys.length === 0) return undefined;
  let low = keys[0]!;
  let high = low;
  for (const key of keys) {
    assertValidKey(key);
    if (compareKeys(key, low) < 0) low = key;
    else if (compareKeys(key, high) > 0) high = key;
  }
  return [low, high];
}

class SqliteStore implements SqliteBackend {
  readonly name: string;
  readonly supports: BackendSupports;
  private readonly getStmt: Database.Statement<[string], Buffer | undefined>;
  private readonly getPrefixStmt: Database.Statement<[number, string], unknown>;
  private readonly putStmt: Database.Statement<[string, Uint8Array]>;
  /** A new key's put that fails on a stored one (writeBatchIf claiming new keys: no read first). */
  private readonly insertStmt: Database.Statement<[string, Uint8Array]>;
  private readonly runClaims: Database.Transaction<(ops: readonly BatchOp[]) => void>;
  private readonly putRowsStmt: Database.Statement<[Array<string | Uint8Array>]>;
  /** The parameters of one `putRowsStmt` run, reused (and cleared after each batch so no value outlives it). */
  private readonly putRowsArgs: Array<string | Uint8Array | undefined> = new Array<undefined>(2 * PUT_ROWS);
  private readonly deleteStmt: Database.Statement<[string]>;
  private readonly deleteRowsStmt: Database.Statement<[Array<string | undefined>]>;
  private readonly deleteRowsArgs: Array<string | undefined> = new Array<undefined>(PUT_ROWS);
  private readonly rangeRowsStmt: Database.Statement<[string, string], [unknown, unknown]>;
  /** [k, length(v)], or [k, the SQL type] for a value that is not a BLOB. */
  private readonly rangeSizesStmt: Database.Statement<[string, string, number], [unknown, unknown]>;
  private readonly getSizeStmt: Database.Statement<[string], unknown>;
  private readonly listAllStmt: Database.Statement<[], string>;
  private readonly listRangeStmt: Database.Statement<[string, string], string>;
  private readonly listFromStmt: Database.Statement<[string], string>;
  private readonly dataVersionStmt: Database.Statement<[], number>;
  private readonly applyBatch: (ops: readonly BatchOp[]) => void;
  private closed = false;
  /** The store file found moved by the last check (store-place.ts), until a check finds it back in place. */
  private placeFault: MovedFile | undefined;
  /**
   * Why this handle writes no more: its store lock file was found positively gone or replaced (StorePlace.lockGone:
   * another process may hold the store now), for good, unlike a database file (or the store's directory) moved aside,
   * which may come back (StorageBackend.finalError).
   */
  private lost: StorageError | undefined;
  /** changeCounter(): what it last returned, the data_version and own-commit count it last saw, own commits so far. */
  private changes = 0;
  private seenDataVersion: number | undefined;
  private seenCommits = 0;
  private commits = 0;
  /** readConsistent calls running; the read transaction opens with the first and ends with the last. */
  private consistentDepth = 0;
  /**
   * The outermost readConsistent began the read transaction it runs in: only then does its end commit it. One found
   * open (the CLI's read commands begin theirs at the open, a tool may on `db`) is its opener's to end: committed here,
   * every read after the call was at a later time than those before it (task 386).
   */
  private ownsReadTransaction = false;
  /**
   * A read-only handle's store file's real path as opened (SQLite names the side files after it), whose side files
   * are looked at before each read transaction (ensureOpen) until its connection is in WAL mode; undefined then, for a
   * writer (its store is in WAL mode, whose connections never roll a -journal back) or an in-memory database.
   */
  sideBase: string | undefined;
  /**
   * Closes another connection that checkpoints this store (the engine's checkpointer, design §3.50), synchronously:
   * called before this handle's own checkpoints of a moved file and its close, so SQLite's last close is this one's.
   */
  sideRelease: (() => void) | undefined;
  /**
   * Called after each commit: the checkpointer's look (shared memory only) whether it still serves this store, which
   * sets this handle's own autocheckpoint bound for the next commit.
   */
  sideWatch: (() => void) | undefined;
  /**
   * A write failed on a full disk (SQLITE_FULL): every write first checkpoints the WAL away (TRUNCATE) until one such
   * checkpoint completes, so space that comes back goes to the database file the checkpoint needs, not to the WAL again
   * (design §3.60).
   */
  private diskFull = false;
  /** The frames the disk's free space affords the WAL (fitWalToDisk); Infinity when not measured. */
  private walCap = Infinity;
  /** The autocheckpoint asked for (SQLite's 1000, or the engine checkpointer's bound), applied up to walCap. */
  private wantedAutocheckpoint = SQLITE_AUTOCHECKPOINT;
  /** The autocheckpoint this connection has now. */
  private appliedAutocheckpoint = SQLITE_AUTOCHECKPOINT;

  constructor(
    readonly path: string,
    readonly db: Database.Database,
    durable: boolean,
    readonly readOnly: boolean,
    private lock: StoreLock | undefined,
    /** The store's writer-turn slot (sqlite-turns.ts); undefined for a reader or an in-memory database. */
    private readonly turn: number | undefined,
    /** The files a writer opened, checked after each commit (store-place.ts); undefined: nothing to check. */
    private readonly place: StorePlace | undefined = undefined,
  ) {
    this.name = "sqlite:" + path;
    markOnDiskStore(this);
    const inMemory = path === ":memory:" || path === "";
    this.supports = Object.freeze({
      list: true,
      delete: true,
      atomicBatch: true,
      conditionalBatch: true,
      conditionalKeys: true,
      persistent: !inMemory,
      durable: durable && !inMemory,
      sync: true,
      readPrefix: true,
      sizes: true,
    });
    // Prepared once: preparing per call would dominate small writes.
    this.getStmt = db.prepare<[string], Buffer | undefined>(`SELECT v FROM ${TABLE} WHERE k = ?`).pluck();
    // substr on a BLOB counts bytes. SQLite still walks the value's overflow pages, but the JS side copies maxBytes.
    this.getPrefixStmt = db.prepare<[number, string], unknown>(`SELECT substr(v, 1, ?) FROM ${TABLE} WHERE k = ?`).pluck();
    this.putStmt = db.prepare<[string, Uint8Array]>(`INSERT OR REPLACE INTO ${TABLE} (k, v) VALUES (?, ?)`);
    this.insertStmt = db.prepare<[string, Uint8Array]>(`INSERT INTO ${TABLE} (k, v) VALUES (?, ?)`);
    this.runClaims = db.transaction((ops: readonly BatchOp[]) => {
      for (const op of ops) if (op.op === "put") this.insertStmt.run(op.key, op.value);
    });
    this.deleteStmt = db.prepare<[string]>(`DELETE FROM ${TABLE} WHERE k = ?`);
    this.deleteRowsStmt = db.prepare<[Array<string | undefined>]>(`DELETE FROM ${TABLE} WHERE k IN (${new Array<string>(PUT_ROWS).fill("?").join(", ")})`);
    this.rangeRowsStmt = db.prepare<[string, string], [unknown, unknown]>(`SELECT k, v FROM ${TABLE} WHERE k >= ? AND k <= ? ORDER BY k`).raw();
    const size = "CASE typeof(v) WHEN 'blob' THEN length(v) ELSE typeof(v) END";
    this.rangeSizesStmt = db
      .prepare<[string, string, number], [unknown, unknown]>(`SELECT k, ${size} FROM ${TABLE} WHERE k >= ? AND k <= ? ORDER BY k LIMIT ?`)
      .raw();
    this.getSizeStmt = db.prepare<[string], unknown>(`SELECT ${size} FROM ${TABLE} WHERE k = ?`).pluck();
    // Range scans on the primary key: literal prefixes (no LIKE wildcards, case-sensitive), BINARY order.
    this.listAllStmt = db.prepare<[], string>(`SELECT k FROM ${TABLE} ORDER BY k`).pluck();
    this.listRangeStmt = db.prepare<[string, string], string>(`SELECT k FROM ${TABLE} WHERE k >= ? AND k < ? ORDER BY k`).pluck();
    this.listFromStmt = db.prepare<[string], string>(`SELECT k FROM ${TABLE} WHERE k >= ? ORDER BY k`).pluck();
    this.dataVersionStmt = db.prepare<[], number>("PRAGMA data_version").pluck();
    this.putRowsStmt = db.prepare<[Array<string | Uint8Array>]>(
      `INSERT OR REPLACE INTO ${TABLE} (k, v) VALUES ${new Array<string>(PUT_ROWS).fill("(?, ?)").join(", ")}`,
    );
    const runBatch = db.transaction((ops: readonly BatchOp[]) => this.runOps(ops));
    this.applyBatch = (ops) => {
      try {
        this.committing(() => runBatch(ops));
      } finally {
        this.putRowsArgs.fill(undefined);
        this.deleteRowsArgs.fill(undefined);
      }
    };
  }

  /**
   * A batch's ops in order; runs of PUT_ROWS puts go as one statement (rows of one INSERT apply in order), and so do
   * runs of deletes (deletes of one run commute).
   */
  private runOps(ops: readonly BatchOp[]): void {
    const args = this.putRowsArgs;
    const n = ops.length;
    let i = 0;
    while (i < n) {
      const op = ops[i]!;
      if (op.op !== "put") {
        i += this.deleteRun(ops, i);
        continue;
      }
      let rows = 0;
      while (rows < PUT_ROWS && i + rows < n) {
        const put = ops[i + rows]!;
        if (put.op !== "put") break;
        args[2 * rows] = put.key;
        args[2 * rows + 1] = put.value;
        rows++;
      }
      if (rows === PUT_ROWS) this.putRowsStmt.run(args as Array<string | Uint8Array>);
      else for (let r = 0; r < rows; r++) this.putStmt.run(args[2 * r] as string, args[2 * r + 1] as Uint8Array);
      i += rows;
    }
  }

  /** Deletes the run of deletes starting at `ops[from]` (at most PUT_ROWS of them); returns how many. */
  private deleteRun(ops: readonly BatchOp[], from: number): number {
    const keys = this.deleteRowsArgs;
    let rows = 0;
    while (rows < PUT_ROWS && from + rows < ops.length && ops[from + rows]!.op === "delete") {
      keys[rows] = ops[from + rows]!.key;
      rows++;
    }
    if (rows === PUT_ROWS) this.deleteRowsStmt.run(keys);
    else for (let r = 0; r < rows; r++) this.deleteStmt.run(keys[r]!);
    return rows;
  }

  corruptRows(): StorageError[] {
    this.ensureOpen();
    const rows = inNative(
      () => this.db.prepare(`SELECT k, v FROM ${TABLE} WHERE typeof(k) <> 'text' OR typeof(v) <> 'blob'`).all() as Array<{ k: unknown; v: unknown }>,
    );
    return rows.map(({ k, v }) =>
      corruptRow(this.path, k, typeof k !== "string" ? `a key of type ${sqlTypeOf(k)}` : `a value of type ${sqlTypeOf(v)}`),
    );
  }

  read(key: string): Uint8Array | undefined {
    this.ensureOpen();
    assertValidKey(key);
    let v: unknown;
    try {
      v = inNative(() => this.getStmt.get(key));
    } catch (err) {
      throw sqliteError(err, `sqlite read failed (${this.path})`, this.path);
    }
    if (v === undefined) return undefined;
    if (!Buffer.isBuffer(v)) throw corruptRow(this.path, key, `a value of type ${sqlTypeOf(v)}`);
    return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  }

  readPrefix(key: string, maxBytes: number): Uint8Array | undefined {
    this.ensureOpen();
    assertValidKey(key);
    assertPrefixLength(maxBytes);
    let v: unknown;
    try {
      v = inNative(() => this.getPrefixStmt.get(maxBytes, key));
    } catch (err) {
      throw sqliteError(err, `sqlite read failed (${this.path})`, this.path);
    }
    if (v === undefined) return undefined;
    // substr of an empty BLOB is NULL (and the column is NOT NULL): the value is stored, 0 bytes long.
    if (v === null) return new Uint8Array(0);
    if (!Buffer.isBuffer(v)) throw corruptRow(this.path, key, `a value of type ${sqlTypeOf(v)}`);
    return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  }

  readMany(keys: readonly string[]): Array<Uint8Array | undefined> {
    this.ensureOpen();
    assertKeyArray(keys);
    const range = keyRange(keys);
    if (range === undefined) return [];
    if (keys.length < SCAN_MIN_KEYS) return keys.map((key) => this.read(key));
    const { found, complete } = this.scan(keys, range, this.rangeRowsStmt);
    const given = new Set<string>();
    return keys.map((key) => {
      if (!found.has(key)) return complete ? undefined : this.read(key);
      const v = found.get(key);
      if (!Buffer.isBuffer(v)) throw corruptRow(this.path, key, `a value of type ${sqlTypeOf(v)}`);
      // A repeated key gets bytes of its own, as a second read would.
      if (given.has(key)) return new Uint8Array(v);
      given.add(key);
      return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    });
  }

  /** length(v) of a BLOB reads the row's header, not the value (SQLite skips its overflow pages). */
  sizes(keys: readonly string[]): Array<number | undefined> {
    this.ensureOpen();
    assertKeyArray(keys);
    const range = keyRange(keys);
    if (range === undefined) return [];
    const scanned = keys.length < SCAN_MIN_KEYS ? undefined : this.scanSizes(keys, range);
    return keys.map((key) => {
      let size: unknown;
      if (scanned !== undefined && (scanned.complete || scanned.found.has(key))) size = scanned.found.get(key);
      else {
        try {
          size = inNative(() => this.getSizeStmt.get(key));
        } catch (err) {
          throw sqliteError(err, `sqlite read failed (${this.path})`, this.path);
        }
      }
      if (size === undefined) return undefined;
      // Not a BLOB (another program's row): refused as read refuses it.
      if (typeof size !== "number") throw corruptRow(this.path, key, `a value of type ${SQL_TYPES[size as string] ?? String(size)}`);
      return size;
    });
  }

  /**
   * `scan` for sizes: numbers, so the rows come in one call (`all`, ~0.5 µs a row less than stepping through them),
   * at most as many as the scan would step through.
   */
  private scanSizes(keys: readonly string[], [low, high]: readonly [string, string]): { found: Map<string, unknown>; complete: boolean } {
    const wanted = new Set(keys);
    const limit = 2 * wanted.size + SCAN_SLACK;
    let rows: Array<[unknown, unknown]>;
    try {
      rows = inNative(() => this.rangeSizesStmt.all(low, high, limit));
    } catch (err) {
      throw sqliteError(err, `sqlite read failed (${this.path})`, this.path);
    }
    const found = new Map<string, unknown>();
    for (const [k, size] of rows) if (typeof k === "string" && wanted.has(k)) found.set(k, size);
    return { found, complete: rows.length < limit || found.size === wanted.size };
  }

  /**
   * The rows of `keys` (validated, spanning `range`) by one scan of their range, `stmt` giving each key's [k, what]:
   * the scan stops after 2 × the keys + SCAN_SLACK rows (`complete` false: the keys not reached are read alone).
   */
  private scan(
    keys: readonly string[],
    [low, high]: readonly [string, string],
    stmt: Database.Statement<[string, string], [unknown, unknown]>,
  ): { found: Map<string, unknown>; complete: boolean } {
    const wanted = new Set(keys);
    const found = new Map<string, unknown>();
    let complete = true;
    try {
      let budget = 2 * wanted.size + SCAN_SLACK;
      // One native region for the whole scan: each step is a native call, and the loop between them is short.
      inNative(() => {
        for (const [k, v] of stmt.iterate(low, high)) {
          if (typeof k === "string" && wanted.has(k)) found.set(k, v);
          if (found.size === wanted.size) break;
          if (--budget === 0) {
            complete = false; // sparse: the keys not reached are read one by one
            break;
          }
        }
      });
    } catch (err) {
      throw sqliteError(err, `sqlite read failed (${this.path})`, this.path);
    }
    return { found, complete };
  }

  write(key: string, bytes: Uint8Array): void {
    this.ensureOpen();
    this.ensureWritable();
    assertValidKey(key);
    assertBytes(bytes);
    try {
      this.committing(() => this.putStmt.run(key, bytes));
    } catch (err) {
      throw sqliteWriteError(err, `sqlite write failed (${this.path})`, this.path);
    }
    this.commits++;
    this.confirmPlace();
  }

  delete(key: string): void {
    this.ensureOpen();
    this.ensureWritable();
    assertValidKey(key);
    try {
      this.committing(() => this.deleteStmt.run(key));
    } catch (err) {
      throw sqliteWriteError(err, `sqlite delete failed (${this.path})`, this.path);
    }
    this.commits++;
    this.confirmPlace();
  }

  list(prefix?: string): readonly string[] {
    this.ensureOpen();
    if (prefix !== undefined) assertValidKey(prefix, "prefix");
    try {
      const keys = inNative((): unknown[] => {
        if (prefix === undefined || prefix === "") return this.listAllStmt.all();
        const bound = prefixUpperBound(prefix);
        return bound === undefined ? this.listFromStmt.all(prefix) : this.listRangeStmt.all(prefix, bound);
      });
      return checkedKeys(this.path, keys);
    } catch (err) {
      throw sqliteError(err, `sqlite list failed (${this.path})`, this.path);
    }
  }

  writeBatch(ops: readonly BatchOp[]): void {
    this.ensureOpen();
    this.ensureWritable();
    assertValidBatch(ops);
    if (ops.length === 0) return;
    try {
      this.applyBatch(ops);
    } catch (err) {
      throw sqliteWriteError(err, `sqlite batch failed (${this.path})`, this.path);
    }
    this.commits++;
    this.confirmPlace();
  }

  /**
   * One BEGIN IMMEDIATE transaction: SQLite's write lock is taken before the key is read, so no other connection (a
   * handle in another thread, one opened without the lock) commits between the check and the batch.
   */
  writeBatchIf(expected: ExpectedValue | readonly ExpectedValue[], ops: readonly BatchOp[]): boolean {
    this.ensureOpen();
    this.ensureWritable();
    const list = expectedList(expected);
    assertValidBatch(ops);
    if (claimsOnly(list, ops)) return this.claim(ops);
    const run = this.db.transaction((): boolean => {
      if (!holdsAll(list, (key) => this.read(key))) return false;
      this.runOps(ops);
      return true;
    });
    let applied: boolean;
    try {
      applied = this.committing(() => run.immediate());
    } catch (err) {
      throw err instanceof StorageError ? err : sqliteWriteError(err, `sqlite batch failed (${this.path})`, this.path);
    } finally {
      this.putRowsArgs.fill(undefined);
      this.deleteRowsArgs.fill(undefined);
    }
    if (applied && ops.length > 0) this.commits++;
    // Not applied too: the expected value was read from files that may no longer be the store's.
    this.confirmPlace();
    return applied;
  }

  /**
   * writeBatchIf of puts of new keys only (an append-log's segments): plain INSERTs in one BEGIN IMMEDIATE
   * transaction, rolled back whole when one key is stored already (its primary key refuses it), so no key is read.
   */
  private claim(ops: readonly BatchOp[]): boolean {
    let applied = true;
    try {
      this.committing(() => this.runClaims.immediate(ops));
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code !== "SQLITE_CONSTRAINT_PRIMARYKEY") {
        throw err instanceof StorageError ? err : sqliteWriteError(err, `sqlite batch failed (${this.path})`, this.path);
      }
      applied = false;
    }
    if (applied) this.commits++;
    this.confirmPlace();
    return applied;
  }

  /**
   * `PRAGMA data_version` changes when another connection (another handle, thread or process) committed; this
   * handle's own commits do not move it, so they are counted here.
   */
  changeCounter(): number {
    this.ensureOpen();
    let version: number;
    try {
      version = inNative(() => this.dataVersionStmt.get() as number);
    } catch (err) {
      throw sqliteError(err, `sqlite data_version failed (${this.path})`, this.path);
    }
    if (version !== this.seenDataVersion || this.commits !== this.seenCommits) {
      this.seenDataVersion = version;
      this.seenCommits = this.commits;
      this.changes++;
    }
    return this.changes;
  }

  async readConsistent<T>(fn: () => Promise<T>): Promise<T> {
    this.ensureOpen();
    if (typeof fn !== "function") throw new TypeError("readConsistent needs a function");
    if (!this.readOnly) {
      throw new StorageError("invalid-argument", `${this.name}: readConsistent is for read-only handles (a writer's own writes would join its read)`);
    }
    if (this.consistentDepth === 0) {
      const joined = this.db.inTransaction;
      if (!joined && !this.inWalMode()) return fn();
      try {
        inNative(() => {
          if (!joined) this.db.exec("BEGIN");
          // A deferred transaction takes its snapshot at its first read: take it now, not at fn's first statement
          // (a joined one that has not read yet too).
          this.getStmt.get("");
        });
      } catch (err) {
        if (!joined && this.db.inTransaction) this.endReadTransaction();
        throw sqliteError(err, `sqlite read transaction failed (${this.path})`, this.path);
      }
      this.ownsReadTransaction = !joined;
    }
    this.consistentDepth++;
    try {
      return await fn();
    } finally {
      if (--this.consistentDepth === 0 && this.ownsReadTransaction) {
        this.ownsReadTransaction = false;
        this.endReadTransaction();
      }
    }
  }

  inWalMode(): boolean {
    try {
      return String(inNative(() => this.db.pragma("journal_mode", { simple: true }))).toLowerCase() === "wal";
    } catch (err) {
      throw sqliteError(err, `sqlite journal_mode failed (${this.path})`, this.path);
    }
  }

  private endReadTransaction(): void {
    if (this.closed || !this.db.inTransaction) return; // closing ended it
    try {
      inNative(() => this.db.exec("COMMIT"));
    } catch {
      // Nothing was written: a failed end leaves nothing to lose, and the next statement starts afresh.
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.releaseSide();
    try {
      inNative(() => {
        try {
          this.checkpointIfMoved();
          this.db.close(); // the last connection's close checkpoints the WAL
        } finally {
          // After the connection (the lock must outlive the last write), inside the gate: releasing closes the lock
          // database, a native call a worker's termination must not land in (review s15r2 G1).
          this.lock?.release();
          this.lock = undefined;
        }
      });
    } catch (err) {
      throw sqliteError(err, `sqlite close failed (${this.path})`, this.path);
    }
  }

  private ensureOpen(): void {
    if (this.closed) throw new StorageError("closed", `${this.name} backend is closed`);
    // Inside readConsistent's read transaction, which has read, SQLite opens no side file (a BEGIN of another, which
    // may not have read yet, is looked through).
    if (this.sideBase !== undefined && this.consistentDepth === 0) this.lookAtSideFiles(this.sideBase);
  }

  /**
   * A read-only handle's SQLite looks for a hot journal at each read transaction's start while the store is not in
   * WAL mode (another program switched it, or a store killed before its writer's switch): a -journal naming a
   * super-journal put there since the open would be rolled back, deleting the file it names as this user (review r353
   * F1); it opens a -wal found there (and its -shm), and a FIFO it cannot open read-write it opens read-only, which
   * blocks the read for good (task 366). So all three are looked at before each read (an lstat each: a read of one key
   * ~11 µs → ~30 µs on a live store, whose -wal and -shm are there, review r374) until the connection is in WAL mode:
   * once it has read in WAL mode it keeps its -wal and -shm open and never looks for a -journal, and while it is open
   * no other connection can take the store out of WAL mode (it holds the file's shared lock). The mode is asked after
   * the look (the pragma may read). What stays open: a side file put there between this look and SQLite's own (a
   * window of one read; only a user who can write the store's directory can).
   */
  private lookAtSideFiles(base: string): void {
    assertSqliteSideFilesAt(base, this.path, undefined, undefined, true);
    if (this.inWalMode()) this.sideBase = undefined;
  }

  /** The side checkpointer's connection closed (once): a failure there never fails this handle. */
  private releaseSide(): void {
    const release = this.sideRelease;
    this.sideRelease = undefined;
    this.sideWatch = undefined;
    try {
      release?.();
    } catch {
      // its owner reports it; this handle's checkpoints and close go on
    }
  }

  /**
   * SQLite's closing checkpoint is skipped for a database file renamed or removed while open, so a store renamed
   * aside (no write since) kept its acknowledged commits in the -wal left at the old name, and the renamed file held
   * none of them (not even the table of a new store). Checkpointed here, they are in the renamed file, and the -wal
   * left behind is empty.
   */
  private checkpointIfMoved(): void {
    if (this.place?.moved() !== "database") return;
    try {
      this.inTurn(() => this.db.pragma("wal_checkpoint(TRUNCATE)"));
    } catch {
      // Best effort: the close goes on.
    }
  }

  /**
   * A write transaction (inTurn) on a disk that may be full. SQLite never checkpoints a WAL whose commits fail, and a WAL
   * counted in frames (1000 of 8 KiB pages, 4000 under the engine's checkpointer) may fill a small disk before its first
   * checkpoint: then only a checkpoint frees space, and it needs some for the database file. So a write that fails
   * SQLITE_FULL checkpoints the WAL away and is tried once more (SQLite rolled the failed one back whole), and while a
   * failure's checkpoint could not complete, each write tries it first (design §3.60). No cost otherwise.
   */
  private committing<T>(fn: () => T): T {
    if (this.diskFull) this.checkpointFull();
    try {
      return inNative(() => this.inTurn(fn));
    } catch (err) {
      if (!(errorCode(err)?.startsWith("SQLITE_FULL") ?? false) || this.db.inTransaction || !this.checkpointFull()) throw err;
      return inNative(() => this.inTurn(fn));
    }
  }

  /**
   * Copies the whole WAL into the database file and truncates it to 0 bytes, giving its space back; true when that
   * completed (no reader's snapshot, nor the checkpointer thread's checkpoint past the busy timeout, held it).
   */
  private checkpointFull(): boolean {
    this.diskFull = true;
    let busy: unknown;
    try {
      const rows = inNative(() => this.inTurn(() => this.db.pragma("wal_checkpoint(TRUNCATE)"))) as Array<{ busy?: unknown }>;
      busy = rows[0]?.busy;
    } catch {
      return false; // still no room for the database file's growth: the write's own error is the one to hear
    }
    if (busy !== 0) return false;
    this.diskFull = false;
    this.fitWalToDisk();
    return true;
  }

  /**
   * Caps the WAL to a share of the disk's free space (WAL_SHARE_OF_FREE), measured at the open and after a full disk's
   * checkpoint: on a small disk the autocheckpoint then comes before the WAL fills it, and journal_size_limit brings a
   * WAL that grew past the cap (a reader's snapshot held it) back to it at its restart. A disk with room changes nothing.
   */
  fitWalToDisk(): void {
    let room: number;
    try {
      const file = storeRealPath(this.path);
      const fs = statfsSync(dirname(file));
      let wal = 0;
      try {
        wal = statSync(`${file}-wal`).size;
      } catch {
        // no WAL yet
      }
      const page = Number(inNative(() => this.db.pragma("page_size", { simple: true })));
      room = Math.floor((fs.bavail * fs.bsize + wal) / WAL_SHARE_OF_FREE / (page + WAL_FRAME_HEADER));
      this.walCap = Math.max(MIN_WAL_FRAMES, room);
      this.applyAutocheckpoint(page);
    } catch {
      // Unmeasured: SQLite's own autocheckpoint, and the full disk's checkpoint (committing) if it comes to that.
    }
  }

  /** Sets wal_autocheckpoint as asked (the engine's checkpointer: setSqliteAutocheckpoint), up to the disk's cap. */
  setAutocheckpoint(frames: number): void {
    this.wantedAutocheckpoint = frames;
    this.applyAutocheckpoint();
  }

  private applyAutocheckpoint(page?: number): void {
    const frames = Math.min(this.wantedAutocheckpoint, this.walCap);
    if (frames === this.appliedAutocheckpoint || !this.db.open) return;
    const capped = frames < this.wantedAutocheckpoint;
    const pageSize = page ?? Number(inNative(() => this.db.pragma("page_size", { simple: true })));
    inNative(() => {
      this.db.pragma(`wal_autocheckpoint = ${frames}`);
      this.db.pragma(`journal_size_limit = ${capped ? frames * (pageSize + WAL_FRAME_HEADER) : -1}`);
    });
    this.appliedAutocheckpoint = frames;
  }

  /** A write transaction, in this store's writer turn: other handles of this process wait for it, not SQLite's busy. */
  private inTurn<T>(fn: () => T): T {
    return this.turn === undefined ? fn() : inWriterTurn(this.turn, fn);
  }

  /** The files this writer opened (undefined for a reader or an in-memory database). */
  get writerPlace(): StorePlace | undefined {
    return this.place;
  }

  /** Set once the store lock file was found gone or replaced: every later write throws it (the same object). */
  get finalError(): StorageError | undefined {
    return this.lost;
  }

  private ensureWritable(): void {
    if (this.readOnly) throw readOnlyError(this.name);
    if (this.lost !== undefined) throw this.lost;
    // Once a file was found moved, nothing more is written into the orphaned files until it is back in place.
    if (this.placeFault !== undefined) this.confirmPlace();
  }

  /**
   * Throws StorageError("backend-error", reason "store-moved") when a file of the store is no longer the one this
   * handle writes through (store-place.ts), so no commit into orphaned files is acknowledged. Found first, what was
   * committed is checkpointed into the database file this handle holds: a file renamed aside then holds every commit
   * (SQLite's close skips that checkpoint for a moved file), and the -wal left at the old name is emptied, so it is
   * never read as part of whatever file now has the store's name.
   */
  private confirmPlace(): void {
    this.sideWatch?.();
    if (this.place === undefined) return;
    const file = this.place.moved();
    const first = this.placeFault === undefined;
    this.placeFault = file;
    if (file === undefined) return;
    this.releaseSide(); // a file moved or the lock gone: the checkpointer's connection goes before anything else
    if (first && file !== "lock") {
      try {
        inNative(() => this.inTurn(() => this.db.pragma("wal_checkpoint(TRUNCATE)")));
      } catch {
        // Best effort: the error below is what the caller must hear.
      }
    }
    // For good only when the lock is positively gone or replaced (see `lost`); a directory moved aside may come back.
    // Asked whichever file moved() named first: a directory removed and made again, or another writer's new store at
    // this path, moves the database file too, and moved() names that one (review r287 F1: tiers retried for ever).
    if (this.place.lockGone()) throw (this.lost ??= this.place.error("lock"));
    throw this.place.error(file);
  }
}

/**
 * A writer's database file identity as it opened (store-place.ts), for another connection to check it opens the same
 * file; undefined for a reader, an in-memory database or a file that could not be told.
 */
export function sqliteWriterFileId(backend: SqliteBackend): { readonly dev: number; readonly ino: number } | undefined {
  return backend instanceof SqliteStore ? backend.writerPlace?.databaseId : undefined;
}

/**
 * Sets `release`, called (synchronously, once) before the writer checkpoints a moved file or closes: the engine's
 * checkpointer closes its connection of the store there (design §3.50); and `watch`, called after each commit until
 * then (it must stay cheap and never throw). Returns false for a handle that takes none.
 */
/**
 * Sets a writer's wal_autocheckpoint to `frames` (the engine's checkpointer, design §3.50), or lower while its disk's
 * free space affords the WAL less (design §3.60). Nothing for another backend or a reader.
 */
export function setSqliteAutocheckpoint(backend: SqliteBackend, frames: number): void {
  if (backend instanceof SqliteStore && !backend.readOnly) backend.setAutocheckpoint(frames);
}

export function setSqliteSideRelease(backend: SqliteBackend, release: () => void, watch?: () => void): boolean {
  if (!(backend instanceof SqliteStore) || backend.readOnly || backend.writerPlace === undefined) return false;
  backend.sideRelease = release;
  backend.sideWatch = watch;
  return true;
}

/**
 * Opens (creating if needed) the SQLite store at `path`, or with `readOnly` an existing one for reading. Throws
 * StorageError("store-locked") naming the holder when another process writes the store, StorageError("store-busy")
 * when another connection held SQLite's lock past the short busy timeout (try again), StorageError("backend-error")
 * for other SQLite failures (with the OS cause in `details.osCode` when there is one).
 */
export function sqliteBackend(path: string, opts: SqliteBackendOptions = {}): SqliteBackend {
  return openSqliteBackend(path, opts, false);
}

/**
 * sqliteBackend() for a writer reopening a store it held (the engine's actor replacing a lost one): the database file
 * and its lock must be there (reopen.ts), nothing is created. Internal: not exported by the package.
 */
export function reopenSqliteBackend(path: string, opts: SqliteBackendOptions = {}, lockDir?: string): SqliteBackend {
  return openSqliteBackend(path, opts, true, lockDir);
}

/**
 * sqliteBackend({ readOnly: true }) on a connection SQLite opens read-only, never read-write: a private copy's close
 * must not checkpoint the copy's -wal into it (writes, temp space beyond the copied bytes). Internal (cli/read-copy).
 */
export function readOnlySqliteBackend(path: string): SqliteBackend {
  return openSqliteBackend(path, { readOnly: true }, false, undefined, true);
}

function openSqliteBackend(path: string, opts: SqliteBackendOptions, mustExist: boolean, lockDir?: string, strictlyReadOnly = false): SqliteBackend {
  if (typeof path !== "string") throw new TypeError("path must be a string");
  if (!isRecord(opts as unknown)) throw new TypeError("sqliteBackend options must be an object");
  refuseUnknownKeys(opts, SQLITE_BACKEND_OPTIONS, "sqliteBackend");
  const synchronous = opts.synchronous ?? "FULL";
  if (!SYNCHRONOUS_MODES.includes(synchronous)) {
    throw new RangeError(`opts.synchronous must be one of ${SYNCHRONOUS_MODES.join(", ")}, got ${String(synchronous)}`);
  }
  const readOnly = opts.readOnly ?? false;
  if (typeof readOnly !== "boolean") throw new TypeError("opts.readOnly must be a boolean");
  const lock = opts.lock ?? !readOnly;
  if (typeof lock !== "boolean") throw new TypeError("opts.lock must be a boolean");
  const inMemory = path === "" || path === ":memory:";
  if (readOnly && inMemory) throw new TypeError("a read-only SQLite store needs a file path");
  // `<d>/link/../app.db` is refused: SQLite opens the kernel's file, the engine and the CLI would name the text's.
  if (!inMemory) assertOneMeaning(path, "SQLite store path");

  // The whole open is one native region (connections, schema checks, pragmas, the lock's own SQLite file).
  return inNative(() => {
    let db: Database.Database | undefined;
    let held: StoreLock | undefined;
    let turn: number | undefined;
    try {
      if (!inMemory) assertSingleName(path);
      // Before any connection (the probe's, a reader's, the writer's): a -journal naming a super-journal, or a side
      // file that is a FIFO, is refused, not rolled back or opened (sqlite-side-files.ts; what a race leaves is said there).
      if (!inMemory) assertSqliteSideFiles(path);
      if (readOnly) {
        db = openForReading(path, strictlyReadOnly);
        if (checkStoreSchema(db, path) === "new") throw notCreatedYet(path);
      } else {
        // Like the file backend, a writable store creates its directory (":memory:" and "" are not paths): the one the
        // kernel, and SQLite, open the file in. Not dirname(resolve(path)): resolve() drops `link/..` by text, so for
        // `<dir>/link/../app.db` it made `<dir>` while SQLite opens in the link target's parent.
        // A reopen of a store this writer held creates nothing: its directory, database file and lock must be there.
        const reopen = mustExist && !inMemory;
        if (reopen) assertReopenable({ kind: "sqlite", path, lockPath: lock ? `${storeRealPath(path)}-lock` : undefined, lockDir });
        else if (!inMemory) mkdirSync(dirname(storeRealPath(path)), { recursive: true });
        // Another program's database, or a foreign table of our name, is refused before anything is left beside it.
        if (!inMemory) probeExisting(path);
        // The lock first: nothing of the store is touched before this process owns it.
        if (lock && !inMemory) held = acquireStoreLock(sqliteLockPath(path), path);
        if (!inMemory) turn = writerSlot(realFilePath(path));
        const opened = new Database(path, { timeout: BUSY_TIMEOUT_MS, fileMustExist: reopen });
        db = opened;
        const setUp = (): void => {
          // Again on the connection that writes (the file may have changed since the probe), before the first change.
          const kind = checkStoreSchema(opened, path);
          // Only a new, empty database takes it (before WAL mode fixes the header); an existing store keeps its own.
          opened.pragma(`page_size = ${NEW_STORE_PAGE_SIZE}`);
          opened.pragma("journal_mode = WAL");
          opened.pragma(`synchronous = ${synchronous}`);
          if (kind === "new") opened.exec(`CREATE TABLE IF NOT EXISTS ${TABLE} (k TEXT PRIMARY KEY, v BLOB NOT NULL)`);
        };
        // The setup writes (a new store's table, its switch to WAL): in the writer turn, as every write. Another
        // handle opening the new store at the same moment (two engines of this process) may hold its lock past the
        // turn's and SQLite's bounds (a slow disk, a loaded machine): its setup is waited out, as the store lock's
        // row is, instead of failing this open store-busy (task 196). Each try is bounded; so are the tries.
        const giveUpAt = performance.now() + LOCK_WRITE_WAIT_MS;
        for (;;) {
          try {
            if (turn === undefined) setUp();
            else inWriterTurn(turn, setUp);
            break;
          } catch (err) {
            if (!isSqliteBusy(err) || performance.now() >= giveUpAt) throw err;
          }
        }
      }
      // A writer's files, as opened: checked after each commit (a reader writes nothing; ":memory:" has no files).
      const place = readOnly || inMemory ? undefined : StorePlace.sqlite(path, held?.path);
      const store = new SqliteStore(path, db, !readOnly && (synchronous === "FULL" || synchronous === "EXTRA"), readOnly, held, turn, place);
      if (place !== undefined) store.fitWalToDisk();
      // The open looked before its schema read; its connection's mode, asked once now, decides whether reads look.
      if (readOnly && !store.inWalMode()) store.sideBase = storeRealPath(path);
      if (held !== undefined) {
        setWriterTenure(store, lockTenure(held));
        // Its lock directory's identity travels with the tenure to a reopen after a lost worker (reopen.ts).
        setLockDir(store, place?.lockDir === undefined ? undefined : dirIdText(place.lockDir));
      }
      return store;
    } catch (err) {
      // Named before anything is closed: the diagnosis of its OS cause must see the process as the failure did (out
      // of file descriptors, it would find one free once this store's were released).
      const failure = sqliteError(err, `cannot open sqlite store ${path}`, path);
      try {
        db?.close();
      } catch {
        // The open failure is the error to report.
      }
      held?.release();
      throw failure;
    }
  });
}

/**
 * A read-only open of a path where nothing is: SQLite says only "unable to open database file" (a reader started
 * before its writer created the store). Said plainly with ENOENT; any other cause keeps SQLite's error.
 */
function missingStore(path: string, err: unknown): unknown {
  try {
    statSync(path);
    return err;
  } catch (statErr) {
    if ((statErr as NodeJS.ErrnoException).code !== "ENOENT") return err;
  }
  return new StorageError(
    "backend-error",
    `cannot open sqlite store ${path} read-only: no such file (a read-only handle never creates a store; its writer does)`,
    { path, osCode: "ENOENT" },
    err,
  );
}

/**
 * A read-only open of a database holding nothing: an empty file, or one whose writer has not yet committed its
 * store's table (the moment between its `new Database(path)` and its setup). "Not yet", as the missing file a moment
 * earlier (missingStore): a follower retries it (review r294 F1: it was invalid-argument "not-a-store", which says
 * another program's database, so a retry loop had no reason to wait). A database holding something else is refused
 * by checkStoreSchema, as before.
 */
function notCreatedYet(path: string): StorageError {
  return new StorageError(
    "backend-error",
    `cannot open sqlite store ${path} read-only: the database holds no store yet (an empty file, or its writer has not committed the store's table yet; a read-only handle never creates one): try again`,
    { path, reason: "not-created-yet" },
  );
}

/**
 * Checks an existing, non-empty file on a connection that changes nothing and leaves nothing behind (openForReading),
 * so a refused file keeps its journal mode, gains no table and no lock file.
 */
function probeExisting(path: string): void {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return; // not created yet
  }
  if (size === 0) return;
  const probe = openForReading(path);
  try {
    checkStoreSchema(probe, path);
  } finally {
    probe.close();
  }
}

/**
 * A reading connection that leaves nothing behind: read-write at the file level but `query_only`, so when it is the
 * last connection to close SQLite checkpoints and removes the -wal and -shm files it had to create; a truly read-only
 * connection (the file or its directory is not writable) could not, and is used only then.
 */
function openForReading(path: string, strictlyReadOnly = false): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: strictlyReadOnly, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
  } catch (err) {
    const code = errorCode(err);
    if (code !== "SQLITE_CANTOPEN" && code !== "SQLITE_READONLY" && code !== "SQLITE_PERM") throw err;
    if (!existsSync(path)) throw missingStore(path, err);
    db = new Database(path, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
  }
  db.pragma("query_only = ON");
  return db;
}
