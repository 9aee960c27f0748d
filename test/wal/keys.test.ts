import { readFileSync } from "node:fs";
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import {
  WAL_FRAME_SEQ_PAD,
  WAL_KEY_SEGMENT,
  graphWalPrefix,
  parseWalFrameKey,
  walFrameKey,
} from "../../src/wal/index.js";

interface KeyVectors {
  walFrameKey: { prefix: string; seq: number; key: string }[];
  rangeErrors: { prefix: string; seq: number }[];
  graphWalPrefix: { name: string; prefix: string }[];
}
const vectors = JSON.parse(
  readFileSync(new URL("../vectors/wal-keys.json", import.meta.url), "utf8"),
) as KeyVectors;

const seqArb = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });

describe("key constants", () => {
  it("match docs/protocol.md §6.2", () => {
    expect(WAL_KEY_SEGMENT).toBe("wal");
    expect(WAL_FRAME_SEQ_PAD).toBe(20);
  });
});

describe("walFrameKey (wal-keys.json)", () => {
  it.each(vectors.walFrameKey.map((v) => [v.prefix, v.seq, v.key] as const))("(%j, %d) → %s", (prefix, seq, key) => {
    expect(walFrameKey(prefix, seq)).toBe(key);
  });

  it.each(vectors.rangeErrors.map((v) => [v.prefix, v.seq] as const))("(%j, %d) throws RangeError", (prefix, seq) => {
    expect(() => walFrameKey(prefix, seq)).toThrow(RangeError);
    expect(() => walFrameKey(prefix, seq)).toThrow(
      `walFrameKey: frame_seq must be a non-negative integer, got ${seq}`,
    );
  });

  it.each([NaN, Infinity, -Infinity, 2 ** 53, 1e21, -0.5])("rejects %d with RangeError", (seq) => {
    expect(() => walFrameKey("p", seq)).toThrow(RangeError);
  });

  it("rejects a non-string prefix with TypeError", () => {
    expect(() => walFrameKey(undefined as unknown as string, 1)).toThrow(TypeError);
  });

  it("gives the padded key whatever prefixes and digit counts come before (its cache of heads, design §3.44)", () => {
    // Prefixes interleaved, more of them than the cache holds (64), and each digit count: every key is the rule's.
    const mixedDigits = fc.oneof(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 0, max: 1e9 }), seqArb);
    const expected = (prefix: string, seq: number) => `${prefix}/${String(seq).padStart(WAL_FRAME_SEQ_PAD, "0")}`;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 200 }), mixedDigits), { minLength: 1, maxLength: 300 }),
        (calls) => {
          for (const [g, seq] of calls) {
            const prefix = g === 0 ? "" : g === 1 ? "g/wal" : `graph-${g}/wal`;
            expect(walFrameKey(prefix, seq)).toBe(expected(prefix, seq));
          }
        },
      ),
    );
  });

  it("writes the digits of every seq as String() does, around each three-digit group and the int32 bound (design §3.54)", () => {
    // walFrameKey joins three-digit groups below 2^31 (String() would enter each seq in V8's number-string cache).
    const expected = (seq: number) => `g/wal/${String(seq).padStart(WAL_FRAME_SEQ_PAD, "0")}`;
    const edges: number[] = [];
    for (let p = 1; p <= 1e15; p *= 10) for (const d of [-1001, -1000, -999, -2, -1, 0, 1, 2, 999, 1000, 1001]) edges.push(p + d);
    for (const x of [2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 2 ** 32, 1_000_000_999, 2_000_000_000, 2_147_483_000, Number.MAX_SAFE_INTEGER]) edges.push(x);
    for (let seq = 0; seq < 3000; seq++) edges.push(seq);
    for (const seq of edges) if (seq >= 0) expect(walFrameKey("g/wal", seq)).toBe(expected(seq));
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (seq) => walFrameKey("g/wal", seq) === expected(seq)), { numRuns: 20_000 });
  });

  it("lexicographic key order equals numeric order", () => {
    fc.assert(
      fc.property(fc.array(seqArb, { minLength: 2, maxLength: 30 }), (seqs) => {
        const byNumber = [...seqs].sort((a, b) => a - b).map((s) => walFrameKey("g/wal", s));
        const byKey = seqs.map((s) => walFrameKey("g/wal", s)).sort();
        expect(byKey).toEqual(byNumber);
      }),
    );
  });
});

describe("graphWalPrefix (wal-keys.json)", () => {
  it.each(vectors.graphWalPrefix.map((v) => [v.name, v.prefix] as const))("%j → %j", (name, prefix) => {
    expect(graphWalPrefix(name)).toBe(prefix);
  });
});

describe("parseWalFrameKey", () => {
  it("round-trips walFrameKey", () => {
    fc.assert(
      fc.property(fc.string(), seqArb, (name, seq) => {
        const prefix = graphWalPrefix(name);
        expect(parseWalFrameKey(prefix, walFrameKey(prefix, seq))).toBe(seq);
      }),
    );
  });

  it("reads the vector keys", () => {
    for (const v of vectors.walFrameKey) expect(parseWalFrameKey(v.prefix, v.key)).toBe(v.seq);
  });

  it.each([
    ["a sibling graph's frame", "g/walrus/00000000000000000001"],
    ["a nested graph's frame", "g/wal/x/00000000000000000001"],
    ["the prefix itself", "g/wal"],
    ["the prefix with a slash", "g/wal/"],
    ["19 digits", "g/wal/0000000000000000001"],
    ["21 digits", "g/wal/000000000000000000001"],
    ["a non-digit", "g/wal/0000000000000000000a"],
    ["a sign", "g/wal/-0000000000000000001"],
    ["no separator", "g/wal_00000000000000000001"],
    ["another prefix", "h/wal/00000000000000000001"],
    ["a seq above 2^53 - 1 (u64 max)", "g/wal/18446744073709551615"],
  ])("rejects %s", (_name, key) => {
    expect(parseWalFrameKey("g/wal", key)).toBeUndefined();
  });

  it("rejects keys of other graphs listed under a shared prefix", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), seqArb, (suffix, seq) => {
        const sibling = graphWalPrefix("g") + suffix;
        expect(parseWalFrameKey(graphWalPrefix("g"), walFrameKey(sibling, seq))).toBeUndefined();
      }),
    );
  });
});
