/** Jobs the store actor can run on its backend, by name (the engine's layer cannot import the graph layer). */
import type { ActorJob } from "../src/engine/actor.js";

export const actorJobs: Map<string, ActorJob> = new Map();
