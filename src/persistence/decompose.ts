/**
 * Diff → WAL frames (docs/protocol.md §7.4, docs/graph-model.md §2.2) in replay-safe order: mounts (parents first), adds,
 * then node removes and unmounts together in dependency order (dependents first; a removal freeing a path the diff
 * re-uses goes before the mounts), then value frames by path (docs/graph-model.md §6 item 6). Every sort is an
 * explicit code-point sort: object key order is never trusted (§6 item 22).
 * Layer 4 (graph).
 */
import { refuseUnknownKeys } from "../base/options.js";
import { sealWalFrame } from "../wal/codec.js";
import { WAL_FORMAT_VERSION, type Lifecycle } from "../wal/frame.js";
import type { ValueFrameParts } from "../wal/frame-columns.js";
import { compareCodePoints } from "../base/code-points.js";
import { isInside, parentPath } from "../graph/paths.js";
import type {
  DecomposeOptions,
  DiffNodeRemoved,
  DiffValueChange,
  GraphChange,
  GraphDataChange,
  GraphSnapshotDiff,
  GraphSpecChange,
  GraphWALFrame,
} from "./storage-types.js";
import { SNAPSHOT_VERSION } from "../graph/types.js";
import { isCheckedJson } from "../graph/json-utils.js";

export const SPEC_STRUCTURE = "graph.spec";
export const VALUE_STRUCTURE = "graph.value";

/**
 * Frames for `diff`, numbered `baseSeq + 1 …`; all share `timestampNs` as `frame_t_ns` and `change.t_ns`.
 * Sealed (checksum embedded) unless `seal: false`. RangeError for a bad timestamp or base seq.
 */
export function decomposeDiffToFrames(diff: GraphSnapshotDiff, opts: DecomposeOptions): GraphWALFrame[] {
  if (typeof opts !== "object" || opts === null) throw new TypeError("decomposeDiffToFrames: opts must be an object");
  refuseUnknownKeys(opts, ["timestampNs", "baseSeq", "seal"], "decomposeDiffToFrames");
  const { timestampNs, baseSeq } = opts;
  if (!Number.isInteger(timestampNs) || timestampNs < 0) {
    throw new RangeError(`decomposeDiffToFrames: timestampNs must be a non-negative integer, got ${String(timestampNs)}`);
  }
  if (!Number.isSafeInteger(baseSeq) || baseSeq < 0) {
    throw new RangeError(`decomposeDiffToFrames: baseSeq must be a non-negative safe integer, got ${String(baseSeq)}`);
  }
  return diffFrames(diff, timestampNs, baseSeq, opts.seal ?? true);
}

/**
 * `decomposeDiffToFrames` for callers whose arguments are valid by construction (attach, once per wave and
 * pair): no options object, no checks. With `proven`, an unsealed value frame whose value and path are already
 * checked (graph/json-utils.ts isCheckedJson) is built frozen, frame, envelope and payload: a frozen frame from
 * here passes the frame codec's value rule as it is, for good (tier/value-check.ts vouchWalFrame).
 */
export function diffFrames(
  diff: GraphSnapshotDiff,
  timestampNs: number,
  baseSeq: number,
  seal: boolean,
  proven = false,
): GraphWALFrame[] {
  const values = byPath(diff.valuesChanged);
  const topology =
    diff.nodesAdded.length > 0 ||
    diff.nodesRemoved.length > 0 ||
    diff.subgraphsAdded.length > 0 ||
    diff.subgraphsRemoved.length > 0;
  // One value changed, nothing else (a paced write): a literal, not an empty array grown by a push (§3.29).
  if (!topology && values.length === 1) return [valueFrame(values[0] as DiffValueChange, timestampNs, baseSeq + 1, seal, proven)];
  const frames: GraphWALFrame[] = [];
  if (topology) topologyFrames(diff, timestampNs, baseSeq, seal, frames);
  // Value frames come last whatever the topology.
  for (let i = 0; i < values.length; i++) {
    frames.push(valueFrame(values[i] as DiffValueChange, timestampNs, baseSeq + frames.length + 1, seal, proven));
  }
  return frames;
}

/**
 * For attach's one-value wave (design §3.48): the parts of the one frame `diffFrames(diff, timestampNs, baseSeq,
 * false, true)` would build, written into `parts` (reused by the caller), and true; false, writing nothing, unless
 * that frame is a lone `node.set` frame it would build frozen (the diff holds one value change and nothing else, its
 * path and value checked: isCheckedJson), i.e. a frame its caller may vouch for.
 */
export function oneValueFrame(diff: GraphSnapshotDiff, timestampNs: number, baseSeq: number, parts: ValueFrameParts): boolean {
  if (
    diff.valuesChanged.length !== 1 ||
    diff.nodesAdded.length > 0 ||
    diff.nodesRemoved.length > 0 ||
    diff.subgraphsAdded.length > 0 ||
    diff.subgraphsRemoved.length > 0
  ) {
    return false;
  }
  const v = diff.valuesChanged[0] as DiffValueChange;
  if (v.value === undefined || !isCheckedJson(v.path) || !isCheckedJson(v.value)) return false;
  parts.lifecycle = "data";
  parts.structure = VALUE_STRUCTURE;
  parts.version = SNAPSHOT_VERSION;
  parts.kind = "node.set";
  parts.path = v.path;
  parts.value = v.value;
  parts.frameSeq = baseSeq + 1;
  parts.tNs = timestampNs;
  parts.checksum = "";
  parts.formatVersion = WAL_FORMAT_VERSION;
  return true;
}

/** The frame of one value change at `seq`; frozen when `proven` finds its parts checked (see diffFrames). */
function valueFrame(v: DiffValueChange, timestampNs: number, seq: number, seal: boolean, proven: boolean): GraphWALFrame {
  const change: GraphDataChange =
    v.value === undefined ? { kind: "node.invalidate", path: v.path } : { kind: "node.set", path: v.path, value: v.value };
  const frame = walFrame("data", v.path, change, timestampNs, seq, seal);
  if (proven && !seal && isCheckedJson(v.path) && (v.value === undefined || isCheckedJson(v.value))) {
    Object.freeze(change);
    Object.freeze(frame.change);
    Object.freeze(frame);
  }
  return frame;
}

/**
 * One frame, built in its final shape (the eight fields in protocol order): `checksum: ""` is left for a tier
 * whose codec seals where it encodes; otherwise the frame is sealed here (inline tiers).
 */
function walFrame(
  lifecycle: Lifecycle,
  path: string,
  change: GraphChange,
  timestampNs: number,
  seq: number,
  seal: boolean,
): GraphWALFrame {
  const frame: GraphWALFrame = {
    t: "c",
    lifecycle,
    path,
    change: {
      structure: lifecycle === "spec" ? SPEC_STRUCTURE : VALUE_STRUCTURE,
      version: SNAPSHOT_VERSION,
      t_ns: timestampNs,
      lifecycle,
      change,
    },
    frame_seq: seq,
    frame_t_ns: timestampNs,
    checksum: "",
    format_version: WAL_FORMAT_VERSION,
  };
  return seal ? sealWalFrame(frame) : frame;
}

/** Appends the spec frames of `diff` (everything but value changes) to `frames`, in replay-safe order. */
function topologyFrames(
  diff: GraphSnapshotDiff,
  timestampNs: number,
  baseSeq: number,
  seal: boolean,
  frames: GraphWALFrame[],
): void {
  const push = (path: string, change: GraphSpecChange): void => {
    frames.push(walFrame("spec", path, change, timestampNs, baseSeq + frames.length + 1, seal));
  };
  const plan = diff.nodesRemoved.length > 0 || diff.subgraphsRemoved.length > 0 ? removalPlan(diff) : undefined;
  const removals = (first: boolean): void => {
    if (plan === undefined) return;
    const roots = plan.roots.filter((p) => plan.early.has(p) === first);
    for (const p of removalOrder(plan.items, roots)) {
      push(p, plan.unmounts.has(p) ? { kind: "graph.unmount", path: p } : { kind: "graph.remove", nodeId: p });
    }
  };
  removals(true);
  for (const m of sorted(diff.subgraphsAdded)) push(m, { kind: "graph.mount", path: m, subgraphId: m });
  for (const a of byPath(diff.nodesAdded)) push(a.path, { kind: "graph.add", nodeId: a.path, slice: a.slice });
  removals(false);
}

/**
 * The removals of a diff as one dependency order: node removes and unmounts are "items" (an unmount stands for
 * its whole subtree), and an item comes before every item holding a node it depends on (the graph refuses to
 * remove a node with dependents, or to unmount a subtree a node outside depends on). Dependencies that cross an
 * unmounted mount both ways make a cycle of items (x outside depends on u::y, u::z depends on x; or two unmounts
 * each holding a dependent of the other's nodes): a node under an unmounted mount that depends on an item in a
 * cycle with that mount gets a remove frame of its own, and so do its removed dependents under the same mount
 * (they must go before it). That breaks every cycle (an edge out of an unmount stays only where it was on none),
 * so the order always exists; an unmount that is in no cycle carries all its nodes (one frame). `early` holds the
 * items that must precede the mounts and adds (see earlyItems). `roots` is the tie-break: node removes by path,
 * then unmounts in reverse path order.
 */
interface RemovalPlan {
  readonly items: readonly DiffNodeRemoved[];
  readonly roots: readonly string[];
  readonly unmounts: ReadonlySet<string>;
  readonly early: ReadonlySet<string>;
}

function removalPlan(diff: GraphSnapshotDiff): RemovalPlan {
  const unmounted = new Set(diff.subgraphsRemoved);
  const topUnmounts = sorted(diff.subgraphsRemoved.filter((m) => !underAny(m, unmounted)));
  const unmounts = new Set(topUnmounts);
  let items: DiffNodeRemoved[];
  if (unmounted.size === 0) {
    items = diff.nodesRemoved as DiffNodeRemoved[]; // the common case: item deps are node deps
  } else {
    // Carrier: the top unmounted mount a removed node leaves with, unless it needs a frame of its own. Every node
    // under an unmounted mount is removed, so only the others are kept in a set (an unmount can hold many nodes).
    const carrierOf = (p: string): string | undefined => topmostUnder(p, unmounted);
    const removed = diff.nodesRemoved;
    const tops = removed.map((r) => carrierOf(r.path));
    const outside = new Set<string>();
    for (let i = 0; i < removed.length; i++) if (tops[i] === undefined) outside.add((removed[i] as DiffNodeRemoved).path);
    const isRemoved = (p: string): boolean => outside.has(p) || carrierOf(p) !== undefined;
    // Items with every node under an unmount carried by it, and their "removed before" edges.
    const edges = new Map<string, string[]>();
    const into = new Set<string>(); // unmounts some other item must go before
    for (let i = 0; i < removed.length; i++) {
      const r = removed[i] as DiffNodeRemoved;
      const own = tops[i];
      const from = own ?? r.path;
      for (const d of r.deps) {
        if ((own !== undefined && isInside(d, own)) || !isRemoved(d)) continue; // same unmount, or stays
        const to = carrierOf(d) ?? d;
        if (to === from) continue;
        const out = edges.get(from);
        if (out === undefined) edges.set(from, [to]);
        else if (out[out.length - 1] !== to) out.push(to);
        if (unmounts.has(to)) into.add(to);
      }
    }
    // Only an unmount with edges both in and out can be on a cycle; usually none is, and the items are final.
    const explicit = topUnmounts.some((m) => into.has(m) && edges.has(m))
      ? takenOut(removed, tops, carrierOf, isRemoved, edges, [...outside, ...topUnmounts])
      : new Set<string>();
    if (explicit.size === 0) {
      items = [];
      for (const r of removed) if (outside.has(r.path)) items.push({ path: r.path, deps: edges.get(r.path) ?? [] });
      for (const m of topUnmounts) items.push({ path: m, deps: [...new Set(edges.get(m))] });
    } else {
      const itemOf = (p: string): string => (explicit.has(p) ? p : (carrierOf(p) ?? p));
      const deps = new Map<string, Set<string>>();
      for (const m of topUnmounts) deps.set(m, new Set());
      for (let i = 0; i < removed.length; i++) {
        const r = removed[i] as DiffNodeRemoved;
        const item = itemOf(r.path);
        let set = deps.get(item);
        if (set === undefined) deps.set(item, (set = new Set()));
        for (const d of r.deps) if (isRemoved(d)) set.add(itemOf(d));
        if (explicit.has(r.path)) set.add(tops[i] as string); // its frame comes before its unmount's
        set.delete(item);
      }
      items = [...deps].map(([path, set]) => ({ path, deps: [...set] }));
    }
  }
  const roots = [...sorted(items.filter((i) => !unmounts.has(i.path)).map((i) => i.path)), ...[...topUnmounts].reverse()];
  return { items, roots, unmounts, early: earlyItems(diff, items, unmounts) };
}

/**
 * The carried nodes that need a frame of their own: those depending on an item in one cycle with their unmount
 * (strongly connected components of the item graph `edges`), and their removed dependents under the same unmount.
 */
function takenOut(
  removed: readonly DiffNodeRemoved[],
  tops: ReadonlyArray<string | undefined>,
  carrierOf: (path: string) => string | undefined,
  isRemoved: (path: string) => boolean,
  edges: ReadonlyMap<string, readonly string[]>,
  itemPaths: readonly string[],
): Set<string> {
  const component = components(itemPaths, edges);
  const explicit = new Set<string>();
  const queue: string[] = [];
  const dependents = new Map<string, string[]>();
  for (let i = 0; i < removed.length; i++) {
    const r = removed[i] as DiffNodeRemoved;
    const own = tops[i];
    let out = false;
    for (const d of r.deps) {
      if (!isRemoved(d)) continue;
      const list = dependents.get(d);
      if (list === undefined) dependents.set(d, [r.path]);
      else list.push(r.path);
      const to = carrierOf(d) ?? d;
      if (own !== undefined && to !== own && component.get(to) === component.get(own)) out = true;
    }
    if (out) {
      explicit.add(r.path);
      queue.push(r.path);
    }
  }
  while (queue.length > 0) {
    const e = queue.pop() as string;
    const own = carrierOf(e);
    for (const q of dependents.get(e) ?? []) {
      if (!explicit.has(q) && carrierOf(q) === own) {
        explicit.add(q);
        queue.push(q);
      }
    }
  }
  return explicit;
}

/**
 * Strongly connected components of a directed graph (Tarjan, iterative: chains can be long), as a component
 * number per vertex. Every edge target must be among `vertices`. O(vertices + edges).
 */
function components(vertices: readonly string[], edges: ReadonlyMap<string, readonly string[]>): Map<string, number> {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const component = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  let next = 0;
  let count = 0;
  const open = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
  };
  for (const root of vertices) {
    if (index.has(root)) continue;
    open(root);
    const work: Array<{ v: string; i: number }> = [{ v: root, i: 0 }];
    while (work.length > 0) {
      const top = work[work.length - 1] as { v: string; i: number };
      const out = edges.get(top.v);
      if (out !== undefined && top.i < out.length) {
        const w = out[top.i++] as string;
        if (!index.has(w)) {
          open(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) low.set(top.v, Math.min(low.get(top.v) as number, index.get(w) as number));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent !== undefined) low.set(parent.v, Math.min(low.get(parent.v) as number, low.get(top.v) as number));
      if (low.get(top.v) === index.get(top.v)) {
        for (let w = stack.pop(); w !== undefined; w = w === top.v ? undefined : stack.pop()) {
          onStack.delete(w);
          component.set(w, count);
        }
        count++;
      }
    }
  }
  return component;
}

/** True when a strict ancestor mount of `path` is in `mounts`. O(depth). */
function underAny(path: string, mounts: ReadonlySet<string>): boolean {
  if (mounts.size === 0) return false;
  for (let p = parentPath(path); p !== ""; p = parentPath(p)) if (mounts.has(p)) return true;
  return false;
}

/** Code-point sorted copy; a mount path sorts before the paths inside it (a prefix sorts first). */
function sorted(paths: readonly string[]): readonly string[] {
  return paths.length < 2 ? paths : [...paths].sort(compareCodePoints);
}

/** Entries sorted by `path` in code-point order: the input itself when already sorted, else a sorted copy. */
function byPath<T extends { readonly path: string }>(items: readonly T[]): readonly T[] {
  for (let i = 1; i < items.length; i++) {
    if (compareCodePoints((items[i - 1] as T).path, (items[i] as T).path) > 0) {
      return [...items].sort((x, y) => compareCodePoints(x.path, y.path));
    }
  }
  return items;
}

/**
 * Removal items that must precede the mounts and adds: a node removed where a node (replacement) or a mount is
 * added, a mount removed where a node is added, and, transitively, every item that must come before one of
 * those (it depends on it). Empty in the common case. O(items + deps).
 */
function earlyItems(diff: GraphSnapshotDiff, items: readonly DiffNodeRemoved[], unmounts: ReadonlySet<string>): Set<string> {
  const early = new Set<string>();
  const mountsAdded = new Set(diff.subgraphsAdded);
  const nodesAdded = new Set(diff.nodesAdded.map((a) => a.path));
  for (const i of items) {
    if (nodesAdded.has(i.path) || (!unmounts.has(i.path) && mountsAdded.has(i.path))) early.add(i.path);
  }
  if (early.size === 0) return early;
  const dependents = new Map<string, string[]>();
  for (const i of items) {
    for (const d of i.deps) {
      const list = dependents.get(d);
      if (list === undefined) dependents.set(d, [i.path]);
      else list.push(i.path);
    }
  }
  const queue = [...early];
  while (queue.length > 0) {
    for (const q of dependents.get(queue.pop() as string) ?? []) {
      if (!early.has(q)) {
        early.add(q);
        queue.push(q);
      }
    }
  }
  return early;
}

/** The highest strict ancestor mount of `path` that is in `mounts`, if any. O(depth). */
function topmostUnder(path: string, mounts: ReadonlySet<string>): string | undefined {
  let found: string | undefined;
  for (let p = parentPath(path); p !== ""; p = parentPath(p)) if (mounts.has(p)) found = p;
  return found;
}

/**
 * Removed node paths ordered so that a node comes after every removed node that depends on it (the graph refuses
 * to remove a node that still has dependents). Depth-first post-order over "removed dependents", roots in path
 * order (or in `roots` order: paths not among `removed` are skipped, and only paths in `roots` are output), so
 * the result is deterministic. Shared with baseline application.
 */
export function removalOrder(removed: readonly DiffNodeRemoved[], roots?: readonly string[]): string[] {
  const paths = roots ?? sorted(removed.map((r) => r.path));
  const inSet = new Set(paths);
  const dependents = new Map<string, string[]>();
  for (const r of removed) {
    if (!inSet.has(r.path)) continue;
    for (const d of r.deps) {
      if (!inSet.has(d)) continue;
      const list = dependents.get(d);
      if (list === undefined) dependents.set(d, [r.path]);
      else list.push(r.path);
    }
  }
  for (const list of dependents.values()) list.sort(compareCodePoints);
  const out: string[] = [];
  const done = new Set<string>();
  // Iterative DFS: deps chains can be long enough to overflow the stack with recursion.
  for (const root of paths) {
    if (done.has(root)) continue;
    done.add(root);
    const stack: Array<{ path: string; next: number }> = [{ path: root, next: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as { path: string; next: number };
      const deps = dependents.get(top.path);
      if (deps !== undefined && top.next < deps.length) {
        const q = deps[top.next++] as string;
        if (!done.has(q)) {
          done.add(q);
          stack.push({ path: q, next: 0 });
        }
        continue;
      }
      stack.pop();
      out.push(top.path);
    }
  }
  return out;
}
