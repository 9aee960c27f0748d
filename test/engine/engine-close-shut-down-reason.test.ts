/**
 * A tier's drained() waiting for room while the engine closes: the close's drain stores the writes, and the store's
 * end may reach the waiter before its poll sees the room (a race, no timing asserted here). The waiter then rejected
 * with the store's end, `closed` "store actor ... shut down" without a reason, which attach took for a tier closed by
 * its owner (engine-gone.ts closedByOwner: "dispose this handle and attach again over open tiers"), not the engine's
 * close (review r329 F5, task 334). The end the engine's close makes now says so: details.reason "engine-closed".
 * Each round either resolves (the poll saw the room first) or rejects, and a rejection must name the engine's close;
 * before the fix about one round in three rejected without it (the rounds make missing it unlikely, not impossible).
 * Real parts: SQLite files, engine worker threads.
 */
import { afterAll, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import { closedByOwner, engineGone } from "../../src/persistence/engine-gone.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("engine-close-shut-down-reason");
afterAll(() => root.remove());

it("drained() cut short by the engine's close rejects, if at all, naming the engine's close, never as a tier closed by its owner", async () => {
  const seen: string[] = [];
  for (let round = 0; round < 12; round++) {
    const engine = openStorageEngine({ threads: 1, maxPendingBytes: 64 * 1024, onError: () => undefined });
    try {
      const kv = engine.kv<string>({ kind: "sqlite", path: root.fresh("store.db") }, { debounceMs: 60_000 });
      kv.save("a", "1");
      await kv.flush();
      let full = false;
      for (let i = 0; i < 10_000 && !full; i++) {
        try {
          kv.save(`k${i}`, "v".repeat(1000));
        } catch {
          full = true; // backpressure: drained() below waits for room
        }
      }
      expect(full).toBe(true);
      const drained = kv.drained!().then(
        () => undefined,
        (e: unknown) => e,
      );
      await engine.close();
      const err = await drained;
      seen.push(err === undefined ? "resolved" : "rejected");
      if (err !== undefined) {
        expect(err).toMatchObject({ code: "closed", details: { reason: "engine-closed" } });
        expect(engineGone(err)).toBe("engine-closed");
        expect(closedByOwner(err)).toBe(false);
      }
    } finally {
      await engine.close().catch(() => undefined);
    }
  }
  expect(seen).toHaveLength(12);
}, 120_000);
