/**
 * The shared-WAL floors (src/persistence/shared-wal-floors.ts) are kept per WAL store and graph name (review r211,
 * task 213; docs/design.md §3.10, "Floors by store"). Until then a floor was keyed by a hash of the graph name alone
 * (256 slots): a memory store paired with a WAL on store A made every fold of the same graph name, or of any graph of
 * its slot, on store B delete nothing for as long as that pair lived (one graph name across per-tenant stores: B's
 * WAL grew without bound). Real SQLite files, real engine workers; the floors table itself through its own module.
 */
import { mkdirSync, symlinkSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openBackend } from "../../src/engine/actor.js";
import { openStorageEngine } from "../../src/engine/index.js";
import type { StoreSpec } from "../../src/engine/protocol.js";
import { createGraph } from "../../src/graph/graph.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraphInEngine } from "../../src/persistence/compaction.js";
import {
  adoptSharedWalFloors,
  adoptedSharedWalFloor,
  floorStoreOfBackend,
  floorStoreOfTier,
  ownSharedWalFloor,
  ownSharedWalFloors,
  publishSharedWalFloor,
} from "../../src/persistence/shared-wal-floors.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { tierStore } from "../../src/tier/store-identity.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { until } from "../support/wait.js";
import { storedSeqs } from "./fixtures/shared-wal.js";

const tmp = tempDir("shared-wal-floors-scope");
afterAll(() => tmp.remove());

function build(name: string): ReactiveGraph {
  const g = createGraph(name);
  for (const path of ["a", "b"]) g.state(path, 0);
  return g;
}

async function write(g: ReactiveGraph, h: { flush(): Promise<unknown> }, from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) g.set(i % 2 === 0 ? "a" : "b", i);
  await h.flush();
}

/**
 * A live group of graph `name` on store A (a SQLite file, inline tiers of this thread): A's own pair and a memory
 * store's, sharing A's WAL; its floor (the memory store's baseline, 0: none written) is published for A.
 */
async function memoryGroupOnA(aPath: string, name: string): Promise<{ dispose(): Promise<void> }> {
  const a = sqliteBackend(aPath);
  const g = build(name);
  const wal = kvStorage<WALFrame>(a, { codec: walFrameCodec });
  const h = attachSnapshotStorage(g, [
    { snapshot: snapshotStorage<GraphCheckpointRecord>(a, { compactEvery: 1_000_000 }), wal },
    { snapshot: snapshotStorage<GraphCheckpointRecord>(memoryBackend(), { compactEvery: 1_000_000 }), wal },
  ]);
  await write(g, h, 1, 5);
  expect(ownSharedWalFloor(floorStoreOfBackend(a), name)).toBeLessThanOrEqual(1); // its memory store's first baseline
  return {
    dispose: async () => {
      await h.dispose();
      a.close();
    },
  };
}

// "graph478" hashes (FNV-1a mod 256) to the slot of "g": the slot the old floors shared.
describe.each([
  ["the same graph name", "g"],
  ["another graph of the old floors' slot", "graph478"],
] as const)("store B folded through an engine while a memory store is paired with a WAL on store A (%s)", (_n, otherName) => {
  for (const memoryLive of [false, true]) {
    it(`compactGraphInEngine deletes B's covered frames (memory group on A ${memoryLive ? "live" : "absent, the control"})`, async () => {
      const bPath = tmp.path(`b-${otherName}-${memoryLive}.db`);
      const aPath = tmp.path(`a-${otherName}-${memoryLive}.db`);
      const engine = openStorageEngine({ threads: 1, onError: () => {} });
      const storeB: StoreSpec = { kind: "sqlite", path: bPath };
      const group = memoryLive ? await memoryGroupOnA(aPath, otherName) : undefined;
      try {
        // Store B: graph g, one pair of its own through the engine.
        const g = build("g");
        const h = attachSnapshotStorage(g, [
          {
            snapshot: engine.snapshot<GraphCheckpointRecord>(storeB, { compactEvery: 1_000_000 }),
            wal: engine.kv<WALFrame>(storeB, { codec: walFrameCodec }),
          },
        ]);
        await write(g, h, 1, 60);
        await h.dispose();
        const r = await compactGraphInEngine(engine, storeB, "g");
        // Store B has no memory store and no other pair: the fold deletes every frame its new baseline covers.
        // Before (live): 0, the floor of A's memory group held it.
        expect(r.deletedFrames).toBeGreaterThan(0);
        expect(storedSeqs(bPath).frames.filter((s) => s <= r.baselineSeq)).toEqual([]);
      } finally {
        await group?.dispose();
        await engine.close();
      }
    }, 120_000);
  }
});

describe("store B's autoCompact folds while a memory store is paired with graph g's WAL on store A", () => {
  it("delete the frames of B's graph g its new baselines cover", async () => {
    const bPath = tmp.path("b-auto.db");
    const aPath = tmp.path("a-auto.db");
    const engine = openStorageEngine({ threads: 1, onError: () => {}, autoCompact: { everyFrames: 20 } });
    const storeB: StoreSpec = { kind: "sqlite", path: bPath };
    const group = await memoryGroupOnA(aPath, "g");
    try {
      const g = build("g");
      // A one-pair attach on B through the engine: its config hands this thread's floors to B's actor.
      const h = attachSnapshotStorage(g, [
        {
          snapshot: engine.snapshot<GraphCheckpointRecord>(storeB, { compactEvery: 1_000_000 }),
          wal: engine.kv<WALFrame>(storeB, { codec: walFrameCodec }),
        },
      ]);
      for (let i = 1; i <= 100; i += 10) await write(g, h, i, i + 9);
      await h.dispose();
      // autoCompact writes a baseline every 20 frames whether or not it may delete any.
      await until(() => (storedSeqs(bPath).baseline ?? 0) >= 60, "an autoCompact fold of B", { timeoutMs: 60_000 });
      await engine.close(); // the folds it started end first
      const { baseline, frames } = storedSeqs(bPath);
      // Before: every frame kept (the floor of A's memory group, 0, held B's folds of g).
      expect(frames.filter((s) => s <= (baseline ?? 0))).toEqual([]);
    } finally {
      await group.dispose();
      await engine.close();
    }
  }, 120_000);
});

describe("a WAL store's name, as the main thread's tiers give it and as the store's actor opens it", () => {
  it("is the same for a SQLite file (inline, engine, through a link) and for an engine's memory store", async () => {
    const dir = tmp.path("names");
    mkdirSync(dir, { recursive: true });
    const path = `${dir}/s.db`;
    symlinkSync(path, `${dir}/link.db`);
    const engine = openStorageEngine({ threads: 1, onError: () => {} });
    const inline = sqliteBackend(path);
    try {
      const inActor = await openBackend({ kind: "sqlite", path }, "NORMAL");
      const viaLink = await openBackend({ kind: "sqlite", path: `${dir}/link.db` }, "NORMAL");
      const memoryInActor = await openBackend({ kind: "memory", name: "m" }, "NORMAL");
      try {
        const actorName = floorStoreOfBackend(inActor);
        const names = [
          floorStoreOfTier(tierStore(kvStorage(inline))!),
          floorStoreOfTier(tierStore(engine.kv({ kind: "sqlite", path }))!),
          floorStoreOfTier(tierStore(engine.kv({ kind: "sqlite", path: `${dir}/link.db` }))!),
          floorStoreOfBackend(viaLink),
        ];
        expect(names).toEqual(names.map(() => actorName));
        expect(floorStoreOfTier(tierStore(engine.kv({ kind: "memory", name: "m" }))!)).toBe(floorStoreOfBackend(memoryInActor));
        expect(floorStoreOfTier(tierStore(engine.kv({ kind: "memory", name: "n" }))!)).not.toBe(floorStoreOfBackend(memoryInActor));
        // An inline memory backend: no actor opens it, so no floor is published for it (its folds read the groups).
        expect(floorStoreOfTier(tierStore(kvStorage(memoryBackend()))!)).toBeUndefined();
      } finally {
        await inActor.close?.();
        await viaLink.close?.();
        await memoryInActor.close?.();
      }
    } finally {
      inline.close();
      await engine.close();
    }
  }, 60_000);
});

describe("the floors table (this thread's buffer, adopted here as an actor adopts it)", () => {
  it("keeps each (store, graph) apart, and more keys than slots hold each one's floor or a lower one", () => {
    adoptSharedWalFloors(ownSharedWalFloors());
    publishSharedWalFloor("sqlite:/x/a.db", "g", 7);
    publishSharedWalFloor("sqlite:/x/b.db", "h", 3);
    expect(adoptedSharedWalFloor("sqlite:/x/a.db", "g")).toBe(7);
    expect(adoptedSharedWalFloor("sqlite:/x/b.db", "g")).toBe(Number.POSITIVE_INFINITY);
    expect(adoptedSharedWalFloor("sqlite:/x/a.db", "graph478")).toBe(Number.POSITIVE_INFINITY);
    expect(adoptedSharedWalFloor("sqlite:/x/a.db", "h")).toBe(Number.POSITIVE_INFINITY);
    // A store name and a graph name are not joined ambiguously.
    publishSharedWalFloor("s", "a\nb", 1);
    expect(adoptedSharedWalFloor("s\na", "b")).toBe(Number.POSITIVE_INFINITY);
    publishSharedWalFloor("s", "a\nb", undefined);
    // 1,500 more keys than the 1,024 slots hold: each still reads its floor or a lower one (an overflow cell), never
    // none, never a higher one.
    const keys = Array.from({ length: 1_500 }, (_x, i) => [`file:/tenant/${i}`, `g${i % 7}`, 10 + (i % 50)] as const);
    for (const [store, graph, floor] of keys) publishSharedWalFloor(store, graph, floor);
    for (const [store, graph, floor] of keys) {
      const read = adoptedSharedWalFloor(store, graph);
      expect(read).toBeLessThanOrEqual(floor);
      expect(read).toBeGreaterThanOrEqual(0);
    }
    expect(adoptedSharedWalFloor("sqlite:/x/a.db", "g")).toBe(7);
    // Raised and withdrawn: the slots freed take the overflowed keys back, each then read exactly.
    for (const [store, graph] of keys.slice(0, 1_000)) publishSharedWalFloor(store, graph, undefined);
    for (const [store, graph] of keys.slice(0, 1_000)) expect(adoptedSharedWalFloor(store, graph)).toBe(Number.POSITIVE_INFINITY);
    for (const [store, graph, floor] of keys.slice(1_000)) expect(adoptedSharedWalFloor(store, graph)).toBe(floor);
    publishSharedWalFloor("sqlite:/x/a.db", "g", 9);
    expect(ownSharedWalFloor("sqlite:/x/a.db", "g")).toBe(9);
    for (const [store, graph] of keys.slice(1_000)) publishSharedWalFloor(store, graph, undefined);
    publishSharedWalFloor("sqlite:/x/a.db", "g", undefined);
    publishSharedWalFloor("sqlite:/x/b.db", "h", undefined);
    expect(adoptedSharedWalFloor("sqlite:/x/a.db", "g")).toBe(Number.POSITIVE_INFINITY);
  });
});
