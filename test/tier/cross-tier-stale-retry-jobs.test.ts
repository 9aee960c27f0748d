/**
 * A job's writes land at a place on the backend's write lane and are told to the tiers holding older put-back values
 * of their keys (docs/design.md §3.30), as another tier's batch is. A compaction writes the graph's new baseline and
 * deletes the frames it covers; a snapshot tier whose save of an older baseline had failed held it for a retry, and
 * that retry landed the older baseline over the fold's: the frames between were gone, so restore silently returned the
 * older state (acknowledged changes lost). Inline (compactGraph over the tiers' backend object: memory async like
 * PostgreSQL and sync behind a fault wrapper, a SQLite file with a trigger, a file store) and through an engine's
 * store actor over SQLite, whose fold the test entry holds in the middle of its read (the window in which the
 * store's other work runs beside it). No timing: retries are held (60 s) and driven by explicit flushes.
 */
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { fileBackend } from "../../src/backend/file.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { jsonCodec } from "../../src/codec/json.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { kvStorage } from "../../src/tier/kv.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { openStorageEngineForTests } from "../../src/engine/engine.js";
import type { StoreSpec } from "../../src/engine/index.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { failOnceStores } from "../support/fail-once-stores.js";
import { faultyBackend } from "../support/faulty-backend.js";
import { arrayLog, bucketsOf, notLandedThenAnotherTier, storedThenFailed } from "./fixtures/array-logs.js";
import { until } from "../support/wait.js";
import { acceptRows, rejectRow } from "../engine/fixtures/refused-rows.js";
import { BURST_VALUE_CHARS, GRAPH, buildGraph, enginePair, inlinePair, restoredSnapshot, storedFrameSeqs, tempDir } from "../graph-compaction/fixtures.js";

const HELD = 60_000;
const held = { retry: { initialMs: HELD, maxMs: HELD } } as const;
const tmp = tempDir("stale-retry-jobs");
afterAll(() => tmp.remove());

const stores = failOnceStores((name) => tmp.path(name), { healWrapper: true });

/** The stored baseline with other bytes (a later timestamp): an older baseline a snapshot tier saves again. */
function rewritten(record: GraphCheckpointRecord): GraphCheckpointRecord {
  return { ...record, timestamp_ns: Number(record.timestamp_ns) + 1_000_000 };
}

describe.each(stores)("inline compactGraph over the tiers' backend (%s)", (_name, open) => {
  it("a snapshot tier's failed save of an older baseline, retried after the fold committed: the fold's baseline stays", async () => {
    const st = open();
    const pair = inlinePair(st.backend);
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [pair], { compactEvery: Number.POSITIVE_INFINITY });
    await handle.flush();
    for (let i = 0; i < 5; i++) graph.set("a", 10 + i);
    await handle.flush();
    const older = rewritten((await pair.snapshot.load(GRAPH))!);

    const snap = snapshotStorage<GraphCheckpointRecord>(st.backend, { name: "snap", debounceMs: HELD, ...held });
    st.failOnce(GRAPH);
    snap.save(older);
    await expect(snap.flush()).rejects.toThrow();
    st.heal();
    for (let i = 0; i < 5; i++) graph.set("b", 20 + i);
    const seq = await handle.flush();

    const result = await compactGraph({ backend: st.backend }, { graphName: GRAPH });
    expect(result.baselineSeq).toBe(seq);
    expect(await storedFrameSeqs(st.backend)).toEqual([]);
    await snap.flush(); // the retry: a later landing of the key (the fold's baseline) made the record stale
    expect((await pair.snapshot.load(GRAPH))!.seq).toBe(seq);
    expect(await restoredSnapshot(pair)).toEqual(graph.snapshot());
    await snap.close();
    await handle.dispose();
    st.close();
  });

  it("guards: a healthy store folds as before, and a put-back value of a key the fold does not write keeps its retry", async () => {
    const st = open();
    const pair = inlinePair(st.backend);
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [pair], { compactEvery: Number.POSITIVE_INFINITY });
    for (let i = 0; i < 5; i++) graph.set("a", 10 + i);
    const seq = await handle.flush();
    const result = await compactGraph({ backend: st.backend }, { graphName: GRAPH });
    expect(result.baselineSeq).toBe(seq);
    expect(await restoredSnapshot(pair)).toEqual(graph.snapshot());
    // A kv tier's value of a key the fold does not write keeps its retry after a fold.
    const kv = kvStorage<number>(st.backend, { name: "kv", debounceMs: HELD, ...held });
    st.failOnce("other");
    kv.save("other", 1);
    await expect(kv.flush()).rejects.toThrow();
    st.heal();
    graph.set("a", 99);
    await handle.flush();
    await compactGraph({ backend: st.backend }, { graphName: GRAPH });
    await kv.flush();
    expect(await kv.load("other")).toBe(1);
    await kv.close();
    await handle.dispose();
    st.close();
  });
});

const tornStores: Array<[string, (plan: Parameters<typeof faultyBackend>[1]) => StorageBackend]> = [
  ["memory, async (PostgreSQL-like)", (plan) => faultyBackend(memoryBackend(), plan, { async: true })],
  ["memory, sync", (plan) => faultyBackend(memoryBackend(), plan)],
  ["file store", (plan) => faultyBackend(fileBackend(tmp.path("torn")), plan)],
];

describe.each(tornStores)("array-layout append-logs sharing a bucket (%s)", (_name, open) => {
  // Nothing proves these stores' bytes were this write's (another handle may write them, review r180): the retry
  // appends again, at least once. Over a store only its handle writes: once (append-array-outside-writer.test.ts).
  it("a failed write that landed after all (its answer lost), then another tier's append: the retry stores its entries again, never loses them", async () => {
    // The second batch writing bucket a (with b) is applied, then fails: what a lost commit answer looks like.
    const backend = open([{ op: "writeBatch", errno: "EIO", times: 1, after: 1, torn: 2, key: /^a$/ }]);
    const ls = arrayLog(backend, "ls");
    const lt = arrayLog(backend, "lt");
    await storedThenFailed(ls);
    lt.appendEntries(["a2"]);
    await lt.flush(); // read [a0, a1]: the failed write's bytes
    ls.appendEntries(["a3"]);
    await ls.flush(); // the retry: a1 and a3 appended to a fresh read; b1 alike (that write landed too)
    expect(await bucketsOf(lt)).toEqual({ a: ["a0", "a1", "a2", "a1", "a3"], b: ["b0", "b1", "b1"] });
    await ls.close();
    await lt.close();
  });

  it("guard: a failed write that did not land, then another tier's append: the retry appends after it (nothing lost or twice)", async () => {
    const backend = open([{ op: "writeBatch", errno: "EIO", times: 1, after: 1, key: /^a$/ }]);
    await notLandedThenAnotherTier(backend);
  });
});

describe("an append-log's compact() over an asynchronous backend (memory, PostgreSQL-like)", () => {
  it("merges a bucket's segments in its place on the lane: another tier's write of the bucket called after it is kept", async () => {
    const backend = faultyBackend(memoryBackend(), [], { async: true });
    const log = appendLogStorage<string>(backend, { name: "log", keyOf: () => "x", debounceMs: HELD }); // segments
    const arr = appendLogStorage<string>(backend, { name: "arr", keyOf: () => "x", layout: "array" }); // sync-through
    log.appendEntries(["s1"]);
    await log.flush();
    log.appendEntries(["s2"]);
    await log.flush();
    const compacting = log.compact();
    arr.appendEntries(["c1"]); // its write of x lands before the merge, which reads it
    await arr.flush();
    await compacting;
    const entries = (await log.loadEntries({ keyFilter: "x" })).entries;
    expect([...entries].sort()).toEqual(["c1", "s1", "s2"]);
    await log.close();
    await arr.close();
  });
});

const FLUSHED_FOLD_WORKER = fileURLToPath(new URL("./fixtures/flushed-fold-worker.mjs", import.meta.url));
/** The message the worker entry opens its gate on (fixtures/flushed-fold-worker.mjs). */
const OPEN_FOLD_GATE = "graphrefly.test-open-flushed-fold-gate";
const BURST = 400;

describe("engine (store actor over a SQLite file), a background fold held after its flush", () => {
  it("a snapshot tier's save of an older baseline failing beside the fold, retried after its commit: the fold's baseline stays", async () => {
    const access = openStorageEngineForTests({ threads: 1 }, FLUSHED_FOLD_WORKER);
    const e = access.engine;
    try {
      const store: StoreSpec & { path: string } = { kind: "sqlite", path: tmp.path("engine.db") };
      const graph = buildGraph();
      const pair = enginePair(e, store);
      const handle = attachSnapshotStorage(graph, [pair]); // defaults: baselines by size, folded in the store's actor
      await handle.flush();
      const older = rewritten((await pair.snapshot.load(GRAPH))!);
      for (let i = 0; i < BURST; i++) graph.set("c", `${"payload ".repeat(BURST_VALUE_CHARS / 8)}${i}`);
      await handle.flush();
      const records = e.kv<unknown>(store, { name: "records", codec: jsonCodec });
      await until(async () => (await records.load("fold-flushed/1")) !== undefined, "the fold to have flushed the store", { timeoutMs: 20_000 });

      const snap = e.snapshot<GraphCheckpointRecord>(store, { name: "snap", debounceMs: HELD, ...held });
      rejectRow(store.path, GRAPH);
      snap.save(older);
      await expect(snap.flush()).rejects.toThrow();
      acceptRows(store.path);
      for (let i = 0; i < 5; i++) graph.set("a", 10 + i);
      const seq = await handle.flush();

      await access.post(store, { type: OPEN_FOLD_GATE });
      await until(async () => (await records.load("fold-record/1")) !== undefined, "the held fold to end", { timeoutMs: 20_000 });
      expect(await records.load("fold-record/1")).toEqual({ ok: true, baselineSeq: seq });
      await snap.flush(); // the retry
      expect((await pair.snapshot.load(GRAPH))!.seq).toBe(seq);
      expect(await restoredSnapshot(enginePair(e, store))).toEqual(graph.snapshot());
      await snap.close();
      await handle.dispose();
    } finally {
      await e.close();
    }
  });
});
