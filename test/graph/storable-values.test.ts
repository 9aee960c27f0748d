/**
 * The graph accepts exactly the values the strict codec stores (DESIGN §3.2, §3.16): a value the codec would
 * refuse is refused when it enters the graph (set, state/addState initial, meta) with the codec's own
 * CodecError('encode-failed') and JSON path, and the graph is left unchanged. A derived function that returns
 * such a value errors (status "errored", last value kept), like one that throws.
 */
import { describe, expect, it } from "vitest";
import { jsonCodec } from "../../src/codec/json.js";
import { CodecError } from "../../src/errors.js";
import { createGraph } from "../../src/graph/graph.js";
import type { GraphWave, JsonValue } from "../../src/graph/types.js";

const LONE = "bad \ud800 string";

function expectRefused(fn: () => unknown, path: string): CodecError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(CodecError);
  expect((err as CodecError).code).toBe("encode-failed");
  expect((err as CodecError).details["path"]).toBe(path);
  return err as CodecError;
}

/** What the codec says about `value`: the graph must agree. */
function codecRefuses(value: unknown): boolean {
  try {
    jsonCodec.encode(value as JsonValue);
    return false;
  } catch (err) {
    expect(err).toBeInstanceOf(CodecError);
    return true;
  }
}

describe("values the codec refuses are refused at set time", () => {
  const refused: Array<[string, unknown, string]> = [
    ["a lone surrogate", LONE, "$"],
    ["a lone surrogate inside an object", { a: [1, LONE] }, "$.a[1]"],
    ["a lone surrogate in an object key", { ["k\udc00"]: 1 }, '$["k\\udc00"]'],
    ["NaN", Number.NaN, "$"],
    ["a nested bigint", { n: 1n }, "$.n"],
    ["a function in an array", [0, () => 1], "$[1]"],
    ["a Date", { d: new Date(0) }, "$.d"],
    ["a Map", new Map(), "$"],
    ["a sparse array", [1, , 3], "$[1]"],
    ["undefined", undefined, "$"],
  ];

  it.each(refused)("set refuses %s with the codec's CodecError and changes nothing", (_label, value, path) => {
    expect(codecRefuses(value)).toBe(true);
    const g = createGraph("g");
    g.state("x", "ok");
    const before = g.snapshot();
    const waves: GraphWave[] = [];
    g.observe((w) => waves.push(w));
    const err = expectRefused(() => g.set("x", value as JsonValue), path);
    expect(err.message).toContain('set("x")');
    expect(g.get("x")).toBe("ok");
    expect(g.snapshot()).toEqual(before);
    expect(waves).toEqual([]);
  });

  it("state, addState and meta refuse the same values; no node is added", () => {
    const g = createGraph("g");
    expectRefused(() => g.state("s", LONE), "$");
    expectRefused(() => g.addState("t", { v: Number.POSITIVE_INFINITY }), "$.v");
    expectRefused(() => g.state("u", 1, { meta: { note: LONE } }), "$.note");
    expect(g.paths()).toEqual([]);
  });

  it("a refused set inside a batch rolls the whole batch back", () => {
    const g = createGraph("g");
    g.state("a", 0);
    g.state("b", 0);
    expectRefused(
      () =>
        g.batch(() => {
          g.set("a", 1);
          g.set("b", LONE);
        }),
      "$",
    );
    expect([g.get("a"), g.get("b")]).toEqual([0, 0]);
  });

  it("node and mount names the codec could not store are refused", () => {
    const g = createGraph("g");
    expect(() => g.state("n\ud800", 1)).toThrow(CodecError);
    expect(() => g.mount("m\udfff")).toThrow(CodecError);
    expect(() => createGraph("g\ud800")).toThrow(CodecError);
    expect(g.paths()).toEqual([]);
    expect(g.mounts()).toEqual([]);
  });

  it("object properties holding undefined are omitted, as the codec writes them", () => {
    expect(codecRefuses({ a: 1, b: undefined })).toBe(false);
    const g = createGraph("g");
    g.state("x", { a: 1, b: undefined } as unknown as JsonValue);
    expect(g.get("x")).toEqual({ a: 1 });
    expect(Object.keys(g.get("x") as object)).toEqual(["a"]);
    g.set("x", { c: undefined } as unknown as JsonValue);
    expect(g.get("x")).toEqual({});
  });

  it("values the codec accepts are accepted: well-formed astral characters, nulls, nesting", () => {
    const g = createGraph("g");
    const v = { "k\ud83d\ude00": ["\ud83d\ude00", null, { n: -1.5 }] };
    expect(codecRefuses(v)).toBe(false);
    g.state("x", v);
    expect(g.get("x")).toEqual(v);
  });
});

describe("a derived function that returns a value the codec refuses", () => {
  it("errors like a throwing function: status errored, last value kept, an error signal, dependents untouched", () => {
    const g = createGraph("g");
    g.state("in", "fine");
    g.derived("d", ["in"], (s) => (s === "poison" ? LONE : `${s as string}!`));
    g.derived("dd", ["d"], (d) => [d]);
    expect(g.get("d")).toBe("fine!");
    const waves: GraphWave[] = [];
    g.observe((w) => waves.push(w));
    g.set("in", "poison");
    expect(g.status("d")).toBe("errored");
    expect(g.get("d")).toBe("fine!");
    expect(g.get("dd")).toEqual(["fine!"]);
    expect(waves.at(-1)?.signals).toEqual([
      { path: "in", signal: "data" },
      { path: "d", signal: "error" },
    ]);
    // The snapshot (what storage persists) holds only storable values.
    expect(() => jsonCodec.encode(g.snapshot() as unknown as JsonValue)).not.toThrow();
    g.set("in", "ok");
    expect(g.status("d")).toBe("settled");
    expect(g.get("dd")).toEqual(["ok!"]);
  });

  it("created with deps that make it return a refused value: errored without a value", () => {
    const g = createGraph("g");
    g.state("in", 1);
    g.derived("d", ["in"], () => ({ when: new Date(0) }) as unknown as JsonValue);
    expect(g.status("d")).toBe("errored");
    expect(g.get("d")).toBeUndefined();
  });
});
