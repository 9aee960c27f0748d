/**
 * Review s15r2 D1/D1b over a real PostgreSQL: a flush or close called while a delete of a key waits on the write lane
 * leaves the value saved before the delete pending for it (kv.ts leaveForDeletes); when the delete fails, that value
 * is still owed and must be stored (it was left pending with no flush scheduled, and close() dropped it). The one
 * failure is a trigger that raises on the first DELETE of the key only (a sequence's nextval survives the rollback).
 */
import { afterEach, describe, expect, it } from "vitest";
import { kvStorage } from "../../src/tier/kv.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";
import { failFirst } from "../support/postgres-fail-once.js";

const database = useTestDatabase();
const backend = useBackends(database, "kv-left");
const HELD = 60_000; // no debounce or retry timer fires during a case
const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => "resolved",
    (e: unknown) => `rejected ${(e as { code?: string }).code}`,
  );

const drops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const drop of drops.splice(0)) await drop();
});

/** The first DELETE of key `k` in store `store` fails. */
async function failFirstDelete(store: string, k: string): Promise<void> {
  const db = await database();
  drops.push(await failFirst(await db.raw(), db.schema, { store, key: k, on: "delete" }));
}

describe("PostgreSQL kv: a value left pending for a queued delete that fails", () => {
  it("flush() called behind the failing delete stores the value saved before it", async () => {
    const b = await backend({ store: "kl-flush" });
    const t = kvStorage<number>(b, { name: "t", debounceMs: HELD, retry: { initialMs: HELD, maxMs: HELD } });
    t.save("b", 0);
    await t.flush();
    await failFirstDelete("kl-flush", "b");
    t.save("b", 1);
    const d = outcome(t.delete("b"));
    const f = outcome(t.flush());
    expect({ delete: await d, flush: await f }).toEqual({ delete: "rejected backend-error", flush: "resolved" });
    expect(await kvStorage<number>(b, { name: "reader" }).load("b")).toBe(1);
    await t.close();
  });

  it("deleteMany failing behind a flush: the flush stores the values saved before it", async () => {
    const b = await backend({ store: "kl-many" });
    const t = kvStorage<number>(b, { name: "t", debounceMs: HELD, retry: { initialMs: HELD, maxMs: HELD } });
    t.saveMany!([["a", 0], ["b", 0]]);
    await t.flush();
    await failFirstDelete("kl-many", "b");
    t.saveMany!([["a", 1], ["b", 1]]);
    const d = outcome(t.deleteMany!(["a", "b"]));
    const f = outcome(t.flush());
    expect({ delete: await d, flush: await f }).toEqual({ delete: "rejected backend-error", flush: "resolved" });
    const reader = kvStorage<number>(b, { name: "reader" });
    expect([await reader.load("a"), await reader.load("b")]).toEqual([1, 1]);
    await t.close();
  });

  it("a flush writing other keys behind the failing delete also stores the value it left for it", async () => {
    const b = await backend({ store: "kl-other" });
    const t = kvStorage<number>(b, { name: "t", debounceMs: HELD, retry: { initialMs: HELD, maxMs: HELD } });
    t.saveMany!([["a", 0], ["b", 0]]);
    await t.flush();
    await failFirstDelete("kl-other", "b");
    t.save("a", 1);
    t.save("b", 1);
    const d = outcome(t.delete("b"));
    const f = outcome(t.flush()); // takes a, leaves b for the delete
    expect({ delete: await d, flush: await f }).toEqual({ delete: "rejected backend-error", flush: "resolved" });
    const reader = kvStorage<number>(b, { name: "reader" });
    expect([await reader.load("a"), await reader.load("b")]).toEqual([1, 1]);
    await t.close();
  });

  it("close() called behind the failing delete stores the value before the tier closes", async () => {
    const b = await backend({ store: "kl-close" });
    const t = kvStorage<number>(b, { name: "t", debounceMs: HELD });
    t.save("b", 0);
    await t.flush();
    await failFirstDelete("kl-close", "b");
    t.save("b", 1);
    const d = outcome(t.delete("b"));
    const c = outcome(t.close());
    expect({ delete: await d, close: await c }).toEqual({ delete: "rejected backend-error", close: "resolved" });
    expect(await kvStorage<number>(b, { name: "reader" }).load("b")).toBe(1);
  });
});
