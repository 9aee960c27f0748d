/**
 * The file piscina loads in each worker (CommonJS on purpose). Piscina require()s its `filename` first, and on
 * Node 20.19+ require() of an ES module instantiates it synchronously: a worker terminated in that step
 * (engine close, the watchdog, a crash drill, piscina replacing a worker) aborts the WHOLE process with
 * "FATAL ERROR: v8::Module::IsGraphAsync must be used on an instantiated module" (Node's InstantiateSync does
 * not check for termination). This file is CommonJS, so require() never reaches that path, and it loads the
 * real entry (an ES module: workers/store-actor.js or a test entry) with import(), whose asynchronous
 * instantiation just stops when the worker is terminated.
 */
import { workerData } from "node:worker_threads";

/** What the engine passes in piscina's workerData. */
interface LoaderData {
  readonly entry: string; // file: URL of the ES module whose default export runs a task
}

type TaskHandler = (task: unknown) => unknown;

function entryUrl(data: unknown): string {
  const entry = (data as Partial<LoaderData> | null | undefined)?.entry;
  if (typeof entry !== "string") throw new TypeError("graphrefly-storage worker loader: workerData.entry is missing");
  return entry;
}

// Started when the worker starts (as piscina's own preload did), awaited by the first task.
const handler: Promise<TaskHandler> = import(entryUrl(workerData)).then((mod: { default?: unknown }) => {
  if (typeof mod.default !== "function") throw new TypeError("graphrefly-storage worker entry has no default export function");
  return mod.default as TaskHandler;
});
handler.catch(() => undefined); // a failed load is reported by the task that needs it, not as an unhandled rejection

export = function runTask(task: unknown): Promise<unknown> {
  return handler.then((run) => run(task));
};
