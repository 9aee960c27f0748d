/**
 * PostgreSQL stores through the engine (issue 15): the store spec, its key (one actor per store, never the password),
 * the connection living in the actor, the lease seen through the engine (store-locked, fencing) and the password
 * kept out of stats, onError and errors.
 */
import { inspect } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, storeKey, type StorageEngine } from "../../src/engine/index.js";
import type { PostgresStoreSpec, StoreSpec } from "../../src/engine/protocol.js";
import { StorageError } from "../../src/errors.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { errorOf, syncErrorOf, until } from "../support/wait.js";

const database = useTestDatabase();

const engines: StorageEngine[] = [];
function engine(onError?: (err: Error, ctx: { store: StoreSpec; tier?: string }) => void): StorageEngine {
  const e = openStorageEngine({ threads: 1, ...(onError ? { onError } : {}) });
  engines.push(e);
  return e;
}
afterEach(async () => {
  for (const e of engines.splice(0).reverse()) await e.close().catch(() => undefined);
});

async function spec(store: string, extra: Partial<PostgresStoreSpec> = {}): Promise<PostgresStoreSpec> {
  const db = await database();
  return { kind: "postgres", url: db.url, store, schema: db.schema, ...extra };
}

function expectCode(err: unknown, code: string): StorageError {
  expect(err, `expected StorageError(${code})`).toBeInstanceOf(StorageError);
  expect((err as StorageError).code).toBe(code);
  return err as StorageError;
}

const text = (v: Uint8Array | undefined): string | undefined => (v === undefined ? undefined : Buffer.from(v).toString());

describe("postgres store spec", () => {
  it("has a key from server, database, user, schema, table and store, never the password", () => {
    const base: PostgresStoreSpec = { kind: "postgres", url: "postgres://app:s3cret@db.example:5432/main", store: "orders" };
    const key = storeKey(base);
    expect(key).not.toContain("s3cret");
    expect(key).toContain("db.example");
    expect(key).toContain("orders");
    // Defaults filled in: the same store under another password, without the default port or schema, is one store.
    expect(storeKey({ ...base, url: "postgres://app:other@db.example/main" })).toBe(key);
    expect(storeKey({ ...base, schema: "public", table: "graphrefly_storage" })).toBe(key);
    // Anything that selects another store, or a read-only handle, is another key.
    const others = [
      { ...base, store: "orders2" },
      { ...base, store: "orders/x" },
      { ...base, schema: "other" },
      { ...base, table: "other" },
      { ...base, readOnly: true },
      { ...base, url: "postgres://app:s3cret@db.example:5433/main" },
      { ...base, url: "postgres://app:s3cret@db2.example:5432/main" },
      { ...base, url: "postgres://app:s3cret@db.example:5432/other" },
      { ...base, url: "postgres://bob:s3cret@db.example:5432/main" },
    ];
    const keys = new Set([key, ...others.map((s) => storeKey(s))]);
    expect(keys.size).toBe(others.length + 1);
  });

  it("refuses a bad spec in the caller's thread with a typed error that does not repeat the URL", async () => {
    const e = engine();
    const hostile = await spec("s", { schema: 'x"; drop table t; --' });
    expectCode(syncErrorOf(() => e.kv(hostile)), "invalid-argument");
    const garbled = expectCode(syncErrorOf(() => e.kv({ kind: "postgres", url: "postgres://u:pw-123@[bad", store: "s" })), "invalid-argument");
    expect(inspect(garbled, { depth: 10 })).not.toContain("pw-123");
    expect(syncErrorOf(() => e.kv({ kind: "postgres", url: "postgres://h/db", store: "" }))).toBeInstanceOf(TypeError);
  });
});

describe("postgres stores through the engine", () => {
  it("writes through the actor's connection; another engine, as another process would, reads the data back", async () => {
    const db = await database();
    const store = await spec("roundtrip");
    const e1 = engine();
    const kv = e1.kv<{ n: number }>(store, { name: "kv" });
    kv.save("a", { n: 1 });
    kv.save("b/%_\\", { n: 2 });
    await kv.flush();
    expect(await kv.load("a")).toEqual({ n: 1 });
    await e1.close();

    const raw = await db.raw();
    const rows = await raw.query<{ k: string }>(`SELECT k FROM "${db.schema}".graphrefly_storage WHERE store = $1 ORDER BY k`, ["roundtrip"]);
    expect(rows.rows.map((r) => r.k)).toEqual(["a", "b/%_\\"]);

    const e2 = engine();
    const again = e2.kv<{ n: number }>(store, { name: "kv" });
    expect(await again.list()).toEqual(["a", "b/%_\\"]);
    expect(await again.load("b/%_\\")).toEqual({ n: 2 });
  });

  it("reports the store in stats and onError without the password", async () => {
    const db = await database();
    const heard: Array<{ err: Error; store: StoreSpec }> = [];
    const e = engine((err, ctx) => heard.push({ err, store: ctx.store }));
    const good = await spec("stats");
    const kv = e.kv<number>(good, { name: "kv" });
    kv.save("x", 1);
    await kv.flush();
    const [s] = await e.stats();
    expect(s?.store.kind).toBe("postgres");
    expect((s?.store as PostgresStoreSpec).url).toBe(db.url.replace(`:${db.password}@`, "@"));
    expect(JSON.stringify(s)).not.toContain(db.password);
    expect(storeKey(s!.store)).toBe(storeKey(good));

    // A wrong password (another engine: in this one the key, which has no password, names the open store): the open
    // fails in the actor; the error names the cause, never either password.
    const wrong = "wrong-pw-4711";
    const u = new URL(db.url);
    u.password = wrong;
    const bad = await spec("stats", { url: u.href });
    const e2 = engine((err, ctx) => heard.push({ err, store: ctx.store }));
    const err = expectCode(await errorOf(() => e2.kv<number>(bad, { name: "kv" }).load("x")), "backend-error");
    expect(err.details.pgCode).toBe("28P01");
    for (const secret of [wrong, db.password]) {
      expect(inspect(err, { depth: 10 })).not.toContain(secret);
      expect(JSON.stringify(heard.map((h) => ({ m: h.err.message, d: (h.err as StorageError).details, s: h.store })))).not.toContain(secret);
    }
    expect(heard.some((h) => (h.err as StorageError).code === "backend-error")).toBe(true);
  });

  it("one writer per store: a second engine's writer is refused with store-locked naming the holder; a read-only spec reads the live store and refuses writes", async () => {
    const store = await spec("locked");
    const writer = engine().kv<number>(store, { name: "kv" });
    writer.save("k", 7);
    await writer.flush();

    const other = engine();
    const refused = expectCode(await errorOf(() => other.kv<number>(store, { name: "kv" }).load("k")), "store-locked");
    expect(typeof refused.details.holder).toBe("string");

    const reader = other.kv<number>({ ...store, readOnly: true }, { name: "kv" });
    expect(await reader.load("k")).toBe(7);
    writer.save("k", 8);
    await writer.flush();
    expect(await reader.load("k")).toBe(8);
    expectCode(syncErrorOf(() => reader.save("k", 9)), "read-only"); // refused when offered, as inline
    await reader.flush();
    expect(await reader.load("k")).toBe(8);
  });

  it("an actor whose lease was taken over is fenced: its flush rejects with not-owner and nothing of it lands", async () => {
    const db = await database();
    const store = await spec("fenced");
    const heard: unknown[] = [];
    const e = engine((err) => heard.push((err as StorageError).code));
    const kv = e.kv<number>(store, { name: "kv" });
    kv.save("before", 1);
    await kv.flush();

    // Another machine takes the store over (as after this writer's lease ran out).
    const raw = await db.raw();
    await raw.query(`UPDATE "${db.schema}".graphrefly_storage_lease SET holder = 'thief', epoch = epoch + 1 WHERE store = $1`, ["fenced"]);

    kv.save("after", 2);
    const err = expectCode(await errorOf(() => kv.flush()), "not-owner");
    expect(err.details.holder).toBe("thief");
    // The actor stays fenced: once the main thread heard it (onError, once), later writes throw it; reads work.
    await until(() => heard.includes("not-owner"), "onError heard not-owner");
    expectCode(syncErrorOf(() => kv.save("later", 3)), "not-owner");
    expectCode(await errorOf(() => kv.flush()), "not-owner");
    expect(heard).toEqual(["not-owner"]);
    expect(await kv.load("before")).toBe(1);
    const rows = await raw.query<{ k: string }>(`SELECT k FROM "${db.schema}".graphrefly_storage WHERE store = $1 ORDER BY k`, ["fenced"]);
    expect(rows.rows.map((r) => r.k)).toEqual(["before"]);
  });
});
