/**
 * A snapshot whose write fails is retried with the bytes its first encode made: a record does not change once saved,
 * so re-encoding it per retry (a baseline of megabytes: CPU, and one more encoding held while it ran) bought nothing.
 * The actor in an engine worker drives the same SnapshotCore, so this covers engine tiers too.
 */
import { describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { countingCodec } from "../support/counting-codec.js";
import { faultyBackend } from "../support/faulty-backend.js";

interface Rec {
  name: string;
  seq: number;
  snapshot: { values: number[] };
}

describe("snapshot retries write the bytes encoded once", () => {
  for (const async of [false, true]) {
    it(`encodes once across failed flushes (${async ? "async" : "sync"} backend)`, async () => {
      const inner = sqliteBackend(":memory:");
      const backend = faultyBackend(inner, [{ op: "write", errno: "EIO", times: 3 }], { async });
      const codec = countingCodec<Rec>();
      const tier = snapshotStorage<Rec>(backend, { codec, debounceMs: 60_000, onError: () => {} });
      const rec: Rec = { name: "g", seq: 4, snapshot: { values: [1, 2, 3] } };
      tier.save(rec);
      for (let i = 0; i < 3; i++) await expect(tier.flush()).rejects.toThrow();
      await tier.flush();
      expect(backend.calls.write).toBe(4);
      expect(codec.encodes).toBe(1);
      expect(await tier.load("g")).toEqual(rec);
      // A newer save after a failure is its own record: encoded anew, and it is what is stored.
      backend.inject({ op: "write", errno: "EIO", times: 1 });
      tier.save({ ...rec, seq: 5 });
      await expect(tier.flush()).rejects.toThrow();
      tier.save({ ...rec, seq: 6 });
      await tier.flush();
      expect(codec.encodes).toBe(3);
      expect(await tier.loadHead!("g")).toEqual({ name: "g", seq: 6 });
      await tier.close();
    });
  }
});
