/**
 * r232 attack: restore's keepingReAdded (src/persistence/restore.ts:297) assigns `nodes[path] = slice` on a plain
 * object. For a code-built node named `__proto__` that assignment sets the prototype instead of an own key, so
 * applyBaselineToGraph sees no slice for `__proto__`, removes the code's derived node, and restore resolves: the
 * graph silently lacks a node that should stand. Real SQLite file, inline tiers.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createGraph, restoreSnapshot, type ReactiveGraph } from "../../src/index.js";
import { sqliteWriter } from "./fixtures/sqlite-writer.js";
import { inlinePair } from "../graph-compaction/fixtures.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const double = (v: unknown): number => (v as number) * 2;

function oldCode(): ReactiveGraph {
  const g = createGraph("g");
  g.state("a", 1);
  return g;
}

/** The next version of the code: a derived node the stored graph never held. */
function newCode(name: string): ReactiveGraph {
  const g = oldCode();
  g.derived(name, ["a"], double);
  return g;
}

describe("codeChanges accept keeps the code's new derived node (r232)", () => {
  it.each(["__proto__", "constructor", "toString", "plain"])("node %s stands after restore", async (name) => {
    const live = oldCode();
    const { handle, reader } = sqliteWriter(`r232-proto-${name.replace(/_/g, "")}`, live, cleanups);
    await handle.flush();
    live.set("a", 5);
    await handle.flush();
    const graph = newCode(name);
    const result = await restoreSnapshot(graph, { ...inlinePair(reader), codeChanges: "accept" });
    expect(graph.get("a")).toBe(5);
    // The code's derived node is kept and listed as added (docs/design.md §3.9).
    expect(graph.kindOf(name)).toBe("derived");
    expect(graph.get(name)).toBe(10);
    expect(result.codeChanges?.find((c) => c.path === name)?.built).toMatchObject({ type: "derived", deps: ["a"] });
  });
});

describe("default restore keeps a code-built node a frame above the baseline re-adds (r232)", () => {
  it.each(["__proto__", "plain"])("node %s stands after restore", async (name) => {
    const { compactGraph } = await import("../../src/persistence/compaction.js");
    const live = newCode(name);
    const { handle, backend, reader } = sqliteWriter(`r232-readd-${name.replace(/_/g, "")}`, live, cleanups);
    await handle.flush();
    live.remove(name); // the writer drops the derived node ...
    await handle.flush();
    await compactGraph({ backend }, { graphName: "g" }); // ... a compaction folds that into the baseline ...
    live.derived(name, ["a"], double); // ... and the writer builds it again, as the code does
    live.set("a", 3);
    await handle.flush();
    expect(live.get(name)).toBe(6);
    const graph = newCode(name);
    await restoreSnapshot(graph, inlinePair(reader));
    expect(graph.get("a")).toBe(3);
    expect(graph.kindOf(name)).toBe("derived");
    expect(graph.get(name)).toBe(6);
  });
});
