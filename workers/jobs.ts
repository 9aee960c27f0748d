/**
 * What the store actor runs without understanding it, registered by the layers that own it (the engine's layer
 * cannot import them): jobs by name, and the commit watchers shown every committed batch.
 */
import type { ActorJob } from "../src/engine/jobs.js";
import type { CommitWatcherDefinition } from "../src/engine/commit-watchers.js";
import { COMPACT_GRAPH_JOB, compactGraphJob } from "../src/persistence/compaction.js";
import { walGrowthWatcher } from "../src/persistence/wal-growth-watcher.js";

export const actorJobs: ReadonlyMap<string, ActorJob> = new Map([[COMPACT_GRAPH_JOB, compactGraphJob]]);

/** The engine's `autoCompact` option and attach's background folding are this watcher's rules. */
export const commitWatchers: readonly CommitWatcherDefinition<unknown>[] = [walGrowthWatcher];
