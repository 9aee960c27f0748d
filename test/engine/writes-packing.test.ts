/**
 * A writes batch crosses the port as one flat array (docs/design.md §3.25): whatever ops a turn queued, the worker
 * unpacks exactly those ops, in order, also after structured clone, and the weights (`w`, `n`) are kept as given
 * (a resent op weighs nothing: its `n` is 0 while it still carries its keys).
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { isWritesMessage, packWrites, unpackWrites, type Op } from "../../src/engine/protocol.js";

const json = fc.jsonValue({ maxDepth: 2 });
const tier = fc.nat({ max: 5 });
const weight = fc.record({ w: fc.nat(), n: fc.nat({ max: 3 }) });

const puts = fc
  .tuple(tier, weight, fc.array(fc.tuple(fc.string(), json), { minLength: 1, maxLength: 6 }))
  .map(([t, { w, n }, kv]): Op => ({ t: "puts", tier: t, keys: kv.map(([k]) => k), values: kv.map(([, v]) => v), w, n }));
const columns = fc
  .tuple(tier, weight, fc.array(fc.string(), { minLength: 1, maxLength: 6 }), fc.array(json, { maxLength: 20 }))
  .map(([t, { w, n }, keys, cols]): Op => ({ t: "columns", tier: t, keys, cols, w, n }));
const other = fc.oneof(
  tier.map((t): Op => ({ t: "rollback", tier: t })),
  fc.tuple(tier, fc.string(), json).map(([t, key, value]): Op => ({ t: "put", tier: t, key, value })),
  fc.tuple(tier, fc.string(), fc.array(json, { maxLength: 4 })).map(([t, bucket, entries]): Op => ({ t: "append", tier: t, bucket, entries, count: entries.length })),
  fc.tuple(tier, fc.string(), fc.uint8Array({ maxLength: 16 })).map(([t, key, bytes]): Op => ({ t: "put", tier: t, key, bytes, w: bytes.length, n: 1 })),
  fc
    .tuple(tier, weight, fc.array(fc.tuple(fc.string(), fc.array(json, { minLength: 1, maxLength: 3 })), { minLength: 1, maxLength: 3 }))
    .map(([t, { w, n }, groups]): Op => ({ t: "append", tier: t, buckets: groups.map(([b]) => b), counts: groups.map(([, e]) => e.length), entries: groups.map(([, e]) => e), w, n })),
  fc.tuple(tier, fc.string(), fc.string()).map(([t, code, message]): Op => ({ t: "refuse", tier: t, error: { name: "StorageError", code, message } })),
  fc.tuple(tier, fc.string(), fc.string(), json).map(([t, watcher, key, config]): Op => ({ t: "configure-watcher", tier: t, watcher, key, config })),
);
const ops = fc.array(fc.oneof(puts, columns, other), { maxLength: 8 });

describe("writes packing", () => {
  it("unpack(pack(ops)) is ops, before and after structured clone", () => {
    fc.assert(
      fc.property(ops, (batch) => {
        const packed = packWrites(batch);
        expect(isWritesMessage(packed)).toBe(true);
        expect(unpackWrites(packed)).toStrictEqual(batch);
        expect(unpackWrites(structuredClone(packed) as unknown[])).toStrictEqual(structuredClone(batch));
      }),
    );
  });

  it("a resent op (n = 0) keeps all its keys and values, and the ops after it stay aligned", () => {
    const batch: Op[] = [
      { t: "puts", tier: 1, keys: ["a", "b"], values: [1, 2], w: 0, n: 0 },
      { t: "columns", tier: 2, keys: ["c", "d", "e"], cols: [3, null], w: 0, n: 0 },
      { t: "rollback", tier: 1 },
    ];
    expect(unpackWrites(packWrites(batch))).toStrictEqual(batch);
  });

  it("a batch larger than a call's argument limit packs (loops, not spreads)", () => {
    const keys = Array.from({ length: 200_000 }, (_, i) => `k${i}`);
    const batch: Op[] = [{ t: "puts", tier: 1, keys, values: keys.map((_, i) => i), w: 1, n: keys.length }];
    expect(unpackWrites(packWrites(batch))).toStrictEqual(batch);
  });

  it("a puts op whose values do not match its keys is refused when packed, and an unknown record fails unpacking", () => {
    expect(() => packWrites([{ t: "puts", tier: 1, keys: ["a", "b"], values: [1], w: 1, n: 2 }])).toThrow(/2 keys carries 1 values/);
    expect(() => unpackWrites(["graphrefly.writes", 7, 1, 0, 0])).toThrow(/unknown record kind 7/);
  });

  it("the messages comlink and the other protocol messages use are not writes batches", () => {
    expect(isWritesMessage({ type: "graphrefly.writes", ops: [] })).toBe(false);
    expect(isWritesMessage(["other"])).toBe(false);
    expect(isWritesMessage({ id: "1", type: "APPLY", path: [] })).toBe(false);
  });
});
