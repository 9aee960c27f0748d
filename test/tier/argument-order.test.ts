/**
 * Issue 12 item 3: inline tiers and engine proxies share one set of argument rules (src/tier/arguments.ts) and one
 * order for a write: writable → arguments → filter / keyOf → room → value. Before, inline tiers checked room
 * first, so past maxPendingBytes a bad key was reported as backpressure and a write that writes nothing (filtered
 * out, an empty append) was refused, while engine proxies answered invalid-key and accepted the no-op. Both modes
 * now answer alike; each case runs inline and through a real engine.
 */
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { AppendLogStorageTier, KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";

const HELD = 60_000;
const LONE_SURROGATE = "a\ud800b";
/** Smaller than any accepted value's weight: one held save puts the tier (or store) past its bound. */
const BOUND = 1;

const engine = openStorageEngine({ threads: 1, maxPendingBytes: BOUND, onError: () => {} });
afterAll(() => engine.close());

interface Tiers {
  kv(filter: (k: string) => boolean): KvStorageTier<number>;
  snapshot(filter: (s: { k: string }) => boolean): SnapshotStorageTier<{ k: string }>;
  appendLog(): AppendLogStorageTier<number>;
}

let n = 0;
const modes: Array<[string, () => Tiers]> = [
  [
    "inline",
    () => {
      const backend = memoryBackend();
      const common = { debounceMs: HELD, maxPendingBytes: BOUND, onError: () => {} };
      return {
        kv: (filter) => kvStorage<number>(backend, { ...common, name: "kv", filter }),
        snapshot: (filter) => snapshotStorage<{ k: string }>(backend, { ...common, name: "s", filter, keyOf: (s) => s.k }),
        appendLog: () => appendLogStorage<number>(backend, { ...common, name: "log" }),
      };
    },
  ],
  [
    "engine",
    () => {
      const store = { kind: "memory" as const, name: `argument-order-${n++}` };
      return {
        kv: (filter) => engine.kv<number>(store, { name: "kv", debounceMs: HELD, filter }),
        snapshot: (filter) => engine.snapshot<{ k: string }>(store, { name: "s", debounceMs: HELD, filter, keyOf: (s) => s.k }),
        appendLog: () => engine.appendLog<number>(store, { name: "log", debounceMs: HELD }),
      };
    },
  ],
];

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe.each(modes)("past the pending bound (%s)", (_mode, tiers) => {
  it("kv: a bad key is invalid-key, a filtered save is no write, an accepted one is backpressure", () => {
    const kv = tiers().kv((k) => k !== "skip");
    kv.save("first", 1);
    expect(thrown(() => kv.save(LONE_SURROGATE, 2))).toMatchObject({ code: "invalid-key" });
    expect(thrown(() => kv.save(7 as unknown as string, 2))).toBeInstanceOf(TypeError);
    expect(thrown(() => kv.save("skip", 2))).toBeUndefined();
    const full = thrown(() => kv.save("second", 2));
    expect(full).toBeInstanceOf(StorageError);
    expect(full).toMatchObject({ code: "backpressure" });
    kv.rollback();
  });

  it("snapshot: a bad keyOf result is invalid-key, a filtered save is no write, an accepted one is backpressure", () => {
    const s = tiers().snapshot((x) => x.k !== "skip");
    s.save({ k: "first" });
    expect(thrown(() => s.save({ k: LONE_SURROGATE }))).toMatchObject({ code: "invalid-key" });
    expect(thrown(() => s.save({ k: "skip" }))).toBeUndefined();
    expect(thrown(() => s.save({ k: "second" }))).toMatchObject({ code: "backpressure" });
    s.rollback();
  });

  it("append-log: a non-array is a TypeError, an empty append is no write, a real one is backpressure", () => {
    const log = tiers().appendLog();
    log.appendEntries([1]);
    expect(thrown(() => log.appendEntries(5 as unknown as number[]))).toBeInstanceOf(TypeError);
    expect(thrown(() => log.appendEntries([]))).toBeUndefined();
    expect(thrown(() => log.appendEntries([2]))).toMatchObject({ code: "backpressure" });
    log.rollback();
  });
});
