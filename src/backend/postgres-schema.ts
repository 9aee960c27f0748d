/**
 * The PostgreSQL backend's tables and the SQL that touches them. Layer 1.
 *
 * Three tables per (schema, table) option pair, shared by every store in them (the `store` column):
 * - `<table>`          (store, k, v): one row per key; primary key (store, k) is the range index listings scan.
 * - `<table>_lease`    one row per store: who may write it (holder, epoch) and until when (database clock), and
 *                      `changes`, bumped by every write transaction: followers' cheap "did anything change" probe.
 * - `<table>_version`  one row: the schema version, so a later release can migrate or refuse.
 * Keys and store names are `text COLLATE "C"` (byte order of UTF-8 = code point order, the backend contract) and
 * values `bytea`. Identifiers come from options and are validated, then quoted; everything else is a bound parameter.
 * Tables found under these names are checked against this layout at every open, and another shape is refused
 * (checkTables). docs/postgres.md describes the layout for operators.
 */
import type { ClientBase } from "pg";
import { StorageError } from "../errors.js";

export const SCHEMA_VERSION = 1;
export const DEFAULT_TABLE = "graphrefly_storage";
export const DEFAULT_SCHEMA = "public";

/** PostgreSQL truncates identifiers past 63 bytes; the longest suffix we add is "_version". */
const MAX_TABLE_LENGTH = 63 - "_version".length;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Accepts plain identifiers only (letters, digits, underscore; not starting with a digit), so a name given as an
 * option can never be read as SQL. Throws StorageError("invalid-argument").
 */
export function assertIdentifier(name: unknown, what: string, maxLength = 63): asserts name is string {
  if (typeof name !== "string" || !IDENTIFIER.test(name) || name.length > maxLength) {
    throw new StorageError(
      "invalid-argument",
      `${what} must be a plain SQL identifier (letters, digits and _, not starting with a digit, at most ${maxLength} characters), got ${JSON.stringify(String(name))}`,
      { option: what },
    );
  }
}

/** Quotes an identifier the way PostgreSQL reads it back verbatim (case kept, `"` doubled). */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Fully qualified, quoted names of one table set. */
export interface TableNames {
  readonly schema: string;
  readonly table: string;
  /** `"schema"."table"` etc., ready to splice. */
  readonly data: string;
  readonly lease: string;
  readonly version: string;
}

export function tableNames(schema: string | undefined, table: string | undefined): TableNames {
  const s = schema ?? DEFAULT_SCHEMA;
  const t = table ?? DEFAULT_TABLE;
  assertIdentifier(s, "schema");
  assertIdentifier(t, "table", MAX_TABLE_LENGTH);
  const q = (suffix: string) => `${quoteIdentifier(s)}.${quoteIdentifier(t + suffix)}`;
  return { schema: s, table: t, data: q(""), lease: q("_lease"), version: q("_version") };
}

/** The statements of one table set, built once per backend. Parameters are listed beside each. */
export interface Statements {
  /** $1 store, $2 key, $3 largest v returned → v (null when larger), n (its length) */
  readonly read: string;
  /** $1 store, $2 keys text[], $3 largest v returned → k, v (null when larger), n of those stored */
  readonly readMany: string;
  readonly readValues: string;
  /** $1 store, $2 keys text[] → k, n (the value's length) of those stored */
  readonly sizes: string;
  /** $1 store, $2 key, $3 slice bytes, $4 bytes wanted (int4) → i, v: the value's first bytes as slice i of each */
  readonly readSlices: string;
  /** $1 store → k (all keys, ascending) */
  readonly listAll: string;
  /** $1 store, $2 from → k >= from */
  readonly listFrom: string;
  /** $1 store, $2 from, $3 below → from <= k < below */
  readonly listRange: string;
  /**
   * One write transaction in one statement, by what it changes. $1 store, $2 holder, $3 epoch, $4 lease ms, then
   * puts: $5 keys text[], $6 values bytea[]; deletes: $5 keys text[]; both: $5 deleted keys, $6 put keys, $7 values.
   * → one row: `owned` (false: nothing was written).
   */
  readonly write: Readonly<Record<WriteShape, string>>;
  /** $1 store → holder, epoch, remaining_ms (negative once expired); no row: never held. */
  readonly leaseState: string;
  /** $1 store, $2 holder, $3 lease ms → epoch; no row: another holder's lease is live. */
  readonly acquire: string;
  /**
   * acquire, taking the new epoch's liveness lock (postgres-lease.ts) in the same statement, so the row is never seen
   * live under that epoch without it (unless taking it fails: another session holds an advisory lock on that key, a
   * foreign one or a hash collision): $4 the liveness key's text → epoch, live (false: not taken).
   */
  readonly acquireLive: string;
  /**
   * Takes the store over from a holder whose liveness lock was found free after it was seen held, live row or not, if
   * the row still has the epoch seen: $1 store, $2 holder, $3 lease ms, $4 liveness key's text, $5 epoch seen →
   * epoch, live; no row: another contender took it first.
   */
  readonly takeOverLive: string;
  /** $1 liveness key's text, $2 epoch → free (false: a holder's session holds its liveness lock); holds nothing after. */
  readonly probeLiveness: string;
  /**
   * Waits for the liveness lock of $2 epoch ($1 key's text) in shared mode for at most $3 ms (lock_timeout, this
   * statement only): granted once no session holds it exclusively; lock_not_available after $3 ms. Held after.
   */
  readonly awaitLiveness: string;
  /** $1 liveness key's text, $2 epoch: takes it exclusively, waiting up to the session's lock_timeout. */
  readonly holdLiveness: string;
  /** $1 liveness key's text, $2 epoch: lets go of awaitLiveness' shared hold. */
  readonly letGoLiveness: string;
  /** $1 store, $2 holder, $3 epoch, $4 lease ms → one row while still the owner, its lease live. */
  readonly renew: string;
  /**
   * $1 store, $2 holder, $3 epoch, $4 lease ms → one row while no other writer took the store, its own row lapsed or
   * not (taken back then: every takeover raises the epoch). After this holder's own long write, and by its renewals
   * while it is within its own deadline or after a write of its own is known to have committed (postgres-lease.ts;
   * a write sent but unanswered earns nothing back: a contender may have ended it).
   */
  readonly extendAfterWrite: string;
  /** $1 store → changes (text); no row: nothing was ever written. */
  readonly changes: string;
}

/** A statement per shape: a DELETE over an empty array still costs (~25% of a 1000-row insert, measured). */
export type WriteShape = "puts" | "deletes" | "both";

/** A store's liveness lock for one epoch (postgres-lease.ts): $1 the key's text (table and store), $2 the epoch. */
const LIVENESS_KEY = "hashtextextended($1, $2::int8)";

const LEASE_INTERVAL = "($LEASE_MS::float8 * interval '1 millisecond')";

function leaseInterval(param: string): string {
  return LEASE_INTERVAL.replace("$LEASE_MS", param);
}

export function statements(n: TableNames): Statements {
  // The write statement: the lease row is updated first (holder and epoch), and the data changes only happen when
  // that update found the row. The update takes the lease row's lock until commit, so a takeover waits for this write
  // to commit (and then sees it) or has already committed (and this write changes nothing). It also extends the
  // lease: a busy writer renews by writing, and it counts the write in `changes`, committed with the data, so a reader
  // that sees the same count saw the same data. No live expiry is asked for: every takeover raises the epoch, so a row
  // still naming this holder and epoch proves nobody held the store since, and a row that lapsed under its own holder
  // (its own long write, a statement that arrived late) is taken back by the write, atomically (task 241). When the writer stops
  // is its own deadline's business (postgres-lease.ts).
  // Measured (1000 rows of 329 bytes, one statement): unnest() of a binary bytea[] parameter ~1.5x faster than
  // multi-row VALUES with one parameter per value, ~2x faster than unnest() of a text-encoded bytea[] (hex).
  const guard = "EXISTS (SELECT 1 FROM lease)";
  const fenced = (changes: string[]) => `WITH lease AS (
        UPDATE ${n.lease} SET expires_at = clock_timestamp() + ${leaseInterval("$4")}, changes = changes + 1
        WHERE store = $1 AND holder = $2 AND epoch = $3
        RETURNING 1),
      ${changes.join(",\n      ")}
      SELECT ${guard} AS owned`;
  // Taking the lease: a new row starts its epoch at the database clock in microseconds. A row deleted by hand forgets
  // the epoch its writers hold; starting again above any epoch a row counted up to since an earlier start (at one
  // takeover per µs at most) fences a writer of the old row whatever its holder name, also on a store that holds no
  // data yet (a row restarted at 1 let two writers sharing a name at epoch 1 both commit). `changes` starts there
  // too, far from any count a follower saw on the old row. `when`: the condition on the row found.
  const take = (when: string) => `INSERT INTO ${n.lease} AS l (store, holder, epoch, expires_at, acquired_at, changes)
        SELECT $1, $2, f.epoch, clock_timestamp() + ${leaseInterval("$3")}, clock_timestamp(), f.epoch - 1
        FROM (SELECT floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS epoch) AS f
      ON CONFLICT (store) DO UPDATE SET holder = EXCLUDED.holder, epoch = l.epoch + 1,
        expires_at = EXCLUDED.expires_at, acquired_at = EXCLUDED.acquired_at
      WHERE ${when}`;
  // The session lock is taken before the row commits, and outlives the statement's transaction.
  const live = (taking: string) => `WITH t AS (${taking}
      RETURNING epoch)
    SELECT epoch::text AS epoch, pg_try_advisory_lock(hashtextextended($4, epoch)) AS live FROM t`;
  const remove = (keys: string) => `del AS (DELETE FROM ${n.data} WHERE store = $1 AND k = ANY(${keys}::text[]) AND ${guard})`;
  const insert = (keys: string, values: string) => `ins AS (INSERT INTO ${n.data} (store, k, v)
        SELECT $1, u.k, u.v FROM unnest(${keys}::text[], ${values}::bytea[]) AS u(k, v) WHERE ${guard}
        ON CONFLICT (store, k) DO UPDATE SET v = EXCLUDED.v)`;
  return {
    // octet_length of a bytea reads the length from the TOAST pointer: a value left out is never detoasted.
    read: `SELECT CASE WHEN octet_length(v) <= $3 THEN v END AS v, octet_length(v) AS n FROM ${n.data}
      WHERE store = $1 AND k = $2`,
    // Values in key order until $4 bytes were sent (node-postgres holds a whole answer, bytea as hex text, before it
    // hands over any row): the rest come by readValues, $4 bytes at a time. The window only counts lengths.
    readMany: `SELECT k, CASE WHEN n <= $3 AND sent <= $4 THEN v END AS v, n FROM (
        SELECT k, v, octet_length(v) AS n, sum(octet_length(v)) OVER (ORDER BY k ROWS UNBOUNDED PRECEDING) AS sent
        FROM ${n.data} WHERE store = $1 AND k = ANY($2::text[])) AS x`,
    readValues: `SELECT k, v FROM ${n.data} WHERE store = $1 AND k = ANY($2::text[])`,
    // octet_length reads the TOAST pointer's length: no value is detoasted.
    sizes: `SELECT k, octet_length(v) AS n FROM ${n.data} WHERE store = $1 AND k = ANY($2::text[])`,
    // One statement, so one snapshot: the slices are of one version of the value. The value is detoasted once (the
    // subquery, kept apart by OFFSET 0, is its own plan node): a slice of a compressed value taken from the stored
    // one decompresses everything before it, quadratic in the slice count. An empty value is one empty slice.
    // No ORDER BY: a sort would hold every slice on the server; the reader places them by i.
    readSlices: `SELECT s.i, substring(x.w from s.i * $3::int4 + 1 for $3::int4) AS v
      FROM (SELECT substring(d.v from 1 for $4::int4) AS w FROM ${n.data} AS d WHERE d.store = $1 AND d.k = $2 OFFSET 0) AS x
      CROSS JOIN LATERAL generate_series(0, (octet_length(x.w) - 1) / $3::int4) AS s(i)`,
    listAll: `SELECT k FROM ${n.data} WHERE store = $1 ORDER BY k`,
    listFrom: `SELECT k FROM ${n.data} WHERE store = $1 AND k >= $2 ORDER BY k`,
    listRange: `SELECT k FROM ${n.data} WHERE store = $1 AND k >= $2 AND k < $3 ORDER BY k`,
    write: {
      puts: fenced([insert("$5", "$6")]),
      deletes: fenced([remove("$5")]),
      both: fenced([remove("$5"), insert("$6", "$7")]),
    },
    leaseState: `SELECT holder, epoch::text AS epoch,
        (extract(epoch FROM expires_at - clock_timestamp()) * 1000)::float8 AS remaining_ms
      FROM ${n.lease} WHERE store = $1`,
    acquire: `${take("l.expires_at <= clock_timestamp()")}
      RETURNING epoch::text AS epoch`,
    acquireLive: live(take("l.expires_at <= clock_timestamp()")),
    takeOverLive: live(take("l.epoch = $5")),
    // CASE runs its branch only when chosen: a free lock is let go in the same statement.
    probeLiveness: `SELECT CASE WHEN pg_try_advisory_lock_shared(${LIVENESS_KEY}) THEN pg_advisory_unlock_shared(${LIVENESS_KEY}) ELSE false END AS free`,
    // The subquery (kept apart by OFFSET 0) sets the timeout before the lock is asked for.
    awaitLiveness: `SELECT pg_advisory_lock_shared(${LIVENESS_KEY})
      FROM (SELECT set_config('lock_timeout', $3::int8::text, true) OFFSET 0) AS t`,
    holdLiveness: `SELECT pg_advisory_lock(${LIVENESS_KEY})`,
    letGoLiveness: `SELECT pg_advisory_unlock_shared(${LIVENESS_KEY})`,
    renew: `UPDATE ${n.lease} SET expires_at = clock_timestamp() + ${leaseInterval("$4")}
      WHERE store = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp() RETURNING 1`,
    extendAfterWrite: `UPDATE ${n.lease} SET expires_at = clock_timestamp() + ${leaseInterval("$4")}
      WHERE store = $1 AND holder = $2 AND epoch = $3 RETURNING 1`,
    changes: `SELECT changes::text AS changes FROM ${n.lease} WHERE store = $1`,
  };
}

/** What SHAPES (below) describe: the two change together. */
function ddl(n: TableNames): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${n.version} (id int PRIMARY KEY CHECK (id = 1), version int NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${n.data} (
      store text COLLATE "C" NOT NULL,
      k text COLLATE "C" NOT NULL,
      v bytea NOT NULL,
      PRIMARY KEY (store, k))`,
    `CREATE TABLE IF NOT EXISTS ${n.lease} (
      store text COLLATE "C" PRIMARY KEY,
      holder text NOT NULL,
      epoch bigint NOT NULL,
      expires_at timestamptz NOT NULL,
      acquired_at timestamptz NOT NULL,
      changes bigint NOT NULL DEFAULT 0)`,
    `INSERT INTO ${n.version} (id, version) VALUES (1, ${SCHEMA_VERSION}) ON CONFLICT (id) DO NOTHING`,
  ];
}

/** PostgreSQL's "relation does not exist" / "schema does not exist". */
export function isMissingRelation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "42P01" || code === "3F000";
}

/** The stored schema version, or undefined when the tables do not exist yet. */
async function storedVersion(client: ClientBase, n: TableNames): Promise<number | undefined> {
  try {
    const r = await client.query<{ version: number }>(`SELECT version FROM ${n.version} WHERE id = 1`);
    return r.rows[0]?.version;
  } catch (err) {
    if (isMissingRelation(err)) return undefined;
    throw err;
  }
}

function checkVersion(version: number, n: TableNames): void {
  if (version !== SCHEMA_VERSION) {
    throw new StorageError(
      "backend-error",
      `tables ${n.schema}.${n.table}* have schema version ${version}; this version of graphrefly-storage reads version ${SCHEMA_VERSION} only`,
      { schemaVersion: version, supported: SCHEMA_VERSION },
    );
  }
}

// ---- The shape of tables found under our names ----
// `CREATE TABLE IF NOT EXISTS` keeps whatever table holds the name. One of another program (or made by hand without
// COLLATE "C") broke the key/value contract silently: a case-insensitive key column let `key` overwrite `Key`, an
// ICU collation listed keys out of code point order and outside their prefix, and a table of other columns got our
// lease and version tables beside it (which then made it look like ours). So every open, read-only too, compares
// what the catalog says with what ddl() creates before creating anything, and refuses another shape.

type Role = "data" | "lease" | "version";

interface ColumnShape {
  /** As format_type() spells it. */
  readonly type: string;
  /** Compared byte by byte (`pg_catalog."C"`): keys and store names, whose order and equality the contract fixes. */
  readonly byteOrder?: boolean;
}

interface TableShape {
  readonly columns: ReadonlyMap<string, ColumnShape>;
  readonly primaryKey: readonly string[];
}

const TEXT_C: ColumnShape = { type: "text", byteOrder: true };
const TIMESTAMPTZ: ColumnShape = { type: "timestamp with time zone" };
const SHAPES: Readonly<Record<Role, TableShape>> = {
  data: { columns: new Map([["store", TEXT_C], ["k", TEXT_C], ["v", { type: "bytea" }]]), primaryKey: ["store", "k"] },
  lease: {
    columns: new Map([
      ["store", TEXT_C],
      ["holder", { type: "text" }],
      ["epoch", { type: "bigint" }],
      ["expires_at", TIMESTAMPTZ],
      ["acquired_at", TIMESTAMPTZ],
      ["changes", { type: "bigint" }],
    ]),
    primaryKey: ["store"],
  },
  version: { columns: new Map([["id", { type: "integer" }], ["version", { type: "integer" }]]), primaryKey: ["id"] },
};
/** pg_catalog."C", whose OID is fixed (pg_collation.dat) since PostgreSQL 9.1. */
const C_COLLATION_OID = 950;

interface FoundColumn {
  readonly name: string;
  readonly attnum: number;
  /** As format_type() spells it. */
  readonly type: string;
  readonly notNull: boolean;
  /** 0 for types without collation. */
  readonly collationOid: number;
  readonly collation: string | null;
  readonly deterministic: boolean | null;
}

/** A unique index or an exclusion constraint. */
interface FoundKey {
  readonly name: string;
  readonly primary: boolean;
  /** attnums; 0 for an expression. */
  readonly columns: readonly number[];
  /** Columns before INCLUDE. */
  readonly keyColumns: number;
  readonly collations: readonly number[];
}

interface FoundTable {
  readonly name: string;
  /** pg_class.relkind: r plain table, p partitioned, v view, ... */
  readonly kind: string;
  readonly columns: readonly FoundColumn[];
  readonly keys: readonly FoundKey[] | null;
  readonly rules: boolean;
  readonly inherits: boolean;
  /** Enabled BEFORE … FOR EACH ROW triggers on INSERT, UPDATE or DELETE (null: none). */
  readonly rowTriggers: readonly string[] | null;
}

/** pg_trigger.tgtype bits (PostgreSQL's trigger.h): FOR EACH ROW | BEFORE, and INSERT | DELETE | UPDATE. */
const TRIGGER_ROW_BEFORE = 1 | 2;
const TRIGGER_WRITES = 4 | 8 | 16;

// One catalog query for the three names, whichever exist.
// Kept to few joins: each open is a new connection, whose catalog caches start cold. Measured there: ~3 ms (the
// version select ~0.6 ms); joining in the names of collations' schemas and of index columns took about twice that.
const CATALOG = `SELECT c.relname::text AS name, c.relkind::text AS kind, c.relhasrules AS rules,
    EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid OR i.inhrelid = c.oid) AS inherits,
    (SELECT json_agg(json_build_object('name', a.attname, 'attnum', a.attnum,
        'type', pg_catalog.format_type(a.atttypid, a.atttypmod), 'notNull', a.attnotnull,
        'collationOid', a.attcollation::int8, 'collation', co.collname, 'deterministic', co.collisdeterministic)
        ORDER BY a.attnum)
      FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
    (SELECT json_agg(json_build_object('name', ic.relname, 'primary', x.indisprimary, 'keyColumns', x.indnkeyatts,
        'columns', x.indkey::int2[], 'collations', x.indcollation::oid[]::int8[]))
      FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
      WHERE x.indrelid = c.oid AND (x.indisunique OR x.indisexclusion)) AS keys,
    (SELECT json_agg(t.tgname::text ORDER BY t.tgname) FROM pg_catalog.pg_trigger t
      WHERE t.tgrelid = c.oid AND NOT t.tgisinternal AND t.tgenabled <> 'D'
        AND (t.tgtype & ${TRIGGER_ROW_BEFORE}) = ${TRIGGER_ROW_BEFORE} AND (t.tgtype & ${TRIGGER_WRITES}) <> 0) AS "rowTriggers"
  FROM pg_catalog.pg_class c
  WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = $1) AND c.relname = ANY($2::text[])`;

function tableName(n: TableNames, role: Role): string {
  return role === "data" ? n.table : `${n.table}_${role}`;
}

const KINDS: Readonly<Record<string, string>> = {
  p: "a partitioned table",
  v: "a view",
  m: "a materialized view",
  f: "a foreign table",
  S: "a sequence",
  i: "an index",
  I: "an index",
  c: "a composite type",
  t: "a TOAST table",
};

function describeColumn(c: { name: string; type: string; collation?: string | null; notNull: boolean }): string {
  const collate = c.collation !== undefined && c.collation !== null && c.type === "text" ? ` COLLATE ${JSON.stringify(c.collation)}` : "";
  return `${c.name} ${c.type}${collate}${c.notNull ? " NOT NULL" : ""}`;
}

function expectedDefinition(shape: TableShape): string {
  const columns = [...shape.columns].map(([name, s]) => describeColumn({ name, type: s.type, collation: s.byteOrder ? "C" : null, notNull: true }));
  return `(${columns.join(", ")}, PRIMARY KEY (${shape.primaryKey.join(", ")}))`;
}

/** What differs between `t` and `shape`; empty when it is ours. */
function differences(t: FoundTable, shape: TableShape): string[] {
  const out: string[] = [];
  if (t.kind !== "r") out.push(`it is ${KINDS[t.kind] ?? `a relation of kind ${t.kind}`}, not a plain table`);
  const found = new Map(t.columns.map((c) => [c.name, c]));
  let collations = true;
  for (const [name, want] of shape.columns) {
    const c = found.get(name);
    if (c === undefined) {
      out.push(`no column ${name}`);
      continue;
    }
    const collation = JSON.stringify(c.collation ?? `oid ${c.collationOid}`);
    if (c.type !== want.type) out.push(`column ${name} is ${c.type}, not ${want.type}`);
    else if (want.byteOrder === true && c.collationOid !== C_COLLATION_OID) {
      out.push(`column ${name} has collation ${collation}, not "C" (it must compare byte by byte)`);
      collations = false;
    } else if (c.deterministic === false) out.push(`column ${name} has a nondeterministic collation ${collation}`);
    if (!c.notNull) out.push(`column ${name} allows NULL`);
  }
  for (const c of t.columns) if (!shape.columns.has(c.name)) out.push(`an extra column ${c.name} ${c.type}`);
  const keys = t.keys ?? [];
  const primary = keys.find((k) => k.primary);
  const wanted = shape.primaryKey.join(", ");
  if (primary === undefined) out.push(`no primary key (${wanted})`);
  else {
    const byNum = new Map(t.columns.map((c) => [c.attnum, c.name]));
    const columns = primary.columns.map((n) => byNum.get(n) ?? "an expression").join(", ");
    if (columns !== wanted || primary.keyColumns !== primary.columns.length) out.push(`its primary key is (${columns}), not (${wanted})`);
    else if (collations && primary.collations.some((o) => o !== 0 && o !== C_COLLATION_OID)) {
      out.push("its primary key does not compare byte by byte");
    }
  }
  // Another unique index or an exclusion constraint refuses writes the contract accepts.
  for (const k of keys) if (!k.primary) out.push(`a unique index or exclusion constraint ${k.name}`);
  // A rule rewrites our statements (DO INSTEAD NOTHING drops writes); inheritance mixes other tables' rows into
  // ours. A BEFORE row trigger on a write may change the row or return NULL, which skips it: the write is
  // acknowledged and not (or not as written) stored. Other triggers are allowed: AFTER ones (audit, trigger-based
  // replication) and statement-level ones see rows and cannot change the one written, and any of them may refuse a
  // write with an error, which the writer hears.
  if (t.rules) out.push("rules");
  if (t.inherits) out.push("inheritance");
  for (const name of t.rowTriggers ?? []) {
    out.push(`a BEFORE row trigger ${JSON.stringify(name)} on writes (it can change or silently skip a write; drop or disable it)`);
  }
  return out;
}

function foreignSchema(n: TableNames, t: FoundTable, role: Role, diff: readonly string[]): StorageError {
  return new StorageError(
    "corrupt-store",
    `table ${n.schema}.${t.name} is not the one graphrefly-storage creates (${diff.join("; ")}); expected ` +
      `${expectedDefinition(SHAPES[role])}. Nothing was changed: move that table away, or give other schema or table options`,
    { reason: "foreign-schema", schema: n.schema, table: t.name, found: t.columns.map(describeColumn).join(", ") },
  );
}

/** The version table can be read: a later release's error about its own version beats our view of its shape. */
function readsVersion(t: FoundTable): boolean {
  const has = (name: string) => t.columns.some((c) => c.name === name && c.type === "integer");
  return has("id") && has("version");
}

/**
 * Checks the tables found under our names; throws StorageError("corrupt-store", details.reason "foreign-schema")
 * for one of another shape, and the version error for tables of another version. True when all three exist and
 * the version row is stored; false when some are missing (none yet, or a creation that did not finish).
 */
async function checkTables(client: ClientBase, n: TableNames): Promise<boolean> {
  const roles: Role[] = ["version", "data", "lease"];
  const r = await client.query<FoundTable>(CATALOG, [n.schema, roles.map((role) => tableName(n, role))]);
  const byName = new Map(r.rows.map((t) => [t.name, { ...t, columns: t.columns ?? [] }]));
  const version = byName.get(tableName(n, "version"));
  let stored: number | undefined;
  if (version !== undefined && readsVersion(version)) {
    stored = await storedVersion(client, n);
    if (stored !== undefined) checkVersion(stored, n);
  }
  for (const role of roles) {
    const t = byName.get(tableName(n, role));
    if (t === undefined) continue;
    const diff = differences(t, SHAPES[role]);
    if (diff.length > 0) throw foreignSchema(n, t, role, diff);
  }
  return byName.size === roles.length && stored !== undefined;
}

/**
 * Creates the tables on first use, and completes a set of ours of which some are missing. Tables of our names but
 * another shape are refused before anything is created (checkTables). Concurrent first opens (several machines
 * starting at once) serialize on a transaction-scoped advisory lock, since `CREATE TABLE IF NOT EXISTS` alone can
 * still collide in the catalog. Returns false when the tables do not all exist and `create` is false (a read-only
 * handle on an empty database).
 */
export async function ensureSchema(client: ClientBase, n: TableNames, create: boolean): Promise<boolean> {
  if (await checkTables(client, n)) return true;
  if (!create) return false;
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`graphrefly-storage:${n.data}`]);
    // Again under the lock: what another opener created meanwhile is checked too.
    if (!(await checkTables(client, n))) {
      // CREATE SCHEMA needs the CREATE privilege on the database even when the schema exists: only when missing.
      const schemaFound = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [n.schema]);
      if (schemaFound.rowCount === 0) await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(n.schema)}`);
      for (const sql of ddl(n)) await client.query(sql);
    }
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
  const version = await storedVersion(client, n);
  checkVersion(version ?? 0, n);
  return true;
}
