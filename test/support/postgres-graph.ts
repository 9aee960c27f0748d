/**
 * Graphs on the test PostgreSQL server, for the kill -9 suites: the engine store spec a writer process uses, and
 * what restore reads from a store at rest (through a read-only handle: no lease, so also beside a live writer).
 */
import { readFileSync } from "node:fs";
import { postgresBackend } from "../../src/backend/postgres.js";
import type { PostgresStoreSpec } from "../../src/engine/protocol.js";
import { createGraph } from "../../src/graph/graph.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { buildGraph, digestOf } from "../reliability/fixtures/graph-crash-model.mjs";
import type { TestDatabase } from "./postgres-db.js";

/** Short enough that the next writer takes over a killed one's store soon; long enough for a loaded machine. */
export const CRASH_LEASE = { ttlMs: 2_000, renewEveryMs: 200, waitMs: 60_000 } as const;

/** A writer's engine store spec: it waits for a killed writer's lease to run out. */
export function writerSpec(db: TestDatabase, store: string): PostgresStoreSpec {
  return { kind: "postgres", url: db.url, schema: db.schema, store, lease: CRASH_LEASE };
}

/** What restore reads from the store: its seq and the digest of the graph-crash-model graph it restores. */
export async function restoredFromPostgres(
  db: TestDatabase,
  store: string,
  { consistent = false }: { consistent?: boolean } = {},
): Promise<{ seq: number; digest: string }> {
  const backend = await postgresBackend({ url: db.url, schema: db.schema, store, readOnly: true });
  try {
    const graph = buildGraph(createGraph);
    const restore = () =>
      restoreSnapshot(graph, {
        snapshot: snapshotStorage<GraphCheckpointRecord>(backend),
        wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }),
      });
    // consistent: every read of the restore in one REPEATABLE READ transaction (readConsistent).
    const r = consistent ? await backend.readConsistent(restore) : await restore();
    return { seq: r.finalSeq, digest: digestOf(graph) };
  } finally {
    await backend.close();
  }
}

/** A writer's sidecar file (follow-writer.mjs): seq -> its digest at that seq; later lines win. Read only while no writer runs. */
export function readSidecar(path: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = /^(\d+) (\S+)$/.exec(line);
    if (m) out.set(Number(m[1]), m[2] as string);
  }
  return out;
}
