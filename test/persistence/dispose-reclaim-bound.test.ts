/**
 * dispose() waits for the reclaim running after its last flush only up to a bound (review r267 F1). A PostgreSQL
 * DELETE of stale frames behind another session's row lock (statement_timeout is off by default) waited forever,
 * and dispose() with it: the graph's claim stayed, so no new attach of the graph was possible. Now dispose() settles,
 * the claim is released, the frames it left are the next attach's, and the acknowledged state restores.
 */
import { expect, it } from "vitest";
import { postgresBackend } from "../../src/backend/postgres.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { useTestDatabase } from "../support/postgres-db.js";

const database = useTestDatabase();
const STORE = "dispose-bound";

const build = () => {
  const g = createGraph("g");
  g.state("c", 0);
  return g;
};
const pairOf = (b: StorageBackend) => ({
  snapshot: snapshotStorage<GraphCheckpointRecord>(b),
  wal: kvStorage<WALFrame>(b, { codec: walFrameCodec }),
});

/** "settled" once `p` settled, "pending" if it still runs after `ms` (a hang, not a slow run: ms is generous). */
const outcome = (p: Promise<unknown>, ms: number): Promise<string> => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.then(
      () => "settled",
      () => "settled",
    ),
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve("pending"), ms))),
  ]).finally(() => clearTimeout(timer));
};

it("dispose() settles and frees the graph's claim although the reclaim's DELETE waits on a row lock", async () => {
  const db = await database();
  const backend = await postgresBackend({ url: db.url, schema: db.schema, store: STORE });
  const raw = await db.raw();
  let disposing: Promise<void> | undefined;
  try {
    // A session whose frames stay (an explicit cadence): stale for the next attach, which deletes them.
    const g1 = build();
    const h1 = attachSnapshotStorage(g1, [pairOf(backend)], { compactEvery: 1_000 });
    for (let i = 1; i <= 3; i++) g1.set("c", i);
    await h1.dispose();
    const { rows: tables } = await raw.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name NOT LIKE '%lease' AND table_name NOT LIKE '%version'",
      [db.schema],
    );
    expect(tables).toHaveLength(1);
    const table = `"${db.schema}"."${(tables[0] as { table_name: string }).table_name}"`;
    // Another session (a frozen process's open transaction) holds the frames' rows.
    await raw.query("BEGIN");
    const { rows: locked } = await raw.query(`SELECT k FROM ${table} WHERE store = $1 AND k <> 'g' FOR UPDATE`, [STORE]);
    expect(locked.length).toBeGreaterThanOrEqual(3);

    const g2 = build();
    await restoreSnapshot(g2, pairOf(backend));
    expect(g2.get("c")).toBe(3);
    const h2 = attachSnapshotStorage(g2, [pairOf(backend)]);
    g2.set("c", 4);
    await h2.flush(); // new rows only: acknowledged although the old ones are locked
    disposing = h2.dispose();
    expect(await outcome(disposing, 30_000)).toBe("settled"); // before: pending until the lock is released
    // The claim is free: the graph attaches again while the lock is still held (before: "attached already"). Its
    // statements queue behind the DELETE on the backend's connection, so it is not restored: it writes a new state.
    const g3 = build();
    g3.set("c", 5);
    const h3 = attachSnapshotStorage(g3, [pairOf(backend)]);
    await raw.query("ROLLBACK"); // the DELETE still waiting goes on: only frames below every acknowledged write
    await h3.flush();
    await h3.dispose();
    const g4 = build();
    await restoreSnapshot(g4, pairOf(backend));
    expect(g4.get("c")).toBe(5);
  } finally {
    await raw.query("ROLLBACK").catch(() => undefined);
    await disposing?.catch(() => undefined);
    await backend.close();
  }
});
