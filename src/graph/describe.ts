/**
 * Builds persisted snapshot shapes (docs/graph-model.md §1.1) from live nodes: deep-copied, JSON-safe, sorted.
 * Layer 4 (graph).
 */
import type { JsonValue } from "../codec/types.js";
import type { GraphCore } from "./core.js";
import { cloneJson, setOwn } from "./json-utils.js";
import type { GNode, MountRec } from "./node.js";
import { compareCodePoints } from "../base/code-points.js";
import { isInside, PATH_SEP, relativeTo } from "./paths.js";
import { SNAPSHOT_VERSION, type GraphPersistSnapshot, type SnapshotNodeSlice } from "./types.js";

/** A dep as seen from mount `prefix`: relative when inside it, else `"::" + root path` (see `Graph.snapshot`). */
function depRef(path: string, prefix: string): string {
  return isInside(path, prefix) ? relativeTo(path, prefix) : PATH_SEP + path;
}

/** One node's slice, O(size of the node). Key order matches docs/graph-model.md §1.1's example. */
export function describeSlice(node: GNode, prefix: string): SnapshotNodeSlice {
  const slice: SnapshotNodeSlice = {
    type: node.kind,
    deps: node.deps.map((d) => depRef(d.path, prefix)),
    status: node.status,
    meta: cloneJson(node.meta as Record<string, JsonValue>),
  };
  if (node.value === undefined) slice.sentinel = true;
  else slice.value = cloneJson(node.value);
  return slice;
}

/** Snapshot of the subtree under `rec` (the root for a root graph), paths relative to it. */
export function buildSnapshot(core: GraphCore, name: string, rec: MountRec): GraphPersistSnapshot {
  const prefix = rec.path;
  const { mounts, nodes } = core.subtree(rec);
  const entries = nodes.map((n) => ({ rel: relativeTo(n.path, prefix), node: n }));
  entries.sort((a, b) => compareCodePoints(a.rel, b.rel));

  const out: Record<string, SnapshotNodeSlice> = {};
  const edges: Array<{ from: string; to: string }> = [];
  for (const { rel, node } of entries) {
    setOwn(out, rel, describeSlice(node, prefix));
    for (const d of node.deps) if (isInside(d.path, prefix)) edges.push({ from: relativeTo(d.path, prefix), to: rel });
  }
  edges.sort((a, b) => compareCodePoints(a.from, b.from) || compareCodePoints(a.to, b.to));
  return {
    name,
    nodes: out,
    edges,
    subgraphs: relativeSorted(mounts.slice(1).map((m) => m.path), prefix),
    version: SNAPSHOT_VERSION,
  };
}

/** Paths made relative to `prefix` and sorted in code-point order. */
export function relativeSorted(paths: readonly string[], prefix: string): string[] {
  return paths.map((p) => relativeTo(p, prefix)).sort(compareCodePoints);
}
