/**
 * The turn ring's codec (src/engine/ring.ts) alone: what it takes reads back as structured clone would carry it, and
 * what it cannot carry exactly is refused (`false`: the connection posts a message instead), never altered.
 */
import { describe, expect, it } from "vitest";
import { TurnRingReader, TurnRingWriter, createTurnRing, type RingOp } from "../../src/engine/ring.js";

function put(value: unknown, key = "k"): RingOp[] {
  return [{ t: "puts", tier: 1, w: 10, n: 1, keys: [key], values: [value] }];
}

describe("the turn ring's codec", () => {
  it("reads back what structured clone would carry: JSON shapes, -0, NaN, an own __proto__ key, null-prototype objects", () => {
    const sab = createTurnRing(4096);
    const w = new TurnRingWriter(sab);
    const r = new TurnRingReader(sab);
    const bare = Object.create(null) as Record<string, unknown>;
    bare.a = 1;
    const protoKey = JSON.parse('{"__proto__": {"x": 1}, "y": [1, "two", null, true, false]}') as unknown;
    const values: unknown[] = [null, true, false, 0, -0, Number.NaN, 1e300, "", "ascii", "é ключ 😀 long enough for the native path", { a: { b: [1, { c: "d" }] } }, bare, protoKey, [[], {}]];
    for (const v of values) {
      expect(w.tryWrite(put(v), 0)).toBe(true);
      const got = r.next(0)!.ops[0] as Extract<RingOp, { t: "puts" }>;
      expect(got.values[0]).toStrictEqual(structuredClone(v));
      expect(Object.is(got.values[0], -0)).toBe(Object.is(v, -0));
    }
  });

  it("refuses what it cannot carry exactly: a lone surrogate (in a value or a key), a bigint, undefined inside a value, a hole, a Date, a Map", () => {
    const sab = createTurnRing(4096);
    const w = new TurnRingWriter(sab);
    const r = new TurnRingReader(sab);
    for (const v of ["\ud800", "a lone surrogate past sixteen chars \udfff", { s: "x\ud800" }, 10n, { u: undefined }, [1, , 3], new Date(0), new Map()]) {
      expect(w.tryWrite(put(v), 0)).toBe(false);
    }
    expect(w.tryWrite(put(1, "key \ud800"), 0)).toBe(false);
    expect(r.next(0)).toBeUndefined(); // nothing was published
    expect(w.tryWrite(put({ fine: "yes" }), 0)).toBe(true); // a refusal leaves the ring usable
    expect(r.next(0)!.ops).toHaveLength(1);
  });

  it("a full ring refuses until read; a record waits for the messages posted before it", () => {
    const sab = createTurnRing(1024);
    const w = new TurnRingWriter(sab);
    const r = new TurnRingReader(sab);
    let written = 0;
    while (w.tryWrite(put("x".repeat(100)), 1)) written++;
    expect(written).toBeGreaterThan(0);
    expect(r.next(0)).toBeUndefined(); // written after one message: waits for it
    expect(r.next(1)).toBeDefined();
    expect(w.tryWrite(put("x".repeat(100)), 1)).toBe(true); // room again
  });
});
