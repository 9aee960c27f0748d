/**
 * The actor's autoCompact finds a frame's graph by the one WAL key rule (src/wal/keys.ts splitWalFrameKey), so it
 * compacts every graph a store can hold: a name with a newline or with "/wal/" in it included. Before, a regex of
 * the engine's own (`.+` stops at a newline) never counted such a graph's frames, and its WAL grew unbounded.
 */
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { createGraph } from "../../src/index.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { storeSpec, tempDir } from "./fixtures.js";

const tmp = tempDir("auto-compact-names");
afterAll(() => tmp.remove());

describe("autoCompact over any graph name", () => {
  it.each(["two\nlines", "has/wal/inside"])("compacts %j by itself", async (name) => {
    const errors: Error[] = [];
    const e = openStorageEngine({ threads: 1, autoCompact: { everyFrames: 20 }, onError: (err) => errors.push(err) });
    try {
      const store = storeSpec("sqlite", tmp);
      const pair = { snapshot: e.snapshot<GraphCheckpointRecord>(store), wal: e.kv<WALFrame>(store, { codec: walFrameCodec }) };
      const graph = createGraph(name);
      graph.state("n", 0);
      const handle = attachSnapshotStorage(graph, [pair], { compactEvery: Number.POSITIVE_INFINITY });
      for (let i = 1; i <= 100; i++) {
        graph.set("n", i);
        if (i % 10 === 0) await handle.flush();
      }
      await handle.dispose();
      // In mailbox order: after every compaction the flushes above triggered.
      const baseline = await pair.snapshot.load(name);
      expect(baseline?.seq).toBeGreaterThan(50);
      expect(errors).toEqual([]);
    } finally {
      await e.close();
    }
  });
});
