/**
 * Task 245 (review r237 #4): a handle dropped without dispose() releases its claim once its graph is collected, but
 * while the store's tiers stayed open the graph never was: each tier's refusal watcher held the pair's outbox, the
 * outbox its report closure, and that closure attach's context, which holds the graph. The graph's name stayed
 * claimed on the store (a new attach refused with invalid-argument "attached to the store … already") and the fold
 * rule stayed in force. Real parts: SQLite files through an engine's worker thread, memory and SQLite backends
 * inline, V8's collector (--expose-gc set at run time).
 */
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import type { Codec } from "../../src/codec/types.js";
import { CodecError } from "../../src/errors.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { createGraph } from "../../src/graph/graph.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachOutboxes, attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { AttachPair, GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempRoot } from "../engine/fixtures/helpers.js";
import { until } from "../support/wait.js";
import { collected } from "../support/collect.js";

const root = tempRoot("t245-open-tiers");
afterAll(() => root.remove());

/**
 * Attaches graph "g" through `pair`, writes a wave, flushes, and drops handle and graph undisposed: refs to the graph
 * and to the pair's outbox. The onError closure reaches graph and handle, as an app's often does: the pair's tiers
 * must not keep them alive through it.
 */
async function attachAndDrop(pair: AttachPair): Promise<{ graph: WeakRef<ReactiveGraph>; outbox: WeakRef<object> }> {
  const g = createGraph("g");
  g.state("a", 0);
  const h = attachSnapshotStorage(g, [pair], { onError: (e) => void [g, h, e] });
  g.set("a", 1);
  await h.flush();
  return { graph: new WeakRef(g), outbox: new WeakRef(attachOutboxes(h)[0] as object) };
}

/** Attaches a new graph "g" through the same `pair` (tiers still open), writes, flushes, disposes: "ok" or the error. */
async function attachAgain(pair: AttachPair): Promise<string> {
  try {
    const g = createGraph("g");
    g.state("a", 0);
    const h = attachSnapshotStorage(g, [pair]);
    g.set("a", 2);
    await h.flush();
    await h.dispose();
    return "ok";
  } catch (err) {
    return `${(err as { code?: string }).code}: ${(err as Error).message}`;
  }
}

/** The value of node "a" a restore of graph "g" through `pair` finds. */
async function restoredA(pair: AttachPair): Promise<unknown> {
  const g = createGraph("g");
  g.state("a", -1);
  await restoreSnapshot(g, { snapshot: pair.snapshot, wal: pair.wal as NonNullable<AttachPair["wal"]> });
  return g.get("a");
}

describe("a handle dropped undisposed while its tiers stay open", () => {
  it("engine tiers (fold rule handed to the store's actor): the graph is collected, attaches again, its rule is released", async () => {
    const engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0, onError: () => {} });
    try {
      const store = { kind: "sqlite" as const, path: root.fresh("engine.db") };
      const pair: AttachPair = {
        snapshot: engine.snapshot<GraphCheckpointRecord>(store),
        wal: engine.kv<WALFrame>(store, { codec: walFrameCodec }),
      };
      const ref = await attachAndDrop(pair);
      // Before the fix: never collected (the tiers' refusal watchers held it), and the next attach was refused.
      expect(await collected(ref.graph)).toBe(true);
      expect(await collected(ref.outbox)).toBe(true); // retired: its tiers' watches ended
      expect(await attachAgain(pair)).toBe("ok");
      expect(await restoredA(pair)).toBe(2);
      // The second handle disposed its own rule; the dropped one's was taken back: the store, its tiers closed, shuts down.
      await pair.snapshot.close();
      await pair.wal?.close();
      await until(async () => (await engine.stats()).length === 0, "the store shut down", { timeoutMs: 30_000, intervalMs: 20 });
    } finally {
      await engine.close();
    }
  }, 60_000);

  it("inline SQLite tiers: the graph is collected and attaches again", async () => {
    const backend = sqliteBackend(root.fresh("inline.db"));
    try {
      const pair: AttachPair = {
        snapshot: snapshotStorage<GraphCheckpointRecord>(backend),
        wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }),
      };
      const ref = await attachAndDrop(pair);
      expect(await collected(ref.graph)).toBe(true);
      expect(await collected(ref.outbox)).toBe(true);
      expect(await attachAgain(pair)).toBe("ok");
      expect(await restoredA(pair)).toBe(2);
    } finally {
      backend.close();
    }
  });

  it("inline memory tiers shared by two pairs of one WAL: the graph is collected and attaches again", async () => {
    const backend = memoryBackend();
    const other = memoryBackend();
    const wal = kvStorage<WALFrame>(backend, { codec: walFrameCodec });
    const pairs: AttachPair[] = [
      { snapshot: snapshotStorage<GraphCheckpointRecord>(backend), wal },
      { snapshot: snapshotStorage<GraphCheckpointRecord>(other), wal },
    ];
    const dropped = async (): Promise<WeakRef<ReactiveGraph>> => {
      const g = createGraph("g");
      g.state("a", 0);
      const h = attachSnapshotStorage(g, pairs, { onError: (e) => void [g.name, e] });
      g.set("a", 1);
      await h.flush();
      return new WeakRef(g);
    };
    const ref = await dropped();
    expect(await collected(ref)).toBe(true);
    const g = createGraph("g");
    g.state("a", 0);
    const h = attachSnapshotStorage(g, pairs);
    g.set("a", 3);
    await h.flush();
    await h.dispose();
    expect(await restoredA(pairs[1] as AttachPair)).toBe(3);
  });

  it("a dropped handle's writes the tier held pending become durable once its graph is collected", async () => {
    const backend = memoryBackend();
    // Debounced a minute: nothing but a flush writes them in this test's time.
    const pair: AttachPair = {
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { debounceMs: 60_000 }),
      wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec, debounceMs: 60_000 }),
    };
    const dropped = async (): Promise<WeakRef<ReactiveGraph>> => {
      const g = createGraph("g");
      g.state("a", 0);
      const h = attachSnapshotStorage(g, [pair]);
      await h.drained(); // the attach baseline is durable: the wave's frame goes to the WAL tier at once, pending there
      g.set("a", 7);
      expect(attachOutboxes(h)[0]?.queued).toBe(0);
      return new WeakRef(g);
    };
    const ref = await dropped();
    expect(await collected(ref)).toBe(true);
    const fresh = (): AttachPair => ({
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend),
      wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }),
    });
    // Read through tiers of their own (the backend alone): the retired outbox flushed the pending frame.
    await until(async () => (await restoredA(fresh())) === 7, "the dropped handle's frame durable", { timeoutMs: 30_000, intervalMs: 20 });
    expect(await attachAgain(pair)).toBe("ok");
    expect(await restoredA(fresh())).toBe(2);
  });

  it("a dropped handle's pending frame refused once its graph is collected: the frames past it go, restore gives the state before", async () => {
    const backend = memoryBackend();
    const refused = "refuse-me";
    // A WAL codec that refuses one value the graph accepts: the refusal comes in the tier's flush, after the drop.
    const refusing: Codec<WALFrame> = {
      name: "refusing-wal",
      version: 1,
      encode(frame) {
        if ((frame.change.change as { value?: unknown }).value === refused) {
          throw new CodecError("encode-failed", `test codec refuses frame ${frame.frame_seq}`, { path: "$.change.change.value" });
        }
        return walFrameCodec.encode(frame);
      },
      decode: (bytes) => walFrameCodec.decode(bytes),
    };
    const pair: AttachPair = {
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { debounceMs: 60_000 }),
      wal: kvStorage<WALFrame>(backend, { codec: refusing, debounceMs: 60_000 }),
    };
    const dropped = async (): Promise<WeakRef<ReactiveGraph>> => {
      const g = createGraph("g");
      g.state("a", 0);
      const h = attachSnapshotStorage(g, [pair], { onError: (e) => void [g, e] });
      await h.drained();
      g.set("a", 1);
      g.set("a", refused);
      g.set("a", 3); // above the refused frame: left, it would make every restore fail with wal-gap
      return new WeakRef(g);
    };
    const ref = await dropped();
    expect(await collected(ref)).toBe(true);
    const fresh = (): AttachPair => ({
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend),
      wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }),
    });
    // The retired pair flushed (frame 1 durable, the refused one not), stopped, and deleted the frame past the gap.
    await until(async () => (await restoredA(fresh()).catch(() => "failed")) === 1, "restore gives the state before the refused frame", {
      timeoutMs: 30_000,
      intervalMs: 20,
    });
  });

  it("a live graph whose handle was dropped keeps its claim and still writes through the open tiers", async () => {
    const backend = memoryBackend();
    const pair: AttachPair = {
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend),
      wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }),
    };
    const g = createGraph("g");
    g.state("a", 0);
    const handle = new WeakRef(attachSnapshotStorage(g, [pair]));
    g.set("a", 1);
    expect(await collected(handle)).toBe(true); // the handle object goes; the graph's observer keeps the attach
    expect(await attachAgain(pair)).toMatch(/^invalid-argument: .*attached to the store/);
    g.set("a", 4);
    await pair.wal?.flush();
    await pair.snapshot.flush();
    expect(await restoredA(pair)).toBe(4);
  });
});
