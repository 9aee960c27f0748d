/**
 * Dead frames are deleted (docs/design.md §3.18): a frame at or below a durable baseline is never read again. With
 * default options attach deletes the frames it wrote once a baseline above them is durable (inline tiers, or
 * baseline and WAL in different stores), and every pair deletes the frames a store held before it attached once
 * the attach baseline (above every stored seq) is durable; with engine tiers of one store the actor deletes the
 * frames it folds. So the disk holds the baseline and at most the bound of WAL above it, across restarts too.
 * An explicit compactEvery keeps every frame, as the reference implementations do.
 */
import { afterAll, describe, expect, it } from "vitest";
import { faultyBackend } from "../support/faulty-backend.js";
import { until } from "../support/wait.js";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { attachSnapshotStorage, type StorageHandle } from "../../src/index.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import {
  buildGraph,
  enginePair,
  inlinePair,
  openBackend,
  restoredSnapshot,
  rng,
  randomWave,
  storedBaseline,
  storedFrameSeqs,
  tempDir,
  type BackendKind,
} from "../graph-compaction/fixtures.js";

const tmp = tempDir("reclaim");
afterAll(() => tmp.remove());

/** Seqs of the frames at or below the stored baseline, and above it. */
async function frames(backend: StorageBackend): Promise<{ baselineSeq: number; dead: number[]; live: number[] }> {
  const baselineSeq = (await storedBaseline(backend)).seq;
  const seqs = await storedFrameSeqs(backend);
  return { baselineSeq, dead: seqs.filter((s) => s <= baselineSeq), live: seqs.filter((s) => s > baselineSeq) };
}

const untilNoDeadFrames = (backend: StorageBackend, what: string): Promise<void> =>
  until(async () => (await frames(backend)).dead.length === 0, `no frame at or below the baseline (${what})`, { timeoutMs: 10_000 });

/** `n` sets of ~600-byte values (a 64 KiB baseline floor → a baseline every ~220 frames), a flush every 50. */
async function churn(graph: ReturnType<typeof buildGraph>, handle: StorageHandle, n: number, salt: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    graph.set("c", `${"payload ".repeat(75)}${salt}-${i}`);
    if (i % 50 === 49) await handle.flush();
  }
  await handle.flush();
}

describe.each(["memory", "file", "sqlite"] as const satisfies readonly BackendKind[])("inline tiers, default options (%s)", (kind) => {
  it("deletes the frames below each periodic baseline once it is durable: the disk holds the bound, not the history", async () => {
    const backend = openBackend(kind, tmp);
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [inlinePair(backend)]);
    await churn(graph, handle, 1500, 1);
    const { baselineSeq } = await frames(backend);
    expect(baselineSeq).toBeGreaterThan(1000); // several periodic baselines were written
    await untilNoDeadFrames(backend, kind);
    const { live } = await frames(backend);
    expect(live.length).toBeLessThan(500); // 1500 frames written, ~220 per baseline
    expect(await restoredSnapshot(inlinePair(backend))).toEqual(graph.snapshot());
    await handle.dispose();
    await backend.close?.();
  });
});

describe("frames stored before attach (restarts)", () => {
  /** One server session: attach after restoring, a few changes (fewer than a periodic baseline's worth), close. */
  async function inlineSession(backend: StorageBackend, salt: number): Promise<{ snapshot: unknown; seq: number }> {
    const graph = buildGraph();
    if (salt > 1) await restoreSnapshot(graph, inlinePair(backend));
    const handle = attachSnapshotStorage(graph, [inlinePair(backend)]);
    await handle.flush();
    await untilNoDeadFrames(backend, `session ${salt}, after attach`);
    await churn(graph, handle, 60, salt);
    await handle.dispose();
    return { snapshot: graph.snapshot(), seq: handle.seq };
  }

  it("inline: the attach baseline covers them, so they are deleted once it is durable (every restart leaves the last session's frames only)", async () => {
    const backend = openBackend("sqlite", tmp);
    let last = { snapshot: undefined as unknown, seq: 0 };
    for (let s = 1; s <= 5; s++) last = await inlineSession(backend, s);
    const { dead, live } = await frames(backend);
    expect(dead).toEqual([]);
    expect(live).toHaveLength(60); // the last session's; before, every session's 60 stayed (300)
    expect(await restoredSnapshot(inlinePair(backend))).toEqual(last.snapshot);
    await backend.close?.();
  });

  it("engine tiers of one store (the actor folds in the background): attach deletes them too", async () => {
    const store: StoreSpec = { kind: "sqlite", path: tmp.path("engine.db") };
    let last: unknown;
    for (let s = 1; s <= 4; s++) {
      const engine: StorageEngine = openStorageEngine({ threads: 1 });
      try {
        const graph = buildGraph();
            if (s > 1) await restoreSnapshot(graph, enginePair(engine, store));
        const handle = attachSnapshotStorage(graph, [enginePair(engine, store)]);
        await churn(graph, handle, 60, s);
        await handle.dispose();
        last = graph.snapshot();
      } finally {
        await engine.close();
      }
    }
    const backend = sqliteBackend(store.path);
    try {
      const { dead, live } = await frames(backend);
      expect(dead).toEqual([]); // before, every earlier session's frames stayed (180)
      expect(live).toHaveLength(60);
      expect(await restoredSnapshot(inlinePair(backend))).toEqual(last);
    } finally {
      await backend.close?.();
    }
  });
});

describe("what is not reclaimed, and failures", () => {
  it("an explicit compactEvery keeps every frame, as the references do", async () => {
    const backend = openBackend("memory", tmp);
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [inlinePair(backend)], { compactEvery: 20 });
    const random = rng(7);
    for (let i = 0; i < 100; i++) {
      randomWave(graph, random);
      await Promise.resolve();
    }
    await handle.flush();
    await new Promise((r) => setTimeout(r, 50)); // a reclaim would have run by now
    const { baselineSeq, dead } = await frames(backend);
    expect(baselineSeq).toBeGreaterThan(80);
    expect(dead).toEqual(Array.from({ length: dead.length }, (_, i) => i + 2)); // 2 …: consecutive from the first
    expect(dead.length).toBeGreaterThan(80);
    await handle.dispose();
  });

  it("a baseline the snapshot tier did not store (its filter dropped it) deletes nothing: restore still reads every change", async () => {
    const backend = openBackend("sqlite", tmp);
    const graph = buildGraph();
    // Only the attach baseline (seq 1) passes the filter: every periodic baseline's flush resolves with nothing stored.
    const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { filter: (r) => r.seq === 1 });
    const handle = attachSnapshotStorage(graph, [{ snapshot, wal: inlinePair(backend).wal }]);
    await churn(graph, handle, 600, 1);
    await new Promise((r) => setTimeout(r, 100)); // a reclaim would have run by now
    expect((await storedBaseline(backend)).seq).toBe(1);
    expect(await storedFrameSeqs(backend)).toHaveLength(600); // every frame since the attach baseline
    expect(await restoredSnapshot(inlinePair(backend))).toEqual(graph.snapshot());
    await handle.dispose();
    await backend.close?.();
  });

  it("a baseline rolled back before its debounce window closed deletes nothing", async () => {
    const backend = openBackend("memory", tmp);
    const graph = buildGraph();
    const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { debounceMs: 40 });
    const { wal } = inlinePair(backend);
    const handle = attachSnapshotStorage(graph, [{ snapshot, wal }]);
    await handle.flush();
    for (let i = 0; i < 300; i++) graph.set("c", `${"payload ".repeat(75)}${i}`); // a periodic baseline falls due
    await Promise.resolve();
    snapshot.rollback(); // the baseline is dropped before the window closes; the frames are written
    await wal.flush();
    await new Promise((r) => setTimeout(r, 150)); // past the window: a reclaim would have run by now
    expect((await storedBaseline(backend)).seq).toBe(1);
    expect(await storedFrameSeqs(backend)).toHaveLength(300);
    expect(await restoredSnapshot(inlinePair(backend))).toEqual(graph.snapshot());
  });

  it("a failing delete is reported, flush still acknowledges, and the next baseline deletes what was left", async () => {
    const backend = faultyBackend(openBackend("sqlite", tmp));
    const errors: Error[] = [];
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [inlinePair(backend)], { onError: (e) => void errors.push(e) });
    await handle.flush();
    // Every delete fails until healed (frames are written in batches of puts only).
    backend.inject({ op: "writeBatch", errno: "EIO", deletesOnly: true });
    backend.inject({ op: "delete", errno: "EIO" });
    await churn(graph, handle, 300, 1);
    expect(handle.seq).toBeGreaterThan(250);
    await until(() => errors.length > 0, "the failed delete to be reported");
    expect(errors[0]?.message).toMatch(/delete/);
    const stuck = await frames(backend.inner);
    expect(stuck.dead.length).toBeGreaterThan(0);
    backend.heal();
    await churn(graph, handle, 300, 2); // the next baselines retry
    await untilNoDeadFrames(backend.inner, "after healing");
    expect(await restoredSnapshot(inlinePair(backend.inner))).toEqual(graph.snapshot());
    await handle.dispose();
    await backend.close?.();
  });
});
