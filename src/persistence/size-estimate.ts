/**
 * Stored sizes of frames and baselines, estimated without encoding (docs/design.md §3.18): attach weighs the WAL
 * written since the last baseline against that baseline's size to decide when the next one is due. The figures
 * approximate the JSON the codecs write (within a few tens of bytes per frame or node); only their ratio
 * matters, so ASCII is assumed and escapes are ignored. Cost: a walk of the values, O(size of the change).
 * Layer 4 (graph).
 */
import type { GraphSnapshotDiff } from "./storage-types.js";
import type { GraphPersistSnapshot, JsonValue, SnapshotNodeSlice } from "../graph/types.js";

/** A sealed frame's envelope: field names, lifecycle, structure, timestamps, seq, checksum, format version. */
const FRAME_BYTES = 320;
/** A slice's field names, type and status, and its key's quotes in `nodes`. */
const NODE_BYTES = 70;
/** An edge object's field names and punctuation. */
const EDGE_BYTES = 20;
/** The baseline record around the snapshot. */
const RECORD_BYTES = 160;

/** Approximate length of `value` as JSON. */
export function jsonSize(value: JsonValue | undefined): number {
  switch (typeof value) {
    case "string":
      return value.length + 2;
    case "number":
      return String(value).length;
    case "bigint": // a wide integer (decoded losslessly from another implementation's frames) is written as digits
      return String(value).length;
    case "boolean":
      return value ? 4 : 5;
    case "undefined":
      return 0;
  }
  if (value === null) return 4;
  let n = 2;
  if (Array.isArray(value)) {
    for (const v of value) n += jsonSize(v) + 1;
    return n;
  }
  for (const k in value) n += k.length + 4 + jsonSize((value as Record<string, JsonValue>)[k]);
  return n;
}

/** Approximate bytes of one node of a baseline: its slice under its path key. */
export function sliceSize(path: string, slice: SnapshotNodeSlice): number {
  let n = NODE_BYTES + path.length + jsonSize(slice.value) + jsonSize(slice.meta);
  for (const d of slice.deps) n += d.length + 3;
  return n;
}

/** Approximate bytes of the frames `diff` decomposes into (every frame carries its path twice). */
export function diffBytes(diff: GraphSnapshotDiff): number {
  let n = 0;
  for (const v of diff.valuesChanged) n += FRAME_BYTES + 2 * v.path.length + jsonSize(v.value);
  for (const a of diff.nodesAdded) n += FRAME_BYTES + a.path.length + sliceSize(a.path, a.slice);
  for (const r of diff.nodesRemoved) n += FRAME_BYTES + 2 * r.path.length;
  for (const m of diff.subgraphsAdded) n += FRAME_BYTES + 3 * m.length;
  for (const m of diff.subgraphsRemoved) n += FRAME_BYTES + 2 * m.length;
  return n;
}

/** Approximate bytes of a baseline record holding `snapshot`. O(size of the snapshot). */
export function snapshotBytes(snapshot: GraphPersistSnapshot): number {
  let n = 0;
  for (const p in snapshot.nodes) n += sliceSize(p, snapshot.nodes[p] as SnapshotNodeSlice);
  return n + snapshotFrameBytes(snapshot.name, snapshot.edges, snapshot.subgraphs);
}

/**
 * `snapshotBytes` less its nodes: the record, the edges and the mounts. A caller that walks the slices anyway (the
 * mirror building a baseline) adds their `sliceSize`s itself and gets the same figure.
 */
export function snapshotFrameBytes(
  name: string,
  edges: ReadonlyArray<{ readonly from: string; readonly to: string }>,
  subgraphs: readonly string[],
): number {
  let n = RECORD_BYTES + name.length;
  for (const e of edges) n += EDGE_BYTES + e.from.length + e.to.length;
  for (const m of subgraphs) n += m.length + 3;
  return n;
}
