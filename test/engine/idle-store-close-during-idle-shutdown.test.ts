/** Review r218 #4, task 220: engine.close() while a replaced connection's idle shutdown still runs (close waits for both). */
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { tempRoot } from "../engine/fixtures/helpers.js";

const root = tempRoot("t220-close");
afterAll(() => root.remove());

describe("engine.close during an idle shutdown with a reopened store", () => {
  for (const kind of ["sqlite", "file"] as const) {
    it(`${kind}: every close settles, and both tiers' acknowledged writes are stored`, async () => {
      const outcomes: string[] = [];
      for (let round = 0; round < 30; round++) {
        const errors: string[] = [];
        const engine = openStorageEngine({ threads: 1, onError: (e) => errors.push(`${(e as { code?: string }).code}: ${e.message}`) });
        const at = root.fresh(`${kind}-${round}`);
        const store: StoreSpec = kind === "sqlite" ? { kind, path: `${at}.db` } : { kind, dir: at };
        const a = engine.kv<number>(store, { name: "a" });
        a.save("k", round);
        await a.flush();
        const closed = a.close().then(() => "resolved", (e: unknown) => `rejected ${(e as { code?: string }).code}`);
        for (let i = 0; i < round; i++) await new Promise((r) => setImmediate(r));
        const b = engine.kv<number>(store, { name: "b" });
        b.save("k", round);
        const flushed = b.flush().then(() => "resolved", (e: unknown) => `rejected ${(e as { code?: string }).code}`);
        const engineClosed = await engine.close().then(() => "resolved", (e: unknown) => `rejected ${(e as { code?: string }).code}`);
        const res = [await closed, await flushed, engineClosed];
        const reader = openStorageEngine({ threads: 1 });
        try {
          const ra = reader.kv<number>(store, { name: "a" });
          const rb = reader.kv<number>(store, { name: "b" });
          const va = await ra.load("k");
          const vb = await rb.load("k");
          if (va !== round) outcomes.push(`round ${round}: a lost (${String(va)})`);
          if (res[1] === "resolved" && vb !== round) outcomes.push(`round ${round}: b flushed but lost`);
        } catch (e) {
          outcomes.push(`round ${round}: reopen ${(e as { code?: string }).code}: ${(e as Error).message}`);
        } finally {
          await reader.close();
        }
        if (res.some((r) => r !== "resolved")) outcomes.push(`round ${round}: ${res.join(",")}`);
        if (errors.length > 0) outcomes.push(`round ${round}: onError ${errors.join(" | ")}`);
      }
      expect(outcomes).toEqual([]);
    }, 300_000);
  }
});
