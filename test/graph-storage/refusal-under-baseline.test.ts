/**
 * A frame refused for good while a periodic baseline (compactEvery) at or above its seq is stored, with and without
 * an earlier fold of unacknowledged frames: the stop names the refused frame's seq (it named a seq the fold had
 * deleted, review), and restore gives a state the graph really had, the acknowledged one or the stored baseline's
 * (a periodic baseline holds the live graph, design §3.16). Real parts: SQLite, real worker threads.
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
import { smallGraph } from "../support/small-graphs.js";

const REFUSING_FRAMES = new URL("../engine/fixtures/refusing-frames.mjs", import.meta.url).href;
const tmp = tempDir("refusal-under-baseline");
afterAll(() => tmp.remove());

it.each([true, false])("fold (%s), compactEvery 5: a's frame 5 refused, periodic baseline at 6 stored", async (fold) => {
  const store: StoreSpec = { kind: "sqlite", path: tmp.path(`pr-${fold}.db`) };
  const e = openStorageEngine({ threads: 1, onError: () => {} });
  let err: { code?: string; details?: Record<string, unknown> } | undefined;
  try {
    const snapshot = e.snapshot<GraphCheckpointRecord>(store);
    const wal = e.kv<WALFrame>(store, { codec: { module: REFUSING_FRAMES, export: "codec" } as unknown as Codec<WALFrame>, debounceMs: 60_000 });
    const a = smallGraph("a");
    const ha = attachSnapshotStorage(a, [{ snapshot, wal }], { compactEvery: 5, onError: () => {} });
    a.set("v", 1); // frame 2 (wave 1)
    expect(await ha.flush()).toBe(2);
    a.set("v", 2); // frame 3 (wave 2)
    a.set("v", 3); // frame 4 (wave 3)
    await wal.flush();
    if (fold) await compactGraphInEngine(e, store, "a", { keepFrames: 0 }); // baseline 4, frames 3, 4 deleted
    a.set("v", "bad"); // frame 5 (wave 4): refused in the worker
    a.set("v", 6); // frame 6 (wave 5): periodic baseline at 6
    await snapshot.flush(); // the snapshot tier's own cadence writes it (sync-through or its timer)
    err = await ha.flush().then(
      () => undefined,
      (x: unknown) => x as typeof err,
    );
    await ha.dispose().catch(() => undefined);
  } finally {
    await e.close().catch(() => undefined);
  }
  const b = sqliteBackend(store.path);
  let v: unknown;
  let head: unknown;
  try {
    const g = smallGraph("a");
    const snap = snapshotStorage<GraphCheckpointRecord>(b);
    head = (await snap.load("a"))?.seq;
    await restoreSnapshot(g, { snapshot: snap, wal: kvStorage<WALFrame>(b, { codec: walFrameCodec }) });
    v = g.get("v");
  } finally {
    await b.close?.();
  }
  expect(err?.code).toBe("write-refused");
  expect(err?.details?.seq).toBe(5); // the refused frame's seq
  // The acknowledged state, or the stored periodic baseline's (the graph's state at its seq), never another.
  expect(v).toBe(head === 6 ? 6 : 1);
}, 60_000);
