/**
 * Named jobs the store actor runs on its backend without understanding them: the layer that owns a job writes it
 * against this contract and registers it in the worker entry (workers/jobs.ts), and types its result for callers
 * (e.g. src/persistence/compaction.ts's compactGraphInEngine over StorageEngine.runJob). Commit watchers
 * (commit-watchers.ts) run jobs too, when what the actor committed calls for one.
 */
import type { StorageBackend } from "../backend/types.js";

export interface ActorJobContext {
  readonly backend: StorageBackend;
  /** Makes every tier's pending writes durable first (so no older buffered baseline can land after the job). */
  flushAll(): Promise<void>;
}

/** A job runs on the actor's backend in mailbox order; `args` and its result cross threads by structured clone. */
export type ActorJob = (ctx: ActorJobContext, args: unknown) => Promise<unknown>;
