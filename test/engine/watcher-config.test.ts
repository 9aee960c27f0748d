/**
 * Commit watcher configs are not writes: a config that cannot be sent is refused by the call that offered it
 * (StorageError "invalid-argument", nothing recorded or sent), never as a failure of the tier's flush; and the
 * wal-growth watcher refuses a config that is not a fold rule (onError hears it) instead of replacing a valid rule
 * with one that never folds. Real parts: the default worker entry (which registers wal-growth), real threads.
 */
import { afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { foldInBackground, WAL_GROWTH_WATCHER } from "../../src/persistence/wal-growth-watcher.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";
import { expectCoded, waitFor } from "./fixtures/helpers.js";

let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

interface Reported {
  code: string | undefined;
  tier: string | undefined;
}
let reported: Reported[];
let stores = 0;

function openKv(): ReturnType<StorageEngine["kv"]> {
  reported = [];
  engine = openStorageEngine({
    threads: 1,
    onError: (e, ctx) => void reported.push({ code: (e as { code?: string }).code, tier: ctx.tier }),
  });
  return engine.kv<unknown>({ kind: "memory", name: `watcher-config-${stores++}` }, { name: "wal", debounceMs: 60_000 });
}

function thrown(call: () => unknown): unknown {
  try {
    call();
  } catch (err) {
    return err;
  }
  throw new Error("expected a throw");
}

describe("configureCommitWatcher", () => {
  it("a config structured clone cannot carry throws invalid-argument; the tier's writes and flush are unaffected", async () => {
    const kv = openKv();
    await kv.flush();
    kv.save("a", 1);
    const err = thrown(() => kv.configureCommitWatcher!(WAL_GROWTH_WATCHER, "g", { ratio: 4, minBytes: 1024, onFold: () => {} }));
    expectCoded(err, StorageError, "invalid-argument");
    kv.save("b", 2);
    await kv.flush(); // resolves: the config was no write of the tier
    expect([await kv.load("a"), await kv.load("b")]).toEqual([1, 2]);
    kv.save("c", 3);
    await kv.flush();
    expect(reported).toEqual([]);
  });

  it("the config is copied when offered: changing the caller's object afterwards changes nothing sent or replayed", async () => {
    const kv = openKv();
    await kv.flush();
    let reads = 0;
    // Read once, by the call's copy; a second read (the tick's message, before the copy) would give a function.
    const config = {
      minBytes: 1,
      get ratio(): unknown {
        return ++reads > 1 ? () => 4 : 4;
      },
    };
    const plain = { ratio: 1, minBytes: 1 };
    kv.save("a", 1);
    expect(kv.configureCommitWatcher!(WAL_GROWTH_WATCHER, "g", config)).toBe(true);
    expect(kv.configureCommitWatcher!(WAL_GROWTH_WATCHER, "h", plain)).toBe(true);
    plain.ratio = Number.NaN; // too late: the copy was taken
    kv.save("b", 2);
    await kv.flush();
    expect([await kv.load("a"), await kv.load("b")]).toEqual([1, 2]);
    expect(reads).toBe(1);
    // Both configs arrived as offered: a frame of "h" makes its rule (ratio 1) due, and its fold is attempted.
    kv.save(walFrameKey(graphWalPrefix("h"), 1), { x: 1 });
    await kv.flush();
    await waitFor(() => reported.some((r) => r.tier === "h"));
    expect(reported.filter((r) => r.code === "invalid-argument" || r.code === "encode-failed")).toEqual([]);
  });
});

describe("the wal-growth watcher's config", () => {
  /** A frame of graph "g": a fold attempt of "g" follows when its rule is due (it reports baseline-missing here). */
  const frame = (seq: number): string => walFrameKey(graphWalPrefix("g"), seq);
  const foldAttempts = (): number => reported.filter((r) => r.tier === "g").length;

  for (const [label, bad] of [
    ["empty", {}],
    ["a ratio that is not a positive number", { ratio: "4", minBytes: 1 }],
    ["a negative minBytes", { ratio: 1, minBytes: -1 }],
    ["a NaN ratio", { ratio: Number.NaN, minBytes: 1 }],
  ] as const) {
    it(`${label}: refused with invalid-argument through onError; the valid rule it would replace keeps folding`, async () => {
      const kv = openKv();
      expect(kv.configureCommitWatcher!(WAL_GROWTH_WATCHER, "g", { ratio: 1, minBytes: 1 })).toBe(true);
      kv.configureCommitWatcher!(WAL_GROWTH_WATCHER, "g", bad);
      kv.save(frame(1), { x: 1 });
      await kv.flush();
      await waitFor(() => reported.length >= 2);
      expect(reported).toContainEqual({ code: "invalid-argument", tier: "wal" });
      // No graph "g" is stored: the fold the valid rule asked for ran and reported that (the rule is still in force).
      expect(foldAttempts()).toBe(1);
    });
  }

  it("foldInBackground refuses a rule that is not one, before sending anything", async () => {
    const kv = openKv();
    const snapshot = engine!.snapshot<unknown>({ kind: "memory", name: `watcher-config-${stores - 1}` }, { name: "snap" });
    expectCoded(thrown(() => foldInBackground(kv, snapshot, "g", { ratio: 0, minBytes: 1 })), StorageError, "invalid-argument");
    expect(foldInBackground(kv, snapshot, "g", { ratio: 1, minBytes: 1 })).toBe(true);
  });
});
