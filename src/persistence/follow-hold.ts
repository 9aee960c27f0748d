/**
 * Which of a follower poll's frames may be applied now (docs/design.md §3.9). Replay builds state nodes and mounts,
 * never what only the code builds (derived and effect nodes): a code-built node that a frame applied alone removes
 * is gone from the follower's graph for good, while restore, replaying the removal in one phase with the re-add the
 * writer made later, keeps it (the phase's net result). So a poll applies its frames only up to the last wave end
 * where every code-built node they removed is back; the rest waits for a later poll to show the re-add (the
 * follower bounds the wait). Layer 4 (graph).
 */
import type { WALFrame } from "../wal/frame.js";
import type { Graph } from "../graph/types.js";
import { isInside } from "../graph/paths.js";
import { graphChangeOf } from "./apply.js";

/**
 * How many of `frames` (in seq order, continuing the graph's state) to apply now: all of them unless their
 * removals leave a code-built node of `graph` missing at the end. Frames of one wave share `frame_t_ns`, so the
 * count ends at a wave's end. O(frames) when they remove nothing; O(graph + frames × removals) otherwise.
 */
export function framesToApply(graph: Graph, frames: readonly WALFrame[]): number {
  let codeBuilt: string[] | undefined; // read from the graph only when a frame removes something
  const built = (): string[] => (codeBuilt ??= graph.paths().filter((p) => isCodeBuilt(graph, p)));
  const gone = new Set<string>();
  /** Paths the frames made state nodes: removing one again drops nothing replay cannot put back. */
  const stateNow = new Set<string>();
  let upTo = 0;
  for (let i = 0; i < frames.length; i++) {
    const change = graphChangeOf(frames[i] as WALFrame);
    switch (change?.kind) {
      case "graph.remove":
        if (!stateNow.has(change.nodeId) && isCodeBuilt(graph, change.nodeId)) gone.add(change.nodeId);
        stateNow.delete(change.nodeId);
        break;
      case "graph.unmount":
        for (const p of built()) if (isInside(p, change.path) && !stateNow.has(p)) gone.add(p);
        for (const p of [...stateNow]) if (isInside(p, change.path)) stateNow.delete(p);
        break;
      case "graph.add":
        gone.delete(change.nodeId); // back, as the writer's code built it (or as a state node replay puts there)
        if (change.slice?.type === "state") stateNow.add(change.nodeId);
        break;
      default:
        break;
    }
    const next = frames[i + 1];
    const waveEnd = next === undefined || String(next.frame_t_ns) !== String((frames[i] as WALFrame).frame_t_ns);
    if (waveEnd && gone.size === 0) upTo = i + 1;
  }
  return upTo;
}

function isCodeBuilt(graph: Graph, path: string): boolean {
  const kind = graph.kindOf(path);
  return kind !== undefined && kind !== "state";
}
