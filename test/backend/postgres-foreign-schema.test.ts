/**
 * PostgreSQL tables of our names that graphrefly-storage did not create (review s13b). `CREATE TABLE IF NOT EXISTS`
 * kept them and only the version row was checked, so: a key column ignoring case let write("key") overwrite "Key";
 * an ICU collation listed list("a") as ["A", "a/1", "a/2", "ab"]; another program's table got our lease and version
 * tables beside it, and the version row then made it look like ours to every later open. Now every open, writable
 * or read-only, refuses a table of another shape (corrupt-store, details.reason "foreign-schema", as SQLite does)
 * before creating anything, and a set of our own tables of which some are missing is completed.
 */
import type pg from "pg";
import { describe, expect, it } from "vitest";
import { postgresBackend } from "../../src/backend/postgres.js";
import { StorageError } from "../../src/errors.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { errorOf } from "../support/wait.js";

const database = useTestDatabase();
let counter = 0;

/** A schema of its own for one case, dropped at the end. */
async function inSchema(fn: (raw: pg.Client, schema: string, url: string) => Promise<void>): Promise<void> {
  const db = await database();
  const raw = await db.raw();
  const schema = `${db.schema}_${counter++}`;
  await raw.query(`CREATE SCHEMA "${schema}"`);
  try {
    await fn(raw, schema, db.url);
  } finally {
    await raw.query(`DROP SCHEMA "${schema}" CASCADE`);
  }
}

/** Every relation of the schema and every row of its tables: what "nothing was changed" compares. */
async function snapshot(raw: pg.Client, schema: string): Promise<string[]> {
  const rels = await raw.query<{ relname: string; relkind: string }>(
    "SELECT relname, relkind::text FROM pg_class WHERE relnamespace = $1::regnamespace ORDER BY relname",
    [`"${schema}"`],
  );
  const out: string[] = [];
  for (const r of rels.rows) {
    out.push(`${r.relname} (${r.relkind})`);
    if (r.relkind !== "r") continue;
    const rows = await raw.query<{ row: string }>(`SELECT t::text AS row FROM "${schema}"."${r.relname}" AS t ORDER BY 1`);
    for (const row of rows.rows) out.push(`  ${row.row}`);
  }
  return out;
}

const OUR_DATA = `(store text COLLATE "C" NOT NULL, k text COLLATE "C" NOT NULL, v bytea NOT NULL, PRIMARY KEY (store, k))`;
const OUR_LEASE = `(store text COLLATE "C" PRIMARY KEY, holder text NOT NULL, epoch bigint NOT NULL,
  expires_at timestamptz NOT NULL, acquired_at timestamptz NOT NULL, changes bigint NOT NULL DEFAULT 0)`;
const OUR_VERSION = "(id int PRIMARY KEY CHECK (id = 1), version int NOT NULL)";

/** label, the statements making the foreign table ($S: the schema, quoted), the table named, what the message says. */
const FOREIGN: Array<[string, string[], string, RegExp]> = [
  [
    "another program's table (id serial, payload text)",
    ["CREATE TABLE $S.graphrefly_storage (id serial PRIMARY KEY, payload text)", "INSERT INTO $S.graphrefly_storage (payload) VALUES ('theirs')"],
    "graphrefly_storage",
    /no column store.*extra column id integer/,
  ],
  [
    "a key column with a case-insensitive (nondeterministic) ICU collation: key would overwrite Key",
    [
      "CREATE COLLATION $S.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
      `CREATE TABLE $S.graphrefly_storage (store text COLLATE "C" NOT NULL, k text COLLATE $S.ci NOT NULL, v bytea NOT NULL, PRIMARY KEY (store, k))`,
      "INSERT INTO $S.graphrefly_storage VALUES ('s', 'Key', '\\x01')",
    ],
    "graphrefly_storage",
    /column k has collation "ci", not "C"/,
  ],
  [
    "a key column with the en-x-icu collation: keys would list out of code point order and outside their prefix",
    [`CREATE TABLE $S.graphrefly_storage (store text COLLATE "C" NOT NULL, k text COLLATE "en-x-icu" NOT NULL, v bytea NOT NULL, PRIMARY KEY (store, k))`],
    "graphrefly_storage",
    /column k has collation "en-x-icu", not "C"/,
  ],
  [
    "the documented table made without COLLATE (the database's default collation)",
    ["CREATE TABLE $S.graphrefly_storage (store text NOT NULL, k text NOT NULL, v bytea NOT NULL, PRIMARY KEY (store, k))"],
    "graphrefly_storage",
    /column store has collation "default", not "C"/,
  ],
  [
    "a nullable value column",
    [`CREATE TABLE $S.graphrefly_storage (store text COLLATE "C" NOT NULL, k text COLLATE "C" NOT NULL, v bytea, PRIMARY KEY (store, k))`],
    "graphrefly_storage",
    /column v allows NULL/,
  ],
  [
    "the primary key in another order",
    [`CREATE TABLE $S.graphrefly_storage (store text COLLATE "C" NOT NULL, k text COLLATE "C" NOT NULL, v bytea NOT NULL, PRIMARY KEY (k, store))`],
    "graphrefly_storage",
    /primary key is \(k, store\), not \(store, k\)/,
  ],
  [
    "an extra column",
    [`CREATE TABLE $S.graphrefly_storage (store text COLLATE "C" NOT NULL, k text COLLATE "C" NOT NULL, v bytea NOT NULL, at timestamptz, PRIMARY KEY (store, k))`],
    "graphrefly_storage",
    /extra column at timestamp with time zone/,
  ],
  [
    "a unique index on the values",
    [`CREATE TABLE $S.graphrefly_storage ${OUR_DATA}`, "CREATE UNIQUE INDEX one_value ON $S.graphrefly_storage (store, v)"],
    "graphrefly_storage",
    /unique index or exclusion constraint one_value/,
  ],
  [
    "a rule that drops writes",
    [`CREATE TABLE $S.graphrefly_storage ${OUR_DATA}`, "CREATE RULE drop_writes AS ON INSERT TO $S.graphrefly_storage DO INSTEAD NOTHING"],
    "graphrefly_storage",
    /rules/,
  ],
  [
    "a BEFORE row trigger that skips writes (RETURN NULL): each write would be acknowledged and not stored",
    [
      `CREATE TABLE $S.graphrefly_storage ${OUR_DATA}`,
      "CREATE FUNCTION $S.skip() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'",
      "CREATE TRIGGER skip_writes BEFORE INSERT OR UPDATE ON $S.graphrefly_storage FOR EACH ROW EXECUTE FUNCTION $S.skip()",
    ],
    "graphrefly_storage",
    /a BEFORE row trigger "skip_writes" on writes \(it can change or silently skip a write/,
  ],
  [
    "a BEFORE UPDATE row trigger on the lease table that keeps the epoch (fencing would rest on it)",
    [
      `CREATE TABLE $S.graphrefly_storage_lease ${OUR_LEASE}`,
      "CREATE FUNCTION $S.keep_epoch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN NEW.epoch := OLD.epoch; RETURN NEW; END'",
      "CREATE TRIGGER keep_epoch BEFORE UPDATE ON $S.graphrefly_storage_lease FOR EACH ROW EXECUTE FUNCTION $S.keep_epoch()",
    ],
    "graphrefly_storage_lease",
    /a BEFORE row trigger "keep_epoch" on writes/,
  ],
  [
    "a table inheriting from ours (its rows would list as ours)",
    [`CREATE TABLE $S.graphrefly_storage ${OUR_DATA}`, "CREATE TABLE $S.child (note text) INHERITS ($S.graphrefly_storage)"],
    "graphrefly_storage",
    /inheritance/,
  ],
  [
    "a view of that name",
    [`CREATE TABLE $S.other ${OUR_DATA}`, "CREATE VIEW $S.graphrefly_storage AS SELECT * FROM $S.other"],
    "graphrefly_storage",
    /it is a view, not a plain table/,
  ],
  [
    "a lease table without the changes column, beside our data table",
    [
      `CREATE TABLE $S.graphrefly_storage ${OUR_DATA}`,
      `CREATE TABLE $S.graphrefly_storage_lease (store text COLLATE "C" PRIMARY KEY, holder text NOT NULL, epoch bigint NOT NULL, expires_at timestamptz NOT NULL, acquired_at timestamptz NOT NULL)`,
    ],
    "graphrefly_storage_lease",
    /no column changes/,
  ],
  [
    "another program's version table",
    ["CREATE TABLE $S.graphrefly_storage_version (id text PRIMARY KEY, released date)", "INSERT INTO $S.graphrefly_storage_version VALUES ('1.0', '2020-01-01')"],
    "graphrefly_storage_version",
    /column id is text, not integer/,
  ],
  [
    "another program's table beside our lease and version tables stamped 1 (what an open before this fix left)",
    [
      "CREATE TABLE $S.graphrefly_storage (id serial PRIMARY KEY, payload text)",
      `CREATE TABLE $S.graphrefly_storage_lease ${OUR_LEASE}`,
      `CREATE TABLE $S.graphrefly_storage_version ${OUR_VERSION}`,
      "INSERT INTO $S.graphrefly_storage_version VALUES (1, 1)",
    ],
    "graphrefly_storage",
    /no column store/,
  ],
];

describe("postgresBackend on tables of its names that it did not create", () => {
  it.each(FOREIGN)("%s: refused at open (corrupt-store, foreign-schema), writable or read-only, nothing changed", async (_label, setup, table, says) => {
    await inSchema(async (raw, schema, url) => {
      for (const sql of setup) await raw.query(sql.replaceAll("$S", `"${schema}"`));
      const before = await snapshot(raw, schema);
      for (const readOnly of [false, true]) {
        const err = await errorOf(() => postgresBackend({ url, schema, store: "s", readOnly }));
        expect(err, `readOnly ${readOnly}`).toBeInstanceOf(StorageError);
        expect((err as StorageError).code).toBe("corrupt-store");
        expect((err as StorageError).details).toMatchObject({ reason: "foreign-schema", schema, table });
        expect((err as StorageError).message).toMatch(says);
        expect((err as StorageError).message).toContain(`${schema}.${table} `);
      }
      expect(await snapshot(raw, schema)).toEqual(before);
    });
  });

  it("our tables with an operator's additions that keep the contract (a plain index, AFTER and statement triggers, a disabled BEFORE row trigger) open as before", async () => {
    await inSchema(async (raw, schema, url) => {
      const first = await postgresBackend({ url, schema, store: "s" });
      await first.write("Key", Uint8Array.of(1));
      await first.close();
      await raw.query(`CREATE INDEX by_size ON "${schema}".graphrefly_storage (octet_length(v))`);
      await raw.query(`CREATE TABLE "${schema}".audit (k text, at timestamptz DEFAULT now())`);
      await raw.query(`CREATE FUNCTION "${schema}".audit() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN INSERT INTO "${schema}".audit (k) VALUES (NEW.k); RETURN NEW; END'`);
      await raw.query(`CREATE TRIGGER audit AFTER INSERT OR UPDATE ON "${schema}".graphrefly_storage FOR EACH ROW EXECUTE FUNCTION "${schema}".audit()`);
      await raw.query(`CREATE FUNCTION "${schema}".noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'`);
      await raw.query(`CREATE TRIGGER each_statement BEFORE INSERT ON "${schema}".graphrefly_storage FOR EACH STATEMENT EXECUTE FUNCTION "${schema}".noop()`);
      await raw.query(`CREATE TRIGGER switched_off BEFORE INSERT ON "${schema}".graphrefly_storage FOR EACH ROW EXECUTE FUNCTION "${schema}".noop()`);
      await raw.query(`ALTER TABLE "${schema}".graphrefly_storage DISABLE TRIGGER switched_off`);
      const b = await postgresBackend({ url, schema, store: "s" });
      try {
        await b.write("key", Uint8Array.of(2));
        expect(await b.list()).toEqual(["Key", "key"]);
      } finally {
        await b.close();
      }
      expect((await raw.query(`SELECT k FROM "${schema}".audit ORDER BY k`)).rows).toEqual([{ k: "key" }]);
    });
  });

  it("a read-only handle opened before any table existed refuses a foreign table created afterwards", async () => {
    await inSchema(async (raw, schema, url) => {
      const b = await postgresBackend({ url, schema, store: "s", readOnly: true });
      try {
        expect(await b.list()).toEqual([]);
        await raw.query(`CREATE TABLE "${schema}".graphrefly_storage (id serial PRIMARY KEY, payload text)`);
        const err = await errorOf(() => b.list());
        expect(err).toBeInstanceOf(StorageError);
        expect((err as StorageError).details).toMatchObject({ reason: "foreign-schema", table: "graphrefly_storage" });
      } finally {
        await b.close();
      }
    });
  });

  it("tables of a newer schema version get the version error, whatever their shape", async () => {
    await inSchema(async (raw, schema, url) => {
      await raw.query(`CREATE TABLE "${schema}".graphrefly_storage (store text COLLATE "C" NOT NULL, k bytea NOT NULL, v bytea NOT NULL, PRIMARY KEY (store, k))`);
      await raw.query(`CREATE TABLE "${schema}".graphrefly_storage_version (id int PRIMARY KEY, version int NOT NULL, note text)`);
      await raw.query(`INSERT INTO "${schema}".graphrefly_storage_version VALUES (1, 2, 'later')`);
      for (const readOnly of [false, true]) {
        const err = await errorOf(() => postgresBackend({ url, schema, store: "s", readOnly }));
        expect((err as StorageError).code).toBe("backend-error");
        expect((err as StorageError).details).toMatchObject({ schemaVersion: 2 });
      }
    });
  });
});

/** label, the tables of ours that exist (the rest are missing, as after a creation that did not finish). */
const PARTIAL: Array<[string, string[]]> = [
  [
    "the version row and the data table, no lease table",
    [`CREATE TABLE $S.graphrefly_storage_version ${OUR_VERSION}`, "INSERT INTO $S.graphrefly_storage_version VALUES (1, 1)", `CREATE TABLE $S.graphrefly_storage ${OUR_DATA}`],
  ],
  ["the version row and the lease table, no data table", [`CREATE TABLE $S.graphrefly_storage_version ${OUR_VERSION}`, "INSERT INTO $S.graphrefly_storage_version VALUES (1, 1)", `CREATE TABLE $S.graphrefly_storage_lease ${OUR_LEASE}`]],
  ["the data table alone", [`CREATE TABLE $S.graphrefly_storage ${OUR_DATA}`]],
  [
    "all three tables, no version row",
    [`CREATE TABLE $S.graphrefly_storage_version ${OUR_VERSION}`, `CREATE TABLE $S.graphrefly_storage ${OUR_DATA}`, `CREATE TABLE $S.graphrefly_storage_lease ${OUR_LEASE}`],
  ],
];

describe("postgresBackend on a set of its own tables of which some are missing", () => {
  it.each(PARTIAL)("%s: a writable open completes it and keeps what is stored", async (_label, setup) => {
    await inSchema(async (raw, schema, url) => {
      for (const sql of setup) await raw.query(sql.replaceAll("$S", `"${schema}"`));
      const hasData = setup.some((s) => s.startsWith("CREATE TABLE $S.graphrefly_storage "));
      if (hasData) await raw.query(`INSERT INTO "${schema}".graphrefly_storage VALUES ('s', 'before', '\\x07')`);
      // A read-only open accepts our shape and creates nothing.
      const before = await snapshot(raw, schema);
      const reader = await postgresBackend({ url, schema, store: "s", readOnly: true });
      await reader.close();
      expect(await snapshot(raw, schema)).toEqual(before);

      const b = await postgresBackend({ url, schema, store: "s" });
      try {
        await b.write("after", Uint8Array.of(8));
        expect(await b.list()).toEqual(hasData ? ["after", "before"] : ["after"]);
      } finally {
        await b.close();
      }
      const tables = await raw.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = $1 ORDER BY 1", [schema]);
      expect(tables.rows.map((r) => r.t)).toEqual(["graphrefly_storage", "graphrefly_storage_lease", "graphrefly_storage_version"]);
      expect((await raw.query(`SELECT id, version FROM "${schema}".graphrefly_storage_version`)).rows).toEqual([{ id: 1, version: 1 }]);
      const again = await postgresBackend({ url, schema, store: "s", readOnly: true });
      try {
        expect(await again.read("after")).toEqual(Uint8Array.of(8));
        if (hasData) expect(await again.read("before")).toEqual(Uint8Array.of(7));
      } finally {
        await again.close();
      }
    });
  });
});
