/**
 * The actor's per-turn bound on refusals sent by key was reset on a timer, but the worker may take the next message
 * (writes saved after the main thread heard the last notice) in the same turn: then none of that message's
 * refusals was heard. A graph sharing the WAL tier with an app that floods it and flushes first acknowledged its
 * refused frame in some rounds (review). Real parts: SQLite, a real worker thread, a module codec refusing there.
 */
import { afterAll, expect, it } from "vitest";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { attachSnapshotStorage, type GraphCheckpointRecord } from "../../src/index.js";
import type { Codec } from "../../src/codec/types.js";
import type { WALFrame } from "../../src/wal/index.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { smallGraph } from "../support/small-graphs.js";
import { outcome } from "../support/refusals.js";

const MODULE = new URL("../engine/fixtures/refusing-frames.mjs", import.meta.url).href;
const tmp = tempDir("flood-acknowledged");
afterAll(() => tmp.remove());

it("a graph's refused frame, in a round following a flooded round: its flush must not resolve", async () => {
  const engine = openStorageEngine({ threads: 1, onError: () => {} });
  try {
    const store: StoreSpec = { kind: "sqlite", path: tmp.path("s.db") };
    const snapshot = engine.snapshot<GraphCheckpointRecord>(store);
    const wal = engine.kv<unknown>(store, { codec: { module: MODULE, export: "codec" } as unknown as Codec<unknown>, debounceMs: 60_000 });
    const outcomes: string[] = [];
    for (let round = 0; round < 20; round++) {
      const g = smallGraph(`g${round}`);
      const h = attachSnapshotStorage(g, [{ snapshot, wal: wal as KvStorageTier<WALFrame> }], { onError: () => {} });
      g.set("v", 1);
      await h.flush();
      for (let i = 0; i < 1000; i++) wal.save(`app/${round}/${i}`, "bad"); // the app's refused values
      await wal.flush().catch(() => undefined); // the app's flush takes the report
      g.set("v", "bad"); // this graph's frame, refused in the worker
      for (let i = 0; i < 1000; i++) wal.save(`app/${round}/b${i}`, "bad");
      await wal.flush().catch(() => undefined); // the app flushes first again
      outcomes.push(await outcome(h.flush()));
      await h.dispose().catch(() => undefined);
    }
    expect(outcomes.filter((o) => o === "resolved")).toEqual([]);
  } finally {
    await engine.close().catch(() => undefined);
  }
});
