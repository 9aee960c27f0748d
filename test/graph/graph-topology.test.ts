import { describe, expect, it } from "vitest";
import { createGraph } from "../../src/graph/graph.js";
import { CodecError } from "../../src/errors.js";
import type { GraphWave, JsonValue, ReactiveGraph } from "../../src/graph/types.js";

const num = (v: JsonValue): number => v as number;

function record(g: ReactiveGraph): GraphWave[] {
  const out: GraphWave[] = [];
  g.observe((w) => out.push(w));
  return out;
}

describe("remove", () => {
  it("throws TypeError while the node has dependents, then works once they are gone", () => {
    const g = createGraph("g");
    g.state("a", 1);
    g.derived("b", ["a"], (a) => a);
    g.effect("fx", ["b"], () => {});
    expect(() => g.remove("a")).toThrow(TypeError);
    expect(() => g.remove("b")).toThrow(/"fx"/);
    const waves = record(g);
    g.remove("fx");
    g.remove("b");
    g.remove("a");
    expect(waves.map((w) => [w.signals, w.topology])).toEqual(
      ["fx", "b", "a"].map((path) => [[{ path, signal: "teardown" }], [{ op: "remove", path }]]),
    );
    expect(g.paths()).toEqual([]);
    expect(g.snapshot().edges).toEqual([]);
  });

  it("a removed path can be re-added (as another kind) in the same wave", () => {
    const g = createGraph("g");
    g.state("x", 1);
    const waves = record(g);
    g.batch(() => {
      g.remove("x");
      g.state("base", 3);
      g.derived("x", ["base"], (b) => num(b) * 2);
    });
    expect(g.describeNode("x")).toEqual({ type: "derived", deps: ["base"], status: "settled", meta: {}, value: 6 });
    expect(waves[0]!.topology).toEqual([
      { op: "remove", path: "x" },
      { op: "add", path: "base" },
      { op: "add", path: "x" },
    ]);
    expect(waves[0]!.signals).toEqual([
      { path: "x", signal: "teardown" },
      { path: "base", signal: "data" },
      { path: "x", signal: "data" },
    ]);
  });
});

describe("mounts, qualified paths and subgraph views", () => {
  function tree(): ReactiveGraph {
    const g = createGraph("root");
    g.state("top", 1);
    g.mount("a");
    g.mount("a::b");
    g.addState("a::x", 10);
    g.addState("a::b::y", 100);
    g.derived("a::b::sum", ["top", "a::x", "a::b::y"], (t, x, y) => num(t) + num(x) + num(y));
    return g;
  }

  it("nodes in mounts are addressed by qualified paths and may depend across mounts", () => {
    const g = tree();
    expect(g.get("a::b::sum")).toBe(111);
    g.set("a::x", 20);
    expect(g.get("a::b::sum")).toBe(121);
    expect(g.paths()).toEqual(["a::b::sum", "a::b::y", "a::x", "top"]);
    expect(g.mounts()).toEqual(["a", "a::b"]);
    expect(g.snapshot().edges).toEqual([
      { from: "a::b::y", to: "a::b::sum" },
      { from: "a::x", to: "a::b::sum" },
      { from: "top", to: "a::b::sum" },
    ]);
    expect(() => g.mount("a::b::c::d")).toThrow(/parent mount "a::b::c"/);
  });

  it("a subgraph view uses relative names and shares the root's scheduler and waves", () => {
    const g = tree();
    const a = g.subgraph("a");
    const b = a.subgraph("b");
    expect(a.name).toBe("a");
    expect(b.name).toBe("b");
    expect(b.get("sum")).toBe(111);
    expect(a.kindOf("b::y")).toBe("state");
    expect(a.kindOf("top")).toBeUndefined();
    expect(a.hasMount("b")).toBe(true);
    expect(a.paths()).toEqual(["b::sum", "b::y", "x"]);
    expect(a.mounts()).toEqual(["b"]);

    const rootWaves = record(g);
    const aWaves = record(a);
    const bWaves = record(b);
    g.batch(() => {
      a.set("x", 11);
      b.set("y", 101);
      g.set("top", 2);
    });
    expect(rootWaves).toHaveLength(1);
    expect(aWaves).toHaveLength(1);
    expect(aWaves[0]!.seq).toBe(rootWaves[0]!.seq);
    expect(aWaves[0]!.signals).toEqual([
      { path: "x", signal: "data" },
      { path: "b::y", signal: "data" },
      { path: "b::sum", signal: "data" },
    ]);
    expect(bWaves[0]!.signals).toEqual([
      { path: "y", signal: "data" },
      { path: "sum", signal: "data" },
    ]);
    g.set("top", 3); // affects a::b::sum: the views see it
    g.state("elsewhere", 0); // nothing inside "a": no wave for a or b
    expect(aWaves).toHaveLength(2);
    expect(bWaves).toHaveLength(2);
    expect(rootWaves).toHaveLength(3);
    expect(b.get("sum")).toBe(115);

    b.state("z", 1);
    expect(g.get("a::b::z")).toBe(1);
    expect(bWaves[2]!.topology).toEqual([{ op: "add", path: "z" }]);
    expect(rootWaves[3]!.topology).toEqual([{ op: "add", path: "a::b::z" }]);
  });

  it("a view's snapshot is relative; deps outside it are marked '::<root path>' with no edge", () => {
    const g = tree();
    const snap = g.subgraph("a").snapshot();
    expect(snap).toEqual({
      name: "a",
      nodes: {
        "b::sum": { type: "derived", deps: ["::top", "x", "b::y"], status: "settled", meta: {}, value: 111 },
        "b::y": { type: "state", deps: [], status: "settled", meta: {}, value: 100 },
        x: { type: "state", deps: [], status: "settled", meta: {}, value: 10 },
      },
      edges: [
        { from: "b::y", to: "b::sum" },
        { from: "x", to: "b::sum" },
      ],
      subgraphs: ["b"],
      version: 1,
    });
    expect(g.subgraph("a").describeNode("b::sum")).toEqual(snap.nodes["b::sum"]);
  });

  it("a view can mount, derive across its own mounts and build a nested tree", () => {
    const g = createGraph("g");
    g.mount("c");
    const c = g.subgraph("c");
    c.mount("inner");
    c.state("inner::v", 2);
    c.derived("twice", ["inner::v"], (v) => num(v) * 2);
    expect(g.get("c::twice")).toBe(4);
    expect(g.describeNode("c::twice")?.deps).toEqual(["c::inner::v"]);
    expect(() => g.subgraph("nope")).toThrow(TypeError);
    expect(() => g.subgraph("c::twice")).toThrow(TypeError);
  });

  it("unmount removes the whole subtree with one topology event and no per-node events", () => {
    const g = tree();
    g.derived("outside-ok", ["top"], (t) => t);
    const waves = record(g);
    g.unmount("a");
    expect(waves).toHaveLength(1);
    expect(waves[0]!.topology).toEqual([{ op: "unmount", path: "a" }]);
    expect(waves[0]!.signals).toEqual([]);
    expect(g.paths()).toEqual(["outside-ok", "top"]);
    expect(g.mounts()).toEqual([]);
    expect(g.hasMount("a::b")).toBe(false);
    expect(g.kindOf("a::x")).toBeUndefined();
    // the outside dep no longer lists the removed dependent: "top" is removable after its other dependent goes
    g.remove("outside-ok");
    g.remove("top");
    expect(g.paths()).toEqual([]);
  });

  it("unmount throws if a node outside the subtree depends on a node inside", () => {
    const g = tree();
    g.derived("watch", ["a::b::sum"], (s) => s);
    const waves = record(g);
    expect(() => g.unmount("a::b")).toThrow(/"watch".*depends on "a::b::sum"/);
    expect(() => g.unmount("a")).toThrow(TypeError);
    expect(waves).toHaveLength(0);
    expect(g.mounts()).toEqual(["a", "a::b"]);
    g.remove("watch");
    g.unmount("a::b"); // a node inside depends on "a::x" and "top" outside: that is fine
    expect(g.paths()).toEqual(["a::x", "top"]);
    g.set("a::x", 5); // the dead dependent is no longer recomputed
    expect(waves.at(-1)!.signals).toEqual([{ path: "a::x", signal: "data" }]);
  });

  it("views of an unmounted subtree refuse use; remounting the same path revives them", () => {
    const g = tree();
    const a = g.subgraph("a");
    const waves = record(a);
    g.unmount("a");
    expect(() => a.snapshot()).toThrow(/no longer mounted/);
    expect(() => a.state("q", 1)).toThrow(TypeError);
    expect(() => a.set("x", 1)).toThrow(TypeError);
    expect(a.kindOf("x")).toBeUndefined();
    g.mount("a");
    a.state("q", 1);
    expect(g.get("a::q")).toBe(1);
    expect(waves.map((w) => w.topology)).toEqual([[{ op: "add", path: "q" }]]);
  });

  it("destroy() on a view unmounts it", () => {
    const g = tree();
    g.subgraph("a").subgraph("b").destroy();
    expect(g.mounts()).toEqual(["a"]);
    g.set("top", 5); // the root is not destroyed
    expect(g.get("top")).toBe(5);
  });
});

describe("batch rollback", () => {
  function sample(): ReactiveGraph {
    const g = createGraph("g");
    g.state("a", 1);
    g.state("b", { k: [1] });
    g.derived("sum", ["a"], (a) => num(a) + 100);
    g.mount("m");
    g.addState("m::x", "x");
    g.derived("m::dx", ["m::x", "a"], (x, a) => `${String(x)}${num(a)}`);
    return g;
  }

  it("undoes values, statuses and topology, emits no wave, rethrows the error, returns fn's value otherwise", () => {
    const g = sample();
    const before = g.snapshot();
    const waves = record(g);
    const boom = new Error("boom");
    expect(() =>
      g.batch(() => {
        g.set("a", 2);
        g.invalidate("b");
        g.set("m::x", "y");
        g.state("new", 5);
        g.derived("newd", ["new", "a"], (n, a) => num(n) + num(a));
        g.mount("m2");
        g.addState("m2::z", 1);
        g.remove("sum");
        g.remove("m::dx");
        g.unmount("m");
        throw boom;
      }),
    ).toThrow(boom);
    expect(waves).toHaveLength(0);
    expect(g.snapshot()).toEqual(before);
    expect(JSON.stringify(g.snapshot())).toBe(JSON.stringify(before));
    // the restored graph is fully live again
    g.set("a", 3);
    expect(g.get("sum")).toBe(103);
    expect(g.get("m::dx")).toBe("x3");
    expect(waves).toHaveLength(1);
    expect(waves[0]!.signals).toEqual([
      { path: "a", signal: "data" },
      { path: "sum", signal: "data" },
      { path: "m::dx", signal: "data" },
    ]);
    expect(g.batch(() => "result")).toBe("result");
  });

  it("nested throw caught by the outer fn rolls back only the nested part (savepoint)", () => {
    const g = sample();
    const waves = record(g);
    let calls = 0;
    g.derived("count", ["a"], () => ++calls);
    calls = 0;
    waves.length = 0;
    g.batch(() => {
      g.set("a", 10);
      g.state("kept", 1);
      try {
        g.batch(() => {
          g.set("a", 20);
          g.set("b", "inner");
          g.state("dropped", 1);
          g.mount("dropped-mount");
          g.remove("m::dx");
          throw new Error("inner");
        });
      } catch {
        // swallowed on purpose: the outer batch continues
      }
      expect(g.get("a")).toBe(10);
      expect(g.get("b")).toEqual({ k: [1] });
      expect(g.kindOf("dropped")).toBeUndefined();
      g.set("m::x", "after");
    });
    expect(g.get("a")).toBe(10);
    expect(g.get("sum")).toBe(110);
    expect(g.get("m::dx")).toBe("after10");
    expect(g.kindOf("kept")).toBe("state");
    expect(g.hasMount("dropped-mount")).toBe(false);
    expect(calls).toBe(1);
    expect(waves).toHaveLength(1);
    expect(waves[0]!.topology).toEqual([{ op: "add", path: "kept" }]);
    expect(waves[0]!.signals.map((s) => s.path).sort()).toEqual(["a", "count", "kept", "m::dx", "m::x", "sum"]);
    expect(waves[0]!.signals.find((s) => s.path === "b")).toBeUndefined();
  });

  it("a nested rollback that undoes the only change leaves nothing to emit", () => {
    const g = sample();
    const waves = record(g);
    g.batch(() => {
      try {
        g.batch(() => {
          g.set("a", 5);
          throw new Error("x");
        });
      } catch {
        // ignored
      }
    });
    expect(waves).toHaveLength(0);
    g.set("a", 1); // a was never touched in a committed wave: this is an equal write
    expect(waves[0]!.signals).toEqual([{ path: "a", signal: "resolved" }]);
  });

  it("a failed single operation changes nothing", () => {
    const g = sample();
    const before = g.snapshot();
    expect(() => g.unmount("nope")).toThrow(TypeError);
    expect(() => g.remove("a")).toThrow(TypeError); // has dependents
    expect(() => g.derived("bad", ["a", "nope"], () => 1)).toThrow(TypeError);
    expect(() => g.set("b", new Map() as unknown as JsonValue)).toThrow(CodecError);
    expect(g.snapshot()).toEqual(before);
  });
});

describe("scale", () => {
  it("a write on a 100k-node graph touches only the affected nodes", () => {
    const g = createGraph("big");
    const N = 100_000;
    for (let i = 0; i < N; i++) g.state(`s${i}`, i);
    let calls = 0;
    for (let i = 0; i < 100; i++) {
      g.derived(`d${i}`, [`s${i}`], (v) => {
        calls++;
        return num(v) + 1;
      });
    }
    calls = 0;
    const waves = record(g);
    g.set("s5", -1);
    g.set(`s${N - 1}`, 0);
    expect(calls).toBe(1);
    expect(g.get("d5")).toBe(0);
    expect(waves.map((w) => w.signals.length)).toEqual([2, 1]);
    expect(g.paths()).toHaveLength(N + 100);
    expect(Object.keys(g.snapshot().nodes)).toHaveLength(N + 100);
  });
});
