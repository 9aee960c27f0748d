/**
 * The graph reads a value it is given exactly once (DESIGN §3.16): the rule and the private copy come from the
 * same reads, so a getter that answers differently on a second read cannot slip a value the codec refuses into
 * the graph marked as checked (attach's frames built from checked values skip the tier's walk). A getter that
 * re-enters the graph (sets another node) cannot make a deep value look shallow enough to be marked either.
 */
import { describe, expect, it } from "vitest";
import { assertStorableJson, MAX_JSON_DEPTH } from "../../src/codec/strict.js";
import { jsonCodec } from "../../src/codec/json.js";
import { CodecError } from "../../src/errors.js";
import { createGraph } from "../../src/graph/graph.js";
import { isCheckedJson, toFrozenJson } from "../../src/graph/json-utils.js";
import type { JsonValue, ReactiveGraph as Graph } from "../../src/graph/types.js";

/** An array nested `depth` levels deep (depth 1: `[0]`). */
function nested(depth: number): unknown[] {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = [v];
  return v as unknown[];
}

function cyclic(): unknown {
  const o: Record<string, unknown> = { a: 1 };
  o["self"] = o;
  return o;
}

/** `{ x }` whose enumerable getter answers `first` on the first read and `later()` on every read after it. */
function flipping(first: unknown, later: () => unknown): { value: Record<string, unknown>; reads: () => number } {
  let reads = 0;
  const value = {
    get x(): unknown {
      reads++;
      return reads === 1 ? first : later();
    },
  };
  return { value, reads: () => reads };
}

/** The graph's own (shared, frozen) value of `path`, as attach sees it. */
function held(g: Graph, path: string): unknown {
  return g.describeNode(path, "shared")?.value;
}

/** Either a typed refusal at `path` or the value read once; never an unchecked value in the graph. */
function expectSafe(g: Graph, set: () => void, path: string, readOnce: unknown): void {
  let err: unknown;
  try {
    set();
  } catch (e) {
    err = e;
  }
  if (err !== undefined) {
    expect(err).toBeInstanceOf(CodecError);
    expect((err as CodecError).code).toBe("encode-failed");
    expect((err as CodecError).details["path"]).toBe(path);
    return;
  }
  expect(g.get("x")).toStrictEqual(readOnce);
  const v = held(g, "x");
  expect(() => assertStorableJson(v)).not.toThrow();
  expect(() => jsonCodec.encode(v as JsonValue)).not.toThrow();
}

const laterValues: Array<[string, () => unknown]> = [
  ["NaN", () => Number.NaN],
  ["a bigint", () => 5n],
  ["a lone surrogate", () => "bad \ud800"],
  ["a function", () => () => 1],
  ["[undefined]", () => [undefined]],
  ["a cyclic object", cyclic],
  ["a Date", () => new Date(0)],
  [`a value nested ${MAX_JSON_DEPTH + 5} deep`, () => nested(MAX_JSON_DEPTH + 5)],
];

describe("a getter that answers 1 first and a refused value after", () => {
  it.each(laterValues)("set reads it once and stores 1, not %s", (_label, later) => {
    const g = createGraph("g");
    g.state("x", 0);
    const { value, reads } = flipping(1, later);
    expectSafe(g, () => g.set("x", value as JsonValue), "$.x", { x: 1 });
    expect(reads()).toBe(1);
    expect(g.get("x")).toStrictEqual({ x: 1 });
    expect(isCheckedJson(held(g, "x"))).toBe(true);
  });

  it.each(laterValues)("nested in an array, %s never reaches the graph", (_label, later) => {
    const g = createGraph("g");
    g.state("x", 0);
    const { value, reads } = flipping(1, later);
    expectSafe(g, () => g.set("x", ["a", value] as JsonValue), "$[1].x", ["a", { x: 1 }]);
    expect(reads()).toBe(1);
  });

  it.each(laterValues)("state initial values, meta and derived results read it once too (%s)", (_label, later) => {
    const g = createGraph("g");
    const init = flipping(1, later);
    const meta = flipping(1, later);
    g.state("s", init.value as JsonValue, { meta: meta.value as Record<string, JsonValue> });
    expect([init.reads(), meta.reads()]).toStrictEqual([1, 1]);
    expect(g.get("s")).toStrictEqual({ x: 1 });
    const result = flipping(1, later);
    g.derived("d", ["s"], () => result.value as JsonValue);
    expect(result.reads()).toBe(1);
    expect(g.get("d")).toStrictEqual({ x: 1 });
    expect(() => assertStorableJson(held(g, "d"))).not.toThrow();
  });

  it("toFrozenJson's copy holds exactly what it read: -0 as 0, undefined properties left out", () => {
    let reads = 0;
    const v = toFrozenJson(
      {
        get n(): number {
          reads++;
          return reads === 1 ? -0 : Number.NaN;
        },
        u: undefined,
      },
      "value",
    );
    expect(reads).toBe(1);
    expect(Object.is((v as { n: number }).n, 0)).toBe(true);
    expect(Object.keys(v as object)).toStrictEqual(["n"]);
    expect(Object.isFrozen(v)).toBe(true);
  });
});

describe("a getter that answers a refused value first", () => {
  it.each(laterValues)("set refuses %s with the codec's CodecError at its path and changes nothing", (_label, bad) => {
    const g = createGraph("g");
    g.state("x", 0);
    const { value } = flipping(bad(), () => 1);
    let err: unknown;
    try {
      g.set("x", { outer: value } as JsonValue);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CodecError);
    expect((err as CodecError).code).toBe("encode-failed");
    expect(String((err as CodecError).details["path"])).toMatch(/^\$\.outer\.x/);
    expect((err as CodecError).message).toContain('set("x") value cannot be stored');
    expect(g.get("x")).toBe(0);
  });
});

describe("a getter that sets another node while its value is read (reentry)", () => {
  it("a deep value is not marked checked because a nested set ran in the middle of it", () => {
    const g = createGraph("g");
    g.state("x", 0);
    g.state("other", 0);
    const value = {
      deep: nested(MAX_JSON_DEPTH - 5),
      get y(): number {
        g.set("other", 1);
        return 1;
      },
    };
    g.set("x", value as unknown as JsonValue);
    expect(g.get("other")).toBe(1);
    expect(isCheckedJson(held(g, "x"))).toBe(false);
    expect(isCheckedJson(held(g, "other"))).toBe(true);
  });

  it("a getter that sets another node and answers a deep value later stays typed and unmarked", () => {
    const g = createGraph("g");
    g.state("x", 0);
    g.state("other", 0);
    let reads = 0;
    const value = {
      deep: nested(MAX_JSON_DEPTH - 5),
      get y(): unknown {
        reads++;
        g.set("other", { n: reads });
        return reads === 1 ? 1 : nested(3 * MAX_JSON_DEPTH);
      },
    };
    expectSafe(g, () => g.set("x", value as unknown as JsonValue), "$.y", { deep: value.deep, y: 1 });
    expect(reads).toBe(1);
    expect(g.get("other")).toStrictEqual({ n: 1 });
    const x = held(g, "x") as { y: unknown };
    expect(x.y).toBe(1);
    expect(isCheckedJson(x)).toBe(false);
  });

  it("a shallow value set inside a getter is marked; the deep outer one still is not", () => {
    const g = createGraph("g");
    g.state("x", 0);
    g.state("other", 0);
    const value = [
      nested(MAX_JSON_DEPTH - 5),
      {
        get y(): number {
          g.set("other", { shallow: [1] });
          return 2;
        },
      },
    ];
    g.set("x", value as unknown as JsonValue);
    expect(isCheckedJson(held(g, "other"))).toBe(true);
    expect(isCheckedJson(held(g, "x"))).toBe(false);
    expect((held(g, "x") as unknown[])[1]).toStrictEqual({ y: 2 });
  });
});
