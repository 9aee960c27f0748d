/**
 * A kv delete queued behind a flush in flight (an asynchronous backend: PostgreSQL) drops, when it runs, only the
 * pending values saved before it was called. It dropped a value saved after the call too, and the flush after it
 * resolved with nothing stored: `save(k, 1)`, `delete(k)`, `save(k, 2)` left k absent (review).
 */
import { describe, expect, it } from "vitest";
import { kvStorage } from "../../src/tier/kv.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";

const database = useTestDatabase();
const open = useBackends(database, "kv-delete-save");

describe("kv delete, then save of the same key, with a flush in flight (PostgreSQL)", () => {
  it("sync-through: the save after the delete is stored", async () => {
    const kv = kvStorage<number>(await open(), { name: "kv" });
    kv.save("k", 1); // a flush starts and is in flight
    const deleting = kv.delete("k");
    kv.save("k", 2);
    await deleting;
    await kv.flush();
    expect(await kv.load("k")).toBe(2);
  });

  it("debounced: the save after the delete is stored, the one before it is deleted", async () => {
    const backend = await open();
    const kv = kvStorage<number>(backend, { name: "kv", debounceMs: 60_000 });
    kv.save("old", 1);
    kv.save("other", 0);
    const first = kv.flush(); // in flight
    kv.save("old", 5); // pending, saved before the delete: the delete drops it
    const deleting = kv.deleteMany!(["k", "old"]); // inline kv tiers have it
    kv.save("k", 2);
    await first;
    await deleting;
    await kv.flush();
    expect(await kv.load("k")).toBe(2);
    expect(await kv.load("old")).toBeUndefined();
    expect(await kv.load("other")).toBe(0);
  });
});
