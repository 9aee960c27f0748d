/**
 * Worker entry (loaded by piscina from the compiled dist/ folder). Each task hosts one store actor for
 * the store's whole lifetime: the task only returns when the actor shuts down, so a worker crash rejects
 * it and the engine learns which stores died.
 */
import { threadId, type MessagePort } from "node:worker_threads";
import { expose } from "comlink";
import { StoreActor } from "../src/engine/actor.js";
import type { ActorJob } from "../src/engine/jobs.js";
import { ActorCounters } from "../src/engine/actor-counters.js";
import {
  RESULTS_MESSAGE,
  isRequestsMessage,
  isWritesMessage,
  type ActorOptions,
  type ApplyResult,
  type Op,
  type ResultsMessage,
} from "../src/engine/protocol.js";
import { CodecError, serializeError } from "../src/errors.js";
import { portEndpoint, useTypedErrors } from "../src/engine/rpc.js";
import { actorJobs } from "./jobs.js";

useTypedErrors(); // calls that throw reach the main thread as our typed errors

export interface HostActorTask {
  port: MessagePort;
  options: ActorOptions;
  /** How often the worker's event loop bumps the heartbeat counter the engine's watchdog reads (ms). */
  heartbeatMs?: number;
}

export default async function hostActor(task: HostActorTask): Promise<string> {
  const beat = heartbeat(task);
  try {
    const actor = new StoreActor(task.options, actorJobs as ReadonlyMap<string, ActorJob>);
    expose(actor, portEndpoint(task.port));
    // Batches of ops travel outside comlink (writes alone unanswered, requests answered by one ResultsMessage); on
    // its port, handed to the actor synchronously, so in mailbox order with its calls.
    task.port.on("message", (m: unknown) => {
      if (isWritesMessage(m)) actor.applyWrites(m.ops);
      else if (isRequestsMessage(m)) answer(task.port, m.ops, actor.apply(m.ops));
    });
    await actor.closed;
  } finally {
    if (beat) clearInterval(beat);
  }
  task.port.close();
  return "closed";
}

/** Posts a batch's results; every request is answered, whatever happened to the batch. */
function answer(port: MessagePort, ops: Op[], applied: Promise<ApplyResult>): void {
  void applied
    .catch((err: unknown): ApplyResult => ({ results: requestIds(ops).map((id) => ({ id, ok: false, error: serializeError(err) })), errors: [] }))
    .then((r) => {
      try {
        port.postMessage({ type: RESULTS_MESSAGE, ...r } satisfies ResultsMessage);
      } catch {
        // A value read back that structured clone cannot carry (a worker codec's decode result) fails its request alone.
        port.postMessage({ type: RESULTS_MESSAGE, results: r.results.map(cloneable), errors: r.errors } satisfies ResultsMessage);
      }
    });
}

function requestIds(ops: Op[]): number[] {
  return ops.flatMap((op) => ("id" in op ? [op.id] : []));
}

function cloneable(r: ApplyResult["results"][number]): ApplyResult["results"][number] {
  try {
    structuredClone(r);
    return r;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { id: r.id, ok: false, error: serializeError(new CodecError("decode-failed", `a value read could not be sent to the main thread: ${why}`)) };
  }
}

/**
 * The watchdog's sign of life: a timer only fires while this thread's event loop turns, so the counter stops
 * exactly when something blocks the thread (a synchronous loop in a job or codec), not during slow async I/O.
 */
function heartbeat(task: HostActorTask): NodeJS.Timeout | undefined {
  if (!task.options.counters || task.heartbeatMs === undefined) return undefined;
  const counters = new ActorCounters(task.options.counters);
  counters.set("threadId", threadId);
  counters.add("heartbeat", 1);
  const timer = setInterval(() => counters.add("heartbeat", 1), task.heartbeatMs);
  timer.unref();
  return timer;
}
