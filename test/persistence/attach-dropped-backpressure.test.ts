/**
 * Task 252 (review r248 finding 4): a dropped handle whose WAL tier is full (a stuck store: backpressure) has its
 * graph collected while the tier stays full, and a new attach of the graph is not refused. The outbox keeps the
 * tier's backpressure error; until an Error's stack is formatted V8 keeps its call sites, whose receivers were the
 * graph (its set()) and attach's wave handler: the graph was kept, and with it the claim and the fold rule.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { createGraph } from "../../src/graph/graph.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { AttachPair, GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { wrapBackend } from "../support/test-backend.js";
import { collected } from "../support/collect.js";

describe("attach: a dropped handle whose WAL tier is full", () => {
  it("its graph is collected while the store is stuck, and a new attach is not refused", async () => {
    const backend = wrapBackend(memoryBackend(), { async: true });
    const pair: AttachPair = {
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend),
      wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec, maxPendingBytes: 2_000 }),
    };
    let release = (): void => {};
    const dropped = async (): Promise<WeakRef<ReactiveGraph>> => {
      const g = createGraph("g");
      g.state("a", "");
      const h = attachSnapshotStorage(g, [pair], { onError: () => {} });
      await h.drained();
      release = backend.holdWrites(); // a stuck store: the tier fills up
      for (let v = 1; v <= 20; v++) g.set("a", "x".repeat(200) + v);
      return new WeakRef(g);
    };
    const ref = await dropped();
    const whileStuck = await collected(ref);
    const g = createGraph("g");
    g.state("a", "");
    let attach = "ok";
    try {
      attachSnapshotStorage(g, [pair], { onError: () => {} });
    } catch (err) {
      attach = (err as { code?: string }).code ?? String(err);
    }
    release();
    expect({ whileStuck, attach }).toEqual({ whileStuck: true, attach: "ok" });
  });
});
