/**
 * Snapshot diff (docs/protocol.md §7.3, docs/graph-model.md §2.1) in the shape that decomposes into WAL frames. The per-path
 * comparison is shared with attach, which runs it only on the paths a wave touched.
 * Layer 4 (graph).
 */
import { jsonEqual, setOwn } from "../graph/json-utils.js";
import type {
  DiffNodeAdded,
  DiffNodeRemoved,
  DiffValueChange,
  GraphSnapshotDiff,
} from "./storage-types.js";
import { compareCodePoints } from "../base/code-points.js";
import { parentPath } from "../graph/paths.js";
import { SNAPSHOT_VERSION, type Graph, type GraphPersistSnapshot, type JsonValue, type SnapshotNodeSlice } from "../graph/types.js";
import { sliceSize, snapshotFrameBytes } from "./size-estimate.js";

const hasOwn = (obj: object, key: string): boolean => Object.prototype.hasOwnProperty.call(obj, key);

/** The slice's value, `undefined` for SENTINEL (a foreign slice may carry both `sentinel: true` and a value). */
export function sliceValue(slice: SnapshotNodeSlice): JsonValue | undefined {
  return slice.sentinel === true ? undefined : slice.value;
}

/**
 * How a node present on both sides changed: "replace" when its identity (type, deps, meta) differs, i.e. it
 * was removed and re-added; "value" when only its value did; undefined when neither (status changes are not
 * persisted, docs/graph-model.md §2.2).
 */
export function classifySliceChange(before: SnapshotNodeSlice, after: SnapshotNodeSlice): "replace" | "value" | undefined {
  if (before.type !== after.type || !sameDeps(before.deps, after.deps) || !jsonEqual(before.meta, after.meta)) {
    return "replace";
  }
  return jsonEqual(sliceValue(before), sliceValue(after)) ? undefined : "value";
}

function sameDeps(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Mutable accumulator of one diff (itself a `GraphSnapshotDiff`); attach fills it path by path. */
export class DiffBuilder implements GraphSnapshotDiff {
  readonly nodesAdded: DiffNodeAdded[] = [];
  readonly nodesRemoved: DiffNodeRemoved[] = [];
  readonly subgraphsAdded: string[] = [];
  readonly subgraphsRemoved: string[] = [];
  readonly valuesChanged: DiffValueChange[] = [];

  /** Records the change of one node path (`undefined` = absent on that side). */
  node(path: string, before: SnapshotNodeSlice | undefined, after: SnapshotNodeSlice | undefined): void {
    if (before === undefined) {
      if (after !== undefined) this.nodesAdded.push({ path, slice: after });
      return;
    }
    if (after === undefined) {
      this.nodesRemoved.push({ path, deps: before.deps });
      return;
    }
    const kind = classifySliceChange(before, after);
    if (kind === "replace") {
      this.nodesRemoved.push({ path, deps: before.deps });
      this.nodesAdded.push({ path, slice: after });
    } else if (kind === "value") {
      const value = sliceValue(after);
      this.valuesChanged.push(value === undefined ? { path } : { path, value });
    }
  }

  get empty(): boolean {
    return (
      this.nodesAdded.length === 0 &&
      this.nodesRemoved.length === 0 &&
      this.subgraphsAdded.length === 0 &&
      this.subgraphsRemoved.length === 0 &&
      this.valuesChanged.length === 0
    );
  }

  /** The diff as it stands, sharing this builder's arrays (valid until the builder changes). */
  build(): GraphSnapshotDiff {
    return {
      nodesAdded: this.nodesAdded,
      nodesRemoved: this.nodesRemoved,
      subgraphsAdded: this.subgraphsAdded,
      subgraphsRemoved: this.subgraphsRemoved,
      valuesChanged: this.valuesChanged,
    };
  }

  /** The diff as it stands, in arrays of its own (survives `clear`). */
  copy(): GraphSnapshotDiff {
    return {
      nodesAdded: this.nodesAdded.slice(),
      nodesRemoved: this.nodesRemoved.slice(),
      subgraphsAdded: this.subgraphsAdded.slice(),
      subgraphsRemoved: this.subgraphsRemoved.slice(),
      valuesChanged: this.valuesChanged.slice(),
    };
  }

  /** Empties the builder for reuse (attach keeps one per mirror instead of allocating one per wave). */
  clear(): void {
    truncate(this.nodesAdded);
    truncate(this.nodesRemoved);
    truncate(this.subgraphsAdded);
    truncate(this.subgraphsRemoved);
    truncate(this.valuesChanged);
  }
}

/**
 * Empties `items`. Assigning `length` is a runtime call even on an empty array; popping the one or few items a
 * typical wave leaves is inlined, so that is how short arrays are emptied.
 */
function truncate(items: unknown[]): void {
  if (items.length > 8) items.length = 0;
  else while (items.length !== 0) items.pop();
}

/**
 * Everything that changed from `a` to `b` and persists as frames. Whole-snapshot cost (O(size of both)); attach
 * does not use it per wave. Key order of `nodes` is irrelevant (decompose sorts).
 */
export function diffSnapshots(a: GraphPersistSnapshot, b: GraphPersistSnapshot): GraphSnapshotDiff {
  checkSnapshot(a, "a");
  checkSnapshot(b, "b");
  const out = new DiffBuilder();
  for (const path of Object.keys(a.nodes)) {
    out.node(path, a.nodes[path], hasOwn(b.nodes, path) ? b.nodes[path] : undefined);
  }
  for (const path of Object.keys(b.nodes)) {
    if (!hasOwn(a.nodes, path)) out.node(path, undefined, b.nodes[path]);
  }
  const before = new Set(a.subgraphs);
  const after = new Set(b.subgraphs);
  for (const m of after) if (!before.has(m)) out.subgraphsAdded.push(m);
  for (const m of before) if (!after.has(m)) out.subgraphsRemoved.push(m);
  return out.build();
}

function checkSnapshot(s: GraphPersistSnapshot, arg: string): void {
  const nodesOk = typeof s?.nodes === "object" && s.nodes !== null && !Array.isArray(s.nodes);
  if (typeof s !== "object" || s === null || !nodesOk || !Array.isArray(s.subgraphs)) {
    throw new TypeError(`diffSnapshots: ${arg} must be a GraphPersistSnapshot (nodes object, subgraphs array)`);
  }
}

/**
 * A snapshot in `Graph.snapshot()` form from node slices by path and mount paths: nodes in code-point order,
 * edges from deps whose two ends are nodes, sorted subgraphs. O(n log n); the slices are used as they are.
 */
export function snapshotOfSlices(
  name: string,
  slices: ReadonlyMap<string, SnapshotNodeSlice>,
  mounts: Iterable<string>,
): GraphPersistSnapshot {
  const paths = sortedPaths(slices);
  const nodes: Record<string, SnapshotNodeSlice> = {};
  for (const p of paths) setOwn(nodes, p, slices.get(p) as SnapshotNodeSlice);
  return { name, nodes, edges: edgesOf(slices, paths), subgraphs: [...mounts].sort(compareCodePoints), version: SNAPSHOT_VERSION };
}

function sortedPaths(slices: ReadonlyMap<string, SnapshotNodeSlice>): string[] {
  return [...slices.keys()].sort(compareCodePoints);
}

/** The edges between `slices` (dep -> dependent), sorted by (from, to); `paths` are the slices' paths, sorted. */
function edgesOf(slices: ReadonlyMap<string, SnapshotNodeSlice>, paths: readonly string[]): Array<{ from: string; to: string }> {
  const edges: Array<{ from: string; to: string }> = [];
  for (const p of paths) {
    for (const d of (slices.get(p) as SnapshotNodeSlice).deps) if (slices.has(d)) edges.push({ from: d, to: p });
  }
  return edges.sort((a, b) => compareCodePoints(a.from, b.from) || compareCodePoints(a.to, b.to));
}

/**
 * The last persisted state of every node and mount, kept by attach so a wave is diffed on the paths it touched
 * only: `update` costs O(touched paths × node size + size of unmounted subtrees), never O(graph). A per-mount
 * index lets an unmount find the mirrored subtree it dropped without scanning every path.
 */
export class SnapshotMirror {
  private readonly nodes = new Map<string, SnapshotNodeSlice>();
  /** Mount path ("" = the graph itself) → direct node paths and direct child mounts. */
  private readonly mounts = new Map<string, { nodes: Set<string>; children: Set<string> }>();
  /** Reused by every update: a wave's diff is consumed before the next wave starts (or copied). */
  private readonly scratch = new DiffBuilder();
  /**
   * Mirrored paths in code-point order and the edges between them, kept from one baseline to the next while no node
   * was added or removed (and no re-added node changed its deps): sorting 10,000 paths at every baseline was a share
   * of what a baseline costs the main thread that grew as n log n (docs/design.md, issue 13). Undefined: rebuild.
   */
  private order: string[] | undefined;
  private edges: ReadonlyArray<{ readonly from: string; readonly to: string }> | undefined;

  constructor(snapshot: GraphPersistSnapshot) {
    this.reset(snapshot);
  }

  /** A mirror seeded from the graph's own shared slices (`resetFromGraph`). */
  static ofGraph(graph: Graph): SnapshotMirror {
    const mirror = new SnapshotMirror({ name: graph.name, nodes: {}, edges: [], subgraphs: [], version: SNAPSHOT_VERSION });
    mirror.resetFromGraph(graph);
    return mirror;
  }

  /** Re-seeds from a full snapshot (attach and every baseline: the snapshot is O(graph) already). */
  reset(snapshot: GraphPersistSnapshot): void {
    this.clear();
    for (const m of [...snapshot.subgraphs].sort(compareCodePoints)) this.addMount(m);
    for (const p of Object.keys(snapshot.nodes)) this.setNode(p, snapshot.nodes[p] as SnapshotNodeSlice);
  }

  /**
   * Re-seeds from the graph's own shared slices (`describeNode(p, "shared")`), as `update` keeps them, instead of a
   * snapshot's deep copies: the values in every baseline built from here on are then the graph's frozen, checked
   * ones (what lets attach vouch for its baselines, `snapshotWithBytes(name, true)`). Equal to
   * `reset(graph.snapshot())`.
   */
  resetFromGraph(graph: Graph): void {
    this.clear();
    for (const m of graph.mounts()) this.addMount(m); // sorted: parents first
    for (const p of graph.paths()) {
      const slice = graph.describeNode(p, "shared");
      if (slice !== undefined) this.setNode(p, slice);
    }
  }

  /** Empty: no node, only the graph's own (root) mount, no cached order or edges. Both re-seeds start here. */
  private clear(): void {
    this.nodes.clear();
    this.mounts.clear();
    this.order = undefined;
    this.edges = undefined;
    this.mounts.set("", { nodes: new Set(), children: new Set() });
  }

  /**
   * The persisted state as a snapshot: exactly what the frames handed out so far add up to (a gated change not
   * persisted yet is not in it). O(graph); values are the graph's shared, immutable ones (not copied).
   */
  snapshot(name: string): GraphPersistSnapshot {
    return this.build(name, false, false).snapshot;
  }

  /**
   * `snapshot` and its estimated stored bytes (`snapshotBytes` of it, the same figure), weighed in the same pass over
   * the slices instead of a second walk of the snapshot's nodes. With `freeze`, every container of the snapshot
   * (it, `nodes`, each slice and its deps, the edges, the mounts) is frozen as it is built: no code handed the
   * snapshot later (a tier's filter) can change what a vouched baseline holds. Slices stay frozen in the mirror,
   * which replaces a slice and never changes one.
   */
  snapshotWithBytes(name: string, freeze = false): { snapshot: GraphPersistSnapshot; bytes: number } {
    return this.build(name, true, freeze);
  }

  private build(name: string, weigh: boolean, freeze: boolean): { snapshot: GraphPersistSnapshot; bytes: number } {
    const slices = this.nodes;
    const paths = (this.order ??= sortedPaths(slices));
    const cached = (this.edges ??= edgesOf(slices, paths));
    const nodes: Record<string, SnapshotNodeSlice> = {};
    let bytes = 0;
    for (let i = 0; i < paths.length; i++) {
      const p = paths[i] as string;
      const slice = slices.get(p) as SnapshotNodeSlice;
      setOwn(nodes, p, slice);
      if (weigh) bytes += sliceSize(p, slice);
      if (freeze && !Object.isFrozen(slice)) {
        Object.freeze(slice.deps);
        Object.freeze(slice);
      }
    }
    // Edge objects of its own for each snapshot: what a tier holds never changes with the mirror.
    const edges = cached.map((e) => (freeze ? Object.freeze({ from: e.from, to: e.to }) : { from: e.from, to: e.to }));
    const subgraphs: string[] = [];
    for (const m of this.mounts.keys()) if (m !== "") subgraphs.push(m);
    subgraphs.sort(compareCodePoints);
    if (weigh) bytes += snapshotFrameBytes(name, edges, subgraphs);
    const snapshot: GraphPersistSnapshot = { name, nodes, edges, subgraphs, version: SNAPSHOT_VERSION };
    if (freeze) {
      Object.freeze(nodes);
      Object.freeze(edges);
      Object.freeze(subgraphs);
      Object.freeze(snapshot);
    }
    return { snapshot, bytes };
  }

  /**
   * Compares the touched node paths and mount paths with the graph, records the differences in the returned diff
   * and moves the mirror to the graph's current state. A touched mount that is mirrored brings its mirrored
   * subtree along (it may have been unmounted, or unmounted and mounted again): those paths are added to
   * `touchedNodes`, which the caller hands over (no copy on the hot path). The returned builder is the mirror's
   * own scratch: it is valid until the next update (`copy()` it to keep it).
   */
  update(graph: Graph, touchedNodes: Set<string>, touchedMounts: ReadonlySet<string>): DiffBuilder {
    const out = this.scratch;
    out.clear();
    const nodePaths = touchedNodes;
    const mountPaths = touchedMounts.size === 0 ? touchedMounts : this.withMirroredSubtrees(touchedMounts, nodePaths);
    for (const m of mountPaths) {
      const before = m !== "" && this.mounts.has(m);
      const after = m !== "" && graph.hasMount(m);
      if (after && !before) out.subgraphsAdded.push(m);
      else if (before && !after) out.subgraphsRemoved.push(m);
    }
    // Parents before children, so every added node finds its mount entry.
    if (out.subgraphsAdded.length > 0) for (const m of [...out.subgraphsAdded].sort(compareCodePoints)) this.addMount(m);
    for (const p of nodePaths) this.updateNode(graph, p, out);
    if (out.subgraphsRemoved.length > 0) {
      for (const m of [...out.subgraphsRemoved].sort(compareCodePoints).reverse()) this.deleteMount(m);
    }
    return out;
  }

  /**
   * `update` for a wave that touched no mount, straight from its signals: no touched-path set to fill and clear on
   * the hot path. A path listed twice is harmless: the second comparison finds the mirror already moved.
   */
  updateSignals(graph: Graph, signals: ReadonlyArray<{ readonly path: string }>): DiffBuilder {
    const out = this.scratch;
    out.clear();
    for (let i = 0; i < signals.length; i++) this.updateNode(graph, (signals[i] as { readonly path: string }).path, out);
    return out;
  }

  /**
   * Diffs one node path against the graph into `out` and mirrors its current slice. The slice is the graph's
   * shared one (no deep copy of the value): the mirror and the frames only read it. O(deps) plus the value
   * comparison, which is O(1) when the value object is the one already mirrored.
   */
  private updateNode(graph: Graph, p: string, out: DiffBuilder): void {
    const before = this.nodes.get(p);
    const after = graph.describeNode(p, "shared");
    out.node(p, before, after);
    if (after === undefined) {
      if (before !== undefined) this.deleteNode(p);
    } else if (before === undefined) this.setNode(p, after);
    else {
      this.nodes.set(p, after); // already indexed under its mount
      // A node re-added with other deps: other edges (the deps are the graph's own array while the node lives).
      if (before.deps !== after.deps && !sameDeps(before.deps, after.deps)) this.edges = undefined;
    }
  }

  /** Touched mounts plus every mirrored mount under them; their mirrored nodes go into `nodePaths`. */
  private withMirroredSubtrees(touched: ReadonlySet<string>, nodePaths: Set<string>): Set<string> {
    const mountPaths = new Set<string>();
    const queue = [...touched];
    while (queue.length > 0) {
      const m = queue.pop() as string;
      if (mountPaths.has(m)) continue;
      mountPaths.add(m);
      const entry = this.mounts.get(m);
      if (entry === undefined) continue;
      for (const p of entry.nodes) nodePaths.add(p);
      for (const c of entry.children) queue.push(c);
    }
    return mountPaths;
  }

  private addMount(m: string): void {
    if (this.mounts.has(m)) return;
    this.mounts.set(m, { nodes: new Set(), children: new Set() });
    this.mounts.get(parentPath(m))?.children.add(m);
  }

  private deleteMount(m: string): void {
    this.mounts.delete(m);
    this.mounts.get(parentPath(m))?.children.delete(m);
  }

  private setNode(p: string, slice: SnapshotNodeSlice): void {
    this.nodes.set(p, slice);
    this.mounts.get(parentPath(p))?.nodes.add(p);
    this.order = undefined;
    this.edges = undefined;
  }

  private deleteNode(p: string): void {
    this.nodes.delete(p);
    this.mounts.get(parentPath(p))?.nodes.delete(p);
    this.order = undefined;
    this.edges = undefined;
  }
}
