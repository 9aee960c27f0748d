/**
 * Replay policy shared by restore (live graph) and fold (snapshot JSON): which payloads are graph changes, the
 * "later frame wins" rule (docs/design.md §3.9), and how a baseline and a frame apply to a live graph. Keeping it
 * in one place keeps restore and compaction in agreement; which frames they get is the stored-graph reader's job.
 * Layer 4 (graph).
 */
import type { WALFrame } from "../wal/frame.js";
import { removalOrder } from "./decompose.js";
import { sliceValue } from "./diff.js";
import { jsonEqual } from "../graph/json-utils.js";
import { compareCodePoints } from "../base/code-points.js";
import { isInside } from "../graph/paths.js";
import type { DiffNodeRemoved, GraphChange } from "./storage-types.js";
import type { Graph, GraphPersistSnapshot, JsonValue, SnapshotNodeSlice } from "../graph/types.js";
import { isRecord } from "../base/records.js";

/** True for a value that can stand as a node slice in a frame or a baseline (type, deps, status, meta). */
export function isSlice(v: unknown): v is SnapshotNodeSlice {
  return (
    isRecord(v) &&
    typeof v.type === "string" &&
    Array.isArray(v.deps) &&
    v.deps.every((d) => typeof d === "string") &&
    typeof v.status === "string" &&
    isRecord(v.meta)
  );
}

/**
 * The graph payload of a frame when it is one we apply and its kind matches the frame's lifecycle; undefined for
 * anything else (ownership claims, version bumps, foreign structures, malformed payloads), which replay ignores.
 */
export function graphChangeOf(frame: WALFrame): GraphChange | undefined {
  const c: unknown = frame.change.change;
  if (!isRecord(c)) return undefined;
  const spec = frame.lifecycle === "spec";
  const data = frame.lifecycle === "data";
  switch (c.kind) {
    case "graph.add":
      if (!spec || typeof c.nodeId !== "string") return undefined;
      if (c.slice === undefined) return { kind: "graph.add", nodeId: c.nodeId };
      return isSlice(c.slice) ? { kind: "graph.add", nodeId: c.nodeId, slice: c.slice } : undefined;
    case "graph.remove":
      return spec && typeof c.nodeId === "string" ? { kind: "graph.remove", nodeId: c.nodeId } : undefined;
    case "graph.mount":
      return spec && typeof c.path === "string" ? { kind: "graph.mount", path: c.path, subgraphId: c.path } : undefined;
    case "graph.unmount":
      return spec && typeof c.path === "string" ? { kind: "graph.unmount", path: c.path } : undefined;
    case "node.set":
      // JSON has no undefined: a set without a value is malformed, not an invalidate.
      if (!data || typeof c.path !== "string" || !("value" in c) || c.value === undefined) return undefined;
      return { kind: "node.set", path: c.path, value: c.value as JsonValue };
    case "node.invalidate":
      return data && typeof c.path === "string" ? { kind: "node.invalidate", path: c.path } : undefined;
    default:
      return undefined;
  }
}

/** The node path a change targets (add/remove/set/invalidate), undefined for mount operations. */
export function nodePathOf(change: GraphChange): string | undefined {
  switch (change.kind) {
    case "graph.add":
    case "graph.remove":
      return change.nodeId;
    case "node.set":
    case "node.invalidate":
      return change.path;
    default:
      return undefined;
  }
}

// ---- later frame wins ------------------------------------------------------------------------------------------

/**
 * Per node path, the seq of its last spec frame (add/remove) among `frames`. A data frame for that path with a
 * lower seq is superseded: the later spec frame already carries the node's state at its time, and replaying the
 * older value after it (spec runs before data) would resurrect a state that never followed it (docs/design.md §3.9).
 */
export function lastSpecSeqByPath(frames: readonly WALFrame[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const f of frames) {
    if (f.lifecycle !== "spec") continue;
    const change = graphChangeOf(f);
    const path = change === undefined ? undefined : nodePathOf(change);
    if (path !== undefined && f.frame_seq > (out.get(path) ?? -1)) out.set(path, f.frame_seq);
  }
  return out;
}

// ---- live graph ------------------------------------------------------------------------------------------------

/**
 * Applies one change to a live graph inside the caller's batch. Returns false when it had no effect (unknown or
 * non-state path, mount already in the wanted state, add without a state slice). Graph errors propagate: the
 * caller's batch rolls back and reports `phase-failed`.
 * - `graph.add`: creates a state node from the slice; an existing node of another type or meta is replaced, an
 *   existing state node with the same meta takes the slice's value.
 * - `node.set` / `node.invalidate`: state nodes only; derived nodes recompute (docs/graph-model.md §4.4).
 */
export function applyChangeToGraph(graph: Graph, change: GraphChange): boolean {
  switch (change.kind) {
    case "graph.add": {
      const slice = change.slice;
      if (slice === undefined || slice.type !== "state") return false;
      putStateNode(graph, change.nodeId, slice, false);
      return true;
    }
    case "graph.remove":
      if (graph.kindOf(change.nodeId) === undefined) return false;
      graph.remove(change.nodeId);
      return true;
    case "graph.mount":
      if (graph.hasMount(change.path)) return false;
      graph.mount(change.path);
      return true;
    case "graph.unmount":
      if (!graph.hasMount(change.path)) return false;
      graph.unmount(change.path);
      return true;
    case "node.set":
      if (graph.kindOf(change.path) !== "state") return false;
      graph.set(change.path, change.value);
      return true;
    case "node.invalidate":
      if (graph.kindOf(change.path) !== "state") return false;
      graph.invalidate(change.path);
      return true;
  }
}

/**
 * Makes `path` a state node with the slice's meta and value. An existing node of another type or with other meta
 * is replaced in place where the graph can (`replaceState`: its dependents stay), else removed first; when
 * `lenient`, a removal the graph refuses (the node still has dependents) is skipped and only the value is written
 * where possible.
 */
function putStateNode(graph: Graph, path: string, slice: SnapshotNodeSlice, lenient: boolean): void {
  const value = sliceValue(slice);
  const kind = graph.kindOf(path);
  if (kind !== undefined) {
    const current = graph.describeNode(path);
    if (kind === "state" && current !== undefined && jsonEqual(current.meta, slice.meta)) {
      writeValue(graph, path, current, value);
      return;
    }
    if (typeof graph.replaceState === "function") {
      graph.replaceState(path, value, slice.meta);
      return;
    }
    try {
      graph.remove(path);
    } catch (err) {
      if (!lenient || !(err instanceof TypeError)) throw err;
      if (kind === "state" && current !== undefined) writeValue(graph, path, current, value);
      return;
    }
  }
  graph.addState(path, value, slice.meta);
}

/** Writes a state node's value unless it already holds it (spares the dependents a pointless wave entry). */
function writeValue(graph: Graph, path: string, current: SnapshotNodeSlice, value: JsonValue | undefined): void {
  if (jsonEqual(sliceValue(current), value)) return;
  if (value === undefined) graph.invalidate(path);
  else graph.set(path, value);
}

/**
 * Makes a live graph match a baseline, inside the caller's batch (docs/graph-model.md §6 items 3–5): nodes and mounts the
 * baseline lacks are removed (dependents first; a node whose dependents stay is kept), missing mounts are created
 * (parents first), state slices become state nodes with their meta and value (sentinel → invalidated; a node of
 * another type or meta replaced in place where the graph can, so its dependents stay). Derived and effect slices
 * are left to the code that built the graph: their values recompute. O(graph).
 */
export function applyBaselineToGraph(graph: Graph, snapshot: GraphPersistSnapshot): void {
  const nodes = snapshot.nodes;
  const has = (p: string): boolean => Object.prototype.hasOwnProperty.call(nodes, p);
  // Nodes the baseline lacks, and nodes it has as state nodes of another type or meta (replaced later), leave
  // together, dependents first: a replaced derived node may be the last dependent of a node the baseline lacks.
  // A graph that replaces in place does so first: a replaced node keeps its dependents and drops its own deps, so
  // the nodes it depended on can leave.
  const inPlace = typeof graph.replaceState === "function";
  const leaving: DiffNodeRemoved[] = [];
  for (const p of graph.paths()) {
    const current = graph.describeNode(p);
    if (current === undefined) continue;
    const slice = has(p) ? (nodes[p] as SnapshotNodeSlice) : undefined;
    const replaced = slice?.type === "state" && (current.type !== "state" || !jsonEqual(current.meta, slice.meta));
    if (replaced && inPlace) putStateNode(graph, p, slice, false);
    else if (slice === undefined || replaced) leaving.push({ path: p, deps: current.deps });
  }
  for (const p of removalOrder(leaving)) {
    try {
      graph.remove(p);
    } catch (err) {
      if (!(err instanceof TypeError)) throw err; // still has dependents the baseline keeps: leave it
    }
  }
  const wanted = new Set(snapshot.subgraphs);
  for (const m of graph.mounts().filter((x) => !wanted.has(x)).sort(compareCodePoints).reverse()) {
    if (!graph.hasMount(m)) continue;
    try {
      graph.unmount(m);
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
    }
  }
  for (const m of [...wanted].sort(compareCodePoints)) if (!graph.hasMount(m)) graph.mount(m);
  for (const p of Object.keys(nodes).sort(compareCodePoints)) {
    const slice = nodes[p] as SnapshotNodeSlice;
    if (slice.type === "state") putStateNode(graph, p, slice, true);
  }
}

// ---- code-built nodes ------------------------------------------------------------------------------------------

/** A code-built node the stored graph holds that the live graph does not have as stored (docs/design.md §3.9). */
export interface CodeBuiltMismatch {
  readonly path: string;
  /** The baseline's seq when the baseline holds the slice, else the seq of the spec frame that added it. */
  readonly frameSeq: number;
  readonly stored: SnapshotNodeSlice;
  /** The graph's node at `path`; undefined when it has none. */
  readonly built: SnapshotNodeSlice | undefined;
}

/**
 * The derived and effect slices the stored graph holds after `frames` (spec frames in ascending seq above the
 * baseline at `baselineSeq`; `snapshot` is the baseline's, or undefined for the frames alone), each with the seq
 * that put it there. Only the code builds such a node: replay keeps the graph's own, so each must match it.
 */
export function storedCodeBuilt(
  snapshot: GraphPersistSnapshot | undefined,
  baselineSeq: number,
  frames: readonly WALFrame[],
): Map<string, { slice: SnapshotNodeSlice; seq: number }> {
  const out = new Map<string, { slice: SnapshotNodeSlice; seq: number }>();
  if (snapshot !== undefined) {
    for (const [p, slice] of Object.entries(snapshot.nodes)) {
      if (isSlice(slice) && slice.type !== "state") out.set(p, { slice, seq: baselineSeq });
    }
  }
  for (const f of frames) {
    const c = f.lifecycle === "spec" ? graphChangeOf(f) : undefined;
    if (c === undefined || (c.kind === "graph.add" && c.slice === undefined)) continue; // replay ignores such an add
    if (c.kind === "graph.add" && c.slice?.type !== "state") out.set(c.nodeId, { slice: c.slice as SnapshotNodeSlice, seq: f.frame_seq });
    else if (c.kind === "graph.add" || c.kind === "graph.remove") out.delete(c.nodeId);
    else if (c.kind === "graph.unmount") for (const p of [...out.keys()]) if (isInside(p, c.path)) out.delete(p);
  }
  return out;
}

/**
 * The first stored code-built node (code-point order) the graph has with another type, deps or meta; with
 * `missing`, also one the graph lacks or holds as a state node (restore never builds one). Undefined when none.
 */
export function codeBuiltMismatch(
  graph: Graph,
  stored: ReadonlyMap<string, { slice: SnapshotNodeSlice; seq: number }>,
  missing: boolean,
): CodeBuiltMismatch | undefined {
  return codeBuiltMismatches(graph, stored, missing, true)[0];
}

/** Every mismatch codeBuiltMismatch would find, in code-point order of path (just the first with `first`). */
export function codeBuiltMismatches(
  graph: Pick<Graph, "kindOf" | "describeNode">,
  stored: ReadonlyMap<string, { slice: SnapshotNodeSlice; seq: number }>,
  missing: boolean,
  first = false,
): CodeBuiltMismatch[] {
  const out: CodeBuiltMismatch[] = [];
  for (const path of [...stored.keys()].sort(compareCodePoints)) {
    if (first && out.length > 0) break;
    const { slice, seq } = stored.get(path) as { slice: SnapshotNodeSlice; seq: number };
    const kind = graph.kindOf(path);
    if (kind === undefined || kind === "state") {
      if (missing) out.push({ path, frameSeq: seq, stored: slice, built: kind === undefined ? undefined : graph.describeNode(path) });
      continue;
    }
    const built = graph.describeNode(path, "shared");
    if (built === undefined) continue;
    if (built.type !== slice.type || !jsonEqual(built.deps, slice.deps) || !jsonEqual(built.meta, slice.meta)) {
      out.push({ path, frameSeq: seq, stored: slice, built: graph.describeNode(path) });
    }
  }
  return out;
}

/**
 * The graph's code-built nodes (derived, effect) the stored graph ends without: `snapshot` lacks them (when given)
 * or a spec frame of `frames` removes them (a remove, an unmount around them) with no later add. Restore with
 * `codeChanges: "accept"` keeps them: the code's version builds them (docs/design.md §3.9). O(graph + frames).
 */
export function codeBuiltDropped(graph: Graph, snapshot: GraphPersistSnapshot | undefined, frames: readonly WALFrame[]): Set<string> {
  const built = graph.paths().filter((p) => {
    const kind = graph.kindOf(p);
    return kind !== undefined && kind !== "state";
  });
  const dropped = new Set(snapshot === undefined ? [] : built.filter((p) => !Object.prototype.hasOwnProperty.call(snapshot.nodes, p)));
  for (const f of frames) {
    const c = f.lifecycle === "spec" ? graphChangeOf(f) : undefined;
    if (c?.kind === "graph.add" && c.slice !== undefined) dropped.delete(c.nodeId);
    else if (c?.kind === "graph.remove") dropped.add(c.nodeId);
    else if (c?.kind === "graph.unmount") for (const p of built) if (isInside(p, c.path)) dropped.add(p);
  }
  for (const p of dropped) if (!built.includes(p)) dropped.delete(p);
  return dropped;
}
