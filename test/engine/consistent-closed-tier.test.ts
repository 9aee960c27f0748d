/**
 * A read-only engine store's point in time (readConsistent) was never released when the tier whose readConsistent
 * began it closed before the call ended (a shutdown, a timeout abandoning a restore): the end could not be sent
 * through a closed tier, so the store's actor kept the backend's read transaction for its whole life. Every other
 * tier of the store then read that old point in time (a follower of another graph froze), the writer's SQLite WAL
 * could not be reset past it, and on PostgreSQL a session stayed idle in transaction; the call rejected with a
 * misleading worker-crashed (review). Closing a tier now ends the points in time it began.
 * Real parts: SQLite files and PostgreSQL (a writer beside a read-only engine store), real worker threads.
 */
import { afterEach, describe, expect, it } from "vitest";
import { postgresBackend } from "../../src/backend/postgres.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { followGraph } from "../../src/persistence/follow.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { buildGraph, inlinePair, randomWave, rng, tempDir } from "../graph-compaction/fixtures.js";
import { outcome } from "../support/refusals.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const database = useTestDatabase();
const json = (n: number): Uint8Array => new TextEncoder().encode(JSON.stringify(n));

describe("readConsistent begun through a tier closed before it ended", () => {
  it("SQLite: the call rejects with closed, and another tier of the store sees later writes", async () => {
    const tmp = tempDir("consistent-closed-tier");
    const path = tmp.path("store.db");
    const writer = sqliteBackend(path);
    writer.write("k", json(1));
    const engine = openStorageEngine({ threads: 1 });
    cleanups.push(async () => {
      await engine.close();
      writer.close?.();
      tmp.remove();
    });
    const spec: StoreSpec = { kind: "sqlite", path, readOnly: true };
    const a = engine.kv<number>(spec, { name: "a" });
    const b = engine.kv<number>(spec, { name: "b" });
    expect(await b.load("k")).toBe(1);
    // The caller's tier goes away before its read ended: the call says so (its point in time ended with the close).
    const inside: number[] = [];
    const result = await outcome(
      a.readConsistent!(async () => {
        inside.push((await a.load("k"))!);
        await a.close();
        writer.write("k", json(3));
        inside.push((await b.load("k"))!); // read after the close: not at the point in time any more
      }),
    );
    expect(result).toBe("rejected closed");
    expect(inside).toEqual([1, 3]);
    writer.write("k", json(2));
    expect(await b.load("k")).toBe(2); // b never took part in a's point in time
  });

  it("SQLite, graph level: a restore whose tiers close mid-read does not freeze a follower of the store", async () => {
    const tmp = tempDir("consistent-closed-tier-graph");
    const path = tmp.path("store.db");
    const writerBackend = sqliteBackend(path);
    const writerGraph = buildGraph();
    const handle = attachSnapshotStorage(writerGraph, [inlinePair(writerBackend)], { compactEvery: Number.POSITIVE_INFINITY });
    await handle.flush();
    const engine = openStorageEngine({ threads: 1 });
    cleanups.push(async () => {
      await handle.dispose();
      await engine.close();
      writerBackend.close?.();
      tmp.remove();
    });
    const spec: StoreSpec = { kind: "sqlite", path, readOnly: true };
    const pair = (name: string): { snapshot: SnapshotStorageTier<GraphCheckpointRecord>; wal: KvStorageTier<WALFrame> } => ({
      snapshot: engine.snapshot<GraphCheckpointRecord>(spec, { name: `${name}-snap` }),
      wal: engine.kv<WALFrame>(spec, { name: `${name}-wal`, codec: walFrameCodec }),
    });
    const graph = buildGraph();
    const follower = await followGraph(graph, pair("follower"), { pollMs: 3_600_000 });
    cleanups.push(() => follower.stop());
    const r = pair("restore");
    const restore = restoreSnapshot(buildGraph(), r).catch(() => undefined); // abandoned: its tiers close at once
    await Promise.all([r.snapshot.close(), r.wal.close()]).catch(() => undefined);
    await restore;
    const random = rng(7);
    for (let i = 0; i < 5; i++) randomWave(writerGraph, random);
    const seq = await handle.flush();
    expect((await follower.poll()).appliedSeq).toBe(seq);
    expect(graph.snapshot()).toEqual(writerGraph.snapshot());
  });

  it("PostgreSQL: the call rejects with closed; no transaction is left open: another tier sees later writes", async () => {
    const db = await database();
    const store = `consistent-closed-${Math.random().toString(36).slice(2, 8)}`;
    const writer = await postgresBackend({ url: db.url, schema: db.schema, store });
    await writer.write("k", json(1));
    const engine = openStorageEngine({ threads: 1 });
    cleanups.push(async () => {
      await engine.close();
      await writer.close?.();
    });
    const spec: StoreSpec = { kind: "postgres", url: db.url, schema: db.schema, store, readOnly: true };
    const a = engine.kv<number>(spec, { name: "a" });
    const b = engine.kv<number>(spec, { name: "b" });
    expect(await b.load("k")).toBe(1);
    const result = await outcome(
      a.readConsistent!(async () => {
        await a.load("k");
        await a.close();
      }),
    );
    expect(result).toBe("rejected closed");
    await writer.write("k", json(2));
    expect(await b.load("k")).toBe(2);
  });
});
