/**
 * The PostgreSQL lease at its edges, on the real server: writes that run longer than the lease (the server is slow,
 * the value is big), and what a writer and its contenders see around them.
 */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";
import { errorOf } from "../support/wait.js";

const database = useTestDatabase();
const open = useBackends(database, "edges");

/** A trigger that makes the server take `seconds` over every row written under key `key` (a slow disk, a big value).
 * Call once a writer opened (it creates the tables). */
async function slowKey(key: string, seconds: number): Promise<void> {
  const db = await database();
  const raw = await db.raw();
  const s = `"${db.schema}"`;
  await raw.query(`CREATE OR REPLACE FUNCTION ${s}.slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.k = '${key}' THEN PERFORM pg_sleep(${seconds}); END IF; RETURN NEW; END $$`);
  // AFTER: opens refuse a BEFORE row trigger on our tables (it can rewrite a write), and contenders open meanwhile.
  await raw.query(`CREATE OR REPLACE TRIGGER slow_row AFTER INSERT OR UPDATE ON ${s}.graphrefly_storage FOR EACH ROW EXECUTE FUNCTION ${s}.slow_row()`);
}

describe("postgresBackend lease: writes longer than the lease", () => {
  it("a write the server takes longer than the lease over does not cost its writer the store", async () => {
    const a = await open({ lease: { holder: "A", ttlMs: 1000, renewEveryMs: 100 } });
    await slowKey("slow", 1.6);
    await a.write("before", Uint8Array.of(1));
    // The write holds the lease row's lock while the server works, so renewals wait; the lease's expiry, set as the
    // write began, passes before it commits. Nobody could take the store meanwhile: the writer keeps it.
    await a.write("slow", Uint8Array.of(2));
    const err = await errorOf(() => a.write("after", Uint8Array.of(3)));
    expect(err instanceof StorageError ? `${err.code}: ${err.message}` : err).toBeUndefined();
    expect(await a.readMany(["before", "slow", "after"])).toEqual([Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)]);
    // Still its store: a contender is refused, as while any live lease.
    const b = await errorOf(() => open({ store: a.store, lease: { holder: "B" } }));
    expect((b as StorageError).code).toBe("store-locked");
  });

  it("a contender waiting through such a write: one writer at a time, whichever holds the store after it", async () => {
    const db = await database();
    const a = await open({ lease: { holder: "A", ttlMs: 1000, renewEveryMs: 100 } });
    await slowKey("slow2", 1.6);
    const slow = a.write("slow2", Uint8Array.of(1));
    await new Promise((r) => setTimeout(r, 300)); // the write runs on the server
    const waiting = open({ store: a.store, lease: { holder: "B", waitMs: 30_000 } });
    waiting.catch(() => undefined);
    await slow; // committed under A's lease: B waited for its lock
    const after = await errorOf(() => a.write("after", Uint8Array.of(2)));
    if (after !== undefined) expect((after as StorageError).code).toBe("not-owner");
    await a.close();
    const b = await waiting;
    expect(b.lease?.epoch).toBe(a.lease!.epoch + 1);
    // B sees A's committed writes, and the write A was refused is nowhere.
    expect(await b.read("slow2")).toEqual(Uint8Array.of(1));
    expect(await b.read("after")).toEqual(after === undefined ? Uint8Array.of(2) : undefined);
    await b.write("b", Uint8Array.of(3));
    const raw = await db.raw();
    const lease = await raw.query(`SELECT holder, epoch::float8 AS epoch FROM "${db.schema}".graphrefly_storage_lease WHERE store = $1`, [a.store]);
    expect(lease.rows).toEqual([{ holder: "B", epoch: a.lease!.epoch + 1 }]);
  });
});

describe("postgresBackend lease: a split batch with a statement longer than the lease", () => {
  it("keeps its store: the batch commits whole, the writer writes on, a contender is refused meanwhile", async () => {
    // Every row its own statement, in one transaction; the first takes the lease time and more.
    const a = await open({ maxStatementBytes: 1, lease: { holder: "A", ttlMs: 1000, renewEveryMs: 100 } });
    await slowKey("slow3", 1.3);
    await a.write("before", Uint8Array.of(1));
    const batch = a.writeBatch([
      { op: "put", key: "slow3", value: Uint8Array.of(2) },
      { op: "put", key: "next", value: Uint8Array.of(3) },
    ]);
    await new Promise((r) => setTimeout(r, 300)); // the slow statement runs on the server
    const contender = await errorOf(() => open({ store: a.store, lease: { holder: "B" } }));
    expect((contender as StorageError).code).toBe("store-locked");
    // Before, the second statement found the expiry its first had set passed, and the batch ended in not-owner.
    const err = await errorOf(() => batch);
    expect(err instanceof StorageError ? `${err.code}: ${err.message}` : err).toBeUndefined();
    const after = await errorOf(() => a.write("after", Uint8Array.of(4)));
    expect(after instanceof StorageError ? `${after.code}: ${after.message}` : after).toBeUndefined();
    expect(await a.readMany(["before", "slow3", "next", "after"])).toEqual([1, 2, 3, 4].map((n) => Uint8Array.of(n)));
  });
});

describe("postgresBackend lease: the lease row deleted by hand", () => {
  it("does not restart the epoch of a store holding data: the old writer is fenced even under the same holder name", async () => {
    const db = await database();
    const raw = await db.raw();
    for (const [first, second] of [["A", "B"], ["same", "same"]] as const) {
      const a = await open({ lease: { holder: first, ttlMs: 30_000 } });
      await a.write("k", Uint8Array.of(1));
      const seen = await a.changeCounter();
      await raw.query(`DELETE FROM "${db.schema}".graphrefly_storage_lease WHERE store = $1`, [a.store]);
      // No live lease to wait for: a contender takes the store at once. Its epoch is not A's again (then, writers
      // sharing a name both passed the fence and committed at once).
      const b = await open({ store: a.store, lease: { holder: second, ttlMs: 30_000 } });
      expect(b.lease!.epoch, `${first}/${second}`).toBeGreaterThan(a.lease!.epoch);
      const refused = await errorOf(() => a.write("a", Uint8Array.of(2)));
      expect((refused as StorageError).code, `${first}/${second}`).toBe("not-owner");
      await b.write("b", Uint8Array.of(3));
      expect(await b.readMany(["k", "a", "b"])).toEqual([Uint8Array.of(1), undefined, Uint8Array.of(3)]);
      // The write count does not come back to the one a follower saw before the deletion.
      expect(await b.changeCounter()).not.toBe(seen);
    }
  });
});

describe("postgresBackend lease: the lease row deleted by hand on a store without data", () => {
  it("still fences the old writer under the same holder name: a new row's epoch starts at the database clock", async () => {
    const db = await database();
    const raw = await db.raw();
    // A writer that has not written yet: the store holds no data (a new row started at epoch 1 here before).
    const a = await open({ lease: { holder: "same", ttlMs: 30_000 } });
    await raw.query(`DELETE FROM "${db.schema}".graphrefly_storage_lease WHERE store = $1`, [a.store]);
    const b = await open({ store: a.store, lease: { holder: "same", ttlMs: 30_000 } });
    expect(b.lease!.epoch).not.toBe(a.lease!.epoch);
    const refused = await errorOf(() => a.write("a", Uint8Array.of(1)));
    expect((refused as StorageError).code).toBe("not-owner"); // before: committed beside b's writes
    await b.write("b", Uint8Array.of(2));
    expect(await b.readMany(["a", "b"])).toEqual([undefined, Uint8Array.of(2)]);
  });
});

describe("postgresBackend lease: renewal interval", () => {
  it("an idle writer renewing at the longest interval allowed (half the lease) keeps its store", async () => {
    const a = await open({ lease: { holder: "A", ttlMs: 1000, renewEveryMs: 500 } });
    await a.write("k", Uint8Array.of(1));
    await new Promise((r) => setTimeout(r, 3500));
    await a.write("k", Uint8Array.of(2));
    expect(await a.read("k")).toEqual(Uint8Array.of(2));
  });
});
