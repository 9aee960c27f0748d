/**
 * Diff → WAL frames (docs/protocol.md §7.4, docs/graph-model.md §2.2) in replay-safe order: mounts (parents first), adds,
 * removes (dependents before their deps), unmounts (children first), then value frames by path (docs/graph-model.md §6
 * item 6). Every sort is an explicit code-point sort: object key order is never trusted (§6 item 22).
 * Layer 4 (graph).
 */
import { sealWalFrame } from "../wal/codec.js";
import { WAL_FORMAT_VERSION, type Lifecycle } from "../wal/frame.js";
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
  const removing = diff.nodesRemoved.length > 0 || diff.subgraphsRemoved.length > 0;
  // A removal that frees a path the diff re-uses (a replaced node, or node <-> mount) must come first; so must the
  // removed dependents of such a node. Otherwise the order is the one above.
  const unmounted = new Set(removing ? diff.subgraphsRemoved : []);
  const early = removing ? earlyRemovals(diff, unmounted) : unmounted;
  const removed = diff.nodesRemoved.filter((r) => !underAny(r.path, unmounted));
  const removals = (first: boolean): void => {
    if (!removing) return;
    for (const r of removalOrder(removed.filter((x) => early.has(x.path) === first))) {
      push(r, { kind: "graph.remove", nodeId: r });
    }
    // An unmount removes its whole subtree, so nodes and nested mounts under an unmounted mount need no frame.
    for (const m of [...sorted(diff.subgraphsRemoved)].reverse()) {
      if (!underAny(m, unmounted) && early.has(m) === first) push(m, { kind: "graph.unmount", path: m });
    }
  };
  removals(true);
  for (const m of sorted(diff.subgraphsAdded)) push(m, { kind: "graph.mount", path: m, subgraphId: m });
  for (const a of byPath(diff.nodesAdded)) push(a.path, { kind: "graph.add", nodeId: a.path, slice: a.slice });
  removals(false);
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
 * Removal paths (node removes and unmounts) that must precede the mounts and adds: a node removed where a node
 * (replacement) or a mount is added, a mount removed where a node is added, and, transitively, removed nodes
 * depending on a node so removed or on a node under a mount so removed (they must go before it). Empty in the
 * common case.
 */
function earlyRemovals(diff: GraphSnapshotDiff, unmounted: ReadonlySet<string>): Set<string> {
  const early = new Set<string>();
  const mountsAdded = new Set(diff.subgraphsAdded);
  const nodesAdded = new Set(diff.nodesAdded.map((a) => a.path));
  for (const r of diff.nodesRemoved) {
    if ((mountsAdded.has(r.path) || nodesAdded.has(r.path)) && !underAny(r.path, unmounted)) early.add(r.path);
  }
  for (const m of diff.subgraphsRemoved) if (nodesAdded.has(m) && !underAny(m, unmounted)) early.add(m);
  if (early.size === 0) return early;
  const needsEarly = (dep: string): boolean =>
    early.has(dep) || [...early].some((e) => unmounted.has(e) && isInside(dep, e));
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of diff.nodesRemoved) {
      // A node under an unmounted mount leaves with that mount's unmount frame, so the unmount moves instead.
      const carrier = topmostUnder(r.path, unmounted) ?? r.path;
      if (!early.has(carrier) && r.deps.some(needsEarly)) {
        early.add(carrier);
        grew = true;
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
 * order, so the result is deterministic. Shared with baseline application.
 */
export function removalOrder(removed: readonly DiffNodeRemoved[]): string[] {
  const paths = sorted(removed.map((r) => r.path));
  const inSet = new Set(paths);
  const dependents = new Map<string, string[]>();
  for (const r of removed) {
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
