/**
 * A job's `ctx.exclusive(step)` (src/engine/jobs.ts): the step runs as a mailbox step of its own with every tier's
 * flushes held. Tier flushes run outside the mailbox (debounce and retry timers, the end of a group-commit turn), so
 * a mailbox step alone let a tier write between a step's read and its write: on PostgreSQL a background fold could
 * then overwrite a baseline the writer had just stored (`rebaseline()`), leaving a hole no restore could cross.
 * The test entry (fixtures/probe-job-worker.mjs) holds its job between releasing the mailbox and its step until the
 * test has put a debounced write into a tier; the step then outlasts the debounce.
 */
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngineForTests } from "../../src/engine/engine.js";
import type { StorageEngine, StoreSpec } from "../../src/engine/index.js";
import { tempDir } from "../graph-compaction/fixtures.js";

const PROBE_WORKER = fileURLToPath(new URL("./fixtures/probe-job-worker.mjs", import.meta.url));
/** The message the worker entry opens its gate on (fixtures/probe-job-worker.mjs OPEN_PROBE_GATE). */
const OPEN_PROBE_GATE = "graphrefly.test-open-probe-gate";
const DEBOUNCE_MS = 50;

const tmp = tempDir("job-exclusive");
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close();
  engine = undefined;
});
afterAll(() => tmp.remove());

describe("a job's exclusive step (engine, SQLite file)", () => {
  it("holds the tiers' flushes: a debounced write taken in before the step lands after it, not during it", async () => {
    const access = openStorageEngineForTests({ threads: 1 }, PROBE_WORKER);
    engine = access.engine;
    const store: StoreSpec = { kind: "sqlite", path: tmp.path("probe.db") };
    const kv = engine.kv<string>(store, { name: "kv", debounceMs: DEBOUNCE_MS });
    const probe = engine.runJob(store, "probe-exclusive", { key: "k", holdMs: 8 * DEBOUNCE_MS });
    kv.save("k", "written");
    expect(await kv.load("absent")).toBeUndefined(); // a mailbox op after the save: the save was taken in
    await access.post(store, { type: OPEN_PROBE_GATE });
    // The debounce timer fires while the step waits; its flush waits for the step.
    expect(await probe).toEqual({ before: null, after: null });
    await kv.flush();
    expect(await kv.load("k")).toBe("written");
  });

  it("releases the mailbox first when the job had not: the step runs instead of waiting behind its own job", async () => {
    engine = openStorageEngineForTests({ threads: 1 }, PROBE_WORKER).engine;
    const store: StoreSpec = { kind: "sqlite", path: tmp.path("early.db") };
    expect(await engine.runJob(store, "early-exclusive", {})).toBe("ran");
  });
});
