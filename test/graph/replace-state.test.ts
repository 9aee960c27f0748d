/**
 * replaceState: `remove` + `addState` at one path with the dependents kept (restore replays a state node given
 * other meta, or made a state node, while its dependents stayed: docs/graph-model.md §6 item 9).
 */
import { describe, expect, it } from "vitest";
import { createGraph } from "../../src/graph/graph.js";
import type { GraphWave, JsonValue, ReactiveGraph } from "../../src/graph/types.js";

const num = (v: JsonValue): number => v as number;

function record(g: ReactiveGraph): GraphWave[] {
  const out: GraphWave[] = [];
  g.observe((w) => out.push(w));
  return out;
}

describe("replaceState", () => {
  it("gives a state node new meta and value; its dependents stay wired and recompute", () => {
    const g = createGraph("g");
    g.state("a", 1);
    g.state("b", 2);
    g.derived("c", ["a", "b"], (a, b) => num(a) + num(b));
    g.effect("fx", ["c"], () => {});
    const waves = record(g);
    g.replaceState("b", 5, { unit: "kg" });
    expect(g.describeNode("b")).toEqual({ type: "state", deps: [], status: "settled", meta: { unit: "kg" }, value: 5 });
    expect(g.get("c")).toBe(6);
    expect(g.snapshot().edges).toEqual([
      { from: "a", to: "c" },
      { from: "b", to: "c" },
      { from: "c", to: "fx" },
    ]);
    expect(waves.map((w) => [w.signals, w.topology])).toEqual([
      [
        [
          { path: "b", signal: "teardown" },
          { path: "b", signal: "data" },
          { path: "c", signal: "data" },
          { path: "fx", signal: "resolved" },
        ],
        [
          { op: "remove", path: "b" },
          { op: "add", path: "b" },
        ],
      ],
    ]);
    g.set("b", 10); // the dependents follow the new node
    expect(g.get("c")).toBe(11);
    expect(() => g.remove("b")).toThrow(/"c"/);
  });

  it("makes a derived node a state node: it drops its deps, keeps its dependents", () => {
    const g = createGraph("g");
    g.state("s", 3);
    g.derived("d", ["s"], (s) => num(s) * 2);
    g.derived("e", ["d"], (d) => num(d) + 1);
    g.replaceState("d"); // no value: the dependent goes sentinel
    expect(g.describeNode("d")).toEqual({ type: "state", deps: [], status: "sentinel", meta: {}, sentinel: true });
    expect(g.status("e")).toBe("sentinel");
    g.remove("s"); // no longer a dep of anything
    g.set("d", 7);
    expect(g.get("e")).toBe(8);
  });

  it("is undone with the batch that made it", () => {
    const g = createGraph("g");
    g.state("a", 1, { meta: { v: 1 } });
    g.derived("b", ["a"], (a) => num(a) * 10);
    const before = g.snapshot();
    const waves = record(g);
    expect(() =>
      g.batch(() => {
        g.replaceState("a", 2, { v: 2 });
        throw new Error("roll back");
      }),
    ).toThrow("roll back");
    expect(g.snapshot()).toEqual(before);
    expect(waves).toEqual([]);
    g.set("a", 4); // the old node is wired again
    expect(g.get("b")).toBe(40);
    expect(() => g.remove("a")).toThrow(/"b"/);
  });

  it("works through a subgraph view and refuses an unknown path or bad meta before changing anything", () => {
    const g = createGraph("g");
    g.mount("m");
    g.state("m::x", 1);
    g.derived("y", ["m::x"], (x) => x);
    g.subgraph("m").replaceState("x", 2, { k: "v" });
    expect(g.get("y")).toBe(2);
    expect(() => g.replaceState("nope", 1)).toThrow(TypeError);
    expect(() => g.replaceState("m", 1)).toThrow(/mount/);
    expect(() => g.replaceState("m::x", 1, [] as unknown as Record<string, JsonValue>)).toThrow(TypeError);
    expect(g.describeNode("m::x")?.meta).toEqual({ k: "v" });
  });
});
