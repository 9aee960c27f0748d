/**
 * Review r237 #2 (same cause as idleStoreCloseMs): a closeTimeoutMs above 2**31 - 1 ms ran after 1 ms, so close()
 * gave up on every store that took longer than that to drain ("close-timeout", writes not yet stored lost) although
 * the caller asked for a deadline of days. Such a value is now taken as Infinity. Control: Infinity.
 */
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import { tempRoot } from "../engine/fixtures/helpers.js";

const root = tempRoot("r237-close-overflow");
afterAll(() => root.remove());

async function closeOutcome(closeTimeoutMs: number): Promise<string> {
  const engine = openStorageEngine({ threads: 1, closeTimeoutMs, onError: () => {} });
  const kv = engine.kv<string>({ kind: "sqlite", path: root.fresh("s.db") }, { debounceMs: 60_000 });
  const pad = "x".repeat(4096);
  for (let i = 0; i < 5_000; i++) kv.save(`k${i}`, `${i}${pad}`); // ~20 MB for close to drain
  try {
    await engine.close();
    return "closed";
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

describe("r237: closeTimeoutMs above the timer range", () => {
  it("Infinity drains every write (control)", async () => {
    expect(await closeOutcome(Number.POSITIVE_INFINITY)).toBe("closed");
  }, 120_000);
  it("30 days drains every write", async () => {
    expect(await closeOutcome(30 * 24 * 3600 * 1000)).toBe("closed"); // was close-timeout after 1 ms
  }, 120_000);
});
