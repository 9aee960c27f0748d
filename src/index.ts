/** Public surface of graphrefly-storage (layers: codec → backend → tier → engine → graph). */
export * from "./errors.js";
export * from "./codec/index.js";
export * from "./wal/index.js";
export * from "./backend/index.js";
export * from "./tier/index.js";
export {
  openStorageEngine,
  COMPACT_GRAPH_JOB,
  type StorageEngine,
  type StorageEngineOptions,
  type StoreStats,
  type StoreSpec,
  type PostgresStoreSpec,
  type FaultKind,
  type CodecModuleRef,
  type EngineAppendLogOptions,
  type EngineCodecOption,
  type EngineKvOptions,
  type EngineSnapshotOptions,
} from "./engine/index.js";
export * from "./graph/index.js";
export {
  compactGraph,
  type CompactionContext,
  type CompactGraphOptions,
  type CompactionResult,
} from "./graph/compaction.js";
export {
  followGraph,
  DEFAULT_FOLLOW_POLL_MS,
  type FollowSource,
  type FollowOptions,
  type FollowerLag,
  type FollowerStats,
  type GraphFollower,
} from "./graph/follow.js";
