/**
 * readConsistent on a read-only PostgreSQL handle: the reads made inside it see one point in time of the store
 * (one REPEATABLE READ transaction), whatever a writer commits meanwhile; a failed statement ends that transaction
 * without breaking the handle; a writer's handle refuses it. test/reliability/postgres-readers runs restores inside
 * it beside a writer process compacting in a loop.
 */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";
import { errorOf } from "../support/wait.js";

const database = useTestDatabase();
const open = useBackends(database, "consistent");
const b = (n: number): Uint8Array => Uint8Array.of(n);

describe("postgresBackend readConsistent", () => {
  it("reads at one point in time while a writer commits, nested calls included; after it, the store as it is", async () => {
    const writer = await open();
    await writer.writeBatch([
      { op: "put", key: "k", value: b(1) },
      { op: "put", key: "old", value: b(2) },
    ]);
    const reader = await open({ store: writer.store, readOnly: true });
    const seen = await reader.readConsistent(async () => {
      const first = await reader.read("k");
      // A compaction-like commit: a new value, a deletion, a new key, in one transaction.
      await writer.writeBatch([
        { op: "put", key: "k", value: b(3) },
        { op: "delete", key: "old" },
        { op: "put", key: "new", value: b(4) },
      ]);
      const inner = await reader.readConsistent(async () => reader.readMany(["k", "old", "new"]));
      return { first, inner, list: await reader.list(), prefix: await reader.readPrefix("k", 10) };
    });
    expect(seen).toEqual({ first: b(1), inner: [b(1), b(2), undefined], list: ["k", "old"], prefix: b(1) });
    expect(await reader.readMany(["k", "old", "new"])).toEqual([b(3), undefined, b(4)]);
  });

  it("the point in time is the call's start, not its first read (a commit before fn reads is not seen)", async () => {
    const writer = await open();
    await writer.write("k", b(1));
    const reader = await open({ store: writer.store, readOnly: true });
    const seen = await reader.readConsistent(async () => {
      await writer.write("k", b(2)); // committed after the call began, before its first read
      return reader.read("k");
    });
    expect(seen).toEqual(b(1));
    expect(await reader.read("k")).toEqual(b(2));
  });

  it("a statement that fails inside ends the transaction: the error is the call's, later reads work", async () => {
    const db = await database();
    const writer = await open();
    await writer.write("k", b(1));
    const reader = await open({ store: writer.store, readOnly: true, statementTimeoutMs: 300 });
    const raw = await db.raw();
    const outcome = await reader.readConsistent(async () => {
      await reader.read("k");
      await raw.query("BEGIN");
      // The lease table (not the data table, which the transaction already holds a lock on: LOCK would wait for it).
      await raw.query(`LOCK TABLE "${db.schema}".graphrefly_storage_lease IN ACCESS EXCLUSIVE MODE`);
      const failed = await errorOf(() => reader.changeCounter()); // waits for the lock: statement timeout
      await raw.query("ROLLBACK");
      await writer.write("k", b(2));
      return { failed, after: await reader.read("k") };
    });
    expect((outcome.failed as StorageError).details.pgCode).toBe("57014");
    // Out of the aborted transaction: the read works, at its own point in time.
    expect(outcome.after).toEqual(b(2));
    expect(await reader.read("k")).toEqual(b(2));
  });

  it("a writer's handle refuses it; a read-only handle with no tables yet runs it plainly", async () => {
    const writer = await open();
    const err = await errorOf(() => writer.readConsistent(async () => 1));
    expect((err as StorageError).code).toBe("invalid-argument");
    const db = await database();
    const empty = await open({ schema: `${db.schema}_none`, readOnly: true });
    expect(await empty.readConsistent(async () => empty.read("k"))).toBeUndefined();
  });
});
