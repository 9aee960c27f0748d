/** Layer 1 public surface: byte backends and the key rules they share. */
export type { BackendSupports, BatchOp, MaybePromise, StorageBackend, SyncStorageBackend } from "./types.js";
export { compareKeys, prefixUpperBound } from "./keys.js";
export { memoryBackend, type MemoryBackend, type MemoryBackendOptions } from "./memory.js";
export { fileBackend, type FileBackend, type FileBackendOptions } from "./file.js";
export { decodeFileNameToKey, encodeKeyToFileName } from "./file-names.js";
export {
  sqliteBackend,
  type SqliteBackend,
  type SqliteBackendOptions,
  type SqliteSynchronous,
} from "./sqlite.js";
export { LOCK_FILE_NAME } from "./lock.js";
export {
  postgresBackend,
  type PostgresBackend,
  type PostgresBackendOptions,
  type PostgresLeaseInfo,
  type PostgresLeaseOptions,
} from "./postgres.js";
