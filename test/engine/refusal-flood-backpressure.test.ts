/**
 * A flood of refused values through the engine meets backpressure as valid writes do. Each refusal crosses to the
 * store's actor as an op holding its error (message, stack); it weighed nothing, so 200,000 refused saves in one
 * turn never met maxPendingBytes and held ~190 MB until the turn ended (review). A refusal now weighs its error
 * until the actor took it.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("refusal-flood");
afterAll(() => root.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

const MAX = 256 * 1024;

describe("refused values under maxPendingBytes (engine)", () => {
  for (const tier of ["kv", "appendLog"] as const) {
    it(`${tier}: a turn of refused values stops at backpressure; after drained() they are taken again`, async () => {
      let reported = 0;
      engine = openStorageEngine({ threads: 1, maxPendingBytes: MAX, onError: () => void reported++ });
      const spec = { kind: "sqlite" as const, path: root.fresh(`${tier}.db`) };
      const kv = tier === "kv" ? engine.kv<unknown>(spec, { name: "t", debounceMs: 60_000 }) : undefined;
      const log = tier === "appendLog" ? engine.appendLog<unknown>(spec, { name: "t", debounceMs: 60_000 }) : undefined;
      const refuse = (i: number): void => (kv ? kv.save(`bad/${i}`, { n: Number.NaN }) : log!.appendEntries([{ n: Number.NaN, i }]));
      const flushOf = (kv ?? log)!;
      let taken = 0;
      let stop: unknown;
      try {
        for (; taken < 100_000; taken++) refuse(taken);
      } catch (err) {
        stop = err;
      }
      expect(stop).toBeInstanceOf(StorageError);
      expect((stop as StorageError).code).toBe("backpressure");
      expect(taken).toBeGreaterThan(0);
      expect(taken).toBeLessThan(MAX / 64); // each refusal weighs at least its 64-byte overhead
      await flushOf.drained!(); // engine tiers have it
      expect(() => refuse(taken)).not.toThrow();
      await expect(flushOf.flush()).rejects.toMatchObject({ code: "encode-failed" });
      await expect(flushOf.flush()).resolves.toBeUndefined();
      expect(reported).toBe(taken + 1);
    });
  }
});
