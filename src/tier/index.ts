export type {
  AppendCursor,
  AppendLoadOptions,
  AppendLoadResult,
  AppendLogLayout,
  AppendLogMode,
  AppendLogStorageOptions,
  AppendLogStorageTier,
  BaseStorageTier,
  KvStorageOptions,
  KvStorageTier,
  SnapshotStorageOptions,
  SnapshotStorageTier,
  TierCommonOptions,
  TierErrorHandler,
  TierStats,
} from "./types.js";
export { snapshotStorage, SnapshotCore } from "./snapshot.js";
export { appendLogStorage, AppendLogCore } from "./append-log.js";
export { kvStorage, KvCore } from "./kv.js";
export {
  memorySnapshot,
  memoryAppendLog,
  memoryKv,
  fileSnapshot,
  fileAppendLog,
  fileKv,
  sqliteSnapshot,
  sqliteAppendLog,
  sqliteKv,
  type StoreTierOptions,
  type SqliteTierOptions,
} from "./factories.js";
