/**
 * A loss check counted frames the store's own fold (compaction in the actor) had deleted as lost, when they lay
 * above the pair's acknowledged seq: an innocent graph was stopped, and its stored frames above the fold deleted
 * (review). Missing seqs at or below the stored baseline are no loss. Real parts: SQLite, real worker threads.
 */
import { afterAll, expect, it } from "vitest";
import { type StoreSpec } from "../../src/engine/index.js";
import type { GraphCheckpointRecord } from "../../src/index.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { compactGraphInEngine } from "../../src/persistence/compaction.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { kvStorage } from "../../src/tier/kv.js";
import { openFaultEngine } from "../support/faults.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { outcome } from "../support/refusals.js";
import { smallGraph, twoGraphsAt1 } from "../support/small-graphs.js";

const tmp = tempDir("loss-check-fold");
afterAll(() => tmp.remove());

async function restored(name: string, path: string): Promise<unknown> {
  const b = sqliteBackend(path);
  try {
    const g = smallGraph(name);
    await restoreSnapshot(g, { snapshot: snapshotStorage<GraphCheckpointRecord>(b), wal: kvStorage<WALFrame>(b, { codec: walFrameCodec }) });
    return g.get("v");
  } finally {
    await b.close?.();
  }
}

it.each([true, false])("a fold (%s) of frames above a's acknowledged seq, then another writer's loss: a is not stopped", async (fold) => {
  const store: StoreSpec = { kind: "sqlite", path: tmp.path(`fold-${fold}.db`) };
  const e = openFaultEngine({ threads: 1, onError: () => {} });
  let aFlush = "";
  let bFlush = "";
  try {
    const snapshot = e.snapshot<GraphCheckpointRecord>(store);
    const wal = e.kv<WALFrame>(store, { codec: walFrameCodec, debounceMs: 60_000 });
    const { a, b, ha, hb } = await twoGraphsAt1(snapshot, wal);
    a.set("v", 2);
    a.set("v", 3);
    await wal.flush(); // the app flushes the WAL tier it shares: a's frames are stored, not acknowledged to a
    if (fold) await compactGraphInEngine(e, store, "a", { keepFrames: 0 });
    a.set("v", 4);
    await wal.flush(); // a's frame above the fold, stored
    b.set("v", 2); // pending (debounced): lost with the worker
    await e.injectFault(store, "terminate");
    await new Promise((r) => setTimeout(r, 50));
    aFlush = await outcome(ha.flush());
    bFlush = await outcome(hb.flush());
    await ha.dispose().catch(() => undefined);
    await hb.dispose().catch(() => undefined);
  } finally {
    await e.close().catch(() => undefined);
  }
  const va = await restored("a", store.path);
  expect(bFlush).toBe("rejected worker-crashed"); // b's frame was lost: b's flush rejects, b resumes by itself (task 390)
  expect(aFlush).toBe("resolved"); // a lost nothing
  expect(va).toBe(4);
}, 60_000);
