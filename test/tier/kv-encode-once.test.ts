/**
 * A kv batch whose write fails goes back to pending as its encoding, so each retry writes the same bytes instead of
 * encoding every value again (CPU per retry, and a second encoding of the batch held while it ran). The actor in an
 * engine worker drives the same KvCore, so this covers engine kv tiers too.
 */
import { describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { kvStorage } from "../../src/tier/kv.js";
import { countingCodec } from "../support/counting-codec.js";
import { faultyBackend } from "../support/faulty-backend.js";

type Rec = { v: number; s: string };

describe("kv retries write the bytes encoded once", () => {
  for (const async of [false, true]) {
    it(`encodes each record once across failed flushes (${async ? "async" : "sync"} backend)`, async () => {
      const backend = faultyBackend(sqliteBackend(":memory:"), [{ op: "writeBatch", errno: "EIO", times: 3 }], { async });
      const codec = countingCodec<Rec>();
      const tier = kvStorage<Rec>(backend, { codec, debounceMs: 60_000, onError: () => {} });
      const recs = Array.from({ length: 50 }, (_, i) => ({ v: i, s: "x".repeat(i) }));
      recs.forEach((r, i) => tier.save(`k${i}`, r));
      for (let i = 0; i < 3; i++) await expect(tier.flush()).rejects.toThrow();
      // A key saved again while its batch failed is the newer value: encoded anew, and it is what is stored.
      tier.save("k7", { v: -7, s: "new" });
      await tier.flush();
      expect(backend.calls.writeBatch).toBe(4);
      expect(codec.encodes).toBe(51);
      for (const [i, r] of recs.entries()) expect(await tier.load(`k${i}`)).toEqual(i === 7 ? { v: -7, s: "new" } : r);
      await tier.close();
    });
  }
});
