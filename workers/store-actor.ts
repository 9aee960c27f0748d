/**
 * Worker entry (loaded by piscina from the compiled dist/ folder). Each task hosts one store actor for
 * the store's whole lifetime: the task only returns when the actor shuts down, so a worker crash rejects
 * it and the engine learns which stores died.
 */
import { threadId, type MessagePort } from "node:worker_threads";
import { expose } from "comlink";
import { StoreActor } from "../src/engine/actor.js";
import type { ActorJob } from "../src/engine/jobs.js";
import type { CommitWatcherDefinition } from "../src/engine/commit-watchers.js";
import { ActorCounters } from "../src/engine/actor-counters.js";
import { hostGate } from "../src/engine/native-gate.js";
import { isRequestsMessage, isWritesMessage, unpackWrites, type ActorOptions, type HostActorResult } from "../src/engine/protocol.js";
import { answer, portEndpoint, useTypedErrors } from "../src/engine/rpc.js";
import { hostRings, type RingHost } from "../src/engine/ring-drain.js";
import { actorJobs, commitWatchers } from "./jobs.js";

useTypedErrors(); // calls that throw reach the main thread as our typed errors

export interface HostActorTask {
  port: MessagePort;
  options: ActorOptions;
  /** How often the worker's event loop bumps the heartbeat counter the engine's watchdog reads (ms). */
  heartbeatMs?: number;
  /** A first turn ring (src/engine/ring.ts); the engine hands rings over by message (RingMessage) as it needs them. */
  ring?: SharedArrayBuffer;
}

/** What an entry registers in its store actors. */
export interface ActorRegistry {
  readonly jobs: ReadonlyMap<string, ActorJob>;
  readonly watchers: readonly CommitWatcherDefinition<unknown>[];
}

/** The package's entry: the jobs and watchers of workers/jobs.ts. */
export default hostActorWith({ jobs: actorJobs, watchers: commitWatchers });

/** A worker entry whose store actors run `registry` (tests build entries with jobs and watchers of their own). */
export function hostActorWith(registry: ActorRegistry): (task: HostActorTask) => Promise<HostActorResult> {
  return (task) => hostActor(task, registry);
}

/**
 * Runs the store's actor until it shut down, then returns how its drain ended: shutdown()'s answer travels on the
 * store's port and this result on piscina's, so the main thread may see this first (it then reads the outcome here).
 */
async function hostActor(task: HostActorTask, registry: ActorRegistry): Promise<HostActorResult> {
  const beat = heartbeat(task);
  // Marked around this thread's native SQLite calls, so the watchdog never terminates the thread inside one.
  const dropGate = hostGate(task.options.nativeGate);
  let actor: StoreActor;
  let ring: RingHost | undefined;
  try {
    actor = new StoreActor(task.options, registry.jobs, registry.watchers);
    const a = actor;
    ring = hostRings((ops) => a.applyWrites(ops), task.ring);
    // Before comlink's listener (added by expose below): every message, a control call's too, first applies the ring's
    // records written before it (ring-drain.ts). Batches of ops travel outside comlink (writes alone unanswered,
    // requests answered by one ResultsMessage); on its port, handed to the actor synchronously, so in mailbox order
    // with its calls.
    task.port.on("message", (m: unknown) => {
      if (ring?.onMessage(m) === true) return; // a ring's handover, done
      if (isWritesMessage(m)) a.applyWrites(unpackWrites(m));
      else if (isRequestsMessage(m)) answer(task.port, m.ops, a.apply(m.ops));
    });
    expose(actor, portEndpoint(task.port));
    actor.setRefusalSink((m) => task.port.postMessage(m));
    await actor.closed;
  } finally {
    ring?.stop();
    if (beat) clearInterval(beat);
    dropGate();
  }
  task.port.close();
  return actor.hostResult();
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
