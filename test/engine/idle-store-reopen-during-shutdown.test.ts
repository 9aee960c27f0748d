/** Review r218, task 220: a tier opened on a store while its idle shutdown runs (its actor starts once the old one let go). */
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { tempRoot } from "../engine/fixtures/helpers.js";

const root = tempRoot("t220-reopen");
afterAll(() => root.remove());

describe("open during idle shutdown", () => {
  it("a tier opened while the store shuts down works and sees every acknowledged write", async () => {
    const errors: string[] = [];
    const engine = openStorageEngine({ threads: 1, onError: (e) => errors.push(`${(e as { code?: string }).code}: ${e.message}`) });
    const outcomes: string[] = [];
    try {
      for (let round = 0; round < 40; round++) {
        const store: StoreSpec = { kind: "sqlite", path: root.fresh(`r${round}.db`) };
        const a = engine.kv<number>(store, { name: "kv" });
        a.save("k", round);
        await a.flush();
        const closed = a.close();
        // wait a varying number of macrotask turns so the open lands before, during or after the shutdown
        for (let i = 0; i < round; i++) await new Promise((r) => setImmediate(r));
        const b = engine.kv<number>(store, { name: "kv" });
        try {
          const seen = await b.load("k");
          b.save("k2", round);
          await b.flush();
          outcomes.push(seen === round ? "ok" : `round ${round}: saw ${String(seen)}`);
        } catch (e) {
          outcomes.push(`round ${round}: ${(e as { code?: string }).code}: ${(e as Error).message}`);
        }
        await closed.catch((e: unknown) => outcomes.push(`round ${round} close: ${(e as Error).message}`));
        await b.close();
      }
    } finally {
      await engine.close();
    }
    expect(errors).toEqual([]);
    expect(outcomes.filter((o) => o !== "ok")).toEqual([]);
  }, 240_000);
});
