/**
 * What a restore of graph "g" from `backend` gives for its node `a` (a state node starting at -1), or the error code
 * the restore refuses with: the attach fault tests' one-line verdict on what a store holds.
 */
import type { StorageBackend } from "../../src/backend/types.js";
import { createGraph } from "../../src/graph/graph.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";

export async function restoredA(backend: StorageBackend): Promise<unknown> {
  const r = createGraph("g");
  r.state("a", -1);
  try {
    await restoreSnapshot(r, {
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend),
      wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }),
    });
  } catch (err) {
    return (err as { code?: unknown }).code ?? String(err);
  }
  return r.get("a");
}
