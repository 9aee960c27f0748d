/**
 * A contender meeting a lapsed lease whose row a running statement of the holder still locks (review s13b F1). Each
 * try to take it waited on the row lock until the lease connection's client-side query_timeout dropped the client,
 * and the server kept that lock wait running (one abandoned session per try); the wait ended in "Query read
 * timeout" (backend-error), not store-locked. Lock waits now end on the server (lock_timeout); a holder's statement
 * the server is still running is left to finish, and the contender's store-locked says why.
 */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";
import { errorOf } from "../support/wait.js";

const database = useTestDatabase();
const open = useBackends(database, "lock-waits");

describe("a contender beside a holder's statement that holds the lapsed lease row", () => {
  it("leaves no lock wait behind on the server, lets the statement finish, and says why it is locked out", async () => {
    const db = await database();
    const a = await open({ lease: { holder: "A", ttlMs: 1_000 } });
    const raw = await db.raw();
    const s = `"${db.schema}"`;
    // The server takes 4 s over this row (a slow disk, a big value) while the write holds the lease row's lock.
    await raw.query(`CREATE OR REPLACE FUNCTION ${s}.slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.k = 'slow' THEN PERFORM pg_sleep(4); END IF; RETURN NEW; END $$`);
    // AFTER: opens refuse a BEFORE row trigger on our tables (it can rewrite a write), and the contender opens meanwhile.
    await raw.query(`CREATE OR REPLACE TRIGGER slow_row AFTER INSERT OR UPDATE ON ${s}.graphrefly_storage FOR EACH ROW EXECUTE FUNCTION ${s}.slow_row()`);
    const slow = a.write("slow", Uint8Array.of(1)).then(
      () => "resolved",
      (err: unknown) => err,
    );
    const url = new URL(db.url);
    url.searchParams.set("application_name", "contender-b");
    const b = await errorOf(() => open({ store: a.store, url: url.href, lease: { holder: "B", ttlMs: 1_000, waitMs: 2_500 } }));
    expect(b).toBeInstanceOf(StorageError);
    expect((b as StorageError).code).toBe("store-locked");
    expect((b as StorageError).details).toMatchObject({ holder: "A", reason: expect.stringMatching(/still running/) });
    const waits = await raw.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'contender-b' AND wait_event_type = 'Lock'",
    );
    expect(waits.rows[0].n).toBe(0);
    expect(await slow).toBe("resolved");
    expect(await a.read("slow")).toEqual(Uint8Array.of(1));
  }, 60_000);
});
