/**
 * Opening a PostgreSQL writer while the database is down: a writer that waits for the store (lease.waitMs) outlasts
 * the outage from its very first statement, as its wait for the lease does; one that does not wait fails at once.
 * The database is "down" while nothing listens on the port the writer dials; a proxy to the real server then starts
 * listening there (test/support/postgres-proxy.ts).
 */
import { afterEach, describe, expect, it } from "vitest";
import { freeLoopbackPort } from "../../bench/lib/postgres-server.js";
import { postgresBackend, type PostgresBackend } from "../../src/backend/postgres.js";
import { StorageError } from "../../src/errors.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { useAnswerLosingProxies } from "../support/postgres-proxy.js";
import { errorOf, sleep } from "../support/wait.js";

const database = useTestDatabase();
const proxy = useAnswerLosingProxies();
const opened: PostgresBackend[] = [];
afterEach(async () => {
  for (const b of opened.splice(0)) await b.close().catch(() => undefined);
});

/** The test server's URL, dialling `port` on loopback instead. */
function atPort(url: string, port: number): string {
  const u = new URL(url);
  u.hostname = "127.0.0.1";
  u.port = String(port);
  return u.href;
}

describe("postgresBackend open while the database is down", () => {
  it("a writer waiting for the store (lease.waitMs) keeps trying and opens once the database is back", async () => {
    const db = await database();
    const port = await freeLoopbackPort();
    const opening = postgresBackend({ url: atPort(db.url, port), schema: db.schema, store: "outage", lease: { holder: "A", waitMs: 30_000 } });
    const outcome = opening.then(
      (b) => (opened.push(b), "opened"),
      (err: unknown) => err,
    );
    await sleep(600); // several refused connections
    await proxy(db.url, port); // the database is back
    expect(await outcome).toBe("opened");
    const b = opened[0]!;
    await b.write("k", Uint8Array.of(7));
    expect(await b.read("k")).toEqual(Uint8Array.of(7));
  });

  it("without lease.waitMs a refused connection fails the open at once, as backend-error naming the cause", async () => {
    const db = await database();
    const port = await freeLoopbackPort();
    const err = await errorOf(() => postgresBackend({ url: atPort(db.url, port), schema: db.schema, store: "outage-now" }));
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("backend-error");
    expect((err as StorageError).details).toMatchObject({ osCode: "ECONNREFUSED" });
  });

  it("a wait that ends before the database is back fails with the connection's error, not store-locked", async () => {
    const db = await database();
    const port = await freeLoopbackPort();
    const err = await errorOf(() =>
      postgresBackend({ url: atPort(db.url, port), schema: db.schema, store: "outage-long", lease: { holder: "A", waitMs: 400 } }),
    );
    expect((err as StorageError).code).toBe("backend-error");
    expect((err as StorageError).details).toMatchObject({ osCode: "ECONNREFUSED" });
  });

  // Before, any error without a SQLSTATE counted as an outage: these writers waited out their whole wait.
  it("a waiting writer reports a final error at once: a missing password is not an outage", async () => {
    const db = await database();
    const u = new URL(db.url);
    u.password = "";
    const err = await errorOf(() =>
      postgresBackend({ url: u.href, schema: db.schema, store: "no-password", lease: { holder: "A", waitMs: 600_000 } }),
    );
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("backend-error");
    expect((err as StorageError).message).toMatch(/password/);
  }, 30_000);

  it("a waiting writer reports a final error at once: a store of a newer schema version is refused, not waited on", async () => {
    const db = await database();
    const schema = `${db.schema}_newer`;
    const b = await postgresBackend({ url: db.url, schema, store: "s" });
    await b.close();
    const raw = await db.raw();
    try {
      await raw.query(`UPDATE "${schema}".graphrefly_storage_version SET version = 2`);
      const err = await errorOf(() => postgresBackend({ url: db.url, schema, store: "s", lease: { holder: "A", waitMs: 600_000 } }));
      expect((err as StorageError).code).toBe("backend-error");
      expect((err as StorageError).details).toMatchObject({ schemaVersion: 2 });
    } finally {
      await raw.query(`DROP SCHEMA "${schema}" CASCADE`);
    }
  }, 30_000);
});
