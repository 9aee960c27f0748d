/**
 * Inline tiers over an asynchronous backend (PostgreSQL): a sync-through tier (debounceMs 0/undefined) starts its
 * write at save(), so another tier's flush called after it must land after it on a shared key, as over SQLite where
 * the write is done when save() returns (docs/design.md §3.30): the backend runs its calls in call order on one
 * connection. Open (design §3.30): while the sync-through tier's earlier write is in flight, its next flush waits for
 * it and a later flush of another tier lands first. Real PostgreSQL (test/support); values, not timings.
 */
import { describe, expect, it } from "vitest";
import { kvStorage } from "../../src/tier/kv.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";

const database = useTestDatabase();
const backend = useBackends(database, "sync-order");

describe("inline over PostgreSQL: a sync-through save and another tier's later flush keep call order", () => {
  it("s.save(k, 1); t.save(k, 2); await t.flush() leaves k = 2; the other way round, 1", async () => {
    const b = await backend();
    const s = kvStorage<number>(b, { name: "s" });
    const t = kvStorage<number>(b, { name: "t", debounceMs: 60_000 });
    s.save("k", 1);
    t.save("k", 2);
    await t.flush();
    await s.flush();
    expect(await t.load("k")).toBe(2);
    t.save("j", 2);
    const tf = t.flush();
    s.save("j", 1);
    await Promise.all([tf, s.flush()]);
    expect(await t.load("j")).toBe(1);
  });
});
