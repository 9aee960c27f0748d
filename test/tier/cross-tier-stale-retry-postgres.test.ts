/**
 * cross-tier-stale-retry over a real PostgreSQL (test/support), inline and through an engine's store actor (review
 * s15r2 D2, docs/design.md §3.30): a tier's batch in flight fails while another tier's later write of the same key
 * waits on the write lane behind it; that write lands, and the failed batch's retry must not land over it. No timing
 * window: the later write is queued before the failure. The one failure: the key's first write (postgres-fail-once);
 * retries are held and driven by flush().
 */
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { kvStorage } from "../../src/tier/kv.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";
import { failFirst } from "../support/postgres-fail-once.js";

const database = useTestDatabase();
const backend = useBackends(database, "stale");
const HELD = 60_000;
const held = { retry: { initialMs: HELD, maxMs: HELD } } as const;

/**
 * The first INSERT or UPDATE of key `k` in store `store` fails; the trigger goes with the case (a store refuses to
 * open a table with a foreign trigger).
 */
async function failFirstWrite(store: string, k: string): Promise<void> {
  const db = await database();
  onTestFinished(await failFirst(await db.raw(), db.schema, { store, key: k, on: "write" }));
}

/** Counts the failures a tier reports (onError: once per failing spell). */
function failures(): { onError: () => void; readonly count: number } {
  const f = {
    count: 0,
    onError: (): void => {
      f.count++;
    },
  };
  return f;
}

describe("PostgreSQL: a failed batch retried after another tier's later write of its key", () => {
  it("inline: s's save fails in flight while t's later save + flush waits behind it; s's retry leaves t's value", async () => {
    const b = await backend({ store: "stale-save" });
    const sFailed = failures();
    const s = kvStorage<number>(b, { name: "s", ...held, onError: sFailed.onError }); // sync-through
    const t = kvStorage<number>(b, { name: "t", debounceMs: HELD });
    await failFirstWrite("stale-save", "a");
    s.save("a", 1); // in flight, fails
    t.save("a", 2);
    await t.flush(); // taken at its call, behind s's batch: stores 2 after s's failed
    expect(sFailed.count).toBe(1);
    await s.flush(); // the retry
    expect(await t.load("a")).toBe(2);
    await s.close();
    await t.close();
  });

  it("inline: a later delete of the key by another tier stays (no resurrection by the retry, nor by close)", async () => {
    const b = await backend({ store: "stale-delete" });
    const sFailed = failures();
    const s = kvStorage<number>(b, { name: "s", ...held, onError: sFailed.onError });
    const t = kvStorage<number>(b, { name: "t", debounceMs: HELD });
    await failFirstWrite("stale-delete", "a");
    s.save("a", 1);
    await t.delete("a");
    expect(sFailed.count).toBe(1);
    await s.close();
    expect(await t.load("a")).toBeUndefined();
    await t.close();
  });

  it("engine: the same through a store actor", async () => {
    const db = await database();
    const sFailed = failures();
    const engine = openStorageEngine({ threads: 1, onError: sFailed.onError });
    try {
      const spec = { kind: "postgres" as const, url: db.url, schema: db.schema, store: "stale-engine" };
      const s = engine.kv<number>(spec, { name: "s", ...held });
      const t = engine.kv<number>(spec, { name: "t", debounceMs: HELD });
      s.save("warm", 0);
      await s.flush();
      await failFirstWrite("stale-engine", "a");
      s.save("a", 1);
      t.save("a", 2);
      await t.flush();
      await expect(s.flush()).resolves.toBeUndefined(); // the retry: nothing older lands
      await vi.waitFor(() => expect(sFailed.count).toBe(1)); // the engine's onError hears it on the main thread
      expect(await t.load("a")).toBe(2);
    } finally {
      await engine.close();
    }
  });
});
