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

/** How long a held removal has waited (design §3.9): within its hold, past it, or past twice it. */
export type RemovalWait = "waits" | "expired" | "forced";

/**
 * How many of `frames` (in seq order, continuing the graph's state) to apply now (`count`): all of them unless their
 * removals leave a code-built node of `graph` missing at the end. Frames of one wave share `frame_t_ns`, so the
 * count ends at a wave's end. `waitOf(seq)`, asked with a removal's frame seq, says how long it has waited:
 * - "waits": held, the count stops before it unless the frames re-add what it removed.
 * - "expired": given up, applied now as it is when the frames do not re-add what it removed (the node is gone, as
 *   from a baseline folded past it). When they do, it waits for its re-add to be applicable: alone it would lose a
 *   node the writer has, and a younger removal still waiting between it and its re-add must not be applied with
 *   them (its own re-add, read later, could not build the node again).
 * - "forced": it has waited long enough (the follower bounds every frame's wait): applied now with every re-add the
 *   frames hold of what it removed, and with the removals between them, waiting or not, and their re-adds in turn.
 * `removals`: the indexes of the frames that removed code-built nodes (the follower counts their waits).
 * O(frames) when they remove nothing; O(graph + frames × removals) otherwise.
 */
export function framesToApply(
  graph: Graph,
  frames: readonly WALFrame[],
  waitOf: (seq: number) => RemovalWait = () => "waits",
): { count: number; removals: number[] } {
  let codeBuilt: string[] | undefined; // read from the graph only when a frame removes something
  const built = (): string[] => (codeBuilt ??= graph.paths().filter((p) => isCodeBuilt(graph, p)));
  let addedAt: Map<string, number> | undefined; // the last frame adding each path, read when something is removed
  const lastAdd = (): Map<string, number> => (addedAt ??= lastAdds(frames));
  /** Code-built paths removed and not back: the wave (its index in `frames`) that removed them, and if given up. */
  const gone = new Map<string, { wave: number; expired: boolean }>();
  /** Paths the frames made state nodes: removing one again drops nothing replay cannot put back. */
  const stateNow = new Set<string>();
  /** The last wave the count must pass (-1: none): forced, or re-adding what such a wave removed. */
  let mustPass = -1;
  let wave = 0;
  let upTo = 0;
  const removals: number[] = [];
  let i = 0;
  const removed = (path: string): void => {
    const wait = waitOf((frames[i] as WALFrame).frame_seq);
    // gone already: the earlier removal is the one to undo
    if (!gone.has(path)) gone.set(path, { wave, expired: wait !== "waits" });
    if (removals[removals.length - 1] !== i) removals.push(i);
    if (wait === "forced") mustPass = wave;
  };
  /** Every node missing here is given up and not re-added by a later frame: stopping here loses none the writer has. */
  const onlyGivenUp = (): boolean => {
    for (const [path, g] of gone) if (!g.expired || (lastAdd().get(path) ?? -1) > i) return false;
    return true;
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
        if (removedBy !== undefined && removedBy.wave <= mustPass) mustPass = wave;
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
    // A wave end to stop at: nothing missing but what is given up for good, or past every wave the count must pass
    // with nothing removed after those still missing.
    const forcedOk = wave >= mustPass && mustPass >= 0 && allAtOrBefore(gone, mustPass);
    if (gone.size === 0 || forcedOk || onlyGivenUp()) upTo = i + 1;
    wave++;
  }
  return { count: upTo, removals };
}

/** The count of `frames` that ends with the wave holding frame `i` (frames of a wave share `frame_t_ns`). */
export function waveEndAfter(frames: readonly WALFrame[], i: number): number {
  const t = String((frames[i] as WALFrame).frame_t_ns);
  let end = i + 1;
  while (end < frames.length && String((frames[end] as WALFrame).frame_t_ns) === t) end++;
  return end;
}

/** Per path, the index of the last frame adding it. */
function lastAdds(frames: readonly WALFrame[]): Map<string, number> {
  const out = new Map<string, number>();
  frames.forEach((f, i) => {
    const change = graphChangeOf(f);
    if (change?.kind === "graph.add") out.set(change.nodeId, i);
  });
  return out;
}

function allAtOrBefore(gone: ReadonlyMap<string, { wave: number }>, wave: number): boolean {
  for (const g of gone.values()) if (g.wave > wave) return false;
  return true;
}

function isCodeBuilt(graph: Graph, path: string): boolean {
  const kind = graph.kindOf(path);
  return kind !== undefined && kind !== "state";
}
