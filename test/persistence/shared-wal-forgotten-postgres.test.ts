/**
 * The shared-WAL record's forgotten marks last over later attaches, through an engine over PostgreSQL (docs/design.md
 * §3.10; the SQLite cases, inline tiers: shared-wal-forgotten.test.ts). Real PostgreSQL (test/support), an engine's
 * worker thread writing, inline backends compacting and restoring.
 */
import { expect, it } from "vitest";
import { postgresBackend, type PostgresBackend } from "../../src/backend/postgres.js";
import { openStorageEngine, type PostgresStoreSpec, type StorageEngine } from "../../src/engine/index.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { sharedWalRecordKey } from "../../src/persistence/shared-wal-record.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { build } from "./fixtures/shared-wal.js";

const database = useTestDatabase();

async function specOf(store: string): Promise<PostgresStoreSpec> {
  const db = await database();
  return { kind: "postgres", url: db.url, schema: db.schema, store };
}

const inline = (spec: PostgresStoreSpec, readOnly = false): Promise<PostgresBackend> =>
  postgresBackend({ url: spec.url, schema: spec.schema, store: spec.store, ...(readOnly ? { readOnly } : {}) });

/** One session through `engine`: pairs of snapshot stores `snapshots` sharing a WAL tier on `wal`, `count` sets from `from`. */
async function session(engine: StorageEngine, g: ReactiveGraph, wal: PostgresStoreSpec, snapshots: readonly PostgresStoreSpec[], from: number, count: number): Promise<void> {
  const w = engine.kv<WALFrame>(wal, { codec: walFrameCodec });
  const h = attachSnapshotStorage(
    g,
    snapshots.map((s) => ({ snapshot: engine.snapshot<GraphCheckpointRecord>(s, snapshots.length > 1 ? { compactEvery: 1_000_000 } : {}), wal: w })),
  );
  for (let i = from; i < from + count; i++) {
    g.set(i % 2 === 0 ? "a" : "b", i);
    if (i % 10 === 9) await h.flush();
  }
  await h.dispose();
}

/** Compacts g inline on `spec`'s store (forgetting `forget`, forced: the handle named them moments ago). */
async function compact(spec: PostgresStoreSpec, forget: readonly string[] = []): Promise<void> {
  const b = await inline(spec);
  try {
    await compactGraph({ backend: b }, { graphName: "g", ...(forget.length > 0 ? { forgetStores: forget, forceForget: true } : {}) });
  } finally {
    await b.close();
  }
}

/** The record's payload in `spec`'s store. */
async function recordOf(spec: PostgresStoreSpec): Promise<{ stores: Record<string, number>; forgotten?: Record<string, number> } | undefined> {
  const b = await inline(spec, true);
  try {
    const raw = await b.read(sharedWalRecordKey("g"));
    return raw === undefined ? undefined : (JSON.parse(Buffer.from(raw).toString("utf8")) as { change: { change: never } }).change.change;
  } finally {
    await b.close();
  }
}

/** Restores g through `snapshot`'s baseline and `wal`'s frames: the values, or the error's code. */
async function restored(snapshot: PostgresStoreSpec, wal: PostgresStoreSpec): Promise<unknown> {
  const bs = await inline(snapshot, true);
  const bw = await inline(wal, true);
  const g = build();
  try {
    await restoreSnapshot(g, { snapshot: snapshotStorage<GraphCheckpointRecord>(bs), wal: kvStorage<WALFrame>(bw, { codec: walFrameCodec }) });
    return { a: g.get("a"), b: g.get("b") };
  } catch (err) {
    return (err as { code?: string }).code;
  } finally {
    await bs.close();
    await bw.close();
  }
}

it("engine tiers over PostgreSQL: a forget's mark lasts over a later group session, the store left out is marked, both refuse", async () => {
  const [a, two, three] = await Promise.all([specOf("wal"), specOf("two"), specOf("three")]);
  const ids = await Promise.all([two, three].map(async (s) => {
    const b = await inline(s);
    await b.close();
    return b.storeId;
  }));
  const [twoId, threeId] = ids as [string, string];
  const g = build();
  let engine = openStorageEngine({ threads: 1, onError: () => {} });
  try {
    await session(engine, g, a, [a, two], 1, 60);
  } finally {
    await engine.close();
  }
  const twoState = { a: g.get("a"), b: g.get("b") };
  expect(await restored(two, a)).toEqual(twoState); // two's baseline (seq 1) and the frames above it
  await compact(a, [twoId]);
  const mark = (await recordOf(a))?.forgotten?.[twoId] as number;
  expect(mark).toBeGreaterThan(1);
  engine = openStorageEngine({ threads: 1, onError: () => {} });
  try {
    await session(engine, g, a, [a, three], 61, 40);
  } finally {
    await engine.close();
  }
  // The later session's record (written through the engine's WAL tier) keeps two's mark. Before: { three } alone.
  expect(await recordOf(a)).toMatchObject({ stores: { [threeId]: expect.any(Number) }, forgotten: { [twoId]: mark } });
  // A single pair's session next: three is left out, so marked too; the record pins nothing. Before: deleted.
  engine = openStorageEngine({ threads: 1, onError: () => {} });
  try {
    await session(engine, g, a, [a], 101, 20);
  } finally {
    await engine.close();
  }
  expect(await recordOf(a)).toMatchObject({ stores: {}, forgotten: { [twoId]: mark, [threeId]: expect.any(Number) } });
  await compact(a);
  const live = { a: g.get("a"), b: g.get("b") };
  expect({ a: await restored(a, a), two: await restored(two, a), three: await restored(three, a) }).toEqual({
    a: live,
    two: "wal-compacted-past-baseline", // before: { a: 0, b: 0 }, its attach state
    three: "wal-compacted-past-baseline",
  });
}, 180_000);
