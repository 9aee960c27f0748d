/**
 * Which of a follower poll's frames may be applied now (docs/design.md §3.9). Replay builds state nodes and mounts,
 * never what only the code builds (derived and effect nodes): a code-built node that a frame applied alone removes
 * is gone from the follower's graph for good, while restore, replaying the removal in one phase with the re-add the
 * writer made later, keeps it (the phase's net result). So a poll applies its frames only up to the last wave end
 * where every code-built node they removed is back; the rest waits for a later poll to show the re-add. The
 * follower bounds each wave's wait on its own: one wave running out does not apply later waves' removals with
 * it. Layer 4 (graph).
 */
import type { WALFrame } from "../wal/frame.js";
import type { Graph } from "../graph/types.js";
import { isInside } from "../graph/paths.js";
import { graphChangeOf } from "./apply.js";

/**
 * How many of `frames` (in seq order, continuing the graph's state) to apply now (`count`): all of them unless their
 * removals leave a code-built node of `graph` missing at the end. Frames of one wave share `frame_t_ns`, so the
 * count ends at a wave's end. `givenUp(seq)`, asked with a removal's frame seq: it has waited long enough and must
 * be applied now, and with it any re-add of what it removed that the frames hold (applied alone, the removal would
 * lose a node the writer has); removals after those still hold back the rest. A removal the count must pass whose
 * node is not re-added in `frames` is applied as it is. `removals`: the indexes of the frames that removed
 * code-built nodes (the follower counts their waits). O(frames) when they remove nothing; O(graph + frames ×
 * removals) otherwise.
 */
export function framesToApply(
  graph: Graph,
  frames: readonly WALFrame[],
  givenUp: (seq: number) => boolean = () => false,
): { count: number; removals: number[] } {
  let codeBuilt: string[] | undefined; // read from the graph only when a frame removes something
  const built = (): string[] => (codeBuilt ??= graph.paths().filter((p) => isCodeBuilt(graph, p)));
  /** Code-built paths removed and not back, with the wave (its index in `frames`) that removed them. */
  const gone = new Map<string, number>();
  /** Paths the frames made state nodes: removing one again drops nothing replay cannot put back. */
  const stateNow = new Set<string>();
  /** The last wave the count must pass (-1: none): given up, or re-adding what such a wave removed. */
  let mustPass = -1;
  let wave = 0;
  let upTo = 0;
  const removals: number[] = [];
  let i = 0;
  const removed = (path: string): void => {
    if (!gone.has(path)) gone.set(path, wave); // gone already: the earlier removal is the one to undo
    if (removals[removals.length - 1] !== i) removals.push(i);
    if (givenUp((frames[i] as WALFrame).frame_seq)) mustPass = wave;
  };
  for (; i < frames.length; i++) {
    const change = graphChangeOf(frames[i] as WALFrame);
    switch (change?.kind) {
      case "graph.remove":
        if (!stateNow.has(change.nodeId) && isCodeBuilt(graph, change.nodeId)) removed(change.nodeId);
        stateNow.delete(change.nodeId);
        break;
      case "graph.unmount":
        for (const p of built()) if (isInside(p, change.path) && !stateNow.has(p)) removed(p);
        for (const p of [...stateNow]) if (isInside(p, change.path)) stateNow.delete(p);
        break;
      case "graph.add": {
        // Back, as the writer's code built it (or as a state node replay puts there). A removal the count must
        // pass is applied with this re-add: alone it would drop the node for good.
        const removedBy = gone.get(change.nodeId);
        if (removedBy !== undefined && removedBy <= mustPass) mustPass = wave;
        gone.delete(change.nodeId);
        if (change.slice?.type === "state") stateNow.add(change.nodeId);
        break;
      }
      default:
        break;
    }
    const next = frames[i + 1];
    const waveEnd = next === undefined || String(next.frame_t_ns) !== String((frames[i] as WALFrame).frame_t_ns);
    if (!waveEnd) continue;
    // A wave end to stop at: past every wave the count must pass, and nothing removed after those still missing.
    if (wave >= mustPass && (gone.size === 0 || (mustPass >= 0 && allAtOrBefore(gone, mustPass)))) upTo = i + 1;
    wave++;
  }
  return { count: upTo, removals };
}

function allAtOrBefore(gone: ReadonlyMap<string, number>, wave: number): boolean {
  for (const w of gone.values()) if (w > wave) return false;
  return true;
}

function isCodeBuilt(graph: Graph, path: string): boolean {
  const kind = graph.kindOf(path);
  return kind !== undefined && kind !== "state";
}
