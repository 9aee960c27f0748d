/**
 * PostgreSQL backend on node-postgres (`pg`, pure JavaScript: the native addon cannot load in worker threads).
 *
 * Many stores share one database (a `store` column); each store has one writer at a time across machines, by a
 * lease with a fencing epoch (postgres-lease.ts) checked inside every write transaction. Read-only handles take no
 * lease and run in read-only sessions. Every call of a handle runs in call order on one connection, so a read sees
 * the writes issued before it; the lease is renewed on a second connection, so a long write does not starve it.
 * A write (or batch) is one transaction in one statement; a batch too big for one protocol message is split into
 * several statements inside one transaction. Tables, key encoding and limits: postgres-schema.ts,
 * postgres-codec.ts, docs/postgres.md.
 */
import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import { createHash, randomBytes } from "node:crypto";
import type pg from "pg";
import type { ClientConfig } from "pg";
import { refuseUnknownKeys } from "../base/options.js";
import { isRecord } from "../base/records.js";
import { StorageError } from "../errors.js";
import { assertBytes, assertKeyArray, assertPrefixLength, assertValidBatch, assertValidKey, prefixUpperBound } from "./keys.js";
import {
  MAX_KEY_BYTES,
  MAX_STORE_BYTES,
  MAX_VALUE_BYTES,
  byteaArray,
  decodeKey,
  encodeKey,
  utf8Length,
} from "./postgres-codec.js";
import { AnswerWatch } from "./postgres-answer-watch.js";
import { keepSession, keepSessionColumns, RequestNotSentError, retryWhileDisconnected, SerialConnection } from "./postgres-connection.js";
import { describeTarget, isConnectionFailure, pgError, type ConnectionInput, type Target } from "./postgres-errors.js";
import { Lease, POSTGRES_LEASE_OPTIONS, WAIT_POLL_MS, type PostgresLeaseOptions } from "./postgres-lease.js";
import { endSession, recordSession, SESSION_STARTED_SQL, sessionOf, type ServerSession } from "./postgres-settle.js";
import {
  ensureSchema,
  isMissingRelation,
  statements,
  tableNames,
  type Statements,
  type TableNames,
  type WriteShape,
} from "./postgres-schema.js";
import { parsePostgresUrl, postgresStoreId } from "./postgres-url.js";
import { readOnlyError } from "./read-only.js";
import { expectedList } from "./conditional.js";
import { setWriterTenure } from "./tenure.js";
import type { BackendSupports, BatchOp, ExpectedValue, StorageBackend } from "./types.js";
// Longest time option, refused above (not made Infinity as the engine's are): PostgreSQL's timeout settings are int4
// (the server refused the session) and Node runs a longer timer after 1 ms (a connect timeout expired at once).
import { MAX_TIMER_MS } from "../base/timers.js";

export type { PostgresLeaseOptions } from "./postgres-lease.js";

export interface PostgresBackendOptions {
  /** `postgres://user:password@host:port/database` (node-postgres connection string). Give this or `connection`. */
  readonly url?: string;
  /** node-postgres client settings (host, port, user, password, database, ssl...). Give this or `url`. */
  readonly connection?: ClientConfig;
  /** The store's name inside the database: any non-empty string (a bound parameter, never SQL). */
  readonly store: string;
  /** Schema of the tables (default "public"; created if missing). A plain identifier. */
  readonly schema?: string;
  /** Base name of the tables (default "graphrefly_storage"; also `<table>_lease`, `<table>_version`). */
  readonly table?: string;
  /** Read without the lease, in read-only sessions: writes are refused, also by the server. */
  readonly readOnly?: boolean;
  readonly lease?: PostgresLeaseOptions;
  /** Server-side limit per statement, lock waits included (PostgreSQL `statement_timeout`; default: the server's). */
  readonly statementTimeoutMs?: number;
  /** Limit for opening a connection (default 10 000 ms). */
  readonly connectTimeoutMs?: number;
  /** Largest value accepted (default and maximum: what PostgreSQL can take, just under 1 GiB). */
  readonly maxValueBytes?: number;
  /** Batches above this many bytes go as several statements in one transaction (default 64 MiB). */
  readonly maxStatementBytes?: number;
}

export interface PostgresLeaseInfo {
  readonly holder: string;
  /** Increases with every takeover of the store. */
  readonly epoch: number;
}

export interface PostgresBackend extends StorageBackend {
  readonly store: string;
  readonly readOnly: boolean;
  /**
   * The store's identity, `postgres:user@host:port/database/schema.table/store` (no password): an engine store spec
   * of the same store has the same, so graph attach sees inline and engine tiers of it as one store.
   */
  readonly storeId: string;
  /** This writer's lease; undefined for a read-only handle. */
  readonly lease: PostgresLeaseInfo | undefined;
  read(key: string): Promise<Uint8Array | undefined>;
  readMany(keys: readonly string[]): Promise<Array<Uint8Array | undefined>>;
  readPrefix(key: string, maxBytes: number): Promise<Uint8Array | undefined>;
  sizes(keys: readonly string[]): Promise<Array<number | undefined>>;
  write(key: string, bytes: Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
  list(prefix?: string): Promise<readonly string[]>;
  writeBatch(ops: readonly BatchOp[]): Promise<void>;
  writeBatchIf(expected: ExpectedValue | readonly ExpectedValue[], ops: readonly BatchOp[]): Promise<boolean>;
  /**
   * The store's write count (every write transaction of any writer bumps it, committed with its data): one indexed
   * row read, so a follower's idle poll costs that instead of a listing. 0 before the first write.
   */
  changeCounter(): Promise<number>;
  /**
   * Read-only handles: runs `fn` with every call of this handle made meanwhile (its own and any other caller's)
   * inside one REPEATABLE READ transaction, so several reads see one point in time of the store (taken before `fn`
   * starts: nothing `fn` writes through another handle is seen): a restore
   * (`restoreSnapshot` over tiers on this handle) never sees a compaction commit between its baseline and its
   * frames, and needs no retry however often the writer compacts. Calls nest (one transaction). A statement that
   * fails meanwhile (a lost connection, a server timeout) ends the transaction: every later call until the outermost
   * `fn` returns fails with StorageError("backend-error", details.reason "point-in-time-lost", the failure as its
   * cause) rather than read another state. A writer's handle refuses it (its writes would wait for the end):
   * StorageError("invalid-argument").
   */
  readConsistent<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** PostgresBackendOptions' keys: any other is refused (docs/design.md §3.3). */
const POSTGRES_BACKEND_OPTIONS = [
  "url",
  "connection",
  "store",
  "schema",
  "table",
  "readOnly",
  "lease",
  "statementTimeoutMs",
  "connectTimeoutMs",
  "maxValueBytes",
  "maxStatementBytes",
];

const DEFAULT_LEASE_MS = 10_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_STATEMENT_BYTES = 64 * 1024 * 1024;
/** Per-key overhead counted toward a statement's size (array element headers, key bytes). */
const ROW_OVERHEAD = 16;
/**
 * Values above this are read as slices of this size. node-postgres hands each field over as one JS string, bytea as
 * hex (two characters a byte), and a V8 string holds at most 2^29 - 24 characters: a field of a value above ~256 MiB
 * threw inside the driver's socket handler, uncaught, and ended the reading process. The driver also slows down on
 * big fields: a 64 MB value took 4.0 s as one field, 0.9-1.3 s as 1 MiB slices (12 MB: 570 -> 180 ms).
 */
const READ_SLICE_BYTES = 1024 * 1024;
/**
 * Bytes of values one readMany statement returns: node-postgres holds a statement's whole answer (bytea as hex
 * text, twice the bytes) before any row is used, so 512 frames of 1 MB read as one answer peaked at 2.2× the
 * memory of reading them one by one. The rest follow in statements of this size, in one snapshot.
 */
const READ_MANY_BYTES = 8 * 1024 * 1024;
/** Write statements above this many bytes are sent unnamed, with their Parse (see writeChunk). */
const UNNAMED_ABOVE_BYTES = 64 * 1024;
/** Keys remembered as in doubt per handle; past this many, every key counts as in doubt (see PostgresStore.doubtful). */
const MAX_DOUBTFUL_KEYS = 100_000;

/**
 * The CLI's read command's transaction turns off, for itself (set_config local), the server settings that would end it
 * while its consumer pauses it (a slow pipe, a stopped terminal), as pg_dump does for its session; transaction_timeout
 * where the server has it (17 on).
 */
const UNTIMED_COLUMNS =
  "set_config('idle_in_transaction_session_timeout', '0', true), " +
  "CASE WHEN current_setting('server_version_num')::int >= 170000 THEN set_config('transaction_timeout', '0', true) END";
/** Largest int4: the bound of a whole value's slices (values are under 1 GiB). */
const WHOLE = 0x7fffffff;

const SUPPORTS: BackendSupports = Object.freeze({
  list: true,
  delete: true,
  atomicBatch: true,
  conditionalBatch: true,
  conditionalKeys: true,
  persistent: true,
  durable: true,
  sync: false,
  readPrefix: true,
  sizes: true,
});

function positiveInt(value: unknown, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`${name} must be an integer from 1 to ${max}, got ${String(value)}`);
  }
  return value;
}

function nonNegativeInt(value: unknown, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer from 0 to ${max}, got ${String(value)}`);
  }
  return value;
}

function checkStore(store: unknown): asserts store is string {
  if (typeof store !== "string" || store.length === 0) {
    throw new StorageError("invalid-argument", "store must be a non-empty string", { option: "store" });
  }
  assertValidKey(store, "store");
  if (store.includes("\0") || utf8Length(store) > MAX_STORE_BYTES) {
    throw new StorageError("invalid-argument", `store must have no U+0000 and at most ${MAX_STORE_BYTES} UTF-8 bytes`, {
      option: "store",
    });
  }
}

/** Connection input from the options, exactly one of url and connection. */
function connectionInput(opts: PostgresBackendOptions): ConnectionInput {
  const hasUrl = opts.url !== undefined;
  const hasConfig = opts.connection !== undefined;
  if (hasUrl === hasConfig) throw new TypeError("give exactly one of url and connection");
  if (hasUrl) {
    if (typeof opts.url !== "string") throw new TypeError("url must be a string");
    parsePostgresUrl(opts.url, "url");
    return { url: opts.url };
  }
  if (typeof opts.connection !== "object" || opts.connection === null) throw new TypeError("connection must be an object");
  return { connection: opts.connection };
}

function clientConfig(input: ConnectionInput, extra: ClientConfig, readOnly: boolean): ClientConfig {
  const base: ClientConfig = "url" in input ? { connectionString: input.url } : { ...input.connection };
  const options = readOnly ? `${base.options ? `${base.options} ` : ""}-c default_transaction_read_only=on` : base.options;
  // TCP keepalive: a connection to a host that died while its answer was awaited ends when the probes go unanswered.
  const defaults: ClientConfig = { application_name: "graphrefly-storage", keepAlive: true, keepAliveInitialDelayMillis: 10_000 };
  return { ...defaults, ...base, ...extra, ...(options === undefined ? {} : { options }) };
}

/**
 * Session checks on each new connection. Keys are text compared as UTF-8 bytes: a database in another encoding
 * would convert or refuse them. A resolved write is durable: a session that would run with synchronous_commit off
 * (server, database or role setting) would acknowledge before the commit is flushed, so it is switched on. Server
 * settings that end an idle session (every handle's) or a transaction's session (a writer's) are turned off
 * (keepSessionColumns); a reader keeps the server's transaction_timeout and idle_in_transaction_session_timeout,
 * which bound how long its readConsistent transaction pins old row versions (docs/postgres.md).
 */
export async function prepareSession(client: pg.ClientBase, writable: boolean): Promise<void> {
  // The session's start too, in the same statement: with its pid it names this session alone, for ending it when a
  // write's answer on it is lost (postgres-settle.ts). The timeouts in the same round trip as well.
  const r = await client.query<{ enc: string; sc: string; pid: number; started: string | null }>(
    `SELECT current_setting('server_encoding') AS enc, current_setting('synchronous_commit') AS sc, pg_backend_pid() AS pid,
      (SELECT ${SESSION_STARTED_SQL} FROM pg_stat_activity WHERE pid = pg_backend_pid()) AS started, ${keepSessionColumns(writable)}`,
  );
  const row = r.rows[0];
  if (row?.started != null) recordSession(client, { pid: row.pid, started: row.started });
  if (row?.enc !== "UTF8") {
    throw new StorageError("backend-error", `the database's encoding is ${String(row?.enc)}; graphrefly-storage needs UTF8`, {
      encoding: String(row?.enc),
    });
  }
  if (writable && row.sc === "off") await client.query("SET synchronous_commit = on");
}

/**
 * `backend.readConsistent(fn)` whose transaction the server's idle_in_transaction_session_timeout and
 * transaction_timeout do not end: for the CLI's read commands only (a library reader keeps the administrator's bounds).
 */
export function readConsistentUntimed<T>(backend: PostgresBackend, fn: () => Promise<T>): Promise<T> {
  return backend instanceof PostgresStore ? backend.readConsistent(fn, true) : backend.readConsistent(fn);
}

class PostgresStore implements PostgresBackend {
  readonly supports = SUPPORTS;
  readonly name: string;
  readonly storeId: string;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** False for a read-only handle on a database without our tables: reads find nothing. */
  private tablesExist: boolean;
  /**
   * Keys (stored form) of writes that failed in doubt, not written since. A retry refused because the lease is
   * gone stores nothing itself, but the attempt whose answer was lost may have: its not-owner says so. Past
   * MAX_DOUBTFUL_KEYS keys, `doubtOverflow` makes every key count as in doubt.
   */
  private readonly doubtful = new Set<string>();
  private doubtOverflow = false;
  /**
   * The server session of a write that failed in doubt and could not be seen ended (`settled: false`): its request may
   * still run later. Every later call of the data connection first ends it and waits until it is gone (`settleFirst`),
   * so nothing this handle reads or writes afterwards can be overtaken by it (task 284); `since`: when it was noted
   * (performance.now()). Kept until it is seen ended or a release of the lease row ran (close()).
   */
  private unsettled: { readonly session: ServerSession; readonly since: number } | undefined;
  /** readConsistent calls running; the transaction opens with the first and ends with the last. */
  private consistentDepth = 0;
  /** The data connection is inside readConsistent's transaction (set and cleared in the connection's call order). */
  private inReadTransaction = false;
  /** Settles once readConsistent's transaction took its snapshot (or failed to begin). */
  private snapshotTaken: Promise<void> = Promise.resolve();
  /** What ended readConsistent's transaction early (or kept it from beginning): later calls inside it fail. */
  private pointInTimeLost: { readonly cause: unknown } | undefined;

  constructor(
    readonly store: string,
    readonly readOnly: boolean,
    private readonly target: Target,
    private readonly names: TableNames,
    private readonly sql: Statements,
    private readonly data: SerialConnection,
    /** A writer's lease connection, a reader's answer watch's: the watch asks on it; closed last. */
    private readonly sideConn: SerialConnection,
    private readonly leaseHolder: Lease | undefined,
    /** The watch over statements whose answer never comes (postgres-answer-watch.ts). */
    private readonly answerWatch: AnswerWatch,
    private readonly maxValueBytes: number,
    private readonly maxStatementBytes: number,
    tablesExist: boolean,
    storeId: string,
  ) {
    this.tablesExist = tablesExist;
    this.storeId = storeId;
    const table = names.schema === "public" && names.table === "graphrefly_storage" ? "" : `&table=${names.schema}.${names.table}`;
    this.name = `${target.display}?store=${encodeURIComponent(store)}${table}`;
  }

  /** The lease's not-owner error once it is lost: this handle writes no more (StorageBackend.finalError). */
  get finalError(): StorageError | undefined {
    return this.leaseHolder?.finalError;
  }

  get lease(): PostgresLeaseInfo | undefined {
    return this.leaseHolder && { holder: this.leaseHolder.holder, epoch: this.leaseHolder.epoch };
  }

  checkKey(key: string): void {
    assertValidKey(key);
    const bytes = utf8Length(encodeKey(key));
    if (bytes > MAX_KEY_BYTES) {
      throw new StorageError("invalid-key", `${this.name}: keys are at most ${MAX_KEY_BYTES} UTF-8 bytes, got ${bytes}`, {
        key: key.slice(0, 64),
        bytes,
      });
    }
  }

  /** Refused before anything is sent: the server would drop the connection on an oversized message. */
  private checkValue(key: string, value: Uint8Array): void {
    if (value.byteLength <= this.maxValueBytes) return;
    throw new StorageError(
      "invalid-argument",
      `${this.name}: the value of key ${JSON.stringify(key.slice(0, 64))} is ${value.byteLength} bytes; at most ${this.maxValueBytes} fit in one PostgreSQL field`,
      { key: key.slice(0, 64), bytes: value.byteLength, limit: this.maxValueBytes },
    );
  }

  async read(key: string): Promise<Uint8Array | undefined> {
    this.ensureOpen();
    assertValidKey(key);
    if (!(await this.haveTables())) return undefined;
    const stored = encodeKey(key);
    return this.query("read", async (c) => {
      const r = await c.query<{ v: Buffer | null }>({ name: "grf_read", text: this.sql.read, values: [this.store, stored, READ_SLICE_BYTES] });
      const row = r.rows[0];
      if (row === undefined) return undefined;
      // A copy with its own buffer: the driver's may be a slice of a shared pool, and callers may transfer what they get.
      // (Results stay in text form, bytea as hex: node-postgres 8 decodes binary result fields as UTF-8, losing bytes.)
      return row.v === null ? this.readSlices(c, stored, WHOLE) : new Uint8Array(row.v);
    });
  }

  /** The first `maxBytes` of a value, fetched as slices (one statement); undefined when the key is not stored. */
  private async readSlices(c: pg.Client, stored: string, maxBytes: number): Promise<Uint8Array | undefined> {
    const r = await c.query<{ i: number; v: Buffer }>({
      name: "grf_read_slices",
      text: this.sql.readSlices,
      values: [this.store, stored, READ_SLICE_BYTES, maxBytes],
    });
    if (r.rows.length === 0) return undefined;
    let size = 0;
    for (const row of r.rows) size += row.v.byteLength;
    const out = new Uint8Array(size);
    for (const row of r.rows) out.set(row.v, row.i * READ_SLICE_BYTES);
    return out;
  }

  async readPrefix(key: string, maxBytes: number): Promise<Uint8Array | undefined> {
    this.ensureOpen();
    assertValidKey(key);
    assertPrefixLength(maxBytes);
    if (!(await this.haveTables())) return undefined;
    // The server detoasts (and decompresses) only the slice it needs. Values are under 1 GiB: an int4 bound covers them.
    // A prefix above READ_SLICE_BYTES comes as slices, as read does.
    const text = `SELECT CASE WHEN least(octet_length(v), $3::int4) <= $4 THEN substring(v from 1 for $3::int4) END AS v
      FROM ${this.names.data} WHERE store = $1 AND k = $2`;
    const stored = encodeKey(key);
    const bound = Math.min(maxBytes, WHOLE);
    return this.query("read", async (c) => {
      const r = await c.query<{ v: Buffer | null }>({ name: "grf_read_prefix", text, values: [this.store, stored, bound, READ_SLICE_BYTES] });
      const row = r.rows[0];
      if (row === undefined) return undefined;
      return row.v === null ? this.readSlices(c, stored, bound) : new Uint8Array(row.v);
    });
  }

  /** The distinct stored keys of a multi-key read, checked; undefined when nothing can be found (no keys, no tables). */
  private async storedKeysOf(keys: readonly string[]): Promise<string[] | undefined> {
    this.ensureOpen();
    assertKeyArray(keys);
    for (const key of keys) assertValidKey(key);
    if (keys.length === 0 || !(await this.haveTables())) return undefined;
    return [...new Set(keys.map(encodeKey))];
  }

  async readMany(keys: readonly string[]): Promise<Array<Uint8Array | undefined>> {
    const stored = await this.storedKeysOf(keys);
    if (stored === undefined) return keys.map(() => undefined);
    const found = await this.query("read", async (c) => {
      const params = { name: "grf_read_many", text: this.sql.readMany, values: [this.store, stored, READ_SLICE_BYTES, READ_MANY_BYTES] };
      const r = await c.query<{ k: string; v: Buffer | null }>(params);
      if (r.rows.every((row) => row.v !== null)) return new Map(r.rows.map((row) => [row.k, row.v as Uint8Array]));
      // Values past the first statement's bytes, or too big for one field: all of them again from one snapshot, the
      // rest by statements of READ_MANY_BYTES and the big ones by slices, so the call still sees one point in time
      // of the store (inside readConsistent's transaction, that one).
      const own = !this.inReadTransaction;
      if (own) await c.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      try {
        const again = await c.query<{ k: string; v: Buffer | null; n: number }>(params);
        const values = new Map<string, Uint8Array>();
        let group: string[] = [];
        let groupBytes = 0;
        const readGroup = async (): Promise<void> => {
          if (group.length === 0) return;
          const rest = await c.query<{ k: string; v: Buffer }>({ name: "grf_read_values", text: this.sql.readValues, values: [this.store, group] });
          for (const row of rest.rows) values.set(row.k, row.v);
          group = [];
          groupBytes = 0;
        };
        for (const row of again.rows) {
          if (row.v !== null) values.set(row.k, row.v);
          else if (Number(row.n) > READ_SLICE_BYTES) {
            const v = await this.readSlices(c, row.k, WHOLE);
            if (v !== undefined) values.set(row.k, v);
          } else {
            if (groupBytes + Number(row.n) > READ_MANY_BYTES) await readGroup();
            group.push(row.k);
            groupBytes += Number(row.n);
          }
        }
        await readGroup();
        if (own) await c.query("COMMIT");
        return values;
      } catch (err) {
        if (own) await c.query("ROLLBACK").catch(() => undefined);
        throw err;
      }
    });
    // Copies with buffers of their own, as read gives (a repeated key too).
    return keys.map((key) => {
      const v = found.get(encodeKey(key));
      return v === undefined ? undefined : new Uint8Array(v);
    });
  }

  async sizes(keys: readonly string[]): Promise<Array<number | undefined>> {
    const stored = await this.storedKeysOf(keys);
    if (stored === undefined) return keys.map(() => undefined);
    const found = await this.query("read", async (c) => {
      const r = await c.query<{ k: string; n: number }>({ name: "grf_sizes", text: this.sql.sizes, values: [this.store, stored] });
      return new Map(r.rows.map((row) => [row.k, Number(row.n)]));
    });
    return keys.map((key) => found.get(encodeKey(key)));
  }

  async write(key: string, bytes: Uint8Array): Promise<void> {
    this.ensureOpen();
    this.ensureWritable();
    this.checkKey(key);
    assertBytes(bytes);
    this.checkValue(key, bytes);
    await this.apply(new Map([[encodeKey(key), bytes]]));
  }

  async delete(key: string): Promise<void> {
    this.ensureOpen();
    this.ensureWritable();
    assertValidKey(key);
    await this.apply(new Map([[encodeKey(key), null]]));
  }

  async list(prefix?: string): Promise<readonly string[]> {
    this.ensureOpen();
    if (prefix !== undefined) assertValidKey(prefix, "prefix");
    if (!(await this.haveTables())) return [];
    // A range scan of the primary key: literal prefixes (no LIKE, so %, _ and \ are plain characters).
    const from = prefix === undefined || prefix === "" ? undefined : encodeKey(prefix);
    const below = from === undefined ? undefined : prefixUpperBound(from);
    const r = await this.query("list", (c) =>
      from === undefined
        ? c.query<{ k: string }>({ name: "grf_list_all", text: this.sql.listAll, values: [this.store] })
        : below === undefined
          ? c.query<{ k: string }>({ name: "grf_list_from", text: this.sql.listFrom, values: [this.store, from] })
          : c.query<{ k: string }>({ name: "grf_list_range", text: this.sql.listRange, values: [this.store, from, below] }),
    );
    return r.rows.map((row) => decodeKey(row.k, this.name));
  }

  async writeBatch(ops: readonly BatchOp[]): Promise<void> {
    this.ensureOpen();
    this.ensureWritable();
    const changes = this.batchChanges(ops);
    if (changes.size === 0) {
      this.leaseHolder?.assertOwned();
      return;
    }
    await this.apply(changes);
  }

  /**
   * One transaction: each expected key's row is locked (SELECT … FOR UPDATE, in key order so two such batches never
   * deadlock) and its value compared by SHA-256 (a baseline of megabytes is not sent back), then the batch's fenced
   * statements. Nothing else of this handle runs meanwhile (calls run in order on one connection), and a writer that
   * took the lease over is fenced out.
   */
  async writeBatchIf(expected: ExpectedValue | readonly ExpectedValue[], ops: readonly BatchOp[]): Promise<boolean> {
    this.ensureOpen();
    this.ensureWritable();
    const list = expectedList(expected);
    const changes = this.batchChanges(ops);
    const checks = list
      .map((e) => ({ key: encodeKey(e.key), digest: e.value && createHash("sha256").update(e.value).digest("hex") }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    if (changes.size === 0) {
      this.leaseHolder?.assertOwned();
      return this.query("read", (c) => this.holdsAll(c, checks));
    }
    return this.apply(changes, checks);
  }

  /** A batch's row changes, checked: the last op of each key decides (one set-based statement per chunk). */
  private batchChanges(ops: readonly BatchOp[]): Map<string, Uint8Array | null> {
    assertValidBatch(ops);
    for (const op of ops) {
      if (op.op === "put") {
        this.checkKey(op.key);
        this.checkValue(op.key, op.value);
      }
    }
    const changes = new Map<string, Uint8Array | null>();
    for (const op of ops) changes.set(encodeKey(op.key), op.op === "put" ? op.value : null);
    return changes;
  }

  /** Whether every check holds (each row locked in turn); stops at the first that does not. */
  private async holdsAll(c: pg.Client, checks: readonly Expectation[]): Promise<boolean> {
    for (const check of checks) if (!(await this.holds(c, check))) return false;
    return true;
  }

  /** Whether the row of `check.key` holds the value whose SHA-256 is `check.digest` (undefined: no row); locks the row. */
  private async holds(c: pg.Client, check: Expectation): Promise<boolean> {
    const r = await c.query<{ h: string | null }>({
      name: "grf_expect",
      text: `SELECT encode(sha256(v), 'hex') AS h FROM ${this.names.data} WHERE store = $1 AND k = $2 FOR UPDATE`,
      values: [this.store, check.key],
    });
    const found = r.rows[0];
    return check.digest === undefined ? found === undefined : found?.h === check.digest;
  }

  async changeCounter(): Promise<number> {
    this.ensureOpen();
    if (!(await this.haveTables())) return 0;
    const r = await this.query("change counter", (c) =>
      c.query<{ changes: string }>({ name: "grf_changes", text: this.sql.changes, values: [this.store] }),
    );
    return Number(r.rows[0]?.changes ?? 0);
  }

  /**
   * `untimed`: the transaction is not ended by the server's idle_in_transaction_session_timeout or
   * transaction_timeout (the CLI's read command, whose consumer may pause it: readConsistentUntimed).
   */
  async readConsistent<T>(fn: () => Promise<T>, untimed = false): Promise<T> {
    this.ensureOpen();
    if (typeof fn !== "function") throw new TypeError("readConsistent needs a function");
    if (!this.readOnly) {
      throw new StorageError("invalid-argument", `${this.name}: readConsistent is for read-only handles (a writer's writes would wait for its end)`);
    }
    // No tables yet: nothing to read consistently (and looking for them inside the transaction would abort it).
    if (this.consistentDepth === 0 && !(await this.haveTables())) return fn();
    // Queued before anything fn calls: the connection runs calls in order, so fn's reads all fall inside.
    if (this.consistentDepth++ === 0) {
      this.snapshotTaken = this.data
        .run(async (c) => {
          // REPEATABLE READ takes its snapshot at the first statement, not at BEGIN: one now, so the point in time
          // is the call's start (as SQLite's read transaction), whatever fn does before its first read.
          await c.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT ${untimed ? UNTIMED_COLUMNS : "1"}`);
          this.inReadTransaction = true;
        })
        .catch((err: unknown) => {
          this.pointInTimeLost = { cause: err }; // fn's reads would be each at its own time
        });
    }
    try {
      // fn starts once the snapshot is taken: started at once, a write fn made (on another connection) could commit
      // before the server took it, and fn then read that write (seen in 119 of 200 tries of such a call).
      await this.snapshotTaken;
      return await fn();
    } finally {
      if (--this.consistentDepth === 0) {
        await this.data
          .run(async (c) => {
            this.pointInTimeLost = undefined;
            if (!this.inReadTransaction) return;
            this.inReadTransaction = false;
            await c.query("COMMIT");
          })
          .catch(() => undefined); // read-only: nothing to lose; a broken connection is replaced at the next call
      }
    }
  }

  /**
   * Resolves once nothing of this handle can be stored any more. Rejects (backend-error, `details.unsettled`) when a
   * write of it failed in doubt, its session not seen ended, and neither the release of the lease row (which fences
   * its request) nor the end of that session could be confirmed within the lease time each: that write may still be
   * stored later (review r286 F2). The handle is closed either way.
   */
  close(): Promise<void> {
    this.closed = true;
    this.closing ??= (async () => {
      // After queued work: the last write must land while the lease is still ours.
      await this.data.close();
      this.answerWatch.stop(); // after the last statement: close() waits for it, so a hung one must still end
      const lease = this.leaseHolder;
      let doubt = this.unsettled;
      if (lease !== undefined) {
        // Sent again for up to a lease time when something of this writer's may still take the row back: a write in
        // doubt not seen settled, or a renewal sent before the lease ran out (its release at the loss may have been
        // lost with the network, review r286 F3). Once it ran, the held write's fence finds no row of its own.
        const released = await lease.release(doubt !== undefined || lease.lapsed ? lease.ttlMs : 0);
        if (released || (doubt !== undefined && (await endSession(this.sideConn, doubt.session, lease.ttlMs)))) doubt = undefined;
      }
      await this.sideConn.close();
      if (doubt !== undefined) {
        throw new StorageError(
          "backend-error",
          `${this.name}: closed, but a write of it that failed in doubt may still be stored later: neither the release of its lease row nor the end of that write's server session could be confirmed within the lease time (read the keys back once another writer took the store)`,
          { store: this.store, unsettled: true, inDoubt: true },
        );
      }
    })();
    return this.closing;
  }

  /** Test hook (see simulatePausedHolder). */
  pauseLeaseForTesting(): void {
    this.leaseHolder?.pauseForTesting();
  }

  /** Writes `changes` (with `check`: only while it holds, resolving false when it did not: nothing written). */
  private async apply(changes: Map<string, Uint8Array | null>, checks?: readonly Expectation[]): Promise<boolean> {
    const lease = this.leaseHolder as Lease;
    const chunks = this.chunk(changes);
    const sent = { commit: false };
    // A connection that fails once the committing statement went out leaves the commit unknown: the server may have
    // committed, its answer lost. A server error (a SQLSTATE of its own), or a failure before, stored nothing.
    // (A connection dropped while bytes of the request were still queued here never sent its end: RequestNotSentError.)
    const inDoubt = (err: unknown) =>
      sent.commit && !(err instanceof StorageError) && !(err instanceof RequestNotSentError) && isConnectionFailure(err);
    const write = this.query("write", async (c) => {
      // Checked when the statement is about to go, not when the call was queued.
      lease.assertOwned();
      const sentAt = performance.now();
      // In flight until its extension is done too: a renewal once it committed may take back a row that lapsed under
      // it (not before: its transaction may be the one a contender ends, see Lease.writeCommitted).
      lease.writeSent();
      let committed = false;
      try {
        const ok = await this.writeChunks(c, lease, chunks, sent, checks);
        if (ok === true) {
          committed = true;
          lease.writeCommitted();
          lease.extended(sentAt);
          // The write is committed whatever this meets: a failure here is for the renewals (and the deadline) to settle.
          await lease.afterWrite(c, sentAt).catch(() => undefined);
        }
        return ok;
      } finally {
        lease.writeDone(committed);
      }
    }, inDoubt);
    let owned: boolean | "mismatch";
    try {
      owned = await write;
    } catch (err) {
      if (err instanceof StorageError && err.code === "backend-error" && err.details.inDoubt === true) this.noteDoubt(changes);
      throw this.withDoubt(err, changes);
    }
    if (owned === "mismatch") return false;
    if (!owned) throw this.withDoubt(await lease.fenced(), changes);
    if (this.doubtful.size > 0) for (const k of changes.keys()) this.doubtful.delete(k); // most handles never doubt
    return true;
  }

  private noteDoubt(changes: Map<string, Uint8Array | null>): void {
    for (const k of changes.keys()) {
      if (this.doubtful.size >= MAX_DOUBTFUL_KEYS) {
        this.doubtOverflow = true;
        return;
      }
      this.doubtful.add(k);
    }
  }

  /** A not-owner refusal of keys an earlier attempt may have stored (its answer lost) says so: details.inDoubt. */
  private withDoubt(err: unknown, changes: Map<string, Uint8Array | null>): unknown {
    if (!(err instanceof StorageError) || err.code !== "not-owner") return err;
    let keys = 0;
    for (const k of changes.keys()) if (this.doubtful.has(k)) keys++;
    if (keys === 0 && !this.doubtOverflow) return err;
    const which = keys === 0 ? "some of its keys" : `${keys} of its ${changes.size} keys`;
    return new StorageError(
      "not-owner",
      `${err.message}. But an earlier attempt at ${which} failed with its answer lost: it may have been stored (read it back to know)`,
      { ...err.details, inDoubt: true },
      err,
    );
  }

  /**
   * One statement, or a transaction of one per chunk (after `check`'s row lock, when given); false when the lease was
   * not ours, "mismatch" when `check` did not hold (nothing written either way).
   */
  private async writeChunks(
    c: pg.Client,
    lease: Lease,
    chunks: readonly Chunk[],
    sent: { commit: boolean },
    checks?: readonly Expectation[],
  ): Promise<boolean | "mismatch"> {
    // A connection already ended here (the server ended the session, its error read with the last answer) sends
    // nothing more: the driver refuses the statement unsent, which stored nothing, certainly (task 315).
    if (chunks.length === 1 && checks === undefined) {
      sent.commit = this.data.canSend(c);
      return this.writeChunk(c, lease, chunks[0] as Chunk);
    }
    await c.query("BEGIN");
    try {
      if (checks !== undefined && !(await this.holdsAll(c, checks))) {
        await c.query("ROLLBACK");
        return "mismatch";
      }
      // A statement as long as the lease does not fence the next one: each checks holder and epoch, not the expiry
      // (this transaction holds the lease row since its first, so nobody takes the store over meanwhile).
      for (const chunk of chunks) {
        if (!(await this.writeChunk(c, lease, chunk))) {
          await c.query("ROLLBACK");
          return false;
        }
      }
      sent.commit = this.data.canSend(c);
      await c.query("COMMIT");
      return true;
    } catch (err) {
      await c.query("ROLLBACK").catch(() => undefined);
      throw err;
    }
  }

  private async writeChunk(c: pg.Client, lease: Lease, chunk: Chunk): Promise<boolean> {
    const fence = [this.store, lease.holder, lease.epoch, lease.ttlMs];
    const shape: WriteShape = chunk.deletes.length === 0 ? "puts" : chunk.keys.length === 0 ? "deletes" : "both";
    const puts = [chunk.keys, byteaArray(chunk.values)];
    const values = shape === "puts" ? [...fence, ...puts] : shape === "deletes" ? [...fence, chunk.deletes] : [...fence, chunk.deletes, ...puts];
    // A big statement goes unnamed (a Parse with it): after a Parse the server counts the session active until the
    // statement is whole, so a Bind still arriving on a slow link is not taken for an idle session, neither by the
    // answer watch nor by idle_in_transaction_session_timeout (which ended split batches whose chunk took the lease
    // time to send). A small one arrives at once and keeps its prepared statement (parsing and planning each time
    // cost ~100 µs of a ~200 µs small write, measured).
    const unnamed = chunkBytes(chunk) > UNNAMED_ABOVE_BYTES;
    const r = await c.query<{ owned: boolean }>({ ...(unnamed ? {} : { name: `grf_write_${shape}` }), text: this.sql.write[shape], values });
    return r.rows[0]?.owned === true;
  }

  private chunk(changes: Map<string, Uint8Array | null>): Chunk[] {
    const chunks: Chunk[] = [];
    let current: Chunk = { deletes: [], keys: [], values: [] };
    let size = 0;
    for (const [k, v] of changes) {
      const cost = ROW_OVERHEAD + k.length * 3 + (v?.byteLength ?? 0);
      if (size > 0 && size + cost > this.maxStatementBytes) {
        chunks.push(current);
        current = { deletes: [], keys: [], values: [] };
        size = 0;
      }
      size += cost;
      if (v === null) current.deletes.push(k);
      else {
        current.keys.push(k);
        current.values.push(v);
      }
    }
    chunks.push(current);
    return chunks;
  }

  private async haveTables(): Promise<boolean> {
    if (this.tablesExist) return true;
    // A read-only handle opened before any writer created the tables: look again (cheap, until they exist).
    this.tablesExist = await this.query("open", (c) => ensureSchema(c, this.names, false));
    return this.tablesExist;
  }

  private lostError(what: string): StorageError {
    // The failure as this handle reported it (typed, passwords removed), kept as the cause.
    const cause = pgError(this.pointInTimeLost?.cause, "postgres read transaction ended", this.target, { store: this.store });
    return new StorageError(
      "backend-error",
      `postgres ${what} refused (point-in-time-lost): the read transaction that holds this handle's point in time (readConsistent) ended early, so it would read another state of the store than the reads before it; ${cause.message}`,
      { store: this.store, server: this.target.display, reason: "point-in-time-lost" },
      cause,
    );
  }

  private async query<T>(what: string, fn: (c: pg.Client) => Promise<T>, inDoubt?: (err: unknown) => boolean): Promise<T> {
    let settled: boolean | undefined;
    try {
      return await this.data.run(async (c) => {
        if (this.consistentDepth > 0 && this.pointInTimeLost !== undefined) throw this.lostError(what);
        await this.settleFirst();
        try {
          return await fn(c);
        } catch (err) {
          // In doubt: the server session may still get the rest of the request (held on the network) and run it
          // later, over what is written after this error. Ended first, and seen gone, the outcome is settled before
          // the error is reported; within this call, so the connection's next call (a retry) waits for it. Not seen
          // gone: kept, and the next call tries again before it sends anything (`settleFirst`).
          if (inDoubt?.(err)) {
            settled = await this.endSession(c);
            const session = sessionOf(c);
            if (!settled && session !== undefined) this.unsettled = { session, since: performance.now() };
          }
          // A failed statement ends readConsistent's transaction (a server error aborts it, a lost connection takes
          // it along): later calls inside it fail (lostError), since they would read another state of the store.
          if (this.inReadTransaction) {
            this.inReadTransaction = false;
            this.pointInTimeLost = { cause: err };
            if (!isConnectionFailure(err)) await c.query("ROLLBACK").catch(() => undefined);
          }
          throw err;
        }
      });
    } catch (err) {
      if (this.readOnly && isMissingRelation(err)) this.tablesExist = false;
      if ((err as { code?: unknown } | null)?.code === "25006") throw readOnlyError(this.name);
      if (inDoubt?.(err)) {
        const context =
          settled === true
            ? `postgres ${what} failed after it was sent, its answer lost: it may or may not have been stored; its server session was ended, so that is settled (read it back to know)`
            : `postgres ${what} failed after it was sent, its answer lost: it may or may not have been stored, and its server session could not be seen ended, so it may still be stored later (a read-back now cannot tell)`;
        throw pgError(err, context, this.target, { store: this.store, inDoubt: true, settled: settled === true });
      }
      throw pgError(err, `postgres ${what} failed`, this.target, { store: this.store });
    }
  }

  /**
   * Before a call of the data connection sends anything: an earlier write's session not seen ended (`unsettled`) is
   * ended now and waited for, within the lease time. Until that is seen, the call fails unsent (backend-error, not in
   * doubt): a write acknowledged while that session lives could be overwritten by its late request, and a read could
   * miss it and be overtaken by it (an append-log's read-back, which decides what its retry appends, review task 284).
   * Past the writer's own deadline (`lapsed`) a write of the call throws not-owner before it is sent (assertOwned,
   * in the same turn), so nothing can be acknowledged over the late request: calls go on without waiting (reads
   * included; a read-back then cannot tell yet, docs/postgres.md). The session stays noted (close() needs it: see
   * there), since a renewal may still extend a deadline only passed, and a write after it must wait again.
   *
   * Still not seen ended a lease time after it was noted: the store is given up (Lease.giveUp: final, not-owner). Its
   * renewals need no end of a session, so they kept the lease live while every call failed here, and a contender
   * never got in (review r286 F6); the given-up release renames the row's holder, which also fences the held request.
   */
  private async settleFirst(): Promise<void> {
    const noted = this.unsettled;
    const lease = this.leaseHolder;
    if (noted === undefined || lease === undefined) return;
    if (lease.finalError !== undefined || lease.lapsed) return;
    if (await endSession(this.sideConn, noted.session, lease.ttlMs)) return void (this.unsettled = undefined);
    if (performance.now() - noted.since >= lease.ttlMs) {
      throw lease.giveUp(
        `an earlier write failed in doubt and its server session could not be seen ended for a lease time (${lease.ttlMs} ms): it gave the store up, so that write cannot be stored once its release ran`,
      );
    }
    throw new StorageError(
      "backend-error",
      `${this.name}: an earlier write failed in doubt and its server session could not be seen ended yet (it may still be stored), so nothing of this call was sent; the next call tries again`,
      { store: this.store, unsettled: true },
    );
  }

  /**
   * Ends the server session of `client` (its answer lost) on the lease connection and waits until it is gone, within
   * the lease time; false when that could not be seen (postgres-settle.ts).
   */
  private async endSession(client: pg.ClientBase): Promise<boolean> {
    const session = sessionOf(client);
    if (session === undefined || this.leaseHolder === undefined) return false;
    return endSession(this.sideConn, session, this.leaseHolder.ttlMs);
  }

  private ensureOpen(): void {
    if (this.closed) throw new StorageError("closed", `${this.name} backend is closed`);
  }

  private ensureWritable(): void {
    if (this.readOnly) throw readOnlyError(this.name);
  }
}

interface Chunk {
  readonly deletes: string[];
  readonly keys: string[];
  readonly values: Uint8Array[];
}

/** A conditional batch's expectation: the key (stored form) and its value's SHA-256 in hex (undefined: no row). */
interface Expectation {
  readonly key: string;
  readonly digest: string | undefined;
}

/** About the bytes a chunk's statement sends. */
function chunkBytes(chunk: Chunk): number {
  let bytes = 0;
  for (const v of chunk.values) bytes += v.byteLength;
  return bytes + (chunk.keys.length + chunk.deletes.length) * ROW_OVERHEAD;
}

function defaultHolder(): string {
  return `${hostname()}/${process.pid}/${randomBytes(4).toString("hex")}`;
}

/**
 * Opens store `opts.store` in a PostgreSQL database, creating the tables on first use. A writer takes the store's
 * lease first: StorageError("store-locked") names the live holder (or, with `lease.waitMs`, it waits for the lease
 * to end). Connection failures are StorageError("backend-error") naming the cause (`details.pgCode` or
 * `details.osCode`), never the password.
 */
export function postgresBackend(opts: PostgresBackendOptions): Promise<PostgresBackend> {
  return openPostgres(opts, false);
}

/**
 * A writer's reopen of a store it held (the engine's actor replacing a lost one, as backend/reopen.ts for file and
 * SQLite stores): it creates no table. Tables dropped since the lost writer's hold are the store it had gone; made
 * again there, they would be a store nobody asked for (the tenure check then refused it anyway, tasks 291/296). So the
 * open fails with StorageError("not-owner"), `details.reason` "held-meanwhile" (final, as the tenure check's refusal:
 * what is there now, if anything comes back, is not what this writer's callers wrote), `details.tables` "missing".
 */
export function reopenPostgresBackend(opts: PostgresBackendOptions): Promise<PostgresBackend> {
  return openPostgres(opts, true);
}

async function openPostgres(opts: PostgresBackendOptions, reopen: boolean): Promise<PostgresBackend> {
  if (typeof opts !== "object" || opts === null) throw new TypeError("options must be an object");
  refuseUnknownKeys(opts, POSTGRES_BACKEND_OPTIONS, "postgresBackend");
  const input = connectionInput(opts);
  checkStore(opts.store);
  const names = tableNames(opts.schema, opts.table);
  const readOnly = opts.readOnly ?? false;
  if (typeof readOnly !== "boolean") throw new TypeError("readOnly must be a boolean");
  const leaseOpts = opts.lease ?? {};
  if (!isRecord(leaseOpts)) throw new TypeError("lease must be an object");
  refuseUnknownKeys(leaseOpts, POSTGRES_LEASE_OPTIONS, "postgresBackend's lease", "lease.");
  const ttlMs = positiveInt(leaseOpts.ttlMs, "lease.ttlMs", DEFAULT_LEASE_MS, MAX_TIMER_MS);
  // At most half the lease: the next renewal starts a round trip after the last one answered, so an interval near
  // the lease time let the lease lapse between two renewals of an idle writer (999 of 1000 ms: lost on loopback).
  const renewEveryMs = positiveInt(
    leaseOpts.renewEveryMs,
    "lease.renewEveryMs",
    Math.max(1, Math.floor(ttlMs / 4)),
    Math.max(1, Math.floor(ttlMs / 2)),
  );
  const waitMs = nonNegativeInt(leaseOpts.waitMs, "lease.waitMs", 0);
  const holder = leaseOpts.holder ?? defaultHolder();
  if (typeof holder !== "string" || holder.length === 0) throw new TypeError("lease.holder must be a non-empty string");
  const fastFailover = leaseOpts.fastFailover ?? true;
  if (typeof fastFailover !== "boolean") throw new TypeError("lease.fastFailover must be a boolean");
  const statementTimeoutMs = nonNegativeInt(opts.statementTimeoutMs, "statementTimeoutMs", 0, MAX_TIMER_MS);
  const connectTimeoutMs = positiveInt(opts.connectTimeoutMs, "connectTimeoutMs", DEFAULT_CONNECT_TIMEOUT_MS, MAX_TIMER_MS);
  const maxValueBytes = positiveInt(opts.maxValueBytes, "maxValueBytes", MAX_VALUE_BYTES, MAX_VALUE_BYTES);
  // One statement is one protocol message, which the server takes up to 1 GiB.
  const maxStatementBytes = positiveInt(opts.maxStatementBytes, "maxStatementBytes", DEFAULT_MAX_STATEMENT_BYTES, MAX_VALUE_BYTES);

  const target = describeTarget(input);
  const where = `store ${JSON.stringify(opts.store)} in ${target.display}`;
  const sql = statements(names);
  const data = new SerialConnection(
    clientConfig(
      input,
      {
        connectionTimeoutMillis: connectTimeoutMs,
        ...(statementTimeoutMs > 0 ? { statement_timeout: statementTimeoutMs } : {}),
        // A writer frozen between the statements of a split batch holds the lease row's lock, which would keep every
        // contender out for as long as it stays frozen: the server ends such a transaction once the lease is over.
        // (Frozen in the middle of sending a statement, the session counts as active: a contender ends it, see
        // Lease.acquire.)
        ...(readOnly ? {} : { idle_in_transaction_session_timeout: ttlMs }),
      },
      readOnly,
    ),
    (c) => prepareSession(c, !readOnly),
  );
  // A writer's lease connection, or a reader's for its answer watch's questions, opened at the first one (a reader
  // whose statements all answer within the lease time never opens it). Its query timeout: an answer after the lease
  // time is worthless (a renewal, or a question about a statement).
  let sideConn: SerialConnection | undefined;
  try {
    // A writer waiting for the store (lease.waitMs) outlasts an outage from its first statement on, as its wait for
    // the lease does: a contender started while the database restarts keeps waiting instead of failing.
    const giveUpAt = performance.now() + (readOnly ? 0 : waitMs);
    // Bounded as the opening of a connection is (an answer lost here left the open waiting for ever): no answer watch
    // runs yet, and the check waits for no lock but the version table's and, when creating, another opener's.
    const checkBound = { ms: connectTimeoutMs, what: "the schema check at open" };
    const tablesExist = await retryWhileDisconnected(
      () => data.run((c) => ensureSchema(c, names, !readOnly && !reopen), checkBound),
      giveUpAt,
      WAIT_POLL_MS,
    );
    if (reopen && !readOnly && !tablesExist) {
      throw new StorageError(
        "not-owner",
        `${where}: its tables (${names.data}, ${names.lease}, ${names.version}) are not all there since this engine's actor for it was lost, so the store it held is gone (another writer could have made and held one there since); nothing was created, and its tiers write no more: open them again (and restore) to continue`,
        { store: opts.store, server: target.display, reason: "held-meanwhile", tables: "missing" },
      );
    }
    let lease: Lease | undefined;
    if (!readOnly) {
      // Its own connection, with a client-side query timeout: a renewal stuck on a dead connection must not hold up
      // the next one (an answer after the lease time is worthless anyway). Lock waits end on the server first
      // (lock_timeout below the query timeout): a wait the client gave up on kept running there, one server session
      // per try, while a lapsed holder's transaction held the lease row. Its own statement_timeout, above every lock
      // wait of its (the renewal interval at most): a server, role or URL setting below that cancelled a waiting
      // writer's wait on the holder's liveness lock, or its takeover's wait for the row, and failed its open.
      // Each new session of it first takes the holder's liveness lock again (fast failover: Lease.sessionStarted), and
      // one that drops is made again at once (Lease.connectionDropped).
      sideConn = new SerialConnection(
        clientConfig(
          input,
          { connectionTimeoutMillis: connectTimeoutMs, query_timeout: ttlMs, statement_timeout: ttlMs, lock_timeout: renewEveryMs },
          false,
        ),
        async (c) => lease?.sessionStarted(c),
        () => lease?.connectionDropped(),
      );
      lease = new Lease(sideConn, sql, opts.store, holder, ttlMs, renewEveryMs, where, names.lease, fastFailover);
      await lease.acquire(giveUpAt);
    } else {
      sideConn = new SerialConnection(clientConfig(input, { connectionTimeoutMillis: connectTimeoutMs, query_timeout: ttlMs }, true), (c) =>
        keepSession(c, true),
      );
    }
    // A writer drops a statement the server cannot be asked about once its lease has lapsed (whatever the server did
    // with it is settled there); a reader has no lease: it gives up once a question of its got no answer, and no
    // byte, for half the lease time, so a frozen host fails its statement in ~1.5 lease times (3.2× before).
    const held = lease;
    const askBoundMs = held ? ttlMs : Math.max(1, Math.floor(ttlMs / 2));
    const giveUpUnasked = held ? () => held.lapsed : (unaskedForMs: number) => unaskedForMs >= askBoundMs;
    const watch = new AnswerWatch(data, sideConn, giveUpUnasked, ttlMs, renewEveryMs, askBoundMs);
    const storeId = postgresStoreId(input, names.schema, names.table, opts.store);
    const store = new PostgresStore(opts.store, readOnly, target, names, sql, data, sideConn, lease, watch, maxValueBytes, maxStatementBytes, tablesExist, storeId);
    // Every takeover raises the epoch by one: the hold before this one is the epoch below (tenure.ts). The lease is
    // this handle's alone (a second handle of the store, in this process or another, is refused or fenced out): sole.
    if (lease !== undefined) setWriterTenure(store, { id: String(lease.epoch), after: String(lease.epoch - 1), sole: true });
    return store;
  } catch (err) {
    await data.close().catch(() => undefined);
    await sideConn?.close().catch(() => undefined);
    throw pgError(err, `cannot open store ${JSON.stringify(opts.store)}`, target, { store: opts.store });
  }
}

/**
 * Test hook: freezes `backend`'s lease keeping as if its process were paused right after checking its deadline, so
 * its next write reaches the database however late (and must be fenced there).
 */
export function simulatePausedHolder(backend: PostgresBackend): void {
  if (!(backend instanceof PostgresStore)) throw new TypeError("not a postgresBackend");
  backend.pauseLeaseForTesting();
}
