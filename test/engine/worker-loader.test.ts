/**
 * How the engine's workers load their entry. Piscina require()s the file it is given; on Node 20.19+ require() of an
 * ES module instantiates it synchronously, and a worker terminated during that step (engine close while a worker
 * starts, the watchdog, piscina replacing a crashed worker) aborted the WHOLE process: "FATAL ERROR:
 * v8::Module::IsGraphAsync must be used on an instantiated module" (a vitest fork died with "Worker exited
 * unexpectedly" in the crash drills). The engine now hands piscina a CommonJS loader that import()s the entry.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { join } from "node:path";
import { openStorageEngineForTests, type StorageEngine } from "../../src/engine/engine.js";
import { REPO_ROOT, tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("worker-loader");
afterAll(() => root.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

const IMPORT_ONLY_ENTRY = join(REPO_ROOT, "test/engine/fixtures/import-only-entry.mjs");

describe("worker entry loading", () => {
  it("loads the entry with import(), never require() (which aborts the process when the worker is terminated mid-load)", async () => {
    const reported: Error[] = [];
    const access = openStorageEngineForTests({ threads: 1, onError: (err) => reported.push(err) }, IMPORT_ONLY_ENTRY);
    engine = access.engine;
    const kv = engine.kv<number>({ kind: "sqlite", path: root.fresh("loader.db") }, { name: "kv" });
    kv.save("a", 1);
    await kv.flush();
    expect(await kv.load("a")).toBe(1);
    expect(reported).toEqual([]);
  });
});
