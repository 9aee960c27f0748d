/**
 * Shared WAL over PostgreSQL (docs/design.md §3.7, §3.10): an inline backend and an engine store spec of one store are
 * one store to attach (they were two: a second writer of a graph's keys went unrefused), and the WAL store's record
 * of the other stores restoring from it names them so a compaction through either finds them (before, a compaction
 * with no live handle deleted their frames: wal-gap). Real PostgreSQL (test/support), an engine's worker thread.
 */
import { describe, expect, it } from "vitest";
import { postgresBackend, type PostgresBackend } from "../../src/backend/postgres.js";
import { openStorageEngine, type PostgresStoreSpec } from "../../src/engine/index.js";
import { postgresStoreKey } from "../../src/engine/postgres-store.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { build } from "./fixtures/shared-wal.js";

const database = useTestDatabase();

async function open(store: string): Promise<{ spec: PostgresStoreSpec; inline: () => Promise<PostgresBackend> }> {
  const db = await database();
  const spec: PostgresStoreSpec = { kind: "postgres", url: db.url, schema: db.schema, store };
  return { spec, inline: () => postgresBackend({ url: db.url, schema: db.schema, store }) };
}

/** Graph "g" restored through `snapshot`'s baseline and `wal`'s frames (inline backends), or the error's code. */
async function restored(snapshot: PostgresBackend, wal: PostgresBackend): Promise<unknown> {
  const g = build();
  try {
    await restoreSnapshot(g, { snapshot: snapshotStorage<GraphCheckpointRecord>(snapshot), wal: kvStorage<WALFrame>(wal, { codec: walFrameCodec }) });
    return { a: g.get("a"), b: g.get("b") };
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

describe("inline and engine tiers of one PostgreSQL store are one store", () => {
  it("a second attach of the graph through the other kind of tier is refused", async () => {
    const a = await open("claims");
    const b = await a.inline();
    const engine = openStorageEngine({ threads: 1, onError: () => {} });
    try {
      const h = attachSnapshotStorage(build(), [{ snapshot: snapshotStorage<GraphCheckpointRecord>(b), wal: kvStorage<WALFrame>(b, { codec: walFrameCodec }) }]);
      const refused = expect.objectContaining({ code: "invalid-argument", details: expect.objectContaining({ graph: "g" }) });
      expect(() => attachSnapshotStorage(build(), [{ snapshot: engine.snapshot<GraphCheckpointRecord>(a.spec) }])).toThrow(refused);
      expect(() => attachSnapshotStorage(build(), [{ snapshot: snapshotStorage<GraphCheckpointRecord>(b), wal: engine.kv<WALFrame>(a.spec, { codec: walFrameCodec }) }])).toThrow(refused);
      await h.dispose();
    } finally {
      // Its proxies of the store could not take the lease the inline backend holds: close reports that (store-locked).
      await engine.close().catch(() => {});
      await b.close();
    }
    // The engine's store key (read-write) is the inline backend's id; a backend given a connection object has it too.
    expect(b.storeId).toBe(postgresStoreKey(a.spec));
    const u = new URL(a.spec.url);
    const connection = {
      host: u.hostname,
      port: u.port === "" ? 5432 : Number(u.port),
      user: decodeURIComponent(u.username),
      password: decodeURIComponent(u.password),
      database: decodeURIComponent(u.pathname.slice(1)),
    };
    const byConfig = await postgresBackend({ connection, schema: a.spec.schema, store: "claims", readOnly: true });
    await byConfig.close();
    expect(byConfig.storeId).toBe(b.storeId);
  });
});

it("pairs sharing an engine WAL tier over PostgreSQL: an inline compaction later keeps what the other store needs", async () => {
  const a = await open("wal");
  const other = await open("other");
  const g = build();
  const engine = openStorageEngine({ threads: 1, onError: () => {} });
  try {
    // Session 1: store A's pair alone (frames 2..21); session 2: pairs {A, A} and {other, A}.
    const first = attachSnapshotStorage(g, [{ snapshot: engine.snapshot<GraphCheckpointRecord>(a.spec), wal: engine.kv<WALFrame>(a.spec, { codec: walFrameCodec }) }], {
      compactEvery: Number.POSITIVE_INFINITY,
    });
    for (let i = 1; i <= 20; i++) g.set(i % 2 === 0 ? "a" : "b", i);
    await first.flush();
    await first.dispose();
    const wal = engine.kv<WALFrame>(a.spec, { codec: walFrameCodec });
    const h = attachSnapshotStorage(g, [
      { snapshot: engine.snapshot<GraphCheckpointRecord>(a.spec, { compactEvery: 1_000_000 }), wal },
      { snapshot: engine.snapshot<GraphCheckpointRecord>(other.spec, { compactEvery: 1_000_000 }), wal },
    ]);
    for (let i = 21; i <= 50; i++) {
      g.set(i % 2 === 0 ? "a" : "b", i);
      if (i % 10 === 0) await h.flush();
    }
    await h.dispose();
  } finally {
    await engine.close();
  }
  const state = { a: g.get("a"), b: g.get("b") };
  const ba = await a.inline();
  const bo = await other.inline();
  try {
    const result = await compactGraph({ backend: ba }, { graphName: "g" });
    expect({ a: await restored(ba, ba), other: await restored(bo, ba) }).toEqual({ a: state, other: state });
    // Store A's baseline took the fold; only session 1's frames (below the other store's attach baseline, 22) went.
    expect(result).toMatchObject({ baselineSeq: 52, deletedFrames: 20, sharedWalPins: [{ store: bo.storeId, seq: 22 }] });
  } finally {
    await ba.close();
    await bo.close();
  }
});
