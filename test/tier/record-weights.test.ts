/**
 * maxPendingBytes counts what a pending record holds (docs/design.md §3.19): its key and a fixed overhead beside its
 * value. Before, 1 M inline kv saves of `null` under a 4 MiB bound held 42× the bound (each weighed 4 B), engine
 * saves of `0` under 64-character keys 68×; a write of any size was accepted while the bound was not yet passed
 * (a 200 MB value with 1 MiB pending under a 1 MiB bound). Now a write is refused when it would not fit beside what
 * is pending, and drained() waits until the write it refused last fits, so a writer retrying a write larger than
 * half the bound progresses without spinning. Each case runs inline and through a real engine.
 */
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { kvStorage } from "../../src/tier/kv.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { entriesWeight, recordWeight } from "../../src/tier/weights.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { saveUntilRefused } from "../support/save-until-refused.js";

const KiB = 1024;
const BOUND = 256 * KiB;
const HELD = 60_000;
const engine = openStorageEngine({ threads: 1, maxPendingBytes: BOUND });
afterAll(() => engine.close());

let n = 0;
const modes: Array<[string, () => KvStorageTier<unknown>]> = [
  ["inline", () => kvStorage<unknown>(memoryBackend(), { debounceMs: HELD, maxPendingBytes: BOUND })],
  ["engine", () => engine.kv<unknown>({ kind: "memory", name: `record-weights-${n++}` }, { debounceMs: HELD })],
];

const longKey = (i: number) => `k${String(i).padStart(63, "0")}`;

describe.each(modes)("record weights (%s)", (_mode, open) => {
  it("tiny values under long keys are refused once their records fill the bound", () => {
    const kv = open();
    const { accepted, refused } = saveUntilRefused((i) => kv.save(longKey(i), 0), 200_000);
    expect(refused).toBeInstanceOf(StorageError);
    expect((refused as StorageError).code).toBe("backpressure");
    // Every record weighs at least recordWeight(64-unit key, 1 B): what was accepted fits the bound (before: 4 B
    // or 1 B each, so about 65,000 or more were accepted under 256 KiB).
    const weight = recordWeight(longKey(0), 1);
    expect(accepted * weight).toBeLessThanOrEqual(BOUND);
    expect((accepted + 1) * weight).toBeGreaterThan(BOUND / 2);
    kv.rollback();
  });

  it("null values: the count accepted times the documented weight stays within the bound", () => {
    const kv = open();
    const { accepted, refused } = saveUntilRefused((i) => kv.save(`k${i}`, null), 200_000);
    expect((refused as StorageError).code).toBe("backpressure");
    expect(accepted * recordWeight("k0", 4)).toBeLessThanOrEqual(BOUND);
    kv.rollback();
  });

  it("a write larger than what is left is refused while something is pending; alone it is accepted", async () => {
    const kv = open();
    kv.save("small", "x");
    const big = "y".repeat(BOUND); // its weight alone exceeds the bound
    const refused = saveUntilRefused(() => kv.save("big", big), 1);
    expect((refused.refused as StorageError | undefined)?.code).toBe("backpressure");
    await kv.flush(); // nothing pending now
    expect(() => kv.save("big", big)).not.toThrow();
    await kv.flush();
    expect(await kv.load("big")).toBe(big);
  });
});

/** A memory backend whose writes take a few milliseconds (a slow disk): flushes are in flight while saves go on. */
function slowBackend(): StorageBackend {
  const inner = memoryBackend();
  const later = <R>(fn: () => R): Promise<R> => new Promise((resolve) => setTimeout(() => resolve(fn()), 3));
  return {
    ...inner,
    name: inner.name,
    read: (key) => inner.read(key),
    list: inner.list ? (prefix) => inner.list!(prefix) : undefined,
    delete: inner.delete ? (key) => inner.delete!(key) : undefined,
    write: (key, value) => later(() => inner.write(key, value)),
    writeBatch: inner.writeBatch ? (ops) => later(() => inner.writeBatch!(ops)) : undefined,
  } as StorageBackend;
}

describe("a writer retrying on drained() with values larger than half the bound", () => {
  const run = async (kv: KvStorageTier<unknown>, bound: number): Promise<number> => {
    const big = "z".repeat(Math.floor(bound * 0.7));
    kv.save("small", "s".repeat(Math.floor(bound * 0.3))); // pending at most half: the old drained() resolved at once
    let refusals = 0;
    for (let i = 0; i < 20; i++) {
      for (;;) {
        try {
          kv.save(`big${i}`, big);
          break;
        } catch (err) {
          if ((err as StorageError).code !== "backpressure") throw err;
          refusals++;
          if (refusals > 200) throw new Error("spinning: refused again and again at once after drained()");
          await kv.drained!();
        }
      }
    }
    await kv.flush();
    expect(await kv.load("big19")).toBe(big);
    return refusals;
  };

  it("inline: progresses, at most one refusal per write", async () => {
    const bound = 64 * KiB;
    const kv = kvStorage<unknown>(slowBackend(), { debounceMs: 1, maxPendingBytes: bound });
    const refusals = await run(kv, bound);
    expect(refusals).toBeLessThanOrEqual(20);
    await kv.close();
  });

  it("engine: progresses, at most one refusal per write", async () => {
    const bound = 64 * KiB;
    const e = openStorageEngine({ threads: 1, maxPendingBytes: bound });
    try {
      const kv = e.kv<unknown>({ kind: "memory", name: "record-weights-spin" }, { debounceMs: 1 });
      const refusals = await run(kv, bound);
      expect(refusals).toBeLessThanOrEqual(20);
    } finally {
      await e.close();
    }
  });
});

describe("append-log weights", () => {
  it("inline: one-entry appends weigh a chunk and an entry beside the entry's bytes", () => {
    const log = appendLogStorage<number>(memoryBackend(), { debounceMs: HELD, maxPendingBytes: BOUND });
    const { accepted, refused } = saveUntilRefused(() => log.appendEntries([0]), 200_000);
    expect((refused as StorageError).code).toBe("backpressure");
    expect(accepted * entriesWeight(1, 1, 1)).toBeLessThanOrEqual(BOUND);
    log.rollback();
  });
});
