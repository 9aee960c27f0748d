/**
 * comlink keeps one map of transfer handlers per thread, shared by every user of comlink there, and this package
 * replaces its "throw" handler (src/engine/rpc.ts) so the engine's control calls reject with our typed errors. A
 * user of the package with comlink workers of their own must get from their calls what comlink would have given:
 * their worker (which never loads this package) sends comlink's built-in shape, and their main thread's throws go
 * to a worker running comlink's built-in deserialize. Before, our handler made every Error from their worker an
 * Error with an empty message (and a thrown string or number one too), and their worker caught `undefined` for
 * anything their main thread threw. A user's own "throw" handler, installed before or after ours, keeps their
 * calls theirs and the engine's calls typed. A user worker that loads this package itself (both ends then have our
 * handler) still gives its caller what comlink gives: before, every value thrown either way arrived rebuilt as an
 * Error (a thrown string as an Error of that message, an object as "[object Object]", a subclass named "Error").
 * A user's handler made by spreading ours (`{ ...transferHandlers.get("throw"), deserialize }`) is laid under ours
 * as any other: before, it copied the property ours was known by and kept the engine's calls untyped.
 *
 * Real parts: the user's worker is a real worker thread using comlink's node adapter; the engine runs its own.
 * The handler-order cases run a user's main thread in a worker (comlink-user-app.mjs) loading dist/: build first.
 */
import { Worker } from "node:worker_threads";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { proxy, wrap, type Remote } from "comlink";
import nodeEndpoint from "comlink/dist/esm/node-adapter.mjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStorageEngine, RestoreError, type StorageEngine } from "../../src/index.js";
import { comlinkWouldGive, describe as described, KINDS, thrown, type Described, type Kind } from "./fixtures/comlink-user-throws.mjs";
import { REPO_ROOT, tempRoot } from "./fixtures/helpers.js";

interface UserWorker {
  fail(kind: Kind): Promise<void>;
  expected(kind: Kind): { comlink: Described; user: Described };
  callBack(callback: (kind: Kind) => Promise<void>, kind: Kind): Promise<Described>;
}

const root = tempRoot("comlink-user");
let engine: StorageEngine;
let worker: Worker;
/** A user worker that loads the package (dist/) for something else: both ends of the user's calls have our handler. */
let loadingWorker: Worker;
beforeAll(async () => {
  engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0 });
  // Our handler is in place (the engine's module installs it) and the engine's calls are typed before and after.
  await expectEngineTyped();
  worker = new Worker(new URL("./fixtures/comlink-user-worker.mjs", import.meta.url));
  loadingWorker = new Worker(new URL("./fixtures/comlink-user-worker.mjs", import.meta.url), {
    workerData: { packageUrl: pathToFileURL(join(REPO_ROOT, "dist/src/index.js")).href },
  });
});
afterAll(async () => {
  await Promise.all([worker.terminate(), loadingWorker.terminate()]);
  await engine.close();
  root.remove();
});

async function expectEngineTyped(): Promise<void> {
  const err = await engine.runJob({ kind: "sqlite", path: root.fresh("engine.db") }, "compact-graph", { graphName: "absent" }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(RestoreError);
  expect(err).toMatchObject({ code: "baseline-missing" });
}

/**
 * One comlink proxy per user worker for the whole file: when a proxy made by wrap() is garbage collected, comlink
 * tells the worker to release its endpoint, and the worker then stops serving that port (a later wrap's call hung).
 */
const remotes = new Map<Worker, Remote<UserWorker>>();
function remoteOf(w: Worker): Remote<UserWorker> {
  const known = remotes.get(w) ?? wrap<UserWorker>(nodeEndpoint(w));
  remotes.set(w, known);
  return known;
}
const userWorkers = (): Array<[string, Remote<UserWorker>]> => [
  ["a worker that never loads the package", remoteOf(worker)],
  ["a worker that loads the package too", remoteOf(loadingWorker)],
];

describe("a user's own comlink calls, with the engine's handler installed", () => {
  it("a value the user's worker throws reaches their caller as comlink gives it: Error, subclass, string, number, object", async () => {
    for (const [label, remote] of userWorkers()) {
      const got: Record<string, Described> = {};
      const want: Record<string, Described> = {};
      for (const kind of KINDS) {
        got[kind] = await remote.fail(kind).then(() => ({ resolved: true }), described);
        want[kind] = (await remote.expected(kind)).comlink;
      }
      expect({ label, got }).toEqual({ label, got: want });
    }
    await expectEngineTyped();
  });

  it("a value the user's main thread throws to their worker reaches it as comlink gives it", async () => {
    for (const [label, remote] of userWorkers()) {
      const got: Record<string, Described> = {};
      const want: Record<string, Described> = {};
      for (const kind of KINDS) {
        const value = thrown(kind, "main");
        got[kind] = await remote.callBack(proxy(async () => Promise.reject(value)), kind);
        want[kind] = comlinkWouldGive(value);
      }
      expect({ label, got }).toEqual({ label, got: want });
    }
    await expectEngineTyped();
  });
});

interface EngineError {
  restoreError: boolean;
  storageError: boolean;
  name: string;
  code: string;
}
interface AppResult {
  engine: EngineError[];
  fromWorker: Record<Kind, { got: Described; want: Described }>;
  toWorker: Record<Kind, { got: Described; want: Described }>;
}

/** A user's main thread (its own thread: comlink and the package load fresh) installing its handler at `order`. */
function runApp(order: "before" | "after" | "spread"): Promise<AppResult> {
  const app = new Worker(new URL("./fixtures/comlink-user-app.mjs", import.meta.url), {
    workerData: { order, packageUrl: pathToFileURL(join(REPO_ROOT, "dist/src/index.js")).href, storePath: root.fresh(`${order}.db`) },
  });
  return new Promise<AppResult>((resolve, reject) => {
    app.once("message", (m: AppResult) => resolve(m));
    app.once("error", reject);
    app.once("exit", (code) => reject(new Error(`the app thread exited (${code}) without a result`)));
  });
}

describe("a user's own \"throw\" handler", () => {
  it("installed before or after ours, or spread from ours: the user's calls get what their handler builds, the engine's stay typed", async () => {
    const [before, after, spread] = await Promise.all([runApp("before"), runApp("after"), runApp("spread")]);
    const restore = { restoreError: true, storageError: false, name: "RestoreError", code: "baseline-missing" };
    const invalid = { restoreError: false, storageError: true, name: "StorageError", code: "invalid-argument" };
    const view = (r: AppResult, side: "got" | "want") => ({
      fromWorker: Object.fromEntries(KINDS.map((k) => [k, r.fromWorker[k][side]])),
      toWorker: Object.fromEntries(KINDS.map((k) => [k, r.toWorker[k][side]])),
      engine: side === "got" ? r.engine : [restore, restore, invalid],
    });
    expect({ before: view(before, "got"), after: view(after, "got"), spread: view(spread, "got") }).toEqual({
      before: view(before, "want"),
      after: view(after, "want"),
      spread: view(spread, "want"),
    });
  });
});
