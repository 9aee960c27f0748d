/**
 * The data every suite writes: one small JSON record per change (the size of a typical node value), and
 * WAL frame bodies shaped like the graph layer's `node.set` frames (docs/protocol.md §6.5, §7.4). Built ahead of
 * the timed loops, so suites time storage work, not fixture building.
 */
import type { WALFrame, WALFrameBody } from "../../src/wal/index.js";

/** A type alias (not an interface) so it is assignable to the graph's JsonValue. */
export type NodeValue = {
  id: number;
  label: string;
  value: { count: number; ratio: number; tags: string[] };
  updatedAt: number;
};

export function makeValue(i: number): NodeValue {
  return { id: i, label: `node-${i}`, value: { count: i, ratio: i / 7, tags: ["alpha", "beta"] }, updatedAt: 1_700_000_000_000 + i };
}

/** `n` distinct values, reused cyclically by the write loops. */
export function makeValues(n: number): NodeValue[] {
  return Array.from({ length: n }, (_, i) => makeValue(i));
}

/** `n` key strings (`k00000`…), so key formatting stays out of the timed loop. */
export function makeKeys(n: number, prefix = "k"): string[] {
  const width = String(n - 1).length;
  return Array.from({ length: n }, (_, i) => prefix + String(i).padStart(width, "0"));
}

// Wall-clock nanoseconds as the graph layer writes them (an integer above 2^53, as in the references).
const T_NS = 1.7e18;

/** A `node.set` WAL frame body (no checksum yet: sealing is the persistence layer's job, docs/design.md §3.14). */
export function makeFrameBody(seq: number, path: string, value: NodeValue): WALFrameBody<unknown> {
  return {
    t: "c",
    lifecycle: "data",
    path,
    change: {
      structure: "graph.value",
      version: 1,
      t_ns: T_NS,
      lifecycle: "data",
      change: { kind: "node.set", path, value },
    },
    frame_seq: seq,
    frame_t_ns: T_NS,
  };
}

/**
 * The same body typed as an unsealed WALFrame: the frame codec computes and embeds the checksum and format
 * version when it encodes (an empty checksum means "compute it").
 */
export function asUnsealed(body: WALFrameBody<unknown>): WALFrame {
  return body as WALFrame;
}
