/**
 * What a PostgreSQL test file needs: the run's server (waiting until it is up) and a schema of its own, dropped at
 * the end, so files running in parallel never see each other's tables.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, afterEach, inject } from "vitest";
import { waitForServer } from "../../bench/lib/postgres-server.js";
import { postgresBackend, type PostgresBackend, type PostgresBackendOptions } from "../../src/backend/postgres.js";

export interface TestDatabase {
  readonly url: string;
  /** This file's schema (a plain identifier). */
  readonly schema: string;
  /** The server's password ("" when PG_URL has none): tests check it never leaks. */
  readonly password: string;
  /** A raw client on the same database, for setting up and inspecting tables. */
  raw(): Promise<pg.Client>;
}

/** Registers afterAll cleanup; call at the top level of a test file. */
export function useTestDatabase(): () => Promise<TestDatabase> {
  const url = inject("pgUrl");
  const root = inject("pgRoot");
  const schema = `t_${randomBytes(6).toString("hex")}`;
  const clients: pg.Client[] = [];
  let ready: Promise<void> | undefined;
  const db: TestDatabase = {
    url,
    schema,
    password: decodeURIComponent(new URL(url).password),
    async raw() {
      const c = new pg.Client({ connectionString: url });
      c.on("error", () => undefined);
      await c.connect();
      clients.push(c);
      return c;
    },
  };
  afterAll(async () => {
    if (ready !== undefined) {
      const c = await db.raw();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
    await Promise.all(clients.splice(0).map((c) => c.end().catch(() => undefined)));
  });
  return async () => {
    ready ??= root === "" ? Promise.resolve() : waitForServer(root);
    await ready;
    return db;
  };
}

/**
 * Opens backends on the test database, each under a new store named `<prefix>-<n>` unless the options name one,
 * and closes every one after each test (registers afterEach; call at the top level of a test file). A close that
 * fails is not what these tests check: it is ignored.
 */
export function useBackends(
  database: () => Promise<TestDatabase>,
  prefix: string,
): (opts?: Partial<PostgresBackendOptions>) => Promise<PostgresBackend> {
  let counter = 0;
  const opened: PostgresBackend[] = [];
  afterEach(async () => {
    for (const b of opened.splice(0)) await b.close().catch(() => undefined);
  });
  return async (opts = {}) => {
    const db = await database();
    const b = await postgresBackend({ url: db.url, schema: db.schema, store: `${prefix}-${counter++}`, ...opts });
    opened.push(b);
    return b;
  };
}
