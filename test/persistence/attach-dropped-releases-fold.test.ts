/**
 * Task 234 (task 223's report): a handle dropped without dispose(), its graph collected, never took back the fold
 * rule its attach handed to the WAL store's actor, so that store stayed open with every tier closed until
 * engine.close(). Now the claim registry, which already noticed a collected graph, takes the rule back once the
 * graph is collected. Real worker threads, real SQLite files, V8's collector (--expose-gc set at run time).
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { createGraph } from "../../src/graph/graph.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempRoot } from "../engine/fixtures/helpers.js";
import { until } from "../support/wait.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const root = tempRoot("t234-dropped");
afterAll(() => root.remove());

function tiers(engine: StorageEngine, store: StoreSpec) {
  return { snapshot: engine.snapshot<GraphCheckpointRecord>(store), wal: engine.kv<WALFrame>(store, { codec: walFrameCodec }) };
}

/** Attaches graph "g" (default cadence: the store's actor folds it), writes and flushes, and drops handle and graph. */
async function attachAndDrop(pair: ReturnType<typeof tiers>): Promise<WeakRef<ReactiveGraph>> {
  const g = createGraph("g");
  g.state("a", 0);
  const h = attachSnapshotStorage(g, [pair]);
  g.set("a", 1);
  await h.flush();
  return new WeakRef(g);
}

describe("a handle dropped without dispose(), its graph collected", () => {
  it("gives its fold rule back: the store, every tier closed, shuts down", async () => {
    const engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0, onError: () => {} });
    try {
      const pair = tiers(engine, { kind: "sqlite", path: root.fresh("dropped.db") });
      const ref = await attachAndDrop(pair);
      await pair.snapshot.close();
      await pair.wal.close();
      expect((await engine.stats()).length).toBe(1); // the live rule keeps it (its graph may still be reachable)
      // Before: stays 1 until engine.close() (the rule was never taken back).
      await until(
        async () => {
          gc();
          return ref.deref() === undefined && (await engine.stats()).length === 0;
        },
        "the graph collected and its store shut down",
        { timeoutMs: 30_000, intervalMs: 20 },
      );
    } finally {
      await engine.close();
    }
  }, 60_000);

  it("a new handle of the graph on the store keeps its own rule, whenever the dropped graph's finalizer runs", async () => {
    const engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0, onError: () => {} });
    try {
      const store: StoreSpec = { kind: "sqlite", path: root.fresh("dropped-again.db") };
      const first = tiers(engine, store);
      const ref = await attachAndDrop(first);
      await first.snapshot.close(); // the dropped handle's outboxes are reachable from its open tiers
      await first.wal.close();
      await until(
        () => {
          gc();
          return ref.deref() === undefined;
        },
        "the dropped graph collected",
        { timeoutMs: 30_000, intervalMs: 20 },
      );
      // Attach looks at the claim (found collected: the old rule is taken back first, unless the finalizer did),
      // then hands over its own rule.
      const pair = tiers(engine, store);
      const g = createGraph("g");
      g.state("a", 5);
      const h = attachSnapshotStorage(g, [pair]);
      await h.flush();
      for (let i = 0; i < 10; i++) {
        await new Promise((r) => setTimeout(r, 5));
        gc(); // a finalizer running now finds the claim taken over and leaves it
      }
      await pair.snapshot.close();
      await pair.wal.close();
      expect((await engine.stats()).length).toBe(1); // the live handle's rule holds the store
      await h.dispose().catch(() => undefined); // its flush meets the closed tiers; the release goes through the store
      expect((await engine.stats()).length).toBe(0);
    } finally {
      await engine.close();
    }
  }, 60_000);
});
