/**
 * Where a follower's graph has parted from restore's (docs/design.md §3.9). Replay cannot build a code-built node
 * (derived, effect): after a removal the follower applied without its re-add (its hold ran out, or a baseline
 * folded past it), the writer's re-add finds the node gone, while restore at that frame, from a freshly built graph,
 * has it. Only nodes the follower's graph had when it was built count: restore's fresh graph has those and no
 * others, so a node the writer's code added later is missing from restore too and is no divergence.
 * Layer 4 (graph).
 */
import { RestoreError } from "../errors.js";
import type { Graph, GraphPersistSnapshot } from "../graph/types.js";
import { isInside } from "../graph/paths.js";
import type { WALFrame } from "../wal/frame.js";
import { graphChangeOf } from "./apply.js";

/** The code-built paths of a graph as its code built it (read before the follower's initial restore). */
export function codeBuiltPaths(graph: Graph): ReadonlySet<string> {
  const out = new Set<string>();
  for (const path of graph.paths()) {
    const kind = graph.kindOf(path);
    if (kind !== undefined && kind !== "state") out.add(path);
  }
  return out;
}

/**
 * The paths of `codeBuilt` that `baseline` (when loaded) and `frames`, just applied to `graph`, leave as code-built
 * nodes while `graph` lacks them (or has a state node there), each with the seq of the frame (or baseline) that
 * last put it there. O(frames + baseline nodes).
 */
export function missingCodeBuilt(
  graph: Graph,
  codeBuilt: ReadonlySet<string>,
  frames: readonly WALFrame[],
  baseline?: { readonly seq: number; readonly snapshot: GraphPersistSnapshot },
): Map<string, number> {
  const expected = new Map<string, number>();
  if (baseline !== undefined) {
    for (const [path, slice] of Object.entries(baseline.snapshot.nodes)) {
      if (slice.type !== "state" && codeBuilt.has(path)) expected.set(path, baseline.seq);
    }
  }
  for (const frame of frames) {
    const change = graphChangeOf(frame);
    switch (change?.kind) {
      case "graph.add":
        if (change.slice === undefined) break; // replay ignores an add without a slice: nothing changes there
        if (change.slice.type !== "state" && codeBuilt.has(change.nodeId)) {
          expected.set(change.nodeId, frame.frame_seq);
        } else expected.delete(change.nodeId);
        break;
      case "graph.remove":
        expected.delete(change.nodeId);
        break;
      case "graph.unmount":
        for (const path of [...expected.keys()]) if (isInside(path, change.path)) expected.delete(path);
        break;
      default:
        break;
    }
  }
  for (const path of [...expected.keys()]) {
    const kind = graph.kindOf(path);
    if (kind !== undefined && kind !== "state") expected.delete(path);
  }
  return expected;
}

/** The report of `missing` (paths not reported before): RestoreError `follow-diverged`. */
export function divergedError(graphName: string, missing: ReadonlyMap<string, number>, appliedSeq: number): RestoreError {
  const paths = [...missing.keys()].sort();
  const seq = Math.min(...missing.values());
  return new RestoreError(
    "follow-diverged",
    `the follower of graph "${graphName}" diverged at seq ${seq}: it cannot build ${paths.join(", ")} (code-built), ` +
      `which the writer re-added and restore at that seq has; restore afresh or follow with a freshly built graph`,
    { graphName, paths, seq, appliedSeq },
  );
}
