/**
 * Pure WAL fold (docs/design.md §3.10): baseline + frames → the snapshot the live graph had at the last frame, with no
 * live graph (background compaction runs it in the store's worker). Frames apply in `frame_seq` order, which is
 * what restore's spec → data phases plus the "later frame wins" rule amount to. Unlike restore, `node.set`
 * applies to every node, derived ones included: frames carry their values, so the fold is exact.
 * Layer 4 (graph).
 */
import { refuseUnknownKeys } from "../base/options.js";
import { RestoreError } from "../errors.js";
import { verifyWalFrameChecksum } from "../wal/checksum.js";
import type { WALFrame } from "../wal/frame.js";
import { graphWalPrefix, walFrameKey } from "../wal/keys.js";
import { graphChangeOf, isSlice } from "./apply.js";
import { sliceValue, snapshotOfSlices } from "./diff.js";
import { cloneJson } from "../graph/json-utils.js";
import { isInside, parentPath, splitPath } from "../graph/paths.js";
import type { FoldOptions, FoldResult, GraphChange, GraphCheckpointRecord, TornWriteInfo } from "./storage-types.js";
import {
  baselineError,
  checkBaseline,
  FrameChain,
  gapError,
  readStoredGraph,
  tornWriteError,
  type FrameRead,
  type ReadStoredGraphOptions,
  type StoredGraphSource,
  type StoredGraphView,
} from "./stored-graph.js";
import type { GraphPersistSnapshot, SnapshotNodeSlice } from "../graph/types.js";

/**
 * Folds `frames` (any order; those at or below `baseline.seq` or above `opts.targetSeq` are left out) into
 * `baseline`, by the stored-graph reader's rules: the frames must continue the baseline without a hole
 * (RestoreError `wal-gap`); torn frames: the last frame above the baseline is skipped, an earlier one throws
 * RestoreError `torn-write-mid-stream` (unless `onTornWrite` decides otherwise). A baseline of a format this
 * build does not read is RestoreError `codec-mismatch`. Inputs are not modified.
 */
export function foldWal(baseline: GraphCheckpointRecord, frames: readonly WALFrame[], opts: FoldOptions = {}): FoldResult {
  const snap = checkFoldBaseline(baseline);
  if (!Array.isArray(frames)) throw new TypeError("foldWal: frames must be an array of WAL frames");
  if (typeof opts !== "object" || opts === null) throw new TypeError("foldWal: opts must be an object");
  refuseUnknownKeys(opts, ["targetSeq", "verify", "onTornWrite"], "foldWal");
  const targetSeq = opts.targetSeq ?? Number.POSITIVE_INFINITY;
  if (targetSeq !== Number.POSITIVE_INFINITY && !(Number.isSafeInteger(targetSeq) && targetSeq >= 0)) {
    throw new RangeError(`foldWal: opts.targetSeq must be a non-negative integer, got ${String(targetSeq)}`);
  }
  if (targetSeq < baseline.seq) {
    throw new RestoreError("phase-failed", `foldWal: targetSeq ${targetSeq} is below the baseline seq ${baseline.seq}`, {
      targetSeq,
      baselineSeq: baseline.seq,
    });
  }
  const prefix = graphWalPrefix(baseline.name);
  const verify = opts.verify ?? true;
  const above = frames.filter((f) => f.frame_seq > baseline.seq).sort((a, b) => a.frame_seq - b.frame_seq);
  const tailSeq = above.length > 0 ? (above[above.length - 1] as WALFrame).frame_seq : -1;
  const chain = new FrameChain(baseline.seq, tailSeq, verify, opts.onTornWrite);
  const folder = new WalFolder(baseline, snap);
  let skipped = 0;
  for (const frame of above) {
    if (frame.frame_seq > targetSeq) break;
    const gap = chain.gapBefore(frame.frame_seq);
    if (gap !== undefined) throw gapError(baseline.name, baseline.seq, gap);
    const key = walFrameKey(prefix, frame.frame_seq);
    const read: FrameRead = { key, seq: frame.frame_seq, ok: true, frame, checksumOk: !verify || verifyWalFrameChecksum(frame) };
    const screened = chain.screen(read);
    if ("frame" in screened) folder.add(screened.frame);
    else if (screened.decision === "abort") throw tornWriteError(screened.torn);
    else skipped++;
  }
  return { ...folder.result(), skippedFrames: skipped };
}

/** A frame's change of a node's value. */
export type NodeValueChange = Extract<GraphChange, { kind: "node.set" | "node.invalidate" }>;

export interface StoredFold {
  readonly view: StoredGraphView;
  readonly fold: FoldResult;
  /** Torn frames the policy skipped. */
  readonly skipped: readonly TornWriteInfo[];
}

/**
 * Folds the stored graph `name` as the stored-graph reader reads it (restore's rules, one point in time), one
 * frame at a time, up to `opts.targetSeq`. `onFrame` sees every frame read (progress).
 */
export async function foldStoredGraph(
  source: StoredGraphSource,
  name: string,
  opts: ReadStoredGraphOptions & {
    onStart?(view: StoredGraphView): void;
    onFrame?(read: FrameRead): void;
    /** A good frame setting or invalidating a node the folded graph does not have at its seq (it changed nothing). */
    onNoNode?(read: FrameRead, change: NodeValueChange): void;
  } = {},
): Promise<StoredFold> {
  let folder: WalFolder | undefined;
  let skipped: TornWriteInfo[] = [];
  const view = await readStoredGraph(source, name, opts, {
    start(v) {
      folder = new WalFolder(v.baseline, v.baseline.snapshot);
      skipped = [];
      opts.onStart?.(v);
    },
    frame(frame, read) {
      folder!.add(frame);
      const missing = opts.onNoNode === undefined ? undefined : folder!.noNodeFor(frame);
      if (missing !== undefined) opts.onNoNode!(read, missing);
      opts.onFrame?.(read);
    },
    skipped(info, read) {
      skipped.push(info);
      opts.onFrame?.(read);
    },
  });
  return { view, fold: { ...folder!.result(), skippedFrames: skipped.length }, skipped };
}

/**
 * The fold one frame at a time, for callers that stream a WAL too large to hold (compaction): memory is the
 * graph's, not the WAL's. Frames must be good (screened) and come in ascending seq order above the baseline.
 */
export class WalFolder {
  private readonly state: FoldState;
  private readonly name: string;
  private seq: number;
  private applied = 0;
  private ignored = 0;

  constructor(baseline: GraphCheckpointRecord, snap: GraphPersistSnapshot = checkFoldBaseline(baseline)) {
    this.state = new FoldState(snap);
    this.name = snap.name;
    this.seq = baseline.seq;
  }

  /**
   * Folds one frame. Throws RestoreError `phase-failed` (frame_seq, the graph's words as `cause`) for an add of a
   * state node or a mount the live graph refuses outright, as restore's replay fails at that frame: the fold took
   * it as a no-op, so a compaction silently made a store restore refuses restorable without the frame.
   */
  add(frame: WALFrame): void {
    const change = graphChangeOf(frame);
    let applied: boolean;
    try {
      applied = change !== undefined && this.state.apply(change);
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
      throw new RestoreError("phase-failed", `graph "${this.name}": frame_seq=${frame.frame_seq} cannot be applied: ${err.message}`, {
        graph: this.name,
        lifecycle: frame.lifecycle,
        frame_seq: frame.frame_seq,
        cause: err.message,
      }, err);
    }
    if (applied) this.applied++;
    else this.ignored++;
    this.seq = frame.frame_seq;
  }

  /**
   * The change of a set or invalidate `frame` (just added) whose node the folded graph does not have: the baseline
   * lacks it and no earlier frame added it, or one removed it. The fold ignored the frame, and so does restore.
   */
  noNodeFor(frame: WALFrame): NodeValueChange | undefined {
    const change = graphChangeOf(frame);
    if (change?.kind !== "node.set" && change?.kind !== "node.invalidate") return undefined;
    return this.state.hasNode(change.path) ? undefined : change;
  }

  /** The folded baseline so far (the last added frame's seq; the baseline's when none was added). */
  result(): Omit<FoldResult, "skippedFrames"> {
    return { snapshot: this.state.build(this.name), seq: this.seq, appliedFrames: this.applied, ignoredFrames: this.ignored };
  }
}

/** A slice in `Graph.snapshot()` form (field order, exactly one of value / sentinel), deep-copied. */
function copySlice(slice: SnapshotNodeSlice): SnapshotNodeSlice {
  const out: SnapshotNodeSlice = {
    type: slice.type,
    deps: [...slice.deps],
    status: slice.status,
    meta: cloneJson(slice.meta),
  };
  const value = sliceValue(slice);
  if (value === undefined) out.sentinel = true;
  else out.value = cloneJson(value);
  return out;
}

/** The baseline's snapshot when it is one the stored-graph reader would accept (its name is not checked here). */
function checkFoldBaseline(baseline: GraphCheckpointRecord): GraphPersistSnapshot {
  const check = checkBaseline(baseline, undefined);
  if (check.ok) return check.record.snapshot;
  if (check.problem === "unknown-version") throw baselineError(String(baseline.name), check);
  throw new TypeError(`foldWal: baseline must be a mode "full" value GraphCheckpointRecord: ${check.reason}`);
}

/**
 * Mutable working copy: nodes by path, mounts as a set. Slices are replaced, never mutated, so unchanged ones are
 * shared with the baseline and changed ones are fresh copies.
 */
class FoldState {
  private readonly nodes = new Map<string, SnapshotNodeSlice>();
  private readonly mounts: Set<string>;

  constructor(snap: GraphPersistSnapshot) {
    for (const p of Object.keys(snap.nodes)) {
      const slice = snap.nodes[p];
      if (isSlice(slice)) this.nodes.set(p, slice);
    }
    this.mounts = new Set(snap.subgraphs);
  }

  hasNode(path: string): boolean {
    return this.nodes.has(path);
  }

  /** Same effects as the live graph's mutators; false when the change is a no-op here (counted as ignored). */
  apply(change: GraphChange): boolean {
    switch (change.kind) {
      case "graph.add":
        if (change.slice === undefined) return false;
        // A state node is added by restore (addState, or put in place of a node there): refused as the graph refuses
        // it. Other slices are the code's: restore's replay leaves them, and so does the fold where none can be.
        if (change.slice.type === "state") this.assertPlace(change.nodeId, "add state", false);
        else if (!this.parentExists(change.nodeId) || this.mounts.has(change.nodeId)) return false;
        this.nodes.set(change.nodeId, copySlice(change.slice));
        return true;
      case "graph.remove":
        return this.nodes.delete(change.nodeId);
      case "graph.mount":
        if (this.mounts.has(change.path)) return false;
        this.assertPlace(change.path, "mount", true);
        this.mounts.add(change.path);
        return true;
      case "graph.unmount":
        if (!this.mounts.has(change.path)) return false;
        // O(graph), but only per unmount frame, and compaction runs off the main thread.
        for (const m of [...this.mounts]) if (m === change.path || isInside(m, change.path)) this.mounts.delete(m);
        for (const p of [...this.nodes.keys()]) if (isInside(p, change.path)) this.nodes.delete(p);
        return true;
      case "node.set":
      case "node.invalidate": {
        const slice = this.nodes.get(change.path);
        if (slice === undefined || slice.type === "effect") return false;
        const next: SnapshotNodeSlice = { type: slice.type, deps: slice.deps, status: "sentinel", meta: slice.meta };
        if (change.kind === "node.set") {
          next.status = "settled";
          next.value = cloneJson(change.value);
        } else next.sentinel = true;
        this.nodes.set(change.path, next);
        return true;
      }
    }
  }

  /** Throws the TypeError the live graph throws for `path` (graph.ts, core.ts freeSlot): a bad path, no parent mount. */
  private assertPlace(path: string, op: string, nodeTaken: boolean): void {
    splitPath(path, `${op} path`);
    if (nodeTaken && this.nodes.has(path)) throw new TypeError(`${op}: a node already exists at "${path}"`);
    if (this.mounts.has(path)) throw new TypeError(`${op}: a mount already exists at "${path}"`);
    if (!this.parentExists(path)) throw new TypeError(`${op}: parent mount "${parentPath(path)}" of "${path}" does not exist`);
  }

  private parentExists(path: string): boolean {
    const parent = parentPath(path);
    return parent === "" || this.mounts.has(parent);
  }

  /** The snapshot in `Graph.snapshot()` form: nodes in code-point order, edges from deps, sorted subgraphs. */
  build(name: string): GraphPersistSnapshot {
    return snapshotOfSlices(name, this.nodes, this.mounts);
  }
}
