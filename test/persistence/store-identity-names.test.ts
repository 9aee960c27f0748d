/**
 * A store's lasting identity comes from the backend that opened it, not from its name (review s15r1 D2): a memory
 * backend whose diagnostic name looks like a file ("file:/…") was taken for that file's store, so the shared-WAL
 * record named it as a lasting store and its pin held the WAL's frames after the process (compaction deleted
 * nothing until --forget-store). Real SQLite file for the WAL; values, never timings.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { createGraph } from "../../src/index.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { backendStoreId } from "../../src/tier/store-identity.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";

const dir = mkdtempSync(join(tmpdir(), "store-identity-names-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it("a memory backend named like a file or a SQLite file is its own store, not the file's", () => {
  const file = sqliteBackend(join(dir, "real.db"));
  const named = memoryBackend({ name: file.name });
  expect(typeof backendStoreId(file)).toBe("string");
  expect(backendStoreId(named)).toBe(named);
  expect(backendStoreId(memoryBackend({ name: `file:${dir}` }))).not.toBe(`file:${dir}`);
  file.close();
});

it("a disposed pair over a memory store named like a file pins no WAL frames", async () => {
  const w = sqliteBackend(join(dir, "w.db"));
  const mem = memoryBackend({ name: `file:${join(dir, "cache")}` });
  const graph = createGraph("g");
  graph.state("a", 0);
  const wal = kvStorage<WALFrame>(w, { codec: walFrameCodec });
  const handle = attachSnapshotStorage(graph, [
    { snapshot: snapshotStorage<GraphCheckpointRecord>(w), wal },
    { snapshot: snapshotStorage<GraphCheckpointRecord>(mem), wal },
  ]);
  for (let i = 1; i <= 50; i++) graph.set("a", i);
  await handle.flush();
  await handle.dispose();
  const result = await compactGraph({ backend: w }, { graphName: "g" });
  expect(result.sharedWalPins ?? []).toEqual([]);
  expect(result.keptFrames).toBe(0);
  w.close();
});
