/**
 * Crash drills for engine tests: an engine whose workers run the test entry fault-worker.mjs, with
 * `injectFault(store, kind)`. The package itself has no fault code; "terminate" is done from the main thread.
 */
import { fileURLToPath } from "node:url";
import { openStorageEngineForTests, type StorageEngine, type StorageEngineOptions } from "../../src/engine/engine.js";
import type { StoreSpec } from "../../src/engine/protocol.js";
import { FAULT_MESSAGE } from "./fault-messages.mjs";

/** Inside the worker: an uncaught exception, process.exit(70), heap growth until OOM, a 60 s busy loop; or terminate from outside. */
export type FaultKind = "throw" | "exit" | "oom" | "hang" | "terminate";

export interface FaultEngine extends StorageEngine {
  /** Resolves once the fault was sent (or the worker terminated), not when it took effect. */
  injectFault(store: StoreSpec, kind: FaultKind): Promise<void>;
}

const FAULT_WORKER = fileURLToPath(new URL("./fault-worker.mjs", import.meta.url));

export function openFaultEngine(opts: StorageEngineOptions = {}): FaultEngine {
  const access = openStorageEngineForTests(opts, FAULT_WORKER);
  const injectFault = (store: StoreSpec, kind: FaultKind): Promise<void> =>
    kind === "terminate" ? access.terminate(store) : access.post(store, { type: FAULT_MESSAGE, kind });
  return Object.assign(access.engine, { injectFault });
}
