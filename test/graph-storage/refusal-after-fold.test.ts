/**
 * A frame refused for good after the store's fold had deleted the graph's stored, not yet acknowledged frames: the
 * gap search took the folded seqs as the gap, so frames stored before the refused one were deleted (review; the
 * guarantee: unacknowledged frames before the refused one stay). Real parts: SQLite, real worker threads.
 */
import { afterAll, expect, it } from "vitest";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { attachSnapshotStorage, type GraphCheckpointRecord } from "../../src/index.js";
import type { Codec } from "../../src/codec/types.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { compactGraphInEngine } from "../../src/persistence/compaction.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { kvStorage } from "../../src/tier/kv.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { outcome } from "../support/refusals.js";
import { smallGraph } from "../support/small-graphs.js";

const REFUSING_FRAMES = new URL("../engine/fixtures/refusing-frames.mjs", import.meta.url).href;
const tmp = tempDir("refusal-after-fold");
afterAll(() => tmp.remove());

it.each([true, false])("fold (%s), then a's frame refused: the stored frames before it stay", async (fold) => {
  const store: StoreSpec = { kind: "sqlite", path: tmp.path(`fr-${fold}.db`) };
  const e = openStorageEngine({ threads: 1, onError: () => {} });
  let aFlush = "";
  try {
    const snapshot = e.snapshot<GraphCheckpointRecord>(store);
    const wal = e.kv<WALFrame>(store, { codec: { module: REFUSING_FRAMES, export: "codec" } as unknown as Codec<WALFrame>, debounceMs: 60_000 });
    const a = smallGraph("a");
    const ha = attachSnapshotStorage(a, [{ snapshot, wal }], { onError: () => {} });
    a.set("v", 1);
    expect(await outcome(ha.flush())).toBe("resolved");
    a.set("v", 2);
    a.set("v", 3);
    await wal.flush();
    if (fold) await compactGraphInEngine(e, store, "a", { keepFrames: 0 });
    a.set("v", 4);
    await wal.flush(); // stored, above the fold
    a.set("v", "bad"); // refused in the worker
    aFlush = await outcome(ha.flush());
    await ha.dispose().catch(() => undefined);
  } finally {
    await e.close().catch(() => undefined);
  }
  const b = sqliteBackend(store.path);
  let v: unknown;
  try {
    const g = smallGraph("a");
    await restoreSnapshot(g, { snapshot: snapshotStorage<GraphCheckpointRecord>(b), wal: kvStorage<WALFrame>(b, { codec: walFrameCodec }) });
    v = g.get("v");
  } finally {
    await b.close?.();
  }
  expect(aFlush).toBe("rejected write-refused");
  expect(v).toBe(4);
}, 60_000);
