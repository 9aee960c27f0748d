/**
 * A background fold (docs/design.md §3.18) that fails on a transient backend failure is retried with backoff while
 * the graph is still due, with no further write: an idle store does not keep its WAL past the bound. The store actor
 * runs the package's watcher and compaction job; the test entry (fixtures/failing-fold-worker.mjs) only makes the
 * backend's reads fail during the job's first runs, so each of those fails on the job's real read path.
 */
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { jsonCodec } from "../../src/codec/json.js";
import { openStorageEngineForTests } from "../../src/engine/engine.js";
import type { StorageEngine, StoreSpec } from "../../src/engine/index.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import {
  BASELINE_RATIO,
  BURST_VALUE_CHARS,
  GRAPH,
  MIN_BASELINE_BYTES,
  aboveBaseline,
  buildGraph,
  enginePair,
  restoredSnapshot,
  tempDir,
  untilWithinFoldBound,
} from "./fixtures.js";

const FAILING_FOLD_WORKER = fileURLToPath(new URL("./fixtures/failing-fold-worker.mjs", import.meta.url));
/** Runs of the compaction job that fail (fixtures/failing-fold-worker.mjs FAILING_FOLDS). */
const FAILING_FOLDS = 2;

const tmp = tempDir("fold-retry");
afterAll(() => tmp.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

const BURST = 400;

describe("background folds that fail (engine, SQLite file, attach defaults)", () => {
  it("a fold that failed is retried with backoff while the store is idle, until the WAL is within the bound", async () => {
    const errors: Array<{ error: Error; tier: string | undefined }> = [];
    const access = openStorageEngineForTests(
      { threads: 1, onError: (error, ctx) => errors.push({ error, tier: ctx.tier }) },
      FAILING_FOLD_WORKER,
    );
    const e = (engine = access.engine);
    const store: StoreSpec = { kind: "sqlite", path: tmp.path("store.db") };
    const graph = buildGraph();
    const pair = enginePair(e, store);
    const handle = attachSnapshotStorage(graph, [pair]); // defaults: baselines by size, folded in the store's actor
    await handle.flush();
    // The baseline stays under 64 KiB, so a fold is due past RATIO × 64 KiB of frames: the burst is about twice that.
    expect(BURST * BURST_VALUE_CHARS).toBeGreaterThan(BASELINE_RATIO * MIN_BASELINE_BYTES);
    for (let i = 0; i < BURST; i++) graph.set("c", `${"payload ".repeat(BURST_VALUE_CHARS / 8)}${i}`);
    const seq = await handle.flush();

    // Nothing is written from here on: only the watcher's retries can fold the WAL the failed fold left.
    await untilWithinFoldBound(pair, 20_000, () => ` after ${errors.length} failed folds`);

    // Each failed run was reported once, as the job's read failure, under the graph's name; the next run folded.
    const attempts = e.kv<unknown>(store, { codec: jsonCodec }); // { ok, baselineSeq? } records
    const keys = await attempts.list("fold-attempt/");
    expect(keys).toEqual(Array.from({ length: FAILING_FOLDS + 1 }, (_, i) => `fold-attempt/${i + 1}`));
    const outcomes = await Promise.all(keys.map((k) => attempts.load(k)));
    expect(outcomes).toEqual([...Array.from({ length: FAILING_FOLDS }, () => ({ ok: false })), { ok: true, baselineSeq: seq }]);
    expect(errors).toHaveLength(FAILING_FOLDS);
    for (const { error, tier } of errors) {
      expect(error).toMatchObject({ name: "StorageError", code: "backend-error" });
      expect(error.message).toMatch(/^reading .* failed: EIO/); // the job's read path (stored-graph.ts) wrapped it
      expect(tier).toBe(GRAPH);
    }

    // The baseline covers every frame, and a restore from the store equals the live graph.
    const b = await aboveBaseline(pair);
    expect(b.baselineSeq).toBe(seq);
    expect(b.frames).toBe(0);
    expect(await restoredSnapshot(enginePair(e, store))).toEqual(graph.snapshot());
    await handle.dispose();
  });
});
