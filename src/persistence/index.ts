/** Public surface of graph persistence: diff → WAL frames, attach, restore, fold, compaction, followers. */
export type {
  AttachOptions,
  AttachPair,
  DecomposeOptions,
  DiffNodeAdded,
  DiffNodeRemoved,
  DiffValueChange,
  FoldOptions,
  FoldResult,
  FoldWal,
  GraphAddChange,
  GraphChange,
  GraphCheckpointRecord,
  GraphDataChange,
  GraphMountChange,
  GraphRemoveChange,
  GraphSnapshotDiff,
  GraphSpecChange,
  GraphUnmountChange,
  GraphWALFrame,
  NodeInvalidateChange,
  NodeSetChange,
  CodeChangesPolicy,
  NodeSpec,
  RestoreCodeChange,
  RestoreOptions,
  RestorePhase,
  RestoreResult,
  StorageHandle,
  TornWriteHandler,
  TornWriteInfo,
  TornWritePolicy,
} from "./storage-types.js";
export { diffSnapshots } from "./diff.js";
export { decomposeDiffToFrames } from "./decompose.js";
export { attachSnapshotStorage } from "./attach.js";
export { restoreSnapshot } from "./restore.js";
export { foldWal } from "./fold.js";
export {
  compactGraph,
  compactGraphInEngine,
  type CompactionContext,
  type CompactGraphOptions,
  type CompactionResult,
  type EngineCompactGraphOptions,
} from "./compaction.js";
export {
  followGraph,
  DEFAULT_FOLLOW_POLL_MS,
  type FollowSource,
  type FollowOptions,
  type FollowerLag,
  type FollowerStats,
  type GraphFollower,
} from "./follow.js";
