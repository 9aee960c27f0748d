/**
 * Task 254: an ended handle's BASELINE left pending in its snapshot tier (its last flush failed transiently) and
 * retried after a new attach of the graph stored its newer one, under the same key (the graph name). The floor of
 * task 252 (attach-floor.ts) covers WAL frames; this checks that the older baseline never lands over the newer one
 * (restore would start below the new handle's baseline: a gap, or an older state than its flush() acknowledged).
 * Real tiers over a memory store and a SQLite file, the new attach through the same backend object, another one over
 * the same file, or engine tiers of it. Before the fix the two last failed: the old tier is on another write lane, its
 * retry landed the older baseline over the newer one and restore refused with wal-gap.
 */
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { markOnDiskStore } from "../../src/backend/on-disk.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { AttachPair, GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { restoredA } from "../support/restored-a.js";
import { wrapBackend } from "../support/test-backend.js";

const tmp = tempDir("attach-late-baseline");
afterAll(() => tmp.remove());

type Store = "memory" | "sqlite, same backend" | "sqlite, another backend" | "sqlite, engine tiers";

describe("attach: a predecessor's late baseline never overrides a newer handle's", () => {
  for (const store of ["memory", "sqlite, same backend", "sqlite, another backend", "sqlite, engine tiers"] as const satisfies readonly Store[]) {
    for (const end of ["dispose", "rebaseline"] as const) {
      it(`${store}: the ended handle's baseline retried last (${end})`, async () => {
        const file = tmp.path("g.db");
        const inner = store === "memory" ? memoryBackend() : sqliteBackend(file);
        const failing = wrapBackend(inner);
        // The wrapper writes to the SQLite file it wraps, under its name: the same store (src/tier/store-identity.ts).
        if (store !== "memory") markOnDiskStore(failing);
        // Long retry bounds: the old tiers write what they kept only when the test flushes them.
        const retry = { initialMs: 60_000, maxMs: 60_000 };
        const old: AttachPair = {
          snapshot: snapshotStorage<GraphCheckpointRecord>(failing, { retry }),
          wal: kvStorage<WALFrame>(failing, { codec: walFrameCodec, retry }),
        };
        const g0 = createGraph("g");
        g0.state("a", 0);
        // compactEvery 1: each wave queues a periodic baseline besides its frame.
        const h0 = attachSnapshotStorage(g0, [old], { onError: () => {}, compactEvery: 1 });
        await h0.flush();
        failing.failAll(); // EIO on every write: frames and baselines stay pending in the old tiers
        for (let v = 1; v <= 5; v++) g0.set("a", v);
        if (end === "rebaseline") await h0.rebaseline().catch(() => {}); // an own baseline, pending too
        await h0.dispose().catch(() => {}); // its last flush fails
        failing.heal();

        // Another backend object over the file: another write lane than the old tiers' (src/tier/write-lane.ts).
        const fresh = store === "sqlite, another backend" || store === "sqlite, engine tiers" ? sqliteBackend(file) : failing;
        const engine = store === "sqlite, engine tiers" ? openStorageEngine({ threads: 1 }) : undefined;
        const g = createGraph("g");
        g.state("a", 0);
        const pair: AttachPair =
          engine === undefined
            ? { snapshot: snapshotStorage<GraphCheckpointRecord>(fresh), wal: kvStorage<WALFrame>(fresh, { codec: walFrameCodec }) }
            : { snapshot: engine.snapshot<GraphCheckpointRecord>({ kind: "sqlite", path: file }), wal: engine.kv<WALFrame>({ kind: "sqlite", path: file }, { codec: walFrameCodec }) };
        const h = attachSnapshotStorage(g, [pair], { onError: () => {} });
        g.set("a", 100);
        const seq = await h.flush();
        await h.dispose();
        await engine?.close();
        // The old tiers write what they kept (as their retry timers would later).
        await old.wal!.flush();
        await old.snapshot.flush();
        const a = await restoredA(fresh);
        await fresh.close?.();
        await inner.close?.();
        expect({ acknowledged: seq > 0, a }).toEqual({ acknowledged: true, a: 100 });
      });
    }
  }
});
