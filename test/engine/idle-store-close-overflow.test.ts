/**
 * Review r237 #2: idleStoreCloseMs accepts any number >= 0, but setTimeout runs a delay above 2**31 - 1 ms
 * (~24.8 days) after 1 ms, so a caller asking for a long linger ("30 days: practically never") had its idle stores
 * shut down at once. Such a value is now taken as Infinity (src/base/timers.ts). Real worker thread, SQLite file.
 * Control: Infinity keeps the store.
 */
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import { tempRoot } from "../engine/fixtures/helpers.js";

const root = tempRoot("r237-overflow");
afterAll(() => root.remove());

async function storesAfterClose(idleStoreCloseMs: number): Promise<number> {
  const engine = openStorageEngine({ threads: 1, idleStoreCloseMs, onError: () => {} });
  try {
    const kv = engine.kv<number>({ kind: "sqlite", path: root.fresh("s.db") });
    kv.save("x", 1);
    await kv.close();
    await new Promise((r) => setTimeout(r, 300)); // far below the linger asked for
    return (await engine.stats()).length;
  } finally {
    await engine.close();
  }
}

describe("r237: idleStoreCloseMs above the timer range", () => {
  it("Infinity keeps the idle store (control)", async () => {
    expect(await storesAfterClose(Number.POSITIVE_INFINITY)).toBe(1);
  }, 60_000);
  it("30 days keeps the idle store for now", async () => {
    expect(await storesAfterClose(30 * 24 * 3600 * 1000)).toBe(1); // was 0: shut down after 1 ms
  }, 60_000);
});
