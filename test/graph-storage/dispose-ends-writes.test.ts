/**
 * Once handle.dispose() settled, its pair writes nothing more. A handle whose dispose() rejected (its attach
 * baseline's flush failed, the store briefly sick) kept its baseline gate's retry timer: once the store recovered
 * it wrote the frames it had held back, at seqs a handle attached since had written and acknowledged, and restore
 * then gave a state mixing the two graphs (review).
 */
import { expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { attachSnapshotStorage, type GraphCheckpointRecord } from "../../src/index.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { kvStorage } from "../../src/tier/kv.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { faultyBackend } from "../support/faulty-backend.js";
import { buildGraph } from "../graph-compaction/fixtures.js";

it("a handle whose dispose() rejected does not write its held frames over a later handle's", async () => {
  const backend = faultyBackend(memoryBackend());
  backend.inject({ op: "write", errno: "EIO", key: /^g$/ }); // the graph's baseline key fails until heal()
  const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { retry: { initialMs: 60_000, maxMs: 60_000 }, onError: () => {} });
  const wal = kvStorage<WALFrame>(backend, { codec: walFrameCodec });
  const a = buildGraph();
  const first = attachSnapshotStorage(a, [{ snapshot, wal }], { onError: () => {} });
  for (let i = 0; i < 5; i++) a.set("c", `A${i}`); // held behind the attach baseline, which cannot land
  await expect(first.dispose()).rejects.toMatchObject({ code: "backend-error" });
  backend.heal();
  const b = buildGraph();
  const second = attachSnapshotStorage(b, [{ snapshot, wal }]);
  for (let i = 0; i < 5; i++) b.set("c", `B${i}`);
  await second.flush();
  await new Promise((r) => setTimeout(r, 400)); // past the first handle's gate retry (~100 ms)
  await wal.flush();
  const restored = buildGraph();
  await restoreSnapshot(restored, { snapshot: snapshotStorage(backend.inner), wal: kvStorage(backend.inner, { codec: walFrameCodec }) });
  expect(restored.describeNode("c")).toEqual(b.describeNode("c"));
  await second.dispose();
});
