/**
 * Task 223: a default attach through the engine hands the graph's fold rule to its WAL store's actor (background
 * folding) and dispose never took it back, so the store stayed open until engine.close(), after dispose and with
 * every tier closed: a server attaching and disposing one graph per tenant kept one actor (and its SQLite
 * connection) per tenant ever seen. Now dispose takes the rule back after its last flush: a store nothing else holds
 * shuts down with its last tier; a graph attached again folds again; another graph's rule on the store is its own.
 * Real worker threads, real SQLite files.
 */
import { afterAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { openStorageEngineForTests, workerEntryPath } from "../../src/engine/engine.js";
import { unpinSharedWal } from "../../src/persistence/shared-wal.js";
import { createGraph } from "../../src/graph/graph.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord, StorageHandle } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { parseWalFrameKey } from "../../src/wal/keys.js";
import { tempRoot } from "../engine/fixtures/helpers.js";

const root = tempRoot("t223-dispose-fold");
afterAll(() => root.remove());

function graph(name: string): ReactiveGraph {
  const g = createGraph(name);
  for (const path of ["a", "b"]) g.state(path, 0);
  return g;
}

/** `count` waves of one set each with a 1 KiB value (the size rule's fold falls due), flushed every 50 and at the end. */
async function writePadded(g: ReactiveGraph, h: StorageHandle, count: number): Promise<void> {
  const pad = "x".repeat(1024);
  for (let i = 0; i < count; i++) {
    g.set(i % 2 === 0 ? "a" : "b", `${i}${pad}`);
    if (i % 50 === 49) await h.flush();
  }
  await h.flush();
}

/** WAL frames of graph `name` stored in the SQLite file (read after the engine closed). */
function framesOf(path: string, name: string): number {
  const b = sqliteBackend(path);
  try {
    return (b.list(`${name}/wal/`) as string[]).filter((k) => parseWalFrameKey(`${name}/wal`, k) !== undefined).length;
  } finally {
    b.close();
  }
}

/** Graph `name` restored from the SQLite file (baseline and frames), as { a, b }. */
async function restored(path: string, name: string): Promise<unknown> {
  const backend = sqliteBackend(path);
  const g = graph(name);
  try {
    await restoreSnapshot(g, { snapshot: snapshotStorage<GraphCheckpointRecord>(backend), wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }) });
    return { a: g.get("a"), b: g.get("b") };
  } finally {
    backend.close();
  }
}

function tiers(engine: StorageEngine, store: StoreSpec) {
  return { snapshot: engine.snapshot<GraphCheckpointRecord>(store), wal: engine.kv<WALFrame>(store, { codec: walFrameCodec }) };
}

describe("dispose of a graph attached through the engine with background folding", () => {
  it("lets each tenant's store shut down: 50 tenants attached, written, disposed and closed leave 0 store actors", async () => {
    const engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0, onError: () => {} });
    const paths: string[] = [];
    try {
      for (let t = 0; t < 50; t++) {
        const path = root.fresh(`tenant-${t}.db`);
        paths.push(path);
        const pair = tiers(engine, { kind: "sqlite", path });
        const g = graph("g");
        const h = attachSnapshotStorage(g, [pair]); // default cadence: the store's actor folds in the background
        g.set("a", t);
        g.set("b", `tenant ${t}`);
        await h.flush();
        await h.dispose();
        await pair.snapshot.close();
        await pair.wal.close();
      }
      // Before: 50 (each store kept open by the fold rule dispose left set).
      expect((await engine.stats()).length).toBe(0);
    } finally {
      await engine.close();
    }
    expect(await restored(paths[31]!, "g")).toEqual({ a: 31, b: "tenant 31" });
  }, 180_000);

  it("folds a graph attached again after dispose in the background again", async () => {
    const path = root.fresh("again.db");
    const engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0, onError: () => {} });
    const g = graph("g");
    try {
      const pair = tiers(engine, { kind: "sqlite", path });
      const first = attachSnapshotStorage(g, [pair]);
      g.set("a", "first");
      await first.flush();
      await first.dispose(); // takes the rule back, through the same tiers (they stay open)
      const second = attachSnapshotStorage(g, [pair]); // hands it again: after the release, in the store's order
      await writePadded(g, second, 600); // ~600 KiB of frames: several times the size rule's bound (2 × 64 KiB)
      await second.dispose();
      await pair.snapshot.close();
      await pair.wal.close();
      expect((await engine.stats()).length).toBe(0); // released again: nothing holds the store
    } finally {
      await engine.close();
    }
    // Unfolded, all 600 frames (and more) would be there.
    expect(framesOf(path, "g")).toBeLessThan(300);
    expect(await restored(path, "g")).toEqual({ a: g.get("a"), b: g.get("b") });
  }, 120_000);

  it("of one of two graphs on one store leaves the other's rule: its folds go on; both disposed, the store shuts down", async () => {
    const path = root.fresh("two-graphs.db");
    const engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0, onError: () => {} });
    const one = graph("one");
    const two = graph("two");
    try {
      const pair = tiers(engine, { kind: "sqlite", path });
      const h1 = attachSnapshotStorage(one, [pair]);
      const h2 = attachSnapshotStorage(two, [pair]);
      one.set("a", 1);
      two.set("a", 1);
      await Promise.all([h1.flush(), h2.flush()]);
      await h1.dispose();
      await writePadded(two, h2, 600); // folded in the background: graph two's rule is its own
      await h2.dispose();
      await pair.snapshot.close();
      await pair.wal.close();
      expect((await engine.stats()).length).toBe(0);
    } finally {
      await engine.close();
    }
    expect(framesOf(path, "two")).toBeLessThan(300);
    expect(await restored(path, "two")).toEqual({ a: two.get("a"), b: two.get("b") });
    expect(await restored(path, "one")).toEqual({ a: 1, b: 0 });
  }, 120_000);
});

describe("a store actor restarted (its worker terminated) after configs of a graph's rule", () => {
  it("after the rule's release holds nothing: the store shuts down with its last tier", async () => {
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("revive-released.db") };
    const access = openStorageEngineForTests({ threads: 1, idleStoreCloseMs: 0, onError: () => {} }, workerEntryPath());
    const engine = access.engine;
    try {
      const pair = tiers(engine, store);
      const g = graph("g");
      const h = attachSnapshotStorage(g, [pair]);
      g.set("a", 1);
      await h.flush();
      await h.dispose(); // the release follows the rule (and attach's lift) in the store's order
      await access.terminate(store);
      const other = engine.kv<number>(store, { name: "other" }); // the next op starts a new actor: configs replayed
      other.save("x", 1);
      await other.close();
      await pair.snapshot.close();
      await pair.wal.close();
      expect((await engine.stats()).length).toBe(0);
    } finally {
      await engine.close();
    }
  }, 120_000);

  it("after a rule and a lift keeps the rule: the store stays open with no tier, and the graph's WAL is folded", async () => {
    const path = root.fresh("revive-rule.db");
    const store: StoreSpec = { kind: "sqlite", path };
    const access = openStorageEngineForTests({ threads: 1, idleStoreCloseMs: 0, onError: () => {} }, workerEntryPath());
    const engine = access.engine;
    const g = graph("g");
    try {
      const pair = tiers(engine, store);
      const h = attachSnapshotStorage(g, [pair]);
      g.set("a", 1);
      await h.flush();
      for (let i = 0; i < 5; i++) unpinSharedWal(g.name, pair.wal); // lifts: the rule stays (replayed before them)
      await access.terminate(store);
      await writePadded(g, h, 600);
      const other = engine.kv<unknown>(store, { name: "other" });
      other.save("x", 1);
      await other.close();
      expect((await engine.stats()).length).toBe(1); // a live handle's rule, known to the new actor
      await h.dispose();
      await pair.snapshot.close();
      await pair.wal.close();
      expect((await engine.stats()).length).toBe(0);
    } finally {
      await engine.close();
    }
    expect(framesOf(path, "g")).toBeLessThan(300);
    expect(await restored(path, "g")).toEqual({ a: g.get("a"), b: g.get("b") });
  }, 120_000);
});
