/**
 * Backpressure weighs a value that is encoded later (inline at flush, or in the store's actor) by the size its
 * value check saw while walking it, not by a guess: before this, such a value counted as 1 KiB until the tier or
 * store had committed something to average from, and as the average after, so 200 values of 1 MB passed a
 * 16 MiB bound. A snapshot tier keeps one record: a newer save replaces the unsent older one, in the inline
 * tier's count and in an engine store's turn (one record held and sent, not every superseded one). docs/design.md
 * §3.19.
 */
import fc from "fast-check";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { storableJsonSize } from "../../src/codec/strict.js";
import { canonicalJson } from "../../src/codec/json.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { tempRoot } from "../engine/fixtures/helpers.js";
import { recordWeight } from "../../src/tier/weights.js";
import { saveUntilRefused } from "../support/save-until-refused.js";

const root = tempRoot("value-weights");
afterAll(() => root.remove());

const MiB = 1024 * 1024;
/** A distinct record of about `bytes` bytes of JSON. */
const record = (i: number, bytes: number) => ({ i, pad: String(i % 10).repeat(bytes) });

describe("storableJsonSize", () => {
  it("estimates a value's JSON bytes within a small factor (ASCII content), and refuses what the rule refuses", () => {
    const ascii = fc.string({ unit: fc.constantFrom(..."abcdefghij klmnop0123456789") });
    const json = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: "small" }, ascii, fc.integer(), fc.boolean(), fc.constant(null), tie("array"), tie("object")),
      array: fc.array(tie("value"), { maxLength: 6 }),
      object: fc.dictionary(ascii, tie("value"), { maxKeys: 6 }),
    })).value;
    fc.assert(
      fc.property(json, (v) => {
        const actual = new TextEncoder().encode(canonicalJson(v)).byteLength;
        const estimate = storableJsonSize(v);
        expect(estimate).toBeGreaterThanOrEqual(actual / 3);
        expect(estimate).toBeLessThanOrEqual(3 * actual + 16);
      }),
    );
    expect(storableJsonSize({ big: "x".repeat(MiB) })).toBeGreaterThan(MiB);
    expect(() => storableJsonSize({ bad: Number.NaN })).toThrow(/cannot be encoded as JSON at \$\.bad/);
  });
});

describe("inline tiers weigh a value by its size", () => {
  it("a kv tier refuses 1 MB values past maxPendingBytes before anything was committed (they counted as 1 KiB)", async () => {
    const kv = kvStorage<{ i: number; pad: string }>(memoryBackend(), { debounceMs: 60_000, maxPendingBytes: 4 * MiB });
    const { accepted, refused } = saveUntilRefused((i) => kv.save(`k${i}`, record(i, MiB)), 50);
    expect(refused).toBeInstanceOf(StorageError);
    expect((refused as StorageError).code).toBe("backpressure");
    // Each weighs recordWeight(key, its JSON estimate), a little over 1 MiB: three fit 4 MiB, the fourth would not.
    expect(accepted).toBe(3);
    expect(accepted * recordWeight("k0", storableJsonSize(record(0, MiB)))).toBeLessThanOrEqual(4 * MiB);
    await kv.flush();
    for (let i = 0; i < accepted; i++) expect((await kv.load(`k${i}`))?.i).toBe(i);
    expect(await kv.load(`k${accepted}`)).toBeUndefined();
  });

  it("a snapshot tier's superseded records stop counting: a burst of 1 MB saves is accepted and the newest lands", async () => {
    const backend = memoryBackend();
    const snap = snapshotStorage<{ name: string; i: number; pad: string }>(backend, { debounceMs: 60_000, maxPendingBytes: 4 * MiB });
    snap.save({ name: "s", ...record(-1, MiB) });
    await snap.flush(); // a committed record: its size is now the tier's average too
    const { accepted, refused } = saveUntilRefused((i) => snap.save({ name: "s", ...record(i, MiB) }), 40);
    expect(refused).toBeUndefined();
    expect(accepted).toBe(40);
    await snap.flush();
    expect((await snap.load("s"))?.i).toBe(39);
  });
});

describe("inline kv tiers count one value per key", () => {
  it("a hot key saved many times in a debounce window holds one value: no backpressure, the newest lands", async () => {
    const kv = kvStorage<{ i: number; pad: string }>(memoryBackend(), { debounceMs: 60_000, maxPendingBytes: 256 * 1024 });
    const { accepted, refused } = saveUntilRefused((i) => kv.save("hot", record(i, 1024)), 2000); // ~2 MB in all
    expect(refused).toBeUndefined();
    expect(accepted).toBe(2000);
    kv.save("other", record(-1, 1024));
    await kv.flush();
    expect((await kv.load("hot"))?.i).toBe(1999);
    expect((await kv.load("other"))?.i).toBe(-1);
    // Distinct keys each hold a value: the bound still applies to them.
    const distinct = saveUntilRefused((i) => kv.save(`k${i}`, record(i, 1024)), 2000);
    expect((distinct.refused as StorageError).code).toBe("backpressure");
    expect(distinct.accepted).toBeLessThan(300);
  });
});

describe("engine stores weigh a value by its size", () => {
  let engine: StorageEngine | undefined;
  afterEach(async () => {
    await engine?.close();
    engine = undefined;
  });

  it("a kv tier refuses 1 MB values past the store's maxPendingBytes, after a small value taught it a small average", async () => {
    engine = openStorageEngine({ maxPendingBytes: 4 * MiB });
    const kv = engine.kv<{ i: number; pad: string }>({ kind: "sqlite", path: root.fresh("kv.db") }, { debounceMs: 60_000 });
    kv.save("small", record(-1, 10));
    await kv.flush();
    const { accepted, refused } = saveUntilRefused((i) => kv.save(`k${i}`, record(i, MiB)), 50);
    expect(refused).toBeInstanceOf(StorageError);
    expect((refused as StorageError).code).toBe("backpressure");
    expect(accepted).toBe(3); // as inline: three records of a little over 1 MiB fit 4 MiB
    await kv.flush();
    for (let i = 0; i < accepted; i++) expect((await kv.load(`k${i}`))?.i).toBe(i);
  });

  it("one turn's burst of snapshot saves holds and sends one record: none refused, the newest lands, one record pending", async () => {
    engine = openStorageEngine({ maxPendingBytes: 8 * MiB });
    const snap = engine.snapshot<{ name: string; i: number; pad: string }>({ kind: "sqlite", path: root.fresh("snap.db") }, { debounceMs: 60_000 });
    const { accepted, refused } = saveUntilRefused((i) => snap.save({ name: "s", ...record(i, MiB) }), 100);
    expect(refused).toBeUndefined();
    expect(accepted).toBe(100);
    const [store] = await engine.stats();
    expect(store!.pendingBytes).toBeGreaterThan(MiB / 2); // one ~1 MB record, weighed by its size
    expect(store!.pendingBytes).toBeLessThan(2 * MiB); // not a hundred
    await snap.flush();
    expect((await snap.load("s"))?.i).toBe(99);
  });
});
