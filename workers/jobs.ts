/** Jobs the store actor can run on its backend, by name (the engine's layer cannot import the graph layer). */
import type { ActorJob } from "../src/engine/actor.js";
import { COMPACT_GRAPH_JOB } from "../src/engine/protocol.js";
import { compactGraphJob } from "../src/graph/compaction.js";

export const actorJobs: Map<string, ActorJob> = new Map([[COMPACT_GRAPH_JOB, compactGraphJob]]);
