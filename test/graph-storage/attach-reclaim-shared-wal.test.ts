/** Review of dead-frame reclaim: pairs sharing one WAL tier reclaim nothing (another pair may still need the frames). */
import { expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { attachSnapshotStorage } from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { buildGraph } from "../graph-compaction/fixtures.js";

it("two pairs sharing one WAL tier, the second snapshot tier debounced", async () => {
  const walBackend = memoryBackend();
  const wal = kvStorage<WALFrame>(walBackend, { codec: walFrameCodec });
  const s1 = snapshotStorage<GraphCheckpointRecord>(memoryBackend());
  const s2 = snapshotStorage<GraphCheckpointRecord>(memoryBackend(), { debounceMs: 60_000 });
  const graph = buildGraph();
  const handle = attachSnapshotStorage(graph, [{ snapshot: s1, wal }, { snapshot: s2, wal }]);
  await handle.flush();
  for (let i = 0; i < 400; i++) { graph.set("c", `${"payload ".repeat(75)}${i}`); await Promise.resolve(); }
  await wal.flush();
  await new Promise((r) => setTimeout(r, 100));
  const g2 = buildGraph();
  const out = await restoreSnapshot(g2, { snapshot: s2, wal }).then(() => "ok", (e) => `${e.code}: ${e.message.slice(0, 80)}`);
  expect(out).toBe("ok");
  await handle.dispose();
});
