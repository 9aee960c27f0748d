import { describe, expect, it } from "vitest";
import { createGraph } from "../../src/graph/graph.js";
import { cloneJson, isJsonValue, jsonEqual, toFrozenJson } from "../../src/graph/json-utils.js";
import { compareCodePoints } from "../../src/base/code-points.js";
import { SNAPSHOT_VERSION, type JsonValue, type ReactiveGraph } from "../../src/graph/types.js";
import { CodecError, StorageError } from "../../src/errors.js";

/** docs/graph-model.md §1.1's example graph. */
function counterGraph(): ReactiveGraph {
  const g = createGraph("counter");
  g.state("count", 3);
  g.derived("double", ["count"], (c) => (c as number) * 2);
  g.state("label");
  g.mount("child");
  g.subgraph("child").state("x", 1);
  return g;
}

const EXAMPLE_JSON = `{
  "name": "counter",
  "nodes": {
    "child::x": { "type": "state",   "deps": [],        "status": "settled",  "meta": {}, "value": 1 },
    "count":    { "type": "state",   "deps": [],        "status": "settled",  "meta": {}, "value": 3 },
    "double":   { "type": "derived", "deps": ["count"], "status": "settled",  "meta": {}, "value": 6 },
    "label":    { "type": "state",   "deps": [],        "status": "sentinel", "meta": {}, "sentinel": true }
  },
  "edges": [ { "from": "count", "to": "double" } ],
  "subgraphs": [ "child" ],
  "version": 1
}`;

describe("graph names", () => {
  it("accepts ordinary names, including '/' and single colons", () => {
    expect(createGraph("a/b:c").name).toBe("a/b:c");
  });

  it.each([[""], ["a::b"], ["__meta__"], [42], [undefined]])("rejects graph name %j with TypeError", (name) => {
    expect(() => createGraph(name as string)).toThrow(TypeError);
  });

  it.each([["", "empty"], ["a::", "empty"], ["__meta__", "reserved"], ["x:", ":"], [":x", ":"], ["a:::b", ":"]])(
    "rejects node name %j (%s)",
    (name) => {
      const g = createGraph("g");
      g.mount("a");
      expect(() => g.state(name, 1)).toThrow(TypeError);
      expect(g.paths()).toEqual([]);
    },
  );

  it("rejects a node name already used by a node or a mount, and a missing parent mount", () => {
    const g = createGraph("g");
    g.state("a", 1);
    g.mount("m");
    expect(() => g.state("a", 2)).toThrow(/already exists/);
    expect(() => g.addState("m")).toThrow(/mount already exists/);
    expect(() => g.mount("a")).toThrow(/node already exists/);
    expect(() => g.addState("nope::x")).toThrow(/parent mount "nope"/);
    expect(() => g.mount("nope::y")).toThrow(/parent mount/);
    expect(g.get("a")).toBe(1);
  });
});

describe("snapshot", () => {
  it("matches docs/graph-model.md §1.1's example exactly, key order included", () => {
    const snap = counterGraph().snapshot();
    const expected = JSON.parse(EXAMPLE_JSON) as unknown;
    expect(snap).toEqual(expected);
    expect(JSON.stringify(snap)).toBe(JSON.stringify(expected));
    expect(snap.version).toBe(SNAPSHOT_VERSION);
    expect(Object.prototype.hasOwnProperty.call(snap.nodes["label"], "value")).toBe(false);
  });

  it("is a deep copy: mutating it does not touch the graph, and later writes do not touch it", () => {
    const g = createGraph("g");
    g.state("obj", { list: [1, 2], nested: { a: 1 } });
    g.derived("len", ["obj"], (o) => ((o as { list: number[] }).list).length);
    const snap = g.snapshot();
    const value = snap.nodes["obj"]?.value as { list: number[]; nested: { a: number } };
    value.list.push(3);
    value.nested.a = 99;
    snap.nodes["obj"]!.deps.push("bogus");
    snap.edges.length = 0;
    expect(g.get("obj")).toEqual({ list: [1, 2], nested: { a: 1 } });
    expect(g.snapshot().edges).toEqual([{ from: "obj", to: "len" }]);

    const before = g.snapshot();
    g.set("obj", { list: [], nested: { a: 2 } });
    expect(before.nodes["obj"]?.value).toEqual({ list: [1, 2], nested: { a: 1 } });
    expect(before.nodes["len"]?.value).toBe(2);
    expect(g.get("len")).toBe(0);
  });

  it("copies values in and out of set/get (no live references)", () => {
    const g = createGraph("g");
    const input = { a: [1, { b: 2 }] } as { a: [number, { b: number }] };
    g.state("s", input);
    input.a[1].b = 99;
    expect(g.get("s")).toEqual({ a: [1, { b: 2 }] });
    const out = g.get("s") as { a: [number, { b: number }] };
    out.a[1].b = 7;
    expect(g.get("s")).toEqual({ a: [1, { b: 2 }] });
    expect(Object.isFrozen(out)).toBe(false);
  });

  it("sorts nodes, edges and subgraphs in code-point order (not UTF-16 order)", () => {
    const g = createGraph("g");
    const astral = "\u{1F600}"; // surrogate pair: code point above U+FFFF
    const bmpHigh = "\uFF21"; // U+FF21 sorts below it by code point, above it by UTF-16 unit
    g.state(astral, 1);
    g.state(bmpHigh, 2);
    g.state("b", 3);
    g.mount("z");
    g.mount("a");
    g.mount("a::y");
    g.derived("d2", [astral, "b"], () => 0);
    g.derived("d1", [bmpHigh], () => 0);
    const snap = g.snapshot();
    expect(Object.keys(snap.nodes)).toEqual(["b", "d1", "d2", bmpHigh, astral]);
    expect(snap.edges).toEqual([
      { from: "b", to: "d2" },
      { from: bmpHigh, to: "d1" },
      { from: astral, to: "d2" },
    ]);
    expect(snap.subgraphs).toEqual(["a", "a::y", "z"]);
    expect(g.paths()).toEqual(["b", "d1", "d2", bmpHigh, astral]);
    expect(g.mounts()).toEqual(["a", "a::y", "z"]);
  });

  it("documents the integer-like key caveat: insertion is sorted but JS iterates integer keys first", () => {
    const g = createGraph("g");
    g.state("10", 1);
    g.state("2", 1);
    g.state("a", 1);
    expect(g.paths()).toEqual(["10", "2", "a"]);
    expect(Object.keys(g.snapshot().nodes)).toEqual(["2", "10", "a"]);
    expect(Object.keys(g.snapshot().nodes).sort(compareCodePoints)).toEqual(["10", "2", "a"]);
  });

  it("handles a node named __proto__ as an ordinary key", () => {
    const g = createGraph("g");
    g.state("__proto__", JSON.parse('{"__proto__":1}') as JsonValue);
    const snap = g.snapshot();
    expect(Object.getPrototypeOf(snap.nodes)).toBe(Object.prototype);
    expect(Object.keys(snap.nodes)).toEqual(["__proto__"]);
    const value = g.get("__proto__") as Record<string, JsonValue>;
    expect(Object.keys(value)).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(JSON.stringify(snap.nodes["__proto__"]?.value)).toBe('{"__proto__":1}');
  });

  it("keeps meta (deep-copied) and lists it in every slice", () => {
    const g = createGraph("g");
    const meta = { owner: "me", tags: ["a"] };
    g.state("s", 1, { meta });
    g.addState("t", undefined, { n: 1 });
    meta.tags.push("b");
    expect(g.describeNode("s")?.meta).toEqual({ owner: "me", tags: ["a"] });
    expect(g.describeNode("t")).toEqual({ type: "state", deps: [], status: "sentinel", meta: { n: 1 }, sentinel: true });
    expect(() => g.state("bad", 1, { meta: [] as unknown as Record<string, JsonValue> })).toThrow(TypeError);
    expect(() => g.state("bad", 1, { meta: { f: () => 1 } as unknown as Record<string, JsonValue> })).toThrow(CodecError);
  });

  it("describeNode equals snapshot().nodes[path] for every node and is undefined for non-nodes", () => {
    const g = counterGraph();
    g.effect("fx", ["count"], () => {});
    g.derived("bad", ["count"], () => {
      throw new Error("no");
    });
    const snap = g.snapshot();
    for (const p of g.paths()) expect(g.describeNode(p)).toEqual(snap.nodes[p]);
    expect(g.describeNode("child")).toBeUndefined();
    expect(g.describeNode("nope")).toBeUndefined();
    expect(g.describeNode("")).toBeUndefined();
    const slice = g.describeNode("double")!;
    slice.deps.push("x");
    expect(g.describeNode("double")?.deps).toEqual(["count"]);
  });
});

describe("values", () => {
  const bad: Array<[string, unknown]> = [
    ["undefined", undefined],
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["bigint", 1n],
    ["function", () => 1],
    ["symbol", Symbol("s")],
    ["Date", new Date(0)],
    ["Map", new Map()],
    ["class instance", new (class Foo {})()],
    ["nested NaN", { a: [1, Number.NaN] }],
    ["sparse array", [1, , 3]],
    ["typed array", new Uint8Array(2)],
  ];

  it.each(bad)("set rejects %s with the codec's CodecError and leaves the node unchanged", (_label, value) => {
    const g = createGraph("g");
    g.state("s", 1);
    let waves = 0;
    g.observe(() => waves++);
    expect(() => g.set("s", value as JsonValue)).toThrow(CodecError);
    expect(g.get("s")).toBe(1);
    expect(waves).toBe(0);
    expect(isJsonValue(value)).toBe(false);
  });

  it("rejects cycles but accepts shared (acyclic) references", () => {
    const g = createGraph("g");
    g.state("s", 0);
    const cyc: Record<string, unknown> = {};
    cyc["self"] = cyc;
    expect(() => g.set("s", cyc as JsonValue)).toThrow(/cycle/);
    const shared = { x: 1 };
    g.set("s", { a: shared, b: shared });
    expect(g.get("s")).toEqual({ a: { x: 1 }, b: { x: 1 } });
  });

  it("names the argument and the location in the error", () => {
    const g = createGraph("g");
    g.state("s", 0);
    expect(() => g.set("s", { a: [0, () => 1] } as unknown as JsonValue)).toThrow(/set\("s"\) value.*function.*at \$\.a\[1\]/);
    expect(() => g.state("t", Number.NaN)).toThrow(/initial value/);
  });

  it("accepts null-prototype objects and normalizes -0 to 0", () => {
    const g = createGraph("g");
    const o = Object.create(null) as Record<string, JsonValue>;
    o["k"] = -0;
    g.state("s", o);
    expect(Object.is((g.get("s") as { k: number }).k, 0)).toBe(true);
    expect(toFrozenJson(-0, "v")).toBe(0);
  });

  it("jsonEqual is structural and key-order-insensitive; cloneJson copies", () => {
    expect(jsonEqual({ a: 1, b: [1, { c: null }] }, { b: [1, { c: null }], a: 1 })).toBe(true);
    expect(jsonEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(jsonEqual([1], { 0: 1 })).toBe(false);
    expect(jsonEqual(null, undefined)).toBe(false);
    expect(jsonEqual(undefined, undefined)).toBe(true);
    // Own keys only, counted both ways: a missing key, an extra key on either side, an inherited key.
    expect(jsonEqual({ a: 1, b: 2 }, { a: 1, c: 2 })).toBe(false);
    expect(jsonEqual({ a: 1, b: 2 }, { a: 1 })).toBe(false);
    expect(jsonEqual({}, { a: 1 })).toBe(false);
    expect(jsonEqual({ a: 1 }, {})).toBe(false);
    const inherits = Object.assign(Object.create({ b: 2 }) as Record<string, number>, { a: 1 });
    expect(jsonEqual(inherits, { a: 1 })).toBe(true);
    expect(jsonEqual({ a: 1 }, inherits)).toBe(true);
    expect(jsonEqual(inherits, { a: 1, b: 2 })).toBe(false);
    expect(jsonEqual({ a: 1, b: 2 }, inherits)).toBe(false);
    const v = { a: [1] };
    const c = cloneJson(v);
    expect(c).toEqual(v);
    expect(c.a).not.toBe(v.a);
  });
});

describe("kinds, lookups and argument errors", () => {
  it("set works on state only; invalidate refuses effects; unknown paths throw", () => {
    const g = counterGraph();
    g.effect("fx", ["count"], () => {});
    expect(() => g.set("double", 1)).toThrow(/derived node; only state/);
    expect(() => g.set("fx", 1)).toThrow(TypeError);
    expect(() => g.set("nope", 1)).toThrow(/no node at path "nope"/);
    expect(() => g.set("child", 1)).toThrow(/is a mount/);
    expect(() => g.invalidate("fx")).toThrow(/effect/);
    expect(() => g.invalidate("nope")).toThrow(TypeError);
    expect(() => g.get("nope")).toThrow(TypeError);
    expect(() => g.status("nope")).toThrow(TypeError);
    expect(() => g.remove("child")).toThrow(/is a mount/);
    expect(() => g.unmount("count")).toThrow(/use remove/);
    expect(() => g.unmount("nope")).toThrow(TypeError);
    expect(() => g.set(5 as unknown as string, 1)).toThrow(/path must be a string/);
  });

  it("kindOf / hasMount / status / get", () => {
    const g = counterGraph();
    g.effect("fx", ["double"], () => {});
    expect(g.kindOf("count")).toBe("state");
    expect(g.kindOf("double")).toBe("derived");
    expect(g.kindOf("fx")).toBe("effect");
    expect(g.kindOf("child::x")).toBe("state");
    expect(g.kindOf("child")).toBeUndefined();
    expect(g.kindOf("nope")).toBeUndefined();
    expect(g.hasMount("child")).toBe(true);
    expect(g.hasMount("count")).toBe(false);
    expect(g.hasMount("")).toBe(false);
    expect(g.status("count")).toBe("settled");
    expect(g.status("label")).toBe("sentinel");
    expect(g.status("fx")).toBe("settled");
    expect(g.get("label")).toBeUndefined();
    expect(g.get("fx")).toBeUndefined();
    expect(g.get("child::x")).toBe(1);
  });

  it("derived deps must exist, must not be effects, must be distinct; fn must be a function", () => {
    const g = createGraph("g");
    g.state("a", 1);
    g.effect("fx", ["a"], () => {});
    expect(() => g.derived("d", ["missing"], () => 1)).toThrow(/no node at path "missing"/);
    expect(() => g.derived("d", ["fx"], () => 1)).toThrow(/effect/);
    expect(() => g.derived("d", ["a", "a"], () => 1)).toThrow(/distinct/);
    expect(() => g.derived("d", ["a"], 5 as unknown as () => JsonValue)).toThrow(/fn must be a function/);
    expect(() => g.derived("d", "a" as unknown as string[], () => 1)).toThrow(/deps must be an array/);
    expect(g.paths()).toEqual(["a", "fx"]);
  });

  it("creation methods return the relative path they registered", () => {
    const g = createGraph("g");
    g.mount("m");
    expect(g.state("a", 1)).toBe("a");
    expect(g.derived("m::d", ["a"], (a) => a)).toBe("m::d");
    expect(g.subgraph("m").effect("e", ["d"], () => {})).toBe("e");
  });
});

describe("destroy", () => {
  it("emits one destroy wave with a teardown per node, then refuses mutations (reads still work)", () => {
    const g = counterGraph();
    const waves: Array<{ cause: string; signals: unknown }> = [];
    g.observe((w) => waves.push({ cause: w.cause, signals: w.signals }));
    g.destroy();
    expect(waves).toEqual([
      {
        cause: "destroy",
        signals: ["child::x", "count", "double", "label"].map((path) => ({ path, signal: "teardown" })),
      },
    ]);
    for (const op of [
      () => g.set("count", 1),
      () => g.invalidate("count"),
      () => g.addState("n"),
      () => g.remove("label"),
      () => g.mount("m"),
      () => g.unmount("child"),
      () => g.batch(() => 1),
      () => g.state("z"),
    ]) {
      let err: unknown;
      try {
        op();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).code).toBe("closed");
    }
    expect(g.get("count")).toBe(3);
    expect(g.snapshot().nodes["double"]?.value).toBe(6);
    g.destroy(); // idempotent
    expect(waves).toHaveLength(1);
  });

  it("throws inside a batch and leaves the graph usable", () => {
    const g = counterGraph();
    expect(() => g.batch(() => g.destroy())).toThrow(TypeError);
    g.set("count", 1);
    expect(g.get("double")).toBe(2);
  });

  it("from a listener: the destroy wave is delivered after the current one, and listeners are then dropped", () => {
    const g = counterGraph();
    const seen: string[] = [];
    g.observe((w) => {
      seen.push(`a:${w.cause}`);
      if (w.cause === "user") g.destroy();
    });
    g.observe((w) => seen.push(`b:${w.cause}`));
    g.set("count", 9);
    expect(seen).toEqual(["a:user", "b:user", "a:destroy", "b:destroy"]);
    const unsub = g.observe(() => seen.push("late"));
    unsub();
    expect(seen).toHaveLength(4);
  });
});
