/**
 * Compaction through the engine: `compactGraphInEngine` runs the job in the store's actor (memory, file, SQLite) while
 * the graph keeps writing; the `autoCompact` option fires by itself; restore after compaction equals restore
 * before it; and on a SQLite file under an endless update loop the disk use stays bounded.
 */
import { existsSync, statSync } from "node:fs";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine, type StorageEngineOptions, type StoreSpec } from "../../src/engine/index.js";
import { RestoreError } from "../../src/errors.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraphInEngine, type CompactionResult } from "../../src/persistence/compaction.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { graphWalPrefix } from "../../src/wal/keys.js";
import { BACKEND_KINDS, GRAPH, buildGraph, randomWave, restoredSnapshot, rng, storeSpec, tempDir } from "./fixtures.js";

const tmp = tempDir("engine");
afterAll(() => tmp.remove());

const engines: StorageEngine[] = [];
function engine(opts: StorageEngineOptions = {}): StorageEngine {
  const e = openStorageEngine({ threads: 1, ...opts });
  engines.push(e);
  return e;
}
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close().catch(() => undefined)));
});

function enginePair(e: StorageEngine, store: StoreSpec) {
  return {
    snapshot: e.snapshot<GraphCheckpointRecord>(store),
    wal: e.kv<WALFrame>(store, { codec: walFrameCodec }),
  };
}

async function walFrameCount(e: StorageEngine, store: StoreSpec): Promise<number> {
  return (await enginePair(e, store).wal.list(`${graphWalPrefix(GRAPH)}/`)).length;
}

describe.each(BACKEND_KINDS)("engine.compact on a %s store", (kind) => {
  it("compacts in the actor while the graph keeps writing; restore is unchanged by it", async () => {
    const e = engine();
    const store = storeSpec(kind, tmp);
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [enginePair(e, store)], { compactEvery: Number.POSITIVE_INFINITY });
    const random = rng(21);
    for (let i = 0; i < 40; i++) randomWave(graph, random);
    await handle.flush();
    const before = await restoredSnapshot(enginePair(e, store));
    expect(before).toEqual(graph.snapshot());

    const r = (await compactGraphInEngine(e, store, GRAPH, { keepFrames: 2 })) as CompactionResult;
    expect(r).toMatchObject({ graphName: GRAPH, baselineSeq: handle.seq, keptFrames: 2, skippedTornFrames: 0 });
    expect(r.atomic).toBe(kind !== "file");
    expect(await walFrameCount(e, store)).toBe(2);
    expect(await restoredSnapshot(enginePair(e, store))).toEqual(before);

    // Compactions queued between writes (not awaited): the actor serializes them with the writes.
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      randomWave(graph, random);
      if (i % 15 === 7) pending.push(compactGraphInEngine(e, store, GRAPH));
      if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const durable = await handle.flush();
    const results = (await Promise.all(pending)) as CompactionResult[];
    expect(results.every((x) => x.baselineSeq <= durable)).toBe(true);
    expect(await restoredSnapshot(enginePair(e, store))).toEqual(graph.snapshot());
    await handle.dispose();
  });
});

describe("engine.compact errors", () => {
  it("reports typed errors from the job: bad options, no baseline", async () => {
    const e = engine();
    const store: StoreSpec = { kind: "memory", name: tmp.path("errors") };
    await expect(compactGraphInEngine(e, store, GRAPH, { keepFrames: -1 })).rejects.toThrow(RangeError);
    await expect(compactGraphInEngine(e, store, "")).rejects.toThrow(TypeError);
    const err = await compactGraphInEngine(e, store, GRAPH).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(RestoreError);
    expect(err).toMatchObject({ code: "baseline-missing" });
  });
});

describe("autoCompact", () => {
  it("compacts by itself after everyFrames frames, and restore stays exact", async () => {
    const errors: Error[] = [];
    const e = engine({ autoCompact: { everyFrames: 40 }, onError: (err) => errors.push(err) });
    const store = storeSpec("sqlite", tmp);
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [enginePair(e, store)], { compactEvery: Number.POSITIVE_INFINITY });
    const random = rng(99);
    for (let i = 0; i < 400; i++) {
      randomWave(graph, random);
      if (i % 10 === 9) await handle.flush();
    }
    await handle.dispose();
    // Ops run in mailbox order, so this load runs after every compaction the flushes above triggered.
    const baseline = await enginePair(e, store).snapshot.load(GRAPH);
    expect(baseline?.seq).toBeGreaterThan(handle.seq / 2);
    expect(await walFrameCount(e, store)).toBeLessThan(handle.seq / 4);
    expect(await restoredSnapshot(enginePair(e, store))).toEqual(graph.snapshot());
    expect(errors).toEqual([]);
  });
});

/** Main database file plus its -wal (SQLite checkpoints and removes the -wal when the last connection closes). */
function sqliteFootprint(path: string): number {
  const wal = `${path}-wal`;
  return statSync(path).size + (existsSync(wal) ? statSync(wal).size : 0);
}

/** One "server session": open an engine, re-attach, write `waves` sizeable updates, close. */
async function session(path: string, autoCompact: boolean, waves: number): Promise<void> {
  const e = engine(autoCompact ? { autoCompact: { everyFrames: 100 } } : {});
  const store: StoreSpec = { kind: "sqlite", path };
  const graph: ReactiveGraph = buildGraph();
  const handle = attachSnapshotStorage(graph, [enginePair(e, store)], { compactEvery: Number.POSITIVE_INFINITY });
  for (let i = 0; i < waves; i++) {
    graph.set("c", `${"payload ".repeat(60)}${i}`); // one ~600-byte frame per wave
    if (i % 50 === 49) await handle.flush();
  }
  await handle.dispose();
  await e.close();
}

describe("disk use under an endless update loop (SQLite file)", () => {
  const WAVES = 300;

  it("stays bounded with autoCompact: the size after 10 sessions is about the size after 1", async () => {
    const path = tmp.path("bounded.db");
    await session(path, true, WAVES);
    const afterOne = sqliteFootprint(path);
    for (let i = 0; i < 9; i++) await session(path, true, WAVES);
    const afterTen = sqliteFootprint(path);
    expect(afterTen).toBeLessThanOrEqual(2 * afterOne + 64 * 1024);
  });

  it("grows without compaction (the bound above is not trivially met)", async () => {
    const path = tmp.path("unbounded.db");
    await session(path, false, WAVES);
    const afterOne = sqliteFootprint(path);
    for (let i = 0; i < 9; i++) await session(path, false, WAVES);
    expect(sqliteFootprint(path)).toBeGreaterThan(2 * afterOne + 64 * 1024);
  });
});
