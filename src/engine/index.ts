export { openStorageEngine, storeKey, workerEntryPath } from "./engine.js";
export type { StorageEngine, StorageEngineOptions, StoreStats } from "./engine.js";
export type { StoreSpec, PostgresStoreSpec, AutoCompactOptions } from "./protocol.js";
export type { ActorJob, ActorJobContext } from "./jobs.js";
export type { CodecModuleRef } from "./codecs.js";
export type { EngineAppendLogOptions, EngineCodecOption, EngineKvOptions, EngineSnapshotOptions } from "./proxies.js";
