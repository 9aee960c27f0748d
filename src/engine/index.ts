export { openStorageEngine, storeKey, workerEntryPath } from "./engine.js";
export type { StorageEngine, StorageEngineOptions, StoreStats, SqliteSynchronous } from "./engine.js";
export type { StoreSpec, FaultKind } from "./protocol.js";
export type { CodecModuleRef } from "./codecs.js";
export type { EngineAppendLogOptions, EngineCodecOption, EngineKvOptions, EngineSnapshotOptions } from "./proxies.js";
