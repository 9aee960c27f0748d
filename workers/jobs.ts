/** Jobs the store actor can run on its backend, by name (the engine's layer cannot import the graph layer). */
import { COMPACT_GRAPH_JOB, type ActorJob } from "../src/engine/jobs.js";
import { compactGraphJob } from "../src/persistence/compaction.js";

export const actorJobs: Map<string, ActorJob> = new Map([[COMPACT_GRAPH_JOB, compactGraphJob]]);
