/**
 * `copyStorableJson`: the strict rule ("reject") and a fresh plain copy in one walk that reads each property once.
 * It refuses exactly what `assertStorableJson` refuses with the same located CodecError, and otherwise copies what
 * the codec would write (undefined properties left out, -0 as 0, wide-integer bigints kept), sharing no container
 * with its input and reporting the deepest nesting.
 */
import fc from "fast-check";
import { serialize } from "node:v8";
import { describe, expect, it } from "vitest";
import { jsonCodec } from "../../src/codec/json.js";
import { assertStorableJson, copyStorableJson, MAX_JSON_DEPTH } from "../../src/codec/strict.js";
import { jsonData, outcome, withUnencodable } from "./json-arbitraries.js";

const RUNS = { numRuns: 500 };

/** Deepest container nesting (root container: 1, primitive: 0). */
function depthOf(value: unknown): number {
  if (typeof value !== "object" || value === null) return 0;
  let d = 0;
  for (const v of Object.values(value)) d = Math.max(d, depthOf(v));
  return d + 1;
}

/** Every container reachable from `value`. */
function containers(value: unknown, out = new Set<object>()): Set<object> {
  if (typeof value === "object" && value !== null) {
    out.add(value);
    for (const v of Object.values(value)) containers(v, out);
  }
  return out;
}

const values = fc.oneof(jsonData, withUnencodable, fc.bigInt().map((n) => ({ n })));

describe("copyStorableJson", () => {
  it("refuses exactly what assertStorableJson refuses, with the same message and path", () => {
    fc.assert(
      fc.property(values, fc.constantFrom("$", "$.change"), (value, root) => {
        expect(outcome(() => copyStorableJson(value, root))).toEqual(outcome(() => assertStorableJson(value, "reject", root)));
      }),
      RUNS,
    );
  });

  it("copies what the codec writes, shares no container with its input, reports the depth", () => {
    fc.assert(
      fc.property(jsonData, (value) => {
        const { copy, depth } = copyStorableJson(value);
        expect(copy).toEqual(jsonCodec.decode(jsonCodec.encode(value as never)));
        expect(depth).toBe(depthOf(copy));
        const mine = containers(copy);
        for (const c of containers(value)) expect(mine.has(c)).toBe(false);
      }),
      RUNS,
    );
  });

  it("turns -0 into 0, leaves out undefined properties, keeps wide bigints and an own __proto__ key", () => {
    const wide = 10n ** 30n;
    const input = JSON.parse('{"__proto__": {"a": -0}}') as Record<string, unknown>;
    input["u"] = undefined;
    input["w"] = [wide, -0];
    const { copy, depth } = copyStorableJson(input);
    expect(Object.keys(copy as object)).toStrictEqual(["__proto__", "w"]);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    const proto = Object.getOwnPropertyDescriptor(copy, "__proto__")?.value as { a: number };
    expect(Object.is(proto.a, 0)).toBe(true);
    expect((copy as { w: unknown[] }).w).toStrictEqual([wide, 0]);
    expect(Object.is((copy as { w: unknown[] }).w[1], 0)).toBe(true);
    expect(depth).toBe(2);
    expect(copyStorableJson(-0).copy).toBe(0);
    expect(copyStorableJson("s")).toStrictEqual({ copy: "s", depth: 0 });
  });

  it("reads each property once and copies the value it read", () => {
    let reads = 0;
    const input = {
      get x(): unknown {
        reads++;
        return reads === 1 ? [1] : Number.NaN;
      },
    };
    expect(copyStorableJson({ a: [input] }).copy).toStrictEqual({ a: [{ x: [1] }] });
    expect(reads).toBe(1);
  });

  it("with freeze, freezes every container but the root", () => {
    const { copy } = copyStorableJson({ a: [{ b: 1 }], c: {} }, "$", true);
    const root = copy as { a: [{ b: number }]; c: object };
    expect(Object.isFrozen(root)).toBe(false);
    expect([Object.isFrozen(root.a), Object.isFrozen(root.a[0]), Object.isFrozen(root.c)]).toStrictEqual([true, true, true]);
    expect(Object.isFrozen(copyStorableJson({ a: 1 }).copy)).toBe(false);
    expect(Object.isFrozen((copyStorableJson({ a: {} }).copy as { a: object }).a)).toBe(false);
  });

  it(`copies ${MAX_JSON_DEPTH} levels and refuses one more at the same path as the rule`, () => {
    let v: unknown = 1;
    for (let i = 0; i < MAX_JSON_DEPTH; i++) v = [v];
    expect(copyStorableJson(v).depth).toBe(MAX_JSON_DEPTH);
    expect(outcome(() => copyStorableJson([v]))).toEqual(outcome(() => assertStorableJson([v])));
    expect(outcome(() => copyStorableJson([v]))).toMatchObject({ ok: false });
  });

  it("keeps each walk's own state: a copy a getter starts inside another, and a copy after a refused one", () => {
    let inner: { copy: unknown; depth: number } | undefined;
    const outer = {
      a: { b: 1 },
      get c() {
        inner = copyStorableJson({ x: { y: [1] } }); // unfrozen, two levels deeper than where it starts
        return [2];
      },
      d: {},
    };
    const { copy, depth } = copyStorableJson(outer, "$", true);
    const root = copy as { a: object; c: object; d: object };
    expect(root).toStrictEqual({ a: { b: 1 }, c: [2], d: {} });
    expect(depth).toBe(2);
    expect([Object.isFrozen(root.a), Object.isFrozen(root.c), Object.isFrozen(root.d)]).toStrictEqual([true, true, true]);
    expect(inner?.depth).toBe(3);
    expect(Object.isFrozen((inner?.copy as { x: object }).x)).toBe(false);

    // A walk refused three levels down leaves no ancestor behind for the next one (no false cycle, the right depth).
    const shared = { e: 1 };
    expect(outcome(() => copyStorableJson({ p: [shared, { q: () => 1 }] }))).toMatchObject({ ok: false });
    expect(copyStorableJson({ p: [shared] })).toStrictEqual({ copy: { p: [{ e: 1 }] }, depth: 3 });
  });

  it("copies objects as plain objects, indistinguishable from literals", () => {
    const input = { b: 1, a: { d: "y", c: null }, "0": "x" };
    const { copy } = copyStorableJson(input);
    const literal = { "0": "x", b: 1, a: { d: "y", c: null } };
    const pairs: [object, object][] = [
      [copy as object, literal],
      [(copy as typeof literal).a, literal.a],
    ];
    for (const [mine, theirs] of pairs) {
      expect(Object.getPrototypeOf(mine)).toBe(Object.prototype);
      expect(mine.constructor).toBe(Object);
      expect(Reflect.ownKeys(mine)).toStrictEqual(Reflect.ownKeys(theirs));
      expect(Object.getOwnPropertyDescriptors(mine)).toStrictEqual(Object.getOwnPropertyDescriptors(theirs));
      expect(Object.isExtensible(mine)).toBe(true);
    }
    expect(serialize(copy)).toStrictEqual(serialize(literal));
    expect(structuredClone(copy)).toStrictEqual(literal);
    expect(JSON.stringify(copy)).toBe(JSON.stringify(literal));
  });

  it("copies own keys only: an enumerable key on Object.prototype reaches no copy (the walk is for-in)", () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto.polluted = 1;
    try {
      const bare = Object.assign(Object.create(null) as Record<string, unknown>, { b: 2 });
      const { copy } = copyStorableJson({ a: 1, nested: { c: 3 }, bare });
      const out = copy as Record<string, Record<string, unknown>>;
      expect(Object.keys(out)).toEqual(["a", "nested", "bare"]);
      expect(Object.keys(out.nested!)).toEqual(["c"]);
      expect(Object.keys(out.bare!)).toEqual(["b"]);
      expect([out, out.nested, out.bare].some((o) => Object.hasOwn(o!, "polluted"))).toBe(false);
    } finally {
      delete proto.polluted;
    }
  });

  it("refuses undefined at the root like the rule", () => {
    expect(outcome(() => copyStorableJson(undefined, "$.v"))).toEqual(outcome(() => assertStorableJson(undefined, "reject", "$.v")));
  });
});
