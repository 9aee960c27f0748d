/**
 * An actor given up while it waits at its restart gate (the store's previous connection still shutting down, or the
 * old worker's termination) must not be started: connection.ts start() handed it to the pool once the gate opened
 * whatever happened meanwhile, so a store close's abandon (close-timeout) let a worker open the store afterwards for
 * an actor nobody waits on, its lock held until the pool was destroyed (task 337, found by task 334). Now the task
 * checks its actor is still the current, living one after the gate.
 * Real parts: a piscina pool of the engine's worker threads running the production actor, SQLite files. The pool is
 * wrapped only to count the tasks handed to it.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { Piscina } from "piscina";
import { afterAll, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { StoreConnection, type ActorPool } from "../../src/engine/connection.js";
import { workerEntryPath } from "../../src/engine/engine.js";
import { newNativeGate } from "../../src/engine/native-gate.js";
import { REPO_ROOT, tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("gate-abandoned-no-start");
afterAll(() => root.remove());

it("an actor abandoned at its restart gate gets no worker when the gate opens, and the store is never opened", async () => {
  const pool = new Piscina({
    filename: join(REPO_ROOT, "dist/workers/load-entry.cjs"),
    workerData: { entry: pathToFileURL(workerEntryPath()).href },
    minThreads: 1,
    maxThreads: 1,
    atomics: "disabled",
    concurrentTasksPerWorker: 1 << 16,
  });
  let runs = 0;
  const counted: ActorPool = {
    run: (task, options) => {
      runs++;
      return pool.run(task, options);
    },
  };
  try {
    const path = root.fresh("store.db");
    const store = { kind: "sqlite" as const, path };
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve)); // the previous connection's shutdown, held
    const heard: Error[] = [];
    const conn = new StoreConnection(
      counted,
      `sqlite:${path}`,
      store,
      { store, synchronous: "FULL", nativeGate: newNativeGate() },
      { onError: (err) => void heard.push(err), onGone: () => undefined },
      undefined,
      undefined,
      undefined,
      gate,
    );
    conn.abandon(new StorageError("close-timeout", "given up at the gate", { store: path }));
    expect(conn.alive).toBe(false);
    openGate();
    await gate;
    await conn.ended(); // settled by the abandon; the gate's own callback ran before this await returned
    await sleep(200); // a worker started anyway would open (create) the SQLite file meanwhile
    expect(runs).toBe(0);
    expect(existsSync(path)).toBe(false);
    expect(heard).toEqual([]);
  } finally {
    await pool.destroy();
  }
}, 30_000);
