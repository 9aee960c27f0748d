/** Layer 2 surface: the three tiers, their options and the per-backend factories (the shared cores stay internal). */
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
  SnapshotHead,
  SnapshotStorageOptions,
  SnapshotStorageTier,
  TierCommonOptions,
  TierErrorHandler,
  TierStats,
} from "./types.js";
export { snapshotStorage } from "./snapshot.js";
export { appendLogStorage } from "./append-log.js";
export { kvStorage } from "./kv.js";
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
