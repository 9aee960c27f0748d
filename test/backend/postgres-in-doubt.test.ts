/**
 * Writes whose connection fails after they were sent, on the real server: the commit may have happened with its
 * answer lost. The backend says so (`details.inDoubt`), and says nothing of the kind when the failure proves that
 * nothing was stored.
 */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";
import { useAnswerLosingProxies } from "../support/postgres-proxy.js";
import { errorOf, until } from "../support/wait.js";

const database = useTestDatabase();
// Proxies first: after-each hooks run last-registered first, and a proxy closes once its connections are gone.
const answerLosingProxy = useAnswerLosingProxies();
const open = useBackends(database, "doubt");

async function stored(store: string, key: string): Promise<boolean> {
  const db = await database();
  const raw = await db.raw();
  const r = await raw.query(`SELECT 1 FROM "${db.schema}".graphrefly_storage WHERE store = $1 AND k = $2`, [store, key]);
  await raw.end();
  return r.rowCount === 1;
}

describe("postgresBackend writes whose answer was lost", () => {
  it("a write committed on the server whose answer never came back rejects as in doubt", async () => {
    const db = await database();
    const proxy = await answerLosingProxy(db.url);
    const a = await open({ url: proxy.url, lease: { ttlMs: 30_000 } });
    await a.write("first", Uint8Array.of(1));
    proxy.loseAnswers();
    const writing = errorOf(() => a.write("k", Uint8Array.of(2)));
    await until(() => stored(a.store, "k"), "the write committed on the server", { timeoutMs: 10_000, intervalMs: 20 });
    proxy.cut();
    const err = await writing;
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("backend-error");
    expect((err as StorageError).details.inDoubt).toBe(true);
    expect((err as StorageError).message).toMatch(/may or may not have been stored/);
  });

  it("a transaction cut before its COMMIT went out stored nothing, and does not say it is in doubt", async () => {
    const db = await database();
    const app = `grf-doubt-${db.schema}`;
    const u = new URL(db.url);
    u.searchParams.set("application_name", app);
    // Every row its own statement: a batch is a transaction of several.
    const a = await open({ url: u.href, maxStatementBytes: 1, lease: { ttlMs: 30_000 } });
    const raw = await db.raw();
    await raw.query(`CREATE FUNCTION "${db.schema}".slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.k = 'slow' THEN PERFORM pg_sleep(30); END IF; RETURN NEW; END $$`);
    // AFTER: opens refuse a BEFORE row trigger on our tables (it can rewrite a write).
    await raw.query(`CREATE TRIGGER slow_row AFTER INSERT OR UPDATE ON "${db.schema}".graphrefly_storage FOR EACH ROW EXECUTE FUNCTION "${db.schema}".slow_row()`);
    const writing = errorOf(() =>
      a.writeBatch([
        { op: "put", key: "a", value: Uint8Array.of(1) },
        { op: "put", key: "slow", value: Uint8Array.of(2) },
      ]),
    );
    const active = `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND wait_event = 'PgSleep'`;
    await until(async () => (await raw.query(active, [app])).rowCount === 1, "the batch is inside its transaction", {
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    await raw.query(`SELECT pg_terminate_backend(pid) FROM (${active}) AS s`, [app]);
    const err = await writing;
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("backend-error");
    expect((err as StorageError).details.inDoubt).toBeUndefined();
    expect((err as StorageError).details.pgCode).toBe("57P01");
    expect((err as StorageError).message).toMatch(/an administrator terminated it/);
    expect(await stored(a.store, "a")).toBe(false);
    // The handle carries on, on a new connection.
    await a.write("after", Uint8Array.of(3));
    expect(await a.read("after")).toEqual(Uint8Array.of(3));
  });
});
