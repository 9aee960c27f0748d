/**
 * Background folds (docs/design.md §3.18) keep their bound after a burst: writes committed while a fold runs, past
 * the seq it folds to, count toward the next fold, and that fold starts when the running one ends, with no further
 * write to trigger it. The store actor runs the package's watcher and compaction job; the test entry
 * (fixtures/gated-fold-worker.mjs) only holds the first fold until the test has queued writes behind it.
 */
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { jsonCodecFor } from "../../src/codec/json.js";
import { openStorageEngineForTests } from "../../src/engine/engine.js";
import type { StorageEngine, StoreSpec } from "../../src/engine/index.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import {
  BASELINE_RATIO,
  BURST_VALUE_CHARS,
  MIN_BASELINE_BYTES,
  aboveBaseline,
  buildGraph,
  enginePair,
  restoredSnapshot,
  tempDir,
  untilWithinFoldBound,
} from "./fixtures.js";

const GATED_FOLD_WORKER = fileURLToPath(new URL("./fixtures/gated-fold-worker.mjs", import.meta.url));
/** The message the worker entry opens its gate on (fixtures/gated-fold-worker.mjs OPEN_FOLD_GATE). */
const OPEN_FOLD_GATE = "graphrefly.test-open-fold-gate";

const tmp = tempDir("fold-after-burst");
afterAll(() => tmp.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

const BURST = 400;

/** `count` distinct values of state node "c": one frame each. */
function burst(graph: ReturnType<typeof buildGraph>, from: number, count: number): void {
  for (let i = from; i < from + count; i++) graph.set("c", `${"payload ".repeat(BURST_VALUE_CHARS / 8)}${i}`);
}

describe("background folds after a burst (engine, SQLite file, attach defaults)", () => {
  it("a burst committed while a fold ran is folded next, with no further write, and the WAL ends within the bound", async () => {
    const errors: Error[] = [];
    const access = openStorageEngineForTests({ threads: 1, onError: (err) => errors.push(err) }, GATED_FOLD_WORKER);
    const e = (engine = access.engine);
    const store: StoreSpec = { kind: "sqlite", path: tmp.path("store.db") };
    const graph = buildGraph();
    const pair = enginePair(e, store);
    const handle = attachSnapshotStorage(graph, [pair]); // defaults: baselines by size, folded in the store's actor
    await handle.flush();
    // The baseline stays under 64 KiB, so a fold is due past RATIO × 64 KiB of frames: each burst is about twice that.
    expect(BURST * BURST_VALUE_CHARS).toBeGreaterThan(BASELINE_RATIO * MIN_BASELINE_BYTES);

    // Burst A makes a fold due when it commits: the watcher asks for it then, before this flush answers, and the gate
    // holds it in the actor's mailbox. (The WAL tier's flush, not the handle's: that one then flushes the snapshot
    // tier, whose flush would queue behind the held fold.)
    burst(graph, 0, BURST);
    const seqA = handle.seq;
    await pair.wal.flush();
    // Burst B and its flush queue behind the held fold: the connection posts a turn's ops at setImmediate, so the gate
    // message, posted after that turn, reaches the actor after them.
    burst(graph, BURST, BURST);
    const flushedB = handle.flush();
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    await access.post(store, { type: OPEN_FOLD_GATE });
    const seqB = await flushedB;

    // Nothing is written from here on: only the watcher can start the fold B made due.
    await untilWithinFoldBound(pair, 10_000);

    // The first fold covered burst A only (so B was committed after it read the WAL); the next one covered B.
    const records = e.kv<{ baselineSeq: number; previousBaselineSeq: number }>(store, { codec: jsonCodecFor<{ baselineSeq: number; previousBaselineSeq: number }>() });
    expect(await records.load("fold-record/1")).toMatchObject({ baselineSeq: seqA });
    expect(await records.load("fold-record/2")).toMatchObject({ baselineSeq: seqB });
    expect(await records.list("fold-record/")).toEqual(["fold-record/1", "fold-record/2"]);
    expect(seqB - seqA).toBe(BURST);
    const b = await aboveBaseline(pair);
    expect(b.baselineSeq).toBe(seqB);
    expect(b.frames).toBe(0);
    expect(await restoredSnapshot(enginePair(e, store))).toEqual(graph.snapshot());
    expect(errors).toEqual([]);
    await handle.dispose();
  });
});
