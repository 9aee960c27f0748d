/**
 * Contracts of the graph storage integration (docs/protocol.md §7, docs/design.md §3.7–§3.10, §3.14–§3.15): the baseline record,
 * the snapshot diff and its WAL payloads, attach / restore / fold options and results.
 * Layer 4 (graph): types only.
 */
import type { KvStorageTier, SnapshotStorageTier } from "../tier/types.js";
import type { Lifecycle, WALFrame } from "../wal/frame.js";
import type { GraphPersistSnapshot, JsonValue, SnapshotNodeSlice } from "../graph/types.js";

/**
 * Baseline envelope stored in the snapshot tier under the graph name (docs/protocol.md §7.2). Only `mode: "full"` is
 * written; `lifecycle: "spec"` (a topology-only projection) is accepted by the type but never applied as values.
 * `seq` is the WAL cursor at baseline time: frames with `frame_seq > seq` are the delta to replay.
 */
export interface GraphCheckpointRecord {
  name: string;
  mode: "full";
  snapshot: GraphPersistSnapshot;
  seq: number;
  /** A number; an exact u64 the Rust reference wrote reads back as a bigint (protocol §2.6). */
  timestamp_ns: number | bigint;
  /** `SNAPSHOT_VERSION` (1). */
  format_version: number;
  lifecycle?: "spec" | "data";
}

// ---- WAL payloads (docs/protocol.md §6.5, docs/graph-model.md §2.2) ------------------------------------------------------------

/** `slice` is the full slice of the added node (its value, meta, type); absent only in foreign frames. */
export interface GraphAddChange {
  kind: "graph.add";
  nodeId: string;
  slice?: SnapshotNodeSlice;
}
export interface GraphRemoveChange {
  kind: "graph.remove";
  nodeId: string;
}
/** `subgraphId` is a placeholder equal to `path` (docs/protocol.md §7.4). */
export interface GraphMountChange {
  kind: "graph.mount";
  path: string;
  subgraphId: string;
}
export interface GraphUnmountChange {
  kind: "graph.unmount";
  path: string;
}
export interface NodeSetChange {
  kind: "node.set";
  path: string;
  value: JsonValue;
}
/** A transition to SENTINEL (never `node.set(undefined)`). */
export interface NodeInvalidateChange {
  kind: "node.invalidate";
  path: string;
}

export type GraphSpecChange = GraphAddChange | GraphRemoveChange | GraphMountChange | GraphUnmountChange;
export type GraphDataChange = NodeSetChange | NodeInvalidateChange;
export type GraphChange = GraphSpecChange | GraphDataChange;

/** Frames written by the graph layer. Frames read back are `WALFrame<unknown>` until their payload is checked. */
export type GraphWALFrame = WALFrame<GraphChange>;

// ---- diff ------------------------------------------------------------------------------------------------------

export interface DiffNodeAdded {
  readonly path: string;
  /** Full slice after the change. */
  readonly slice: SnapshotNodeSlice;
}

export interface DiffNodeRemoved {
  readonly path: string;
  /** Deps of the removed node (its last slice), so frames can remove dependents before their deps. */
  readonly deps: readonly string[];
}

export interface DiffValueChange {
  readonly path: string;
  /** New value; absent (`undefined`) means the node became SENTINEL (→ `node.invalidate`). */
  readonly value?: JsonValue;
}

/**
 * Changes between two snapshots that persist as WAL frames. A path present on both sides whose `type`, `deps` or
 * `meta` changed (removed and re-added within one wave) is listed in both `nodesRemoved` and `nodesAdded`.
 * Status changes (errored, completed) are not represented (the next baseline captures them, docs/graph-model.md §2.2).
 * Order of the arrays is irrelevant: `decomposeDiffToFrames` sorts.
 */
export interface GraphSnapshotDiff {
  readonly nodesAdded: readonly DiffNodeAdded[];
  readonly nodesRemoved: readonly DiffNodeRemoved[];
  readonly subgraphsAdded: readonly string[];
  readonly subgraphsRemoved: readonly string[];
  readonly valuesChanged: readonly DiffValueChange[];
}

export interface DecomposeOptions {
  /** Wall clock (ns) for `frame_t_ns` and `change.t_ns` of every frame. Non-negative integer. */
  timestampNs: number;
  /** Frames are numbered `baseSeq + 1, baseSeq + 2, …`. Non-negative safe integer. */
  baseSeq: number;
  /**
   * Default true: embed `checksum` and `format_version` (docs/protocol.md §6.3). False leaves `checksum: ""` for a tier
   * whose codec seals frames where it encodes (docs/design.md §3.14: the worker, for engine proxies).
   */
  seal?: boolean;
}

// ---- attach ----------------------------------------------------------------------------------------------------

export interface AttachPair {
  /** Baselines are saved under the graph name (the record's `name`). */
  snapshot: SnapshotStorageTier<GraphCheckpointRecord>;
  /** Without a WAL every tick with persisted waves writes a full baseline. */
  wal?: KvStorageTier<WALFrame>;
}

export interface AttachOptions {
  /**
   * Only waves touching one of these node or mount paths (or a path under such a mount) trigger persistence. The
   * persisted change is still the whole wave. Default: every path.
   */
  paths?: readonly string[];
  /** Trigger gate per touched path (`slice` is undefined for removed paths). The persisted change is the whole wave. */
  filter?: (path: string, slice: SnapshotNodeSlice | undefined) => boolean;
  /**
   * A baseline every this many persisted waves (the reference meaning); `Infinity` = only the attach baseline (for
   * stores compacted by other means). Default: the snapshot tier's `compactEvery`; when neither is set, baselines
   * follow `baselineRatio` instead. Baselines falling due within one tick are written once (the last one).
   */
  compactEvery?: number;
  /**
   * Without a `compactEvery`: a new baseline is due once the WAL written since the last baseline exceeds this many
   * times the baseline's size (baselines under 64 KiB count as 64 KiB), so the WAL on disk stays below
   * ratio × max(baseline, 64 KiB) above the baseline and restore reads at most that much. With engine tiers of
   * one store the store's actor folds the WAL into the new baseline in the background; otherwise attach writes it.
   * Default 2 (docs/design.md §3.18). A finite number > 0.
   */
  baselineRatio?: number;
  /**
   * While a store is behind (stuck, or slower than a writer not pacing on `drained()`), each pair's outbox holds the
   * waves it could not write yet. Once their estimated bytes pass this bound (or the graph's estimated size, if
   * larger), they are replaced by one baseline of the graph, written when the store takes writes again: memory stays
   * O(graph), nothing is lost, and onError hears StorageError("backpressure") once per spell. Default 64 MiB (the
   * tiers' default maxPendingBytes); a number > 0 or Infinity (never; docs/design.md §3.19).
   */
  maxQueuedBytes?: number;
  /** Receives every write, bootstrap and flush failure; flush() also rejects. Never throws into the graph. */
  onError?: (error: Error, tier: SnapshotStorageTier<GraphCheckpointRecord>) => void;
}

export interface StorageHandle {
  /**
   * Flushes every pair, WAL before snapshot (frames first), and resolves with the highest seq durable in every
   * tier. Rejects with the first failure (which was also reported to `onError`).
   */
  flush(): Promise<number>;
  /**
   * Backpressure: resolves once no change waits in the handle's outbox because a store was over its
   * maxPendingBytes, and every tier drained (docs/api.md "Overload"). A writer producing faster than the disk
   * awaits it before changing the graph further; the handle itself never drops or refuses a change for it.
   */
  drained(): Promise<void>;
  /**
   * Writes a baseline of the live graph to every pair, above every seq handed out, and resolves like flush().
   * The way back after a write was refused for good (StorageError `write-refused`): that pair stops writing and
   * acknowledging at the refused seq, and resumes from this baseline. StorageError `closed` after dispose().
   */
  rebaseline(): Promise<number>;
  /** Unsubscribes, then drains (flush). Idempotent: later calls return the first call's promise. */
  dispose(): Promise<void>;
  /** Highest seq assigned so far (lowest across pairs); may not be durable yet. */
  readonly seq: number;
}

// ---- restore / fold --------------------------------------------------------------------------------------------

export type TornWritePolicy = "skip" | "abort";

export interface TornWriteInfo {
  readonly frame_seq: number;
  /** Storage key of the frame. */
  readonly key: string;
  /**
   * "decode-failed": the stored value is not a WAL frame (unreadable, missing when read, or its `frame_seq`
   * differs from its key).
   */
  readonly reason: "checksum-mismatch" | "decode-failed";
  /** Human-readable specifics, when known. */
  readonly detail?: string;
  /** Last frame of the WAL above the baseline (computed before `targetSeq` / lifecycle filtering). */
  readonly isTail: boolean;
}

/** Overrides the default (tail → skip, mid-stream → abort); `undefined` keeps the default. */
export type TornWriteHandler = (info: TornWriteInfo) => TornWritePolicy | undefined;

export interface RestoreOptions {
  snapshot: SnapshotStorageTier<GraphCheckpointRecord>;
  /** Required (RestoreError `wal-tier-required` when missing). */
  wal: KvStorageTier<WALFrame>;
  /** Lifecycles to replay (default all, REPLAY_ORDER). Empty → RestoreError `phase-failed`. */
  lifecycle?: readonly Lifecycle[];
  /** Replay frames up to this seq (default all). Below the baseline's seq → RestoreError `phase-failed`. */
  targetSeq?: number;
  onTornWrite?: TornWriteHandler;
  /**
   * When the stored graph holds a derived or effect node the code built otherwise (type, deps, meta), lacks, or
   * holds as state (docs/design.md §3.9). "refuse" (default): RestoreError `derived-mismatch`, the graph untouched.
   * "accept" (a new version of the code): the code's derived and effect nodes are kept, state values come from the
   * store, and every difference is listed in RestoreResult.codeChanges.
   */
  codeChanges?: CodeChangesPolicy;
}

/** What restore does when the code builds derived or effect nodes otherwise than the store holds them. */
export type CodeChangesPolicy = "refuse" | "accept";

/** A node's spec as stored or built. */
export interface NodeSpec {
  type: string;
  deps: string[];
  meta: Record<string, JsonValue>;
}

/** A difference between the stored graph and the code's, kept the code's way under `codeChanges: "accept"`. */
export interface RestoreCodeChange {
  path: string;
  /** The seq that stored the node (its adding frame, or the baseline's); undefined when the store lacks it. */
  frame_seq: number | undefined;
  /** The stored derived or effect node; undefined when the store lacks the node. */
  stored: NodeSpec | undefined;
  /** The code's node (a state node restore kept, see keptFor); undefined when the code lacks it. */
  built: NodeSpec | undefined;
  /** A state node the store lacks (the writer removed it), kept because the code's nodes listed depend on it. */
  keptFor?: string[];
}

export interface RestorePhase {
  lifecycle: Lifecycle;
  /** Frames replayed in this phase (applied + ignored). */
  frames: number;
}

export interface RestoreResult {
  /** Frames run through a phase (applied + ignored). */
  replayedFrames: number;
  /** Torn frames skipped. */
  skippedFrames: number;
  /** max(baseline seq, highest replayed frame_seq). */
  finalSeq: number;
  /** All three lifecycles in REPLAY_ORDER, empty ones included. */
  phases: RestorePhase[];
  /** Frames that changed the graph. */
  appliedFrames: number;
  /** Frames replayed without effect: derived/unknown paths, superseded data, unknown kinds, ownership. */
  ignoredFrames: number;
  /** With `codeChanges: "accept"` only (empty when none): each node the code has otherwise than the store, by path. */
  codeChanges?: RestoreCodeChange[];
}

export interface FoldOptions {
  /** Fold frames up to this seq (default all). */
  targetSeq?: number;
  /** Default true: verify checksums and apply the torn-write policy (tail skipped, mid-stream throws). */
  verify?: boolean;
  onTornWrite?: TornWriteHandler;
}

export interface FoldResult {
  /** Equals the live graph's snapshot at `seq` (values, membership, edges, subgraphs). */
  snapshot: GraphPersistSnapshot;
  /** max(baseline seq, highest folded frame_seq): the seq of a baseline holding `snapshot`. */
  seq: number;
  appliedFrames: number;
  ignoredFrames: number;
  skippedFrames: number;
}

/** `foldWal(baseline, frames, opts?)`: pure WAL fold used by background compaction (implemented in fold.ts). */
export type FoldWal = (
  baseline: GraphCheckpointRecord,
  frames: readonly WALFrame[],
  opts?: FoldOptions,
) => FoldResult;
