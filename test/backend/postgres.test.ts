import { connect, createServer, type Socket } from "node:net";
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { compareKeys, sortKeys } from "../../src/backend/keys.js";
import { postgresBackend, prepareSession, simulatePausedHolder, type PostgresBackend, type PostgresBackendOptions } from "../../src/backend/postgres.js";
import { StorageError } from "../../src/errors.js";
import { backendSuite } from "../conformance/backend-suite.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { freeLoopbackPort } from "../../bench/lib/postgres-server.js";
import { errorOf, sleep, until } from "../support/wait.js";

const database = useTestDatabase();
let counter = 0;
const freshStore = (): string => `store-${counter++}`;

const opened: PostgresBackend[] = [];
async function open(opts: Partial<PostgresBackendOptions> & { store: string }): Promise<PostgresBackend> {
  const db = await database();
  const b = await postgresBackend({ url: db.url, schema: db.schema, ...opts });
  opened.push(b);
  return b;
}

async function closeAll(): Promise<void> {
  for (const b of opened.splice(0)) await b.close();
}

backendSuite<PostgresBackend>({
  name: "postgresBackend",
  factory: () => open({ store: freshStore() }),
  reopen: (b) => open({ store: b.store }),
  openReader: (b) => open({ store: b.store, readOnly: true }),
  cleanup: closeAll,
  propertyRuns: 25,
});

/** A new lease row's epoch: the database clock in microseconds (after 2020, before 2100), never 1 (docs/postgres.md). */
function expectClockEpoch(epoch: number | undefined): void {
  expect(epoch).toBeGreaterThan(Date.UTC(2020, 0) * 1000);
  expect(epoch).toBeLessThan(Date.UTC(2100, 0) * 1000);
}

async function storageError(fn: () => unknown, code: string): Promise<StorageError> {
  const err = await errorOf(fn);
  expect(err).toBeInstanceOf(StorageError);
  expect((err as StorageError).code).toBe(code);
  return err as StorageError;
}

const bytes = (...v: number[]) => Uint8Array.from(v);

/** `url` with an application_name of its own, so a test can find (and terminate) only its sessions. */
function withApp(url: string, app: string): string {
  const u = new URL(url);
  u.searchParams.set("application_name", app);
  return u.href;
}
const text = (v: Uint8Array | undefined) => (v === undefined ? undefined : Buffer.from(v).toString());

describe("postgresBackend specifics", () => {
  it("is named by server and store without the password, and declares async full support", async () => {
    const db = await database();
    const b = await open({ store: "named" });
    expect(b.name).toBe(`postgres://postgres@${new URL(db.url).host}/postgres?store=named&table=${db.schema}.graphrefly_storage`);
    expect(b.name).not.toContain(db.password);
    expect(b.supports).toEqual({ list: true, delete: true, atomicBatch: true, conditionalBatch: true, conditionalKeys: true, persistent: true, durable: true, sync: false, readPrefix: true, sizes: true });
    expectClockEpoch(b.lease?.epoch);
    await closeAll();
  });

  it("lists in code point order (= compareKeys), not JS UTF-16 order, across BMP private use and astral keys", async () => {
    const b = await open({ store: freshStore() });
    const keys = ["\ue000", "\uf8ff", "\uffff", "\u{10000}", "😀", "\u{f0000}", "\u{10fffd}", "\ud7ff", "z", "é", "\u0800"];
    for (const k of keys) await b.write(k, bytes(1));
    const listed = await b.list();
    expect(listed).toEqual(sortKeys(keys));
    expect(listed).not.toEqual([...keys].sort()); // the JS default order differs for these keys
    for (let i = 1; i < listed.length; i++) expect(compareKeys(listed[i - 1] as string, listed[i] as string)).toBeLessThan(0);
    expect(await b.list("\ue000")).toEqual(["\ue000"]);
    expect(await b.list("\u{10000}")).toEqual(["\u{10000}"]);
    await closeAll();
  });

  it("stores U+0000 and U+0001 keys through an order-keeping escape; other keys are stored verbatim", async () => {
    const db = await database();
    const store = freshStore();
    const b = await open({ store });
    const keys = ["a", "a\0", "a\x01", "a\x01\0", "a\0\x01", "a\x02", "\0", "\x01", "", "a\0b", "a\x01b", "plain/key"];
    for (const [i, k] of keys.entries()) await b.write(k, bytes(i));
    for (const [i, k] of keys.entries()) expect(Array.from((await b.read(k)) ?? [])).toEqual([i]);
    const byUtf8 = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect(await b.list()).toEqual(byUtf8);
    expect(await b.list("a\0")).toEqual(["a\0", "a\0\x01", "a\0b"]);
    expect(await b.list("a\x01")).toEqual(["a\x01", "a\x01\0", "a\x01b"]);
    const raw = await db.raw();
    const stored = await raw.query<{ k: string }>(`SELECT k FROM "${db.schema}".graphrefly_storage WHERE store = $1 AND k LIKE 'plain%'`, [store]);
    expect(stored.rows.map((r) => r.k)).toEqual(["plain/key"]);
    // A key no writer of ours could have stored (a lone U+0001) is reported, not misread.
    await raw.query(`INSERT INTO "${db.schema}".graphrefly_storage (store, k, v) VALUES ($1, $2, '\\x00')`, [store, "bad\x01x"]);
    const err = await storageError(() => b.list(), "corrupt-store");
    expect(err.message).toContain("bad");
    await closeAll();
  });

  it("keeps stores of one database apart, whatever their names", async () => {
    const hostile = `x'); DROP TABLE graphrefly_storage; --`;
    const a = await open({ store: hostile });
    const b = await open({ store: `${hostile}2` });
    const c = await open({ store: "%" });
    await a.write("k", bytes(1));
    await b.write("k", bytes(2));
    await b.write("k2", bytes(3));
    await c.writeBatch([{ op: "put", key: "j", value: bytes(4) }]);
    expect(Array.from((await a.read("k")) ?? [])).toEqual([1]);
    expect(await a.list()).toEqual(["k"]);
    expect(await b.list()).toEqual(["k", "k2"]);
    expect(await c.list()).toEqual(["j"]);
    await a.delete("k");
    expect(Array.from((await b.read("k")) ?? [])).toEqual([2]);
    await closeAll();
    const again = await open({ store: hostile });
    expect(await again.list()).toEqual([]);
    await closeAll();
  });

  it("refuses table and schema names that are not plain identifiers, touching nothing", async () => {
    const db = await database();
    const keep = await open({ store: freshStore() });
    await keep.write("k", bytes(1));
    const hostile = [`x"; drop table "${db.schema}".graphrefly_storage; --`, "a b", "1abc", "", "a.b", "x".repeat(64), "é"];
    for (const name of hostile) {
      const t = await storageError(() => postgresBackend({ url: db.url, schema: db.schema, table: name, store: "s" }), "invalid-argument");
      expect(t.details.option).toBe("table");
      const s = await storageError(() => postgresBackend({ url: db.url, schema: name, store: "s" }), "invalid-argument");
      expect(s.details.option).toBe("schema");
    }
    expect(Array.from((await keep.read("k")) ?? [])).toEqual([1]);
    // Valid names are quoted, so case is kept exactly.
    const mixed = await open({ store: "s", table: "MixedCase_T1" });
    await mixed.write("k", bytes(2));
    const raw = await db.raw();
    const tables = await raw.query<{ t: string }>(
      "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
      [db.schema],
    );
    expect(tables.rows.map((r) => r.t)).toEqual([
      "MixedCase_T1",
      "MixedCase_T1_lease",
      "MixedCase_T1_version",
      "graphrefly_storage",
      "graphrefly_storage_lease",
      "graphrefly_storage_version",
    ]);
    await closeAll();
  });

  it("creates its schema and tables on first use, with a version row; refuses a newer version", async () => {
    const db = await database();
    const schema = `${db.schema}_v`;
    const b = await postgresBackend({ url: db.url, schema, table: "fresh", store: "s" });
    await b.write("k", bytes(1));
    await b.close();
    const raw = await db.raw();
    try {
      expect((await raw.query(`SELECT id, version FROM "${schema}".fresh_version`)).rows).toEqual([{ id: 1, version: 1 }]);
      const cols = await raw.query<{ c: string; t: string; coll: string | null }>(
        `SELECT column_name AS c, data_type AS t, collation_name AS coll FROM information_schema.columns
         WHERE table_schema = $1 AND table_name = 'fresh' ORDER BY ordinal_position`,
        [schema],
      );
      expect(cols.rows).toEqual([
        { c: "store", t: "text", coll: "C" },
        { c: "k", t: "text", coll: "C" },
        { c: "v", t: "bytea", coll: null },
      ]);
      await raw.query(`UPDATE "${schema}".fresh_version SET version = 2`);
      const err = await storageError(() => postgresBackend({ url: db.url, schema, table: "fresh", store: "s" }), "backend-error");
      expect(err.message).toMatch(/schema version 2/);
      expect(err.details.schemaVersion).toBe(2);
    } finally {
      await raw.query(`DROP SCHEMA "${schema}" CASCADE`);
    }
  });

  it("opens concurrently on a database without tables (first-use creation is serialized)", async () => {
    const db = await database();
    const schema = `${db.schema}_race`;
    const raw = await db.raw();
    try {
      const all = await Promise.all(Array.from({ length: 4 }, (_, i) => postgresBackend({ url: db.url, schema, store: `s${i}` })));
      for (const [i, b] of all.entries()) await b.write("k", bytes(i));
      for (const b of all) await b.close();
      expect((await raw.query(`SELECT count(*)::int AS n FROM "${schema}".graphrefly_storage`)).rows[0]).toEqual({ n: 4 });
    } finally {
      await raw.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  });

  it("validates its options", async () => {
    const db = await database();
    const base = { url: db.url, schema: db.schema, store: "s" };
    await expect(postgresBackend({ store: "s" })).rejects.toBeInstanceOf(TypeError);
    await expect(postgresBackend({ ...base, connection: { host: "127.0.0.1" } })).rejects.toBeInstanceOf(TypeError);
    await storageError(() => postgresBackend({ ...base, store: "" }), "invalid-argument");
    await storageError(() => postgresBackend({ ...base, store: "a\0b" }), "invalid-argument");
    await storageError(() => postgresBackend({ ...base, store: "x".repeat(257) }), "invalid-argument");
    await storageError(() => postgresBackend({ ...base, store: "\ud800" }), "invalid-key");
    await expect(postgresBackend({ ...base, lease: { ttlMs: 0 } })).rejects.toBeInstanceOf(RangeError);
    await expect(postgresBackend({ ...base, lease: { ttlMs: 1000, renewEveryMs: 1000 } })).rejects.toBeInstanceOf(RangeError);
    await expect(postgresBackend({ ...base, lease: { waitMs: -1 } })).rejects.toBeInstanceOf(RangeError);
    await expect(postgresBackend({ ...base, maxValueBytes: 2 ** 31 })).rejects.toBeInstanceOf(RangeError);
    await expect(postgresBackend({ ...base, statementTimeoutMs: 1.5 })).rejects.toBeInstanceOf(RangeError);
  });

  it("connects with node-postgres client settings as well as a URL", async () => {
    const db = await database();
    const u = new URL(db.url);
    const b = await postgresBackend({
      connection: { host: u.hostname, port: Number(u.port), user: "postgres", password: db.password, database: "postgres" },
      schema: db.schema,
      store: freshStore(),
    });
    await b.write("k", bytes(1));
    expect(b.name).toContain(`postgres://postgres@${u.hostname}:${u.port}/postgres`);
    expect(b.name).not.toContain(db.password);
    await b.close();
  });

  it("refuses keys longer than an index entry can hold as invalid-key, alone", async () => {
    const b = await open({ store: freshStore() });
    expect(() => b.checkKey?.("k".repeat(2048))).not.toThrow();
    expect(() => b.checkKey?.("k".repeat(2049))).toThrow(StorageError);
    await storageError(() => b.write("é".repeat(1025), bytes(1)), "invalid-key");
    await storageError(() => b.writeBatch([{ op: "put", key: "ok", value: bytes(1) }, { op: "put", key: "k".repeat(3000), value: bytes(2) }]), "invalid-key");
    await b.write("k".repeat(2048), bytes(3));
    expect(await b.list()).toEqual(["k".repeat(2048)]);
    await closeAll();
  });
});

describe("postgresBackend sessions", () => {
  it("switches a session with synchronous_commit off to on: a resolved write is durable", async () => {
    const db = await database();
    const raw = await db.raw();
    await raw.query("SET synchronous_commit = off");
    await prepareSession(raw, true);
    expect((await raw.query<{ synchronous_commit: string }>("SHOW synchronous_commit")).rows[0]?.synchronous_commit).toBe("on");
    await raw.query("SET synchronous_commit = off");
    await prepareSession(raw, false); // a read-only session writes nothing to make durable
    expect((await raw.query<{ synchronous_commit: string }>("SHOW synchronous_commit")).rows[0]?.synchronous_commit).toBe("off");
  });

  it("refuses a database whose encoding is not UTF8", async () => {
    const db = await database();
    const raw = await db.raw();
    const name = `${db.schema}_latin1`;
    await raw.query(`CREATE DATABASE ${name} ENCODING 'LATIN1' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'`);
    try {
      const u = new URL(db.url);
      u.pathname = `/${name}`;
      const err = await storageError(() => postgresBackend({ url: u.toString(), store: "s" }), "backend-error");
      expect(err.message).toMatch(/LATIN1.*needs UTF8/);
      expect(err.details.encoding).toBe("LATIN1");
    } finally {
      await raw.query(`DROP DATABASE ${name}`);
    }
  });
});

describe("postgresBackend batches", () => {
  it("refuses a value above maxValueBytes before sending anything, and stays usable", async () => {
    const b = await open({ store: freshStore(), maxValueBytes: 1000 });
    await b.write("keep", bytes(1));
    const err = await storageError(() => b.write("big", new Uint8Array(1001)), "invalid-argument");
    expect(err.details).toMatchObject({ key: "big", bytes: 1001, limit: 1000 });
    await storageError(
      () => b.writeBatch([{ op: "delete", key: "keep" }, { op: "put", key: "big", value: new Uint8Array(1001) }]),
      "invalid-argument",
    );
    await b.write("edge", new Uint8Array(1000));
    expect(await b.list()).toEqual(["edge", "keep"]);
    await closeAll();
  });

  it("splits a batch larger than one statement into several inside one transaction: all or nothing", async () => {
    const db = await database();
    const store = freshStore();
    const b = await open({ store, maxStatementBytes: 200 });
    const ops = Array.from({ length: 20 }, (_, i) => ({ op: "put" as const, key: `k${String(i).padStart(2, "0")}`, value: new Uint8Array(50).fill(i) }));
    await b.writeBatch([...ops, { op: "delete", key: "k03" }]);
    expect((await b.list()).length).toBe(19);
    expect(Array.from((await b.read("k19")) ?? []).every((x) => x === 19)).toBe(true);
    // A real server failure in a late statement of the transaction rolls back the earlier ones.
    const raw = await db.raw();
    await raw.query(`CREATE FUNCTION "${db.schema}".boom() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.k = 'boom' THEN RAISE EXCEPTION 'boom rejected'; END IF; RETURN NEW; END $$`);
    // AFTER: opens refuse a BEFORE row trigger on our tables (it can rewrite a write).
    await raw.query(`CREATE TRIGGER boom AFTER INSERT ON "${db.schema}".graphrefly_storage FOR EACH ROW EXECUTE FUNCTION "${db.schema}".boom()`);
    try {
      const before = await b.list();
      const err = await storageError(
        () => b.writeBatch([...ops.map((o) => ({ ...o, key: `new-${o.key}` })), { op: "delete", key: "k00" }, { op: "put", key: "boom", value: bytes(1) }]),
        "backend-error",
      );
      expect(err.details.pgCode).toBe("P0001");
      expect(await b.list()).toEqual(before);
      await b.write("after", bytes(1));
      expect(await b.list()).toContain("after");
      // The same through the one-statement path.
      await storageError(() => b.writeBatch([{ op: "put", key: "x", value: bytes(1) }, { op: "put", key: "boom", value: bytes(1) }]), "backend-error");
      expect(await b.read("x")).toBeUndefined();
    } finally {
      await raw.query(`DROP TRIGGER boom ON "${db.schema}".graphrefly_storage`);
    }
    await closeAll();
  });
});

describe("postgresBackend faults", () => {
  it("names the cause of a wrong password, hiding it everywhere", async () => {
    const db = await database();
    const u = new URL(db.url);
    const wrong = "Wr0ng-Pa55word-xyz";
    u.password = wrong;
    const err = await storageError(() => postgresBackend({ url: u.toString(), store: "s" }), "backend-error");
    expect(err.details.pgCode).toBe("28P01");
    expect(err.message).toMatch(/authentication failed/);
    for (const secret of [wrong, db.password]) {
      expect(err.message).not.toContain(secret);
      expect(JSON.stringify(err.details)).not.toContain(secret);
      expect(inspect(err, { depth: 10 })).not.toContain(secret);
    }
  });

  it("names an unreachable server and a missing database; never shows the password", async () => {
    const db = await database();
    const port = await freeLoopbackPort(); // free: nothing listens there
    const unreachable = await storageError(
      () => postgresBackend({ url: `postgres://postgres:${db.password}@127.0.0.1:${port}/postgres`, store: "s", connectTimeoutMs: 5000 }),
      "backend-error",
    );
    expect(unreachable.details.osCode).toBe("ECONNREFUSED");
    expect(unreachable.message).toMatch(/connection refused/);
    const u = new URL(db.url);
    u.pathname = "/no_such_db";
    const missing = await storageError(() => postgresBackend({ url: u.toString(), store: "s" }), "backend-error");
    expect(missing.details.pgCode).toBe("3D000");
    expect(missing.message).toMatch(/does not exist/);
    // A URL that does not parse is refused before connecting, as an engine spec's (review s14 H).
    const garbled = await storageError(() => postgresBackend({ url: `postgres://postgres:${db.password}@[bad/x`, store: "s" }), "invalid-argument");
    for (const err of [unreachable, missing, garbled]) {
      expect(err.message).not.toContain(db.password);
      expect(JSON.stringify(err.details)).not.toContain(db.password);
      expect(inspect(err, { depth: 10 })).not.toContain(db.password);
    }
  });

  it("hides a password given in client settings", async () => {
    const db = await database();
    const u = new URL(db.url);
    const wrong = "settings-secret-123";
    const err = await storageError(
      () => postgresBackend({ connection: { host: u.hostname, port: Number(u.port), user: "postgres", password: wrong }, store: "s" }),
      "backend-error",
    );
    expect(inspect(err, { depth: 10 })).not.toContain(wrong);
  });

  it("stops a statement at statementTimeoutMs with a typed error, then carries on", async () => {
    const db = await database();
    const store = freshStore();
    const b = await open({ store, statementTimeoutMs: 200 });
    await b.write("k", bytes(1));
    const raw = await db.raw();
    await raw.query("BEGIN");
    // Holding the row lock of the key makes the next write wait; the server cancels it at the timeout.
    await raw.query(`SELECT 1 FROM "${db.schema}".graphrefly_storage WHERE store = $1 AND k = 'k' FOR UPDATE`, [store]);
    const err = await storageError(() => b.write("k", bytes(2)), "backend-error");
    expect(err.details.pgCode).toBe("57014");
    expect(err.message).toMatch(/statement timeout/);
    await raw.query("ROLLBACK");
    await b.write("k", bytes(3));
    expect(Array.from((await b.read("k")) ?? [])).toEqual([3]);
    await closeAll();
  });

  it("reconnects after its connection is terminated by the server", async () => {
    const db = await database();
    // Its own application_name: other test files share the server, their sessions are left alone.
    const app = `grf-cut-${db.schema}`;
    const b = await open({ store: freshStore(), url: withApp(db.url, app) });
    await b.write("k", bytes(1));
    const raw = await db.raw();
    await raw.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [app]);
    // The first call may meet the dead connection; the handle recovers by itself.
    const first = await errorOf(() => b.write("k", bytes(2)));
    if (first !== undefined) expect((first as StorageError).code).toBe("backend-error");
    await b.write("k", bytes(3));
    expect(Array.from((await b.read("k")) ?? [])).toEqual([3]);
    await closeAll();
  });
});

describe("postgresBackend read-only handles", () => {
  it("read a store while its writer holds it; writes are refused; no lease is taken", async () => {
    const store = freshStore();
    const w = await open({ store });
    await w.write("k", bytes(1));
    const r = await open({ store, readOnly: true });
    expect(r.lease).toBeUndefined();
    expect(r.readOnly).toBe(true);
    expect(Array.from((await r.read("k")) ?? [])).toEqual([1]);
    await w.write("j", bytes(2));
    expect(await r.list()).toEqual(["j", "k"]);
    await storageError(() => r.write("x", bytes(1)), "read-only");
    await storageError(() => r.delete("k"), "read-only");
    await storageError(() => r.writeBatch([]), "read-only");
    await w.write("after", bytes(3)); // the writer still owns the store
    await closeAll();
  });

  it("on a database without tables, read nothing and create nothing", async () => {
    const db = await database();
    const schema = `${db.schema}_ro`;
    const r = await postgresBackend({ url: db.url, schema, store: "s", readOnly: true });
    expect(await r.list()).toEqual([]);
    expect(await r.read("k")).toBeUndefined();
    const raw = await db.raw();
    expect((await raw.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema])).rowCount).toBe(0);
    // Tables created later are found by the same handle.
    const w = await postgresBackend({ url: db.url, schema, store: "s" });
    await w.write("k", bytes(5));
    expect(Array.from((await r.read("k")) ?? [])).toEqual([5]);
    await w.close();
    await r.close();
    await raw.query(`DROP SCHEMA "${schema}" CASCADE`);
  });
});

interface Proxy {
  readonly url: string;
  /** An outage, as while the database restarts: open connections are cut, new ones refused, until `up()`. */
  down(): void;
  up(): void;
  /** Holds back what clients send (as if their process were frozen), until `flow()`. */
  stall(): void;
  flow(): void;
  close(): Promise<void>;
}

/** A loopback proxy to the test server that lets each connection through after `delayMs`. */
async function loopbackProxy(url: string, delayMs = 0): Promise<Proxy> {
  const target = new URL(url);
  const sockets = new Set<Socket>();
  const pairs = new Map<Socket, Socket>();
  let isDown = false;
  const server = createServer((client) => {
    if (isDown) return void client.destroy();
    sockets.add(client);
    client.pause();
    setTimeout(() => {
      const upstream = connect(Number(target.port), target.hostname);
      sockets.add(upstream);
      pairs.set(client, upstream);
      for (const s of [client, upstream]) s.on("error", () => undefined);
      // A connection closed on one side, however, closes on the other (pipe only passes a clean end along).
      upstream.on("close", () => client.destroy());
      client.on("close", () => upstream.destroy());
      client.pipe(upstream).pipe(client);
      client.resume();
    }, delayMs);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const proxied = new URL(url);
  proxied.port = String((server.address() as { port: number }).port);
  const cutAll = (): void => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    pairs.clear();
  };
  return {
    url: proxied.toString(),
    down() {
      isDown = true;
      cutAll();
    },
    up() {
      isDown = false;
    },
    stall() {
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        client.pause();
      }
    },
    flow() {
      for (const [client, upstream] of pairs) client.pipe(upstream);
    },
    close: () =>
      new Promise<void>((r) => {
        cutAll();
        server.close(() => r());
      }),
  };
}

describe("postgresBackend lease", () => {
  it("opens with a lease shorter than connecting takes (the lease time bounds queries, not connecting)", async () => {
    const db = await database();
    const proxy = await loopbackProxy(db.url, 400);
    try {
      const b = await postgresBackend({ url: proxy.url, schema: db.schema, store: freshStore(), lease: { ttlMs: 300, renewEveryMs: 50 } });
      expectClockEpoch(b.lease?.epoch);
      await b.close();
    } finally {
      await proxy.close();
    }
  });

  it("refuses a second writer at once, naming the holder", async () => {
    const store = freshStore();
    const a = await open({ store, lease: { holder: "writer-A" } });
    const err = await storageError(() => open({ store, lease: { holder: "writer-B" } }), "store-locked");
    expect(err.details).toMatchObject({ store, holder: "writer-A", epoch: a.lease!.epoch });
    expect(err.message).toContain("writer-A");
    await a.write("k", bytes(1)); // the refused contender changed nothing
    await closeAll();
  });

  it("lets a waiting writer in when the holder closes, with the next epoch", async () => {
    const store = freshStore();
    const a = await open({ store, lease: { holder: "A" } });
    await a.write("k", bytes(1));
    const waiting = open({ store, lease: { holder: "B", waitMs: 30_000 } });
    await sleep(50);
    await a.close();
    const b = await waiting;
    expect(b.lease).toEqual({ holder: "B", epoch: a.lease!.epoch + 1 });
    expect(Array.from((await b.read("k")) ?? [])).toEqual([1]);
    await b.write("k", bytes(2));
    await closeAll();
  });

  it("a waiting writer keeps waiting through a database outage (connections cut and refused), then takes over", async () => {
    const db = await database();
    const store = freshStore();
    const a = await open({ store, lease: { holder: "A" } });
    await a.write("k", bytes(1));
    const proxy = await loopbackProxy(db.url);
    try {
      const waiting = open({ store, url: proxy.url, lease: { holder: "B", waitMs: 30_000 } });
      waiting.catch(() => undefined);
      await sleep(300); // B is waiting: it looked at the lease (250 ms apart)
      proxy.down();
      await sleep(800); // several looks fail: nothing listens (as while the server restarts)
      proxy.up();
      await sleep(300);
      await a.close();
      const b = await waiting;
      expect(b.lease).toEqual({ holder: "B", epoch: a.lease!.epoch + 1 });
      expect(Array.from((await b.read("k")) ?? [])).toEqual([1]);
    } finally {
      await closeAll();
      await proxy.close();
    }
  });

  it("a holder frozen inside a multi-statement write does not hold the store: the server ends its transaction after the lease time", async () => {
    const db = await database();
    const store = freshStore();
    const app = `grf-frozen-${db.schema}`;
    const proxy = await loopbackProxy(withApp(db.url, app));
    try {
      // Every row its own statement: the batch is one long transaction.
      const a = await open({ store, url: proxy.url, maxStatementBytes: 1, lease: { holder: "A", ttlMs: 1500, renewEveryMs: 300 } });
      const ops = Array.from({ length: 20_000 }, (_, i) => ({ op: "put" as const, key: `k${i}`, value: bytes(i % 256) }));
      const writing = a.writeBatch(ops);
      writing.catch(() => undefined);
      const raw = await db.raw();
      // Freeze it between two statements of its transaction (as SIGSTOP would): it then holds the lease row's lock.
      await until(
        async () => {
          proxy.stall();
          await sleep(20);
          const r = await raw.query("SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle in transaction'", [app]);
          if (r.rowCount === 1) return true;
          proxy.flow();
          await sleep(5);
          return false;
        },
        "the writer frozen inside its transaction",
        { timeoutMs: 20_000, intervalMs: 1 },
      );
      const b = await open({ store, lease: { holder: "B", waitMs: 30_000 } });
      expect(b.lease?.epoch).toBe(a.lease!.epoch + 1);
      proxy.flow();
      await errorOf(() => writing); // whatever it says, nothing of the batch is stored
      expect(await b.list()).toEqual([]);
    } finally {
      proxy.flow();
      await closeAll();
      await proxy.close();
    }
  });

  it("a waiting writer whose wait ends during an outage fails with the connection error", async () => {
    const db = await database();
    const store = freshStore();
    await open({ store, lease: { holder: "A" } });
    const proxy = await loopbackProxy(db.url);
    try {
      const waiting = open({ store, url: proxy.url, lease: { holder: "B", waitMs: 1000 } });
      waiting.catch(() => undefined);
      await sleep(300);
      proxy.down();
      const err = await storageError(() => waiting, "backend-error");
      expect(err.message).toMatch(/connect|terminated|ECONN/i);
    } finally {
      await closeAll();
      await proxy.close();
    }
  });

  it("is renewed in the background: the holder keeps the store past several lease times", async () => {
    const store = freshStore();
    const a = await open({ store, lease: { holder: "A", ttlMs: 1500, renewEveryMs: 100 } });
    const first = a.lease!.epoch;
    for (let i = 0; i < 5; i++) {
      await sleep(600);
      await a.write(`k${i}`, bytes(i));
    }
    await storageError(() => open({ store, lease: { holder: "B" } }), "store-locked");
    expect(a.lease?.epoch).toBe(first);
    await closeAll();
  });

  it("fences a paused holder: after expiry another takes over, and the paused one's late write lands nowhere", async () => {
    const db = await database();
    const store = freshStore();
    const a = await open({ store, lease: { holder: "A", ttlMs: 1000, renewEveryMs: 100 } });
    await a.write("k", bytes(1));
    simulatePausedHolder(a); // frozen: no renewal, no deadline check of its own
    const b = await open({ store, lease: { holder: "B", waitMs: 30_000, ttlMs: 10_000 } });
    expect(b.lease).toEqual({ holder: "B", epoch: a.lease!.epoch + 1 });
    expect(Array.from((await b.read("k")) ?? [])).toEqual([1]);
    await b.write("k", bytes(2));
    // A wakes up and writes: the database refuses it inside the write transaction.
    const err = await storageError(() => a.write("k", bytes(99)), "not-owner");
    expect(err.details).toMatchObject({ store, ownHolder: "A", ownEpoch: a.lease!.epoch, holder: "B", epoch: a.lease!.epoch + 1 });
    expect(err.message).toContain('"B"');
    await storageError(() => a.writeBatch([{ op: "put", key: "other", value: bytes(9) }]), "not-owner");
    await storageError(() => a.delete("k"), "not-owner");
    expect(Array.from((await b.read("k")) ?? [])).toEqual([2]);
    expect(await b.read("other")).toBeUndefined();
    const raw = await db.raw();
    const row = await raw.query(`SELECT holder, epoch::float8 AS epoch FROM "${db.schema}".graphrefly_storage_lease WHERE store = $1`, [store]);
    expect(row.rows).toEqual([{ holder: "B", epoch: a.lease!.epoch + 1 }]);
    // Its close does not release B's lease.
    await a.close();
    await storageError(() => open({ store, lease: { holder: "C" } }), "store-locked");
    await closeAll();
  });

  it("stops writing by itself once it cannot renew before its deadline", async () => {
    const db = await database();
    const store = freshStore();
    const a = await open({ store, lease: { holder: "A", ttlMs: 1000, renewEveryMs: 100 } });
    await a.write("k", bytes(1));
    const raw = await db.raw();
    // Renewals now wait on this row lock (and time out): the holder cannot renew.
    await raw.query("BEGIN");
    await raw.query(`SELECT 1 FROM "${db.schema}".graphrefly_storage_lease WHERE store = $1 FOR UPDATE`, [store]);
    await sleep(1200); // more than the lease time since the lock was taken
    const err = await storageError(() => a.write("k", bytes(2)), "not-owner");
    // Refused either by its own deadline or, when a renewal that was waiting on the lock moved that deadline, by the
    // database's fence on the expired lease row: both refuse the write and store nothing of it.
    expect(err.message).toMatch(/ran out|taken over or expired/);
    await raw.query("ROLLBACK");
    await storageError(() => a.write("k", bytes(3)), "not-owner");
    expect(Array.from((await a.read("k")) ?? [])).toEqual([1]);
    await closeAll();
  });

  it("takes over from a holder that vanished without closing, once its lease expires", async () => {
    const store = freshStore();
    const a = await open({ store, lease: { holder: "A", ttlMs: 1000, renewEveryMs: 100 } });
    await a.write("k", bytes(1));
    simulatePausedHolder(a);
    await until(async () => (await errorOf(() => open({ store, lease: { holder: "B" } }))) === undefined, "B takes the store over", {
      timeoutMs: 20_000,
      intervalMs: 50,
    });
    const b = opened[opened.length - 1] as PostgresBackend;
    expect(b.lease).toEqual({ holder: "B", epoch: a.lease!.epoch + 1 });
    await storageError(() => a.write("k", bytes(9)), "not-owner");
    await closeAll();
  });
});

describe("postgresBackend raw data", () => {
  it("writes rows any SQL client can read: store, key text, value bytea", async () => {
    const db = await database();
    const store = freshStore();
    const b = await open({ store });
    await b.write("snap/g", Buffer.from('{"a":1}'));
    const raw = await db.raw();
    const r = await raw.query<{ k: string; v: Buffer }>(`SELECT k, v FROM "${db.schema}".graphrefly_storage WHERE store = $1`, [store]);
    expect(r.rows.map((x) => [x.k, x.v.toString()])).toEqual([["snap/g", '{"a":1}']]);
    expect(text(await b.read("snap/g"))).toBe('{"a":1}');
    await closeAll();
  });
});
