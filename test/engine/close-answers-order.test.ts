/**
 * engine.close() right after flushes nobody awaited: every flush's outcome must match what is stored. The actor
 * answered them (stored) before its task ended, but the task's end travels on piscina's port and the answers on
 * the store's, and the main thread could read the end first: it then rejected the answered flushes with "store
 * actor … shut down" (a false loss report) and closed the port holding their answers. Rounds vary the tiers'
 * cadence (sync-through, debounced) and whether close() is called in the flushes' turn or a later one.
 */
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { tempRoot, turn } from "./fixtures/helpers.js";
import { outcome } from "../support/refusals.js";

const root = tempRoot("close-answers-order");
afterAll(() => root.remove());

const ROUNDS = 48;
const SAVES = 20;

describe("engine.close() after flushes not awaited", () => {
  it("a flush resolves exactly when its value was stored", async () => {
    const mismatches: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const store: StoreSpec = { kind: "sqlite", path: root.fresh(`s${round}.db`) };
      const e = openStorageEngine({ threads: 1, onError: () => undefined });
      const variant = round % 6;
      const tiers = [0, 1, 2].map((i) => e.kv<number>(store, { name: `t${i}`, debounceMs: variant % 2 === 1 ? 60_000 : undefined }));
      await tiers[0]!.flush(); // the actor is up
      const flushes: Array<Promise<[string, string, string]>> = [];
      for (let k = 0; k < SAVES; k++) {
        const t = tiers[k % 3]!;
        t.save(`k${k}`, k);
        flushes.push(outcome(t.flush()).then((o) => [t.name, `k${k}`, o]));
        if (variant >= 4 && k % 5 === 0) await turn();
      }
      if (variant >= 2) await turn();
      const closed = outcome(e.close());
      const outcomes = await Promise.all(flushes);
      const closing = await closed;
      const check = openStorageEngine({ threads: 1 });
      try {
        for (const [name, key, o] of outcomes) {
          const stored = (await check.kv<number>(store, { name }).load(key)) !== undefined;
          if ((o === "resolved") !== stored) mismatches.push(`round ${round}: ${name} ${key} flush ${o}, stored ${stored}, close ${closing}`);
        }
      } finally {
        await check.close();
      }
    }
    expect(mismatches).toEqual([]);
  });
});
