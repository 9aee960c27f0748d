/**
 * Worker entry (loaded by piscina from the compiled dist/ folder). Each task hosts one store actor for
 * the store's whole lifetime: the task only returns when the actor shuts down, so a worker crash rejects
 * it and the engine learns which stores died.
 */
import type { MessagePort } from "node:worker_threads";
import { expose } from "comlink";
import nodeEndpoint from "comlink/dist/esm/node-adapter.mjs";
import { StoreActor, type ActorJob } from "../src/engine/actor.js";
import type { ActorOptions } from "../src/engine/protocol.js";
import { actorJobs } from "./jobs.js";

export interface HostActorTask {
  port: MessagePort;
  options: ActorOptions;
}

export default async function hostActor(task: HostActorTask): Promise<string> {
  const actor = new StoreActor(task.options, actorJobs as ReadonlyMap<string, ActorJob>);
  expose(actor, nodeEndpoint(task.port));
  await actor.closed;
  task.port.close();
  return "closed";
}
