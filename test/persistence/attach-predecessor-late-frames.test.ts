/**
 * Task 252 (review r248 findings 1 and 2): what a new handle's flush() acknowledged is what restore gives, also when
 * an earlier handle of the graph on the same store ended with frames not yet landed: its graph collected undisposed
 * while its retirement's last flush is in flight and an attach that took its claim over threw (it released the
 * claim: the next attach did not wait), or its last flush failing transiently (the tier keeps the frames and retries
 * them on its own timer, after the new attach listed the store). Before the fix the new handle numbered the same
 * seqs and the late frames landed above its baseline: restore gave the old value.
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
import { wrapBackend, type TestBackend } from "../support/test-backend.js";
import { collected } from "../support/collect.js";

async function restoredA(backend: TestBackend): Promise<unknown> {
  const r = createGraph("g");
  r.state("a", -1);
  await restoreSnapshot(r, {
    snapshot: snapshotStorage<GraphCheckpointRecord>(backend),
    wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }),
  });
  return r.get("a");
}

describe("attach: a predecessor's late frames never override an acknowledged write", () => {
  for (const takeoverThrows of [false, true]) {
    it(`dropped handle retiring while its writes are held (a takeover attach throws: ${takeoverThrows})`, async () => {
      const backend = wrapBackend(memoryBackend(), { async: true });
      const pairOf = (): AttachPair => ({
        snapshot: snapshotStorage<GraphCheckpointRecord>(backend),
        wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }),
      });
      const old = pairOf();
      let release: () => void = () => {};
      const dropped = async (): Promise<WeakRef<ReactiveGraph>> => {
        const g = createGraph("g");
        g.state("a", 0);
        const h = attachSnapshotStorage(g, [old]);
        await h.drained(); // the attach baseline (seq 0) is durable
        release = backend.holdWrites(); // a slow store: frames 1..5 stay in flight
        for (let v = 1; v <= 5; v++) g.set("a", v);
        return new WeakRef(g);
      };
      const ref = await dropped();
      expect(await collected(ref)).toBe(true);
      if (takeoverThrows) {
        const bad = createGraph("g");
        bad.state("a", 0);
        Object.defineProperty(bad, "snapshot", { value: () => { throw new Error("snapshot failed"); } });
        Object.defineProperty(bad, "describeNode", { value: bad.describeNode.bind(bad) }); // not the built-in graph
        expect(() => attachSnapshotStorage(bad, [pairOf()])).toThrow("snapshot failed");
      }
      const g = createGraph("g");
      g.state("a", 0);
      const h = attachSnapshotStorage(g, [pairOf()]);
      g.set("a", 100);
      await new Promise((r) => setTimeout(r, 50)); // room for the new handle's bootstrap to run (reads are not held)
      release();
      const seq = await h.flush();
      await h.dispose();
      expect({ acknowledged: seq > 0, a: await restoredA(backend) }).toEqual({ acknowledged: true, a: 100 });
    });
  }

  for (const end of ["retire", "dispose"] as const) {
    for (const tiers of ["same", "fresh"] as const) {
      it(`last flush failing transiently (${end}), ${tiers} tiers for the new attach`, async () => {
        const backend = wrapBackend(memoryBackend(), { async: true });
        // The old tier retries its failed writes after 300-600 ms: after the new attach listed the store.
        const retry = { initialMs: 300, maxMs: 600 };
        const pairOf = (): AttachPair => ({
          snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { retry }),
          wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec, retry }),
        });
        const old = pairOf();
        const dropped = async (): Promise<WeakRef<ReactiveGraph>> => {
          const g = createGraph("g");
          g.state("a", 0);
          const h = attachSnapshotStorage(g, [old], { onError: () => {} });
          await h.drained();
          backend.failAll(); // EIO on every write
          for (let v = 1; v <= 5; v++) g.set("a", v);
          if (end === "dispose") await h.dispose().catch(() => {}); // its last flush fails
          return new WeakRef(g);
        };
        const ref = await dropped();
        if (end === "retire") {
          expect(await collected(ref)).toBe(true);
          await new Promise((r) => setTimeout(r, 100)); // its retirement's last flush failed and settled
        }
        backend.heal();
        const g = createGraph("g");
        g.state("a", 0);
        const h = attachSnapshotStorage(g, [tiers === "same" ? old : pairOf()], { onError: () => {} });
        g.set("a", 100);
        const seq = await h.flush();
        await h.dispose();
        // The old tier writes the frames it kept (as its retry timer would a little later).
        await old.wal!.flush();
        await old.snapshot.flush();
        expect({ acknowledged: seq > 0, a: await restoredA(backend) }).toEqual({ acknowledged: true, a: 100 });
      });
    }
  }
});
