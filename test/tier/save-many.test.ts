/**
 * KvStorageTier.saveMany takes its entries as one unit, inline and through an engine: room is found once for the
 * whole unit (a unit heavier than maxPendingBytes goes in alone, once nothing else is pending; a refused unit takes
 * nothing and goes in whole after drained(weight)), and the unit commits in one transaction, also where it crosses
 * to the store's actor as many ops (a main-thread codec posts one op per value) past the group commit's bound on
 * puts held in a turn (MAX_HELD_PUTS). Graph attach saves a wave's frames with it (test/reliability/crash-mid-wave).
 */
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { MAX_HELD_PUTS } from "../../src/engine/group-commit.js";
import { StorageError } from "../../src/errors.js";
import { kvStorage } from "../../src/tier/kv.js";
import { wrapBackend } from "../support/test-backend.js";
import { textCodec } from "../support/text-codec.js";
import { until } from "../support/wait.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { tempRoot } from "../engine/fixtures/helpers.js";

const root = tempRoot("save-many");
afterAll(() => root.remove());

const HELD = 60_000;
const BOUND = 4096;
const entries = (prefix: string, n: number, size: number): Array<[string, string]> =>
  Array.from({ length: n }, (_, i) => [`${prefix}/${String(i).padStart(5, "0")}`, "x".repeat(size)]);

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

type Open = () => Promise<{ kv: KvStorageTier<string>; close(): Promise<void> }>;

const MODES: Array<[string, Open]> = [
  ["inline", async () => {
    const kv = kvStorage<string>(memoryBackend(), { name: "kv", debounceMs: HELD, maxPendingBytes: BOUND });
    return { kv, close: () => kv.close() };
  }],
  ["engine", async () => {
    const engine = openStorageEngine({ threads: 1, maxPendingBytes: BOUND });
    const kv = engine.kv<string>({ kind: "sqlite", path: root.fresh("room.db") }, { name: "kv", debounceMs: HELD });
    return { kv, close: () => engine.close() };
  }],
];

describe.each(MODES)("saveMany room (%s)", (_mode, open) => {
  it("a unit refused for room takes nothing and goes in whole after drained(weight); one heavier than the bound goes in alone", async () => {
    const { kv, close } = await open();
    try {
      kv.saveMany!(entries("small", 4, 100)); // well within the bound, held by the debounce window
      const heavy = entries("heavy", 20, 300); // ~6 KiB: more than the bound
      const refused = thrown(() => kv.saveMany!(heavy));
      expect(refused, "a heavy unit waits while anything else is pending").toBeInstanceOf(StorageError);
      expect((refused as StorageError).code).toBe("backpressure");
      const weight = (refused as StorageError).details?.weight as number;
      expect(weight, "the refusal names the whole unit's weight").toBeGreaterThan(BOUND);
      await kv.flush();
      expect(await kv.list(), "nothing of the refused unit was taken").toEqual(entries("small", 4, 100).map(([k]) => k));
      await kv.drained!(weight);
      kv.saveMany!(heavy); // nothing pending: taken alone, whole
      await kv.flush();
      expect((await kv.list("heavy/")).length).toBe(20);
      expect(thrown(() => kv.saveMany!(heavy)), "the tier drained: taken again").toBeUndefined();
      await kv.flush();
    } finally {
      await close();
    }
  });
});

describe("saveMany: a failed commit", () => {
  it("is retried whole: the unit is never written in part (inline, sync-through, sync and async backends)", async () => {
    for (const async of [false, true]) {
      const probe = wrapBackend(memoryBackend(), { async });
      const kv = kvStorage<string>(probe, { name: "kv", retry: { initialMs: 60_000, maxMs: 60_000 } });
      probe.failNext(1);
      kv.saveMany!(entries("u", 5, 10)); // its sync-through flush fails: the unit stays pending, whole
      await until(() => probe.counts.failed === 1, "the failed commit");
      expect(probe.counts.puts, "nothing written by the failed commit").toBe(0);
      expect(probe.counts.failed).toBe(1);
      await kv.flush();
      expect(probe.counts.calls, "the retry commits the unit in one batch").toBe(1);
      expect(probe.counts.puts).toBe(5);
      await kv.close();
    }
  });
});

describe("saveMany through an engine", () => {
  let engine: StorageEngine | undefined;
  afterAll(() => engine?.close());

  it("a unit crossing as one op per value past MAX_HELD_PUTS commits in one transaction", async () => {
    engine = openStorageEngine({ threads: 1 });
    const store = { kind: "sqlite" as const, path: root.fresh("unit.db") };
    // A main-thread codec: each value crosses as an op of its own, so the unit spans many ops of one message.
    const kv = engine.kv<string>(store, { name: "kv", codec: textCodec });
    kv.save("first", "1");
    await kv.flush();
    const flushes = async (): Promise<number> => (await engine!.stats())[0]!.flushes;
    const before = await flushes();
    kv.saveMany!(entries("u", MAX_HELD_PUTS + 500, 8));
    await kv.flush();
    expect(await flushes(), "one transaction for the unit (before: the group commit's bound split it at 2,000)").toBe(before + 1);
    expect((await kv.list("u/")).length).toBe(MAX_HELD_PUTS + 500);
  });
});
