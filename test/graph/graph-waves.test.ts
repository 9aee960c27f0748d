import { describe, expect, it } from "vitest";
import { createGraph } from "../../src/graph/graph.js";
import type { GraphWave, JsonValue, ReactiveGraph } from "../../src/graph/types.js";

const num = (v: JsonValue): number => v as number;

/** Records waves as plain data (seq dropped unless asked for). */
function record(g: ReactiveGraph): Array<Omit<GraphWave, "seq">> {
  const out: Array<Omit<GraphWave, "seq">> = [];
  g.observe((w) => out.push({ signals: [...w.signals], topology: [...w.topology], cause: w.cause }));
  return out;
}

describe("propagation", () => {
  it("recomputes a derived chain in topological order, once per wave", () => {
    const g = createGraph("g");
    const calls: string[] = [];
    g.state("a", 1);
    g.derived("b", ["a"], (a) => {
      calls.push("b");
      return num(a) + 1;
    });
    g.derived("c", ["b"], (b) => {
      calls.push("c");
      return num(b) * 10;
    });
    expect(calls).toEqual(["b", "c"]); // eager at creation
    calls.length = 0;
    g.set("a", 2);
    expect(calls).toEqual(["b", "c"]);
    expect(g.get("c")).toBe(30);
    calls.length = 0;
    g.batch(() => {
      g.set("a", 3);
      g.set("a", 4);
      g.set("a", 5);
      expect(g.get("a")).toBe(5); // sources update at once...
      expect(g.get("c")).toBe(30); // ...derived nodes at the outermost close
    });
    expect(calls).toEqual(["b", "c"]);
    expect(g.get("c")).toBe(60);
  });

  it("diamond: the join recomputes once, after both branches, with consistent inputs", () => {
    const g = createGraph("g");
    const seen: Array<[number, number]> = [];
    g.state("a", 1);
    g.derived("left", ["a"], (a) => num(a) + 1);
    g.derived("right", ["a"], (a) => num(a) * 2);
    g.derived("join", ["left", "right"], (l, r) => {
      seen.push([num(l), num(r)]);
      return num(l) + num(r);
    });
    seen.length = 0;
    const waves = record(g);
    g.set("a", 10);
    expect(seen).toEqual([[11, 20]]);
    expect(g.get("join")).toBe(31);
    expect(waves).toHaveLength(1);
    const order = waves[0]!.signals.map((s) => s.path);
    expect(order[0]).toBe("a");
    expect(order.indexOf("join")).toBe(3);
    expect(new Set(order)).toEqual(new Set(["a", "left", "right", "join"]));
  });

  it("a batch writing two sources recomputes their common dependent once", () => {
    const g = createGraph("g");
    let calls = 0;
    g.state("x", 1);
    g.state("y", 2);
    g.derived("sum", ["x", "y"], (x, y) => {
      calls++;
      return num(x) + num(y);
    });
    calls = 0;
    g.batch(() => {
      g.set("x", 10);
      g.batch(() => g.set("y", 20));
    });
    expect(calls).toBe(1);
    expect(g.get("sum")).toBe(30);
  });

  it("an unchanged recompute (resolved) stops propagation", () => {
    const g = createGraph("g");
    let downstream = 0;
    g.state("n", 2);
    g.derived("parity", ["n"], (n) => num(n) % 2);
    g.derived("label", ["parity"], (p) => {
      downstream++;
      return p === 0 ? "even" : "odd";
    });
    downstream = 0;
    const waves = record(g);
    g.set("n", 4);
    expect(downstream).toBe(0);
    expect(waves).toEqual([
      {
        signals: [
          { path: "n", signal: "data" },
          { path: "parity", signal: "resolved" },
        ],
        topology: [],
        cause: "user",
      },
    ]);
  });

  it("derived values are deep-equal-compared (a new but equal object is resolved)", () => {
    const g = createGraph("g");
    g.state("s", 1);
    g.derived("obj", ["s"], () => ({ k: [1, 2] }));
    const waves = record(g);
    g.set("s", 2);
    expect(waves[0]!.signals).toEqual([
      { path: "s", signal: "data" },
      { path: "obj", signal: "resolved" },
    ]);
  });

  it("derived functions receive frozen values; mutating them errors the node instead of corrupting state", () => {
    const g = createGraph("g");
    g.state("list", [3, 1, 2]);
    g.derived("sorted", ["list"], (l) => (l as number[]).sort());
    expect(g.status("sorted")).toBe("errored");
    expect(g.get("list")).toEqual([3, 1, 2]);
    g.derived("sorted2", ["list"], (l) => [...(l as number[])].sort());
    expect(g.get("sorted2")).toEqual([1, 2, 3]);
  });
});

describe("waves", () => {
  it("a write outside a batch is one wave; a batch (nested) is one wave with each path once", () => {
    const g = createGraph("g");
    g.state("a", 1);
    g.state("b", 1);
    g.derived("d", ["a", "b"], (a, b) => num(a) + num(b));
    const seqs: number[] = [];
    g.observe((w) => seqs.push(w.seq));
    const waves = record(g);
    g.set("a", 2);
    g.batch(() => {
      g.set("b", 5);
      g.batch(() => {
        g.set("a", 3);
        g.set("b", 6);
      });
      g.set("a", 4);
    });
    expect(waves).toEqual([
      {
        signals: [
          { path: "a", signal: "data" },
          { path: "d", signal: "data" },
        ],
        topology: [],
        cause: "user",
      },
      {
        signals: [
          { path: "b", signal: "data" },
          { path: "a", signal: "data" },
          { path: "d", signal: "data" },
        ],
        topology: [],
        cause: "user",
      },
    ]);
    expect(seqs[1]).toBe(seqs[0]! + 1);
  });

  it("an equal write is a resolved signal; a batch that ends where it started is resolved too", () => {
    const g = createGraph("g");
    g.state("a", { x: [1] });
    g.derived("d", ["a"], (a) => a);
    const waves = record(g);
    g.set("a", { x: [1] });
    g.batch(() => {
      g.set("a", 5);
      g.set("a", { x: [1] });
    });
    expect(waves.map((w) => w.signals)).toEqual([[{ path: "a", signal: "resolved" }], [{ path: "a", signal: "resolved" }]]);
    expect(g.status("a")).toBe("settled");
  });

  it("an empty batch emits nothing; waves are frozen", () => {
    const g = createGraph("g");
    g.state("a", 1);
    const waves: GraphWave[] = [];
    g.observe((w) => waves.push(w));
    expect(g.batch(() => 42)).toBe(42);
    expect(waves).toHaveLength(0);
    g.set("a", 2);
    expect(Object.isFrozen(waves[0])).toBe(true);
    expect(Object.isFrozen(waves[0]!.signals)).toBe(true);
    expect(Object.isFrozen(waves[0]!.signals[0])).toBe(true);
  });

  it("a batch in which an operation throws emits nothing and keeps nothing", () => {
    const g = createGraph("g");
    g.state("a", 1);
    const waves = record(g);
    expect(() =>
      g.batch(() => {
        g.addState("s", 7);
        g.mount("m");
        g.derived("m::d", ["s", "a"], (s, a) => num(s) + num(a));
        g.remove("a"); // "m::d" depends on it
      }),
    ).toThrow(/still has dependents \("m::d"\)/);
    expect(waves).toHaveLength(0);
    expect(g.paths()).toEqual(["a"]);
    expect(g.mounts()).toEqual([]);
  });

  it("reports adds, mounts, removes with data/teardown signals", () => {
    const g = createGraph("g");
    g.state("old", 1);
    const waves = record(g);
    g.batch(() => {
      g.addState("s", 7);
      g.addState("empty");
      g.mount("m");
      g.derived("m::d", ["s"], (s) => num(s) + 1);
      g.derived("m::none", ["empty"], () => 0);
      g.remove("old");
    });
    expect(waves).toEqual([
      {
        signals: [
          { path: "s", signal: "data" },
          { path: "m::d", signal: "data" },
          { path: "old", signal: "teardown" },
        ],
        topology: [
          { op: "add", path: "s" },
          { op: "add", path: "empty" },
          { op: "mount", path: "m" },
          { op: "add", path: "m::d" },
          { op: "add", path: "m::none" },
          { op: "remove", path: "old" },
        ],
        cause: "user",
      },
    ]);
    expect(g.get("m::d")).toBe(8);
    expect(g.status("m::none")).toBe("sentinel");
  });

  it("a derived created mid-batch is recomputed at the close if a dep is written after its creation", () => {
    const g = createGraph("g");
    let calls = 0;
    g.state("a", 1);
    g.batch(() => {
      g.set("a", 5);
      g.derived("d", ["a"], (a) => {
        calls++;
        return num(a) * 2;
      });
      expect(g.get("d")).toBe(10);
      g.set("a", 1); // back to the wave-start value: a is `resolved`, yet d must follow
    });
    expect(g.get("d")).toBe(2);
    expect(calls).toBe(2);
    g.derived("e", ["a"], (a) => {
      calls++;
      return a;
    });
    expect(calls).toBe(3); // created outside a batch: computed once
  });

  it("a listener that writes starts a new wave after every listener saw the current one (no nesting)", () => {
    const g = createGraph("g");
    g.state("a", 0);
    g.state("echo", 0);
    g.derived("d", ["echo"], (e) => num(e) * 2);
    const log: string[] = [];
    let depth = 0;
    g.observe((w) => {
      depth++;
      expect(depth).toBe(1);
      log.push(`L1 seq=${w.seq} ${w.signals.map((s) => s.path).join(",")}`);
      if (w.signals.some((s) => s.path === "a")) {
        g.set("echo", g.get("a") as number);
        expect(g.get("d")).toBe(14); // the write applied (and propagated) at once
      }
      depth--;
    });
    g.observe((w) => {
      depth++;
      expect(depth).toBe(1);
      log.push(`L2 seq=${w.seq}`);
      depth--;
    });
    g.set("a", 7);
    const s = Number(/seq=(\d+)/.exec(log[0]!)![1]);
    expect(log).toEqual([`L1 seq=${s} a`, `L2 seq=${s}`, `L1 seq=${s + 1} echo,d`, `L2 seq=${s + 1}`]);
  });

  it("listener errors: delivery completes, the first error is rethrown, the write stays", () => {
    const g = createGraph("g");
    g.state("a", 0);
    const got: string[] = [];
    g.observe(() => {
      throw new Error("first");
    });
    g.observe(() => {
      throw new Error("second");
    });
    g.observe((w) => got.push(w.signals[0]!.path));
    expect(() => g.set("a", 1)).toThrow("first");
    expect(got).toEqual(["a"]);
    expect(g.get("a")).toBe(1);
    expect(() => g.set("a", 2)).toThrow("first"); // delivery state was reset: the next wave is delivered too
    expect(got).toEqual(["a", "a"]);
    expect(g.get("a")).toBe(2);
  });

  it("unsubscribe is idempotent and takes effect even mid-delivery", () => {
    const g = createGraph("g");
    g.state("a", 0);
    const got: string[] = [];
    let unsubB: () => void = () => {};
    const unsubA = g.observe(() => {
      got.push("A");
      unsubB();
    });
    unsubB = g.observe(() => got.push("B"));
    g.set("a", 1);
    unsubA();
    unsubA();
    g.set("a", 2);
    expect(got).toEqual(["A"]);
  });

  it("user functions cannot write the graph (the node errors instead)", () => {
    const g = createGraph("g");
    g.state("a", 1);
    g.state("b", 1);
    g.derived("writer", ["a"], (a) => {
      g.set("b", a);
      return a;
    });
    expect(g.status("writer")).toBe("errored");
    g.effect("fx", ["a"], () => g.set("b", 9));
    expect(g.status("fx")).toBe("errored");
    expect(g.get("b")).toBe(1);
  });
});

describe("invalidate", () => {
  it("clears the cache, cascades sentinel to dependents in the same wave, and recovers on the next write", () => {
    const g = createGraph("g");
    g.state("a", 1);
    g.derived("b", ["a"], (a) => num(a) + 1);
    g.derived("c", ["b"], (b) => num(b) + 1);
    g.state("other", 5);
    g.derived("mix", ["other", "c"], (o, c) => num(o) + num(c));
    const waves = record(g);
    g.invalidate("a");
    expect(waves).toEqual([
      {
        signals: [
          { path: "a", signal: "invalidate" },
          { path: "b", signal: "invalidate" },
          { path: "c", signal: "invalidate" },
          { path: "mix", signal: "invalidate" },
        ],
        topology: [],
        cause: "user",
      },
    ]);
    for (const p of ["a", "b", "c", "mix"]) {
      expect(g.get(p)).toBeUndefined();
      expect(g.status(p)).toBe("sentinel");
      expect(g.describeNode(p)).toMatchObject({ sentinel: true });
      expect(g.describeNode(p)).not.toHaveProperty("value");
    }
    g.set("other", 6); // mix still lacks a dep value: stays sentinel, nothing to report for it
    expect(waves[1]!.signals).toEqual([{ path: "other", signal: "data" }]);
    g.set("a", 10);
    expect(g.get("mix")).toBe(18);
    expect(g.status("mix")).toBe("settled");
  });

  it("invalidating an already-sentinel node is still an invalidate signal", () => {
    const g = createGraph("g");
    g.state("s");
    const waves = record(g);
    g.invalidate("s");
    expect(waves[0]!.signals).toEqual([{ path: "s", signal: "invalidate" }]);
  });

  it("an invalidated derived node stays sentinel until one of its deps changes", () => {
    const g = createGraph("g");
    g.state("a", 1);
    g.derived("d", ["a"], (a) => num(a) * 3);
    g.derived("e", ["d"], (d) => num(d) + 1);
    g.invalidate("d");
    expect(g.get("d")).toBeUndefined();
    expect(g.get("e")).toBeUndefined();
    g.set("a", 1); // resolved: no change, d stays sentinel
    expect(g.get("d")).toBeUndefined();
    g.set("a", 2);
    expect(g.get("d")).toBe(6);
    expect(g.get("e")).toBe(7);
  });

  it("invalidate then set inside one batch: dependents recompute once from the final value", () => {
    const g = createGraph("g");
    let calls = 0;
    g.state("a", 1);
    g.derived("d", ["a"], (a) => {
      calls++;
      return a;
    });
    calls = 0;
    const waves = record(g);
    g.batch(() => {
      g.invalidate("a");
      g.set("a", 2);
    });
    expect(calls).toBe(1);
    expect(waves[0]!.signals).toEqual([
      { path: "a", signal: "data" },
      { path: "d", signal: "data" },
    ]);
  });
});

describe("errored derived and effects", () => {
  it("a throwing fn sets status errored, keeps the last value, signals error; recovery settles", () => {
    const g = createGraph("g");
    g.state("n", 4);
    g.derived("sqrt", ["n"], (n) => {
      if (num(n) < 0) throw new Error("negative");
      return Math.sqrt(num(n));
    });
    g.derived("plus", ["sqrt"], (s) => num(s) + 1);
    const waves = record(g);
    g.set("n", -1);
    expect(g.status("sqrt")).toBe("errored");
    expect(g.get("sqrt")).toBe(2);
    expect(g.describeNode("sqrt")).toEqual({ type: "derived", deps: ["n"], status: "errored", meta: {}, value: 2 });
    expect(g.get("plus")).toBe(3);
    expect(waves[0]!.signals).toEqual([
      { path: "n", signal: "data" },
      { path: "sqrt", signal: "error" },
    ]);
    g.set("n", 9);
    expect(g.status("sqrt")).toBe("settled");
    expect(g.get("plus")).toBe(4);
  });

  it("a non-JSON result errors the node; an error before any value leaves it errored and sentinel", () => {
    const g = createGraph("g");
    g.state("a", 1);
    g.derived("bad", ["a"], () => Number.NaN);
    expect(g.status("bad")).toBe("errored");
    expect(g.describeNode("bad")).toEqual({ type: "derived", deps: ["a"], status: "errored", meta: {}, sentinel: true });
    g.derived("undef", ["a"], () => undefined as unknown as JsonValue);
    expect(g.status("undef")).toBe("errored");
    const waves = record(g);
    g.invalidate("a");
    expect(g.status("bad")).toBe("sentinel");
    expect(waves[0]!.signals).toContainEqual({ path: "bad", signal: "invalidate" });
  });

  it("a new derived that errors at creation reports error in its wave", () => {
    const g = createGraph("g");
    g.state("a", 1);
    const waves = record(g);
    g.derived("boom", ["a"], () => {
      throw new Error("x");
    });
    expect(waves).toEqual([{ signals: [{ path: "boom", signal: "error" }], topology: [{ op: "add", path: "boom" }], cause: "user" }]);
  });

  it("effects run at the wave close, once per wave in which a dep changed, never on rolled-back state", () => {
    const g = createGraph("g");
    const runs: JsonValue[][] = [];
    g.state("a", 1);
    g.state("b");
    g.effect("log", ["a"], (a) => {
      runs.push([a]);
    });
    g.effect("waits", ["a", "b"], (a, b) => {
      runs.push([a, b]);
    });
    expect(runs).toEqual([[1]]);
    expect(g.status("waits")).toBe("sentinel");
    g.batch(() => {
      g.set("a", 2);
      g.set("a", 3);
      g.set("b", "x");
    });
    expect(runs).toEqual([[1], [3], [3, "x"]]);
    expect(() =>
      g.batch(() => {
        g.set("a", 100);
        throw new Error("abort");
      }),
    ).toThrow("abort");
    expect(runs).toHaveLength(3);
    expect(g.describeNode("log")).toEqual({ type: "effect", deps: ["a"], status: "settled", meta: {}, sentinel: true });
    g.effect("fails", ["a"], () => {
      throw new Error("e");
    });
    expect(g.status("fails")).toBe("errored");
    expect(() => g.derived("on-effect", ["log"], () => 1)).toThrow(TypeError);
  });
});
