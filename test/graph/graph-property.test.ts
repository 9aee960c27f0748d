/**
 * Property test: random operation sequences (set / invalidate / add / remove / mount / unmount inside random,
 * nested, sometimes-throwing batches) keep the graph's snapshot equal to a simple model, every wave covers every
 * slice that changed, and rolled-back batches leave the snapshot unchanged and emit nothing.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createGraph } from "../../src/graph/graph.js";
import { jsonEqual } from "../../src/graph/json-utils.js";
import { compareCodePoints } from "../../src/base/code-points.js";
import type { GraphPersistSnapshot, GraphWave, JsonValue, ReactiveGraph, SnapshotNodeSlice } from "../../src/graph/types.js";

type Op =
  | { t: "set"; n: number; v: JsonValue }
  | { t: "invalidate"; n: number }
  | { t: "addState"; m: number; name: number; v: JsonValue | undefined }
  | { t: "addDerived"; m: number; name: number; deps: number[] }
  | { t: "remove"; n: number }
  | { t: "mount"; m: number; name: number }
  | { t: "unmount"; m: number }
  | { t: "batch"; ops: Op[]; fail: boolean };

const NAMES = ["a", "b", "c", "d"];

/** Derived function used everywhere: throws on a "boom" input, else returns its inputs (so values nest). */
function derive(...values: JsonValue[]): JsonValue {
  if (values.some((v) => v === "boom")) throw new Error("boom");
  return values;
}

interface MNode {
  kind: "state" | "derived";
  deps: string[];
  value: JsonValue | undefined;
  errored: boolean;
}

/** The model: state values as written; derived values recomputed from scratch at each wave close. */
class Model {
  nodes = new Map<string, MNode>(); // insertion order = creation order = a topological order
  mounts = new Set<string>();

  clone(): Model {
    const m = new Model();
    for (const [p, n] of this.nodes) m.nodes.set(p, { ...n, deps: [...n.deps] });
    m.mounts = new Set(this.mounts);
    return m;
  }

  compute(n: MNode): void {
    const values = n.deps.map((d) => this.nodes.get(d)!.value);
    if (values.some((v) => v === undefined)) {
      n.value = undefined;
      n.errored = false;
      return;
    }
    try {
      n.value = derive(...(values as JsonValue[]));
      n.errored = false;
    } catch {
      n.errored = true; // keeps the last value
    }
  }

  closeWave(): void {
    for (const n of this.nodes.values()) if (n.kind === "derived") this.compute(n);
  }

  isFree(path: string): boolean {
    return !this.nodes.has(path) && !this.mounts.has(path);
  }

  expected(): GraphPersistSnapshot {
    const paths = [...this.nodes.keys()].sort(compareCodePoints);
    const nodes: Record<string, SnapshotNodeSlice> = {};
    const edges: Array<{ from: string; to: string }> = [];
    for (const p of paths) {
      const n = this.nodes.get(p)!;
      const status = n.errored ? "errored" : n.value === undefined ? "sentinel" : "settled";
      const slice: SnapshotNodeSlice = { type: n.kind, deps: [...n.deps], status, meta: {} };
      if (n.value === undefined) slice.sentinel = true;
      else slice.value = n.value;
      nodes[p] = slice;
      for (const d of n.deps) edges.push({ from: d, to: p });
    }
    edges.sort((x, y) => compareCodePoints(x.from, y.from) || compareCodePoints(x.to, y.to));
    return { name: "prop", nodes, edges, subgraphs: [...this.mounts].sort(compareCodePoints), version: 1 };
  }
}

const valueArb: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.integer({ min: -2, max: 2 }),
  fc.constant("boom"),
  fc.constant(null),
  fc.constantFrom("x", "y"),
  fc.record({ k: fc.integer({ min: 0, max: 1 }) }),
  fc.array(fc.integer({ min: 0, max: 1 }), { maxLength: 2 }),
);

const leafArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant("set" as const), n: fc.nat(), v: valueArb }), weight: 6 },
  { arbitrary: fc.record({ t: fc.constant("invalidate" as const), n: fc.nat() }), weight: 2 },
  {
    arbitrary: fc.record({
      t: fc.constant("addState" as const),
      m: fc.nat(),
      name: fc.nat(),
      v: fc.option(valueArb, { nil: undefined }),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      t: fc.constant("addDerived" as const),
      m: fc.nat(),
      name: fc.nat(),
      deps: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ t: fc.constant("remove" as const), n: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant("mount" as const), m: fc.nat(), name: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant("unmount" as const), m: fc.nat() }), weight: 1 },
);

const opArb: fc.Arbitrary<Op> = fc.letrec<{ op: Op }>((tie) => ({
  op: fc.oneof(
    { maxDepth: 3, depthIdentifier: "batch" },
    { arbitrary: leafArb, weight: 5 },
    {
      arbitrary: fc.record({ t: fc.constant("batch" as const), ops: fc.array(tie("op"), { maxLength: 6 }), fail: fc.boolean() }),
      weight: 2,
    },
  ),
})).op;

class Abort extends Error {}

function pick<T>(list: readonly T[], i: number): T | undefined {
  return list.length === 0 ? undefined : list[i % list.length];
}

function join(mount: string, name: string): string {
  return mount === "" ? name : `${mount}::${name}`;
}

function expectTypeError(fn: () => void): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(TypeError);
}

/** Paths whose slice differs between two snapshots, plus mounts that appeared or vanished. */
function changedPaths(a: GraphPersistSnapshot, b: GraphPersistSnapshot): string[] {
  const out: string[] = [];
  for (const p of new Set([...Object.keys(a.nodes), ...Object.keys(b.nodes)])) {
    const x = a.nodes[p] as unknown as JsonValue | undefined;
    const y = b.nodes[p] as unknown as JsonValue | undefined;
    if (!jsonEqual(x, y)) out.push(p);
  }
  const am = new Set(a.subgraphs);
  const bm = new Set(b.subgraphs);
  for (const m of am) if (!bm.has(m)) out.push(m);
  for (const m of bm) if (!am.has(m)) out.push(m);
  return out;
}

function covered(wave: GraphWave, path: string): boolean {
  if (wave.signals.some((s) => s.path === path)) return true;
  return wave.topology.some(
    (t) => t.path === path || ((t.op === "unmount" || t.op === "mount") && path.startsWith(`${t.path}::`)),
  );
}

function run(ops: Op[]): void {
  const g: ReactiveGraph = createGraph("prop");
  let model = new Model();
  let last = g.snapshot();
  let waveCount = 0;
  g.observe((wave) => {
    waveCount++;
    const now = g.snapshot();
    for (const p of changedPaths(last, now)) {
      if (!covered(wave, p)) throw new Error(`wave ${wave.seq} changed "${p}" without reporting it`);
    }
    last = now;
  });

  const exec = (op: Op, depth: number): void => {
    const nodes = [...model.nodes.keys()].sort(compareCodePoints);
    const mounts = ["", ...[...model.mounts].sort(compareCodePoints)];
    switch (op.t) {
      case "set": {
        const p = pick(nodes, op.n);
        if (p === undefined) return;
        if (model.nodes.get(p)!.kind !== "state") return expectTypeError(() => g.set(p, op.v));
        g.set(p, op.v);
        model.nodes.get(p)!.value = op.v;
        break;
      }
      case "invalidate": {
        const p = pick(
          nodes.filter((n) => model.nodes.get(n)!.kind === "state"),
          op.n,
        );
        if (p === undefined) return;
        g.invalidate(p);
        model.nodes.get(p)!.value = undefined;
        break;
      }
      case "addState": {
        const p = join(pick(mounts, op.m)!, NAMES[op.name % NAMES.length]!);
        if (!model.isFree(p)) return expectTypeError(() => g.addState(p, op.v));
        g.addState(p, op.v);
        model.nodes.set(p, { kind: "state", deps: [], value: op.v, errored: false });
        break;
      }
      case "addDerived": {
        if (nodes.length === 0) return;
        const p = join(pick(mounts, op.m)!, NAMES[op.name % NAMES.length]!);
        const deps = [...new Set(op.deps.map((i) => pick(nodes, i)!))];
        if (!model.isFree(p)) return expectTypeError(() => g.derived(p, deps, derive));
        g.derived(p, deps, derive);
        const n: MNode = { kind: "derived", deps, value: undefined, errored: false };
        model.compute(n); // eager, from the current (mid-batch) values
        model.nodes.set(p, n);
        break;
      }
      case "remove": {
        const p = pick(nodes, op.n);
        if (p === undefined) return;
        if ([...model.nodes.values()].some((n) => n.deps.includes(p))) return expectTypeError(() => g.remove(p));
        g.remove(p);
        model.nodes.delete(p);
        break;
      }
      case "mount": {
        const p = join(pick(mounts, op.m)!, NAMES[op.name % NAMES.length]!);
        if (!model.isFree(p)) return expectTypeError(() => g.mount(p));
        g.mount(p);
        model.mounts.add(p);
        break;
      }
      case "unmount": {
        const p = pick(mounts.slice(1), op.m);
        if (p === undefined) return;
        const inside = (q: string): boolean => q.startsWith(`${p}::`);
        const blocked = [...model.nodes].some(([q, n]) => !inside(q) && n.deps.some(inside));
        if (blocked) return expectTypeError(() => g.unmount(p));
        g.unmount(p);
        for (const q of [...model.nodes.keys()]) if (inside(q)) model.nodes.delete(q);
        model.mounts.delete(p);
        for (const m of [...model.mounts]) if (inside(m)) model.mounts.delete(m);
        break;
      }
      case "batch": {
        const saved = model.clone();
        const before = depth === 0 ? g.snapshot() : undefined;
        const wavesBefore = waveCount;
        try {
          g.batch(() => {
            for (const inner of op.ops) exec(inner, depth + 1);
            if (op.fail) throw new Abort("rollback");
          });
        } catch (e) {
          if (!(e instanceof Abort)) throw e;
          model = saved;
          if (before !== undefined) {
            expect(g.snapshot()).toEqual(before);
            expect(waveCount).toBe(wavesBefore);
          }
        }
        break;
      }
    }
  };

  for (const op of ops) {
    exec(op, 0);
    model.closeWave();
    const snap = g.snapshot();
    expect(snap).toEqual(model.expected());
    for (const p of Object.keys(snap.nodes)) expect(g.describeNode(p)).toEqual(snap.nodes[p]);
  }
}

describe("graph property: random operations against a model", () => {
  it("snapshot matches the model; waves cover every change; rolled-back batches change nothing", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 25 }), (ops) => {
        run(ops);
      }),
      { numRuns: 400 },
    );
  });
});
