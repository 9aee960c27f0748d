/**
 * An engine's actor replacing a lost one (its worker terminated here) reopens a PostgreSQL store without creating
 * tables, as file and SQLite stores reopen (backend/reopen.ts). Before, the reopen ran the first open's schema setup:
 * tables dropped since the lost worker's hold were made again, and only then the tenure check refused the store
 * (not-owner, held-meanwhile), leaving an empty store nobody asked for. Now the reopen finds the tables gone and
 * fails with the same final refusal (details.tables "missing"), creating nothing; tiers opened afterwards open the
 * store anew (creating it, as any first open does).
 *
 * Real parts: PostgreSQL (test/support/postgres-db.ts), the engine's worker thread (terminated through its gate).
 * Short lease: the revived actor's open does not wait on the dead worker's lease (its table is dropped anyway).
 */
import { expect, it, onTestFinished } from "vitest";
import { postgresBackend, reopenPostgresBackend } from "../../src/backend/postgres.js";
import type { StoreSpec } from "../../src/engine/index.js";
import { openFaultEngine } from "../support/faults.js";
import { useTestDatabase } from "../support/postgres-db.js";

const database = useTestDatabase();

/** How a promise settled: "resolved" or "rejected <code> <details.reason> <details.tables>". */
function settled(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => "resolved",
    (e: unknown) => {
      const err = e as { code?: string; details?: { reason?: string; tables?: string } };
      return `rejected ${String(err.code)} ${String(err.details?.reason)} ${String(err.details?.tables)}`;
    },
  );
}

/** The table set's tables present in `schema` (of `table`, `table`_lease, `table`_version). */
async function tablesIn(schema: string, table: string): Promise<string[]> {
  const db = await database();
  const c = await db.raw();
  const r = await c.query<{ relname: string }>(
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = ANY($2) ORDER BY 1",
    [schema, [table, `${table}_lease`, `${table}_version`]],
  );
  return r.rows.map((row) => row.relname);
}

async function dropTables(schema: string, table: string): Promise<void> {
  const db = await database();
  const c = await db.raw();
  const q = (t: string) => `"${schema}"."${t}"`;
  await c.query(`DROP TABLE ${q(table)}, ${q(`${table}_lease`)}, ${q(`${table}_version`)}`);
}

it("a revived actor whose PostgreSQL tables were dropped creates none: the tiers hear not-owner, tiers opened later open the store anew", async () => {
  const db = await database();
  const table = "revive_dropped";
  const spec: StoreSpec = { kind: "postgres", url: db.url, schema: db.schema, table, store: "s", lease: { holder: "engine", ttlMs: 1_000 } };
  const engine = openFaultEngine({ threads: 1, onError: () => {} });
  onTestFinished(() => engine.close().catch(() => undefined));
  const kv = engine.kv<string>(spec, { retry: { initialMs: 5, maxMs: 20 } });
  kv.save("a", "engine");
  await kv.flush();
  expect(await tablesIn(db.schema, table)).toEqual([table, `${table}_lease`, `${table}_version`]);
  await engine.injectFault(spec, "terminate");
  await dropTables(db.schema, table);
  kv.save("a", "after"); // opens the store again through a new actor
  expect(await settled(kv.flush())).toBe("rejected not-owner held-meanwhile missing");
  // Before: the reopen made the tables again (then the tenure check refused the store it had just made).
  expect(await tablesIn(db.schema, table)).toEqual([]);
  expect(() => kv.save("a", "stale")).toThrow(expect.objectContaining({ code: "not-owner" }) as Error);
  await settled(kv.close());
  // A tier opened now opens the store as a first open does (its tables created): nothing of the lost one is there.
  const fresh = engine.kv<string>(spec);
  expect(await fresh.load("a")).toBeUndefined();
  fresh.save("a", "fresh");
  await fresh.flush();
  const ro = await postgresBackend({ url: db.url, schema: db.schema, table, store: "s", readOnly: true });
  onTestFinished(() => ro.close());
  expect(new TextDecoder().decode(await ro.read("a"))).toContain("fresh");
}, 60_000);

it("reopenPostgresBackend creates no table and refuses a writer's reopen of tables gone; a read-only reopen reads an empty store", async () => {
  const db = await database();
  const table = "reopen_none";
  const at = { url: db.url, schema: db.schema, table, store: "s" };
  const err = await reopenPostgresBackend({ ...at, lease: { ttlMs: 1_000 } }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toMatchObject({ code: "not-owner", details: { reason: "held-meanwhile", tables: "missing", store: "s" } });
  expect(await tablesIn(db.schema, table)).toEqual([]);
  const ro = await reopenPostgresBackend({ ...at, readOnly: true });
  onTestFinished(() => ro.close());
  expect(await ro.list()).toEqual([]);
  expect(await tablesIn(db.schema, table)).toEqual([]);
}, 60_000);
