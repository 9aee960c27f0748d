/**
 * Graphs on PostgreSQL through the engine (issue 15): the round trip (attach in one engine, restore in a fresh one)
 * and compaction in the store's actor, whose new baseline and frame deletions are one transaction.
 */
import { afterEach, describe, expect, it } from "vitest";
import { postgresBackend, type PostgresBackend } from "../../src/backend/postgres.js";
import { openStorageEngine, type PostgresStoreSpec, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraphInEngine, type CompactionResult } from "../../src/persistence/compaction.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { backendSource, surveyStoredGraph } from "../../src/persistence/stored-graph.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { GRAPH, buildGraph, dumpStore, randomWave, restoredSnapshot, rng, storedBaseline, storedFrameSeqs } from "../graph-compaction/fixtures.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { errorOf } from "../support/wait.js";

const database = useTestDatabase();

const engines: StorageEngine[] = [];
const readers: PostgresBackend[] = [];
function engine(): StorageEngine {
  const e = openStorageEngine({ threads: 1 });
  engines.push(e);
  return e;
}
afterEach(async () => {
  for (const e of engines.splice(0)) await e.close().catch(() => undefined);
  for (const r of readers.splice(0)) await r.close();
});

async function spec(store: string): Promise<PostgresStoreSpec> {
  const db = await database();
  return { kind: "postgres", url: db.url, schema: db.schema, store };
}

/** A read-only handle on the store, beside the engine's writer (as the CLI or another machine reads it). */
async function reader(store: string): Promise<PostgresBackend> {
  const db = await database();
  const r = await postgresBackend({ url: db.url, schema: db.schema, store, readOnly: true });
  readers.push(r);
  return r;
}

function enginePair(e: StorageEngine, store: StoreSpec) {
  return { snapshot: e.snapshot<GraphCheckpointRecord>(store), wal: e.kv<WALFrame>(store, { codec: walFrameCodec }) };
}

describe("graphs on PostgreSQL through the engine", () => {
  it("a graph attached in one engine restores in a fresh one to its last acknowledged state; the stored graph reads clean", async () => {
    const store = await spec("graph-roundtrip");
    const e1 = engine();
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [enginePair(e1, store)], { compactEvery: 25 });
    const random = rng(5);
    for (let i = 0; i < 120; i++) {
      randomWave(graph, random);
      if (i % 7 === 0) await new Promise((r) => setImmediate(r));
    }
    const acked = await handle.flush();
    const expected = graph.snapshot();
    await handle.dispose();
    await e1.close();

    const e2 = engine();
    expect(await restoredSnapshot(enginePair(e2, store))).toEqual(expected);

    const survey = await surveyStoredGraph(backendSource(await reader("graph-roundtrip")), GRAPH);
    expect(survey.findings).toEqual([]);
    expect(survey.restorable).toBe(true);
    const seqs = survey.keys.map((k) => k.seq);
    expect(seqs[seqs.length - 1]).toBe(acked);
    // No hole anywhere in the stored frames (none was compacted away here: compactEvery only writes baselines).
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));
  });

  it("engine.compact folds the WAL into a new baseline and deletes the covered frames in one transaction", async () => {
    const db = await database();
    const store = await spec("graph-compact");
    const e = engine();
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [enginePair(e, store)], { compactEvery: Number.POSITIVE_INFINITY });
    const random = rng(8);
    for (let i = 0; i < 40; i++) randomWave(graph, random);
    await handle.flush();
    const r = await reader("graph-compact");

    const first = (await compactGraphInEngine(e, store, GRAPH, { keepFrames: 1 })) as CompactionResult;
    expect(first).toMatchObject({ graphName: GRAPH, baselineSeq: handle.seq, keptFrames: 1, atomic: true });
    expect(await storedFrameSeqs(r)).toEqual([handle.seq]);
    expect(await restoredSnapshot(enginePair(e, store))).toEqual(graph.snapshot());

    for (let i = 0; i < 30; i++) randomWave(graph, random);
    await handle.flush();
    // The server refuses to delete this store's rows: the compaction's statement fails as a whole, so the new
    // baseline does not land either (a baseline written before the deletions, in its own transaction, would).
    const raw = await db.raw();
    await raw.query(`
      CREATE FUNCTION "${db.schema}".no_deletes() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'deletes refused for this test'; END $$;
      CREATE TRIGGER no_deletes BEFORE DELETE ON "${db.schema}".graphrefly_storage
        FOR EACH ROW WHEN (OLD.store = 'graph-compact') EXECUTE FUNCTION "${db.schema}".no_deletes();`);
    const before = await dumpStore(r);
    const err = await errorOf(() => compactGraphInEngine(e, store, GRAPH));
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("backend-error");
    expect(await dumpStore(r)).toEqual(before);
    expect((await storedBaseline(r)).seq).toBe(first.baselineSeq);

    await raw.query(`DROP TRIGGER no_deletes ON "${db.schema}".graphrefly_storage`);
    const second = (await compactGraphInEngine(e, store, GRAPH)) as CompactionResult;
    expect(second).toMatchObject({ baselineSeq: handle.seq, keptFrames: 0, atomic: true });
    expect(await storedFrameSeqs(r)).toEqual([]);
    expect((await storedBaseline(r)).seq).toBe(handle.seq);
    expect(await restoredSnapshot(enginePair(e, store))).toEqual(graph.snapshot());
    await handle.dispose();
  });
});
