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
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { graphWalPrefix, parseWalFrameKey } from "../../src/wal/keys.js";
import { until } from "../support/wait.js";
import { GRAPH, buildGraph, restoredSnapshot, tempDir } from "./fixtures.js";

const FAILING_FOLD_WORKER = fileURLToPath(new URL("./fixtures/failing-fold-worker.mjs", import.meta.url));
/** Runs of the compaction job that fail (fixtures/failing-fold-worker.mjs FAILING_FOLDS). */
const FAILING_FOLDS = 2;
/** Attach's defaults (src/persistence/attach.ts): baselineRatio 2, baselines under 64 KiB count as 64 KiB. */
const RATIO = 2;
const MIN_BASELINE_BYTES = 64 * 1024;

const tmp = tempDir("fold-retry");
afterAll(() => tmp.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

function enginePair(e: StorageEngine, store: StoreSpec) {
  return {
    snapshot: e.snapshot<GraphCheckpointRecord>(store),
    wal: e.kv<WALFrame>(store, { codec: walFrameCodec }),
  };
}

/**
 * The stored baseline and the WAL frames above its seq: their count and stored bytes (the codecs' encodings).
 * `folding`: a frame listed was gone when read (a fold committed between the reads), so the figures are not one
 * state of the store; poll again.
 */
async function aboveBaseline({ snapshot, wal }: ReturnType<typeof enginePair>) {
  const baseline = await snapshot.load(GRAPH);
  if (baseline === undefined) throw new Error("no baseline stored");
  const prefix = graphWalPrefix(GRAPH);
  const keys = (await wal.list(`${prefix}/`)).filter((k) => (parseWalFrameKey(prefix, k) ?? -1) > baseline.seq);
  let bytes = 0;
  let folding = false;
  for (const key of keys) {
    const frame = await wal.load(key);
    if (frame === undefined) folding = true;
    else bytes += walFrameCodec.encode(frame).byteLength;
  }
  return { baselineSeq: baseline.seq, baselineBytes: jsonCodec.encode(baseline).byteLength, frames: keys.length, bytes, folding };
}

/** Characters of each value the burst sets: each frame stores at least that many bytes. */
const VALUE_CHARS = 640;
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
    expect(BURST * VALUE_CHARS).toBeGreaterThan(RATIO * MIN_BASELINE_BYTES);
    for (let i = 0; i < BURST; i++) graph.set("c", `${"payload ".repeat(VALUE_CHARS / 8)}${i}`);
    const seq = await handle.flush();

    // Nothing is written from here on: only the watcher's retries can fold the WAL the failed fold left.
    let last: Awaited<ReturnType<typeof aboveBaseline>> | undefined;
    await until(
      async () => {
        last = await aboveBaseline(pair);
        return !last.folding && last.bytes <= RATIO * Math.max(last.baselineBytes, MIN_BASELINE_BYTES);
      },
      "the WAL above the baseline to be within ratio × baseline while idle",
      { timeoutMs: 20_000, intervalMs: 50 },
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}: ${JSON.stringify(last)} after ${errors.length} failed folds`);
    });

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
