/**
 * Task 252 (review r248 finding 3): a new attach of a graph whose dropped handle's retirement cannot finish (its WAL
 * tier full while every write fails: a dead disk) used to wait for that retirement without bound: its flush() never
 * settled and its onError stayed silent. Now it ends the retirement and numbers above what it handed out: its
 * flush() fails with the disk's error, succeeds once the disk heals, and restore gives what it acknowledged.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { createGraph } from "../../src/graph/graph.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { AttachPair, GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { wrapBackend } from "../support/test-backend.js";
import { collected } from "../support/collect.js";

/** How `p` settled within `ms` (a bound on a hang, not a timing assertion: the fixed code settles at once). */
const settled = (p: Promise<unknown>, ms: number): Promise<string> =>
  Promise.race([
    p.then(() => "resolved", (e: { code?: string }) => `rejected ${String(e.code)}`),
    new Promise<string>((r) => setTimeout(() => r("unsettled"), ms).unref()),
  ]);

describe("attach: a new handle behind a retirement that cannot finish", () => {
  it("its flush settles (the disk's error, then success once healed) and restore gives what it acknowledged", async () => {
    const backend = wrapBackend(memoryBackend(), { async: true });
    const retry = { initialMs: 50, maxMs: 100 };
    const pairOf = (): AttachPair => ({
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { retry }),
      wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec, retry, maxPendingBytes: 2_000 }),
    });
    const old = pairOf();
    const dropped = async (): Promise<WeakRef<ReactiveGraph>> => {
      const g = createGraph("g");
      g.state("a", "");
      const h = attachSnapshotStorage(g, [old], { onError: () => {} });
      await h.drained();
      backend.failAll(); // EIO on every write
      for (let v = 1; v <= 50; v++) g.set("a", "x".repeat(200) + v); // past maxPendingBytes: backpressure
      return new WeakRef(g);
    };
    expect(await collected(await dropped())).toBe(true);
    const g = createGraph("g");
    g.state("a", "");
    const h = attachSnapshotStorage(g, [pairOf()], { onError: () => {} });
    g.set("a", "new");
    const failing = await settled(h.flush(), 5_000);
    backend.heal();
    const healed = await settled(h.flush(), 10_000);
    await h.dispose();
    await old.wal!.flush(); // the old tier writes what it kept: below the new baseline
    const r = createGraph("g");
    r.state("a", "?");
    await restoreSnapshot(r, { snapshot: snapshotStorage<GraphCheckpointRecord>(backend), wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }) });
    expect({ failing, healed, a: r.get("a") }).toEqual({ failing: expect.stringMatching(/^rejected/), healed: "resolved", a: "new" });
  }, 30_000);
});
