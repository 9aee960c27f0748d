/**
 * Review r237 #3: attach registered the graph with a FinalizationRegistry for each WAL whose fold rule it hands over,
 * with no unregister token, and dispose never unregistered: a long-lived graph attached and disposed N times kept N
 * registry cells (each with its held { id, graphName }) until the graph itself was collected. Each attach now
 * registers with its own token, unregistered by dispose. Real worker threads and an engine SQLite store;
 * FinalizationRegistry.prototype.register/unregister are only counted (each call goes on to the real one).
 */
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempRoot } from "../engine/fixtures/helpers.js";

const root = tempRoot("r237-cells");
afterAll(() => root.remove());

describe("r237: attach/dispose cycles of one long-lived graph", () => {
  it("leave no FinalizationRegistry cell per cycle", async () => {
    const proto = FinalizationRegistry.prototype as { register: (...a: unknown[]) => void; unregister: (...a: unknown[]) => boolean };
    const register = proto.register;
    const unregister = proto.unregister;
    const g = createGraph("g");
    g.state("a", 0);
    let registered = 0;
    let unregistered = 0;
    proto.register = function (this: unknown, target: unknown, ...rest: unknown[]) {
      if (target === g) registered++;
      return register.call(this, target, ...rest);
    };
    proto.unregister = function (this: unknown, ...rest: unknown[]) {
      unregistered++;
      return unregister.call(this, ...rest);
    };
    const engine = openStorageEngine({ threads: 1, onError: () => {} });
    const cycles = 500;
    try {
      const store: StoreSpec = { kind: "sqlite", path: root.fresh("cells.db") };
      const pair = { snapshot: engine.snapshot<GraphCheckpointRecord>(store), wal: engine.kv<WALFrame>(store, { codec: walFrameCodec }) };
      const cycle = async (i: number): Promise<void> => {
        const h = attachSnapshotStorage(g, [pair]);
        g.set("a", i);
        await h.dispose();
      };
      for (let i = 0; i < cycles; i++) await cycle(i);
      expect(registered).toBeGreaterThanOrEqual(cycles); // each attach handed its rule over and registered
      // Each disposed handle's registration is unregistered (was: none, 500 cells held).
      expect(registered - unregistered).toBeLessThan(10);
    } finally {
      proto.register = register;
      proto.unregister = unregister;
      await engine.close();
    }
  }, 300_000);
});
