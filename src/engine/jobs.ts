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
  /**
   * Lets the actor's other work run beside the rest of this job: until it is called the job holds the mailbox
   * (ops that arrive wait); after it, they are applied while the job awaits, so a long read does not hold up the
   * store's flushes. What must not interleave with them goes through `exclusive`.
   */
  release(): void;
  /**
   * Runs `step` as a mailbox step of its own (after the ops that arrived meanwhile, none of them beside it), with
   * every tier's flushes held: no write of the store's tiers lands while it runs. Releases the mailbox first if the
   * job had not (its step would otherwise wait behind the job itself). The step has a place on the backend's write
   * lane: it reports the keys it stored or deleted with `writeLaneOf(ctx.backend).landedNow(keys)`
   * (src/tier/write-lane.ts), so a tier holding an older put-back value of one drops it instead of retrying it over
   * the job's write (docs/design.md §3.30; a compaction's new baseline). Write through `ctx.backend` itself: a
   * wrapper of it has a lane of its own.
   */
  exclusive<T>(step: () => Promise<T> | T): Promise<T>;
}

/**
 * A job starts in mailbox order and holds the mailbox until it ends or calls `release()`; `args` and its result
 * cross threads by structured clone.
 */
export type ActorJob = ((ctx: ActorJobContext, args: unknown) => Promise<unknown>) & {
  /**
   * false: the job leaves no state in the actor (e.g. a compaction: what it did is in the store), so a store it ran
   * on may shut down once idle. Absent: the job is assumed to leave state there (a registered job may keep some in
   * the actor, which a new actor would not have), and the store it ran on stays open until the engine closes.
   */
  readonly leavesState?: boolean;
};
