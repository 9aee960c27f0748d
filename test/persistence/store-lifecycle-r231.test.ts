/**
 * Review r231 of task 223's store lifecycle (task 234): a fold rule's release dropped when the WAL tier's close
 * began first (F1: the store stayed open with no tier until engine.close()); the engine's replay list of a watcher
 * key growing by two configs per attach/dispose cycle once a shared-WAL handle ended on the store, each send copying
 * it (F2), and bounded whatever a watcher answers; an attach that threw after handing its rule over never took it
 * back (F3). Real worker threads, real SQLite files.
 */
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { StorageEngine, StoreSpec } from "../../src/engine/index.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { GraphCheckpointRecord, StorageHandle } from "../../src/persistence/storage-types.js";
import type { SnapshotStorageTier } from "../../src/tier/types.js";
import { tempRoot } from "../engine/fixtures/helpers.js";
import { closePair, graph, openStores, tiers, withEngine, withTestEngine, type EnginePair } from "./fixtures/fold-rule-stores.js";

/** The commit-watcher tests' worker entry: the package's watchers plus "test-recorder" (configure answers nothing). */
const WATCHER_WORKER = fileURLToPath(new URL("../engine/fixtures/watcher-worker.mjs", import.meta.url));
const root = tempRoot("r231");
afterAll(() => root.remove());

/** The connection's replay list for one watcher key (a private field, read at run time). */
function kept(tier: unknown, graphName: string): number {
  const conn = (tier as { conn: { watcherConfigs: Map<string, unknown[]> } }).conn;
  return conn.watcherConfigs.get(`wal-growth\n${graphName}`)?.length ?? 0;
}

/** Graph g, written once and flushed, attached to one engine pair (default cadence: its fold rule goes to the actor). */
async function attachedAndFlushed(engine: StorageEngine, name: string): Promise<{ pair: EnginePair; h: StorageHandle }> {
  const pair = tiers(engine, { kind: "sqlite", path: root.fresh(name) });
  const g = graph("g");
  const h = attachSnapshotStorage(g, [pair]);
  g.set("a", 1);
  await h.flush();
  return { pair, h };
}

/**
 * Graph g attached to a shared-WAL group on store `main`: the pair, and a second pair of a snapshot tier on another
 * store sharing the same WAL tier object.
 */
function sharedWalGroup(
  engine: StorageEngine,
  main: StoreSpec,
  other: StoreSpec,
): { pair: EnginePair; otherSnap: SnapshotStorageTier<GraphCheckpointRecord>; g: ReactiveGraph; h: StorageHandle } {
  const pair = tiers(engine, main);
  const otherSnap = engine.snapshot<GraphCheckpointRecord>(other);
  const g = graph("g");
  const h = attachSnapshotStorage(g, [pair, { snapshot: otherSnap, wal: pair.wal }]);
  return { pair, otherSnap, g, h };
}

describe("r231 F1: the release is dropped when the tiers' close begins before dispose's last flush ended", () => {
  it("dispose and the tiers' close started together: the store stays open (the rule is held)", async () => {
    await withEngine(async (engine) => {
      const { pair, h } = await attachedAndFlushed(engine, "together.db");
      // A shutdown path closing everything at once: dispose's release comes after its flush, once the tiers are closing.
      await Promise.allSettled([h.dispose(), pair.snapshot.close(), pair.wal.close()]); // dispose rejects: its flush met closed tiers
      expect(await openStores(engine)).toBe(0); // before: 1 (the fold rule was never taken back)
    });
  }, 120_000);

  it("the WAL tier closed, the snapshot tier (same store) still open, then dispose: the store never shuts down", async () => {
    await withEngine(async (engine) => {
      const { pair, h } = await attachedAndFlushed(engine, "wal-first.db");
      await pair.wal.close(); // the store's actor stays (the snapshot tier is open)
      await h.dispose().catch(() => undefined); // its flush rejects (closed WAL tier); the release throws "closed" on the WAL tier, swallowed
      await pair.snapshot.close();
      expect(await openStores(engine)).toBe(0); // before: 1
    });
  }, 120_000);
});

describe("r231 F2: the replay list grows by 2 per attach/dispose cycle once a graph was in a shared-WAL group on the store", () => {
  it("50 one-pair attach/dispose cycles after a shared-WAL handle ended keep ~101 configs for one key", async () => {
    await withEngine(async (engine) => {
      const s: StoreSpec = { kind: "sqlite", path: root.fresh("shared.db") };
      const other: StoreSpec = { kind: "sqlite", path: root.fresh("other.db") };
      // Two pairs sharing the WAL tier object: a shared-WAL group; its dispose sends a pin with attached: [].
      const { pair, otherSnap, g, h: shared } = sharedWalGroup(engine, s, other);
      g.set("a", "shared");
      await shared.flush();
      await shared.rebaseline();
      await shared.dispose();
      for (let i = 0; i < 50; i++) {
        const h = attachSnapshotStorage(g, [pair]); // background rule: the watcher answers false (#attached has g)
        g.set("b", i);
        await h.flush();
        await h.dispose(); // release: false again
      }
      const n = kept(pair.wal, "g");
      expect(n).toBeLessThanOrEqual(3); // before: 101 (2 per cycle, for as long as the store stays open)
      await otherSnap.close();
      await closePair(pair);
    });
  }, 180_000);
});

describe("the replay list of a watcher that never answers \"replaces every earlier one\"", () => {
  it("keeps at most the last 16 configs of a key: 200 configs sent through a tier", async () => {
    await withTestEngine(async ({ engine }) => {
      const kv = engine.kv<unknown>({ kind: "sqlite", path: root.fresh("bound.db") }, { name: "w" });
      // The test entry's recorder takes every config and answers nothing. (A watcher name not registered no longer
      // fits: since review r237 the actor answers each such config "refused" and the engine drops it.)
      for (let i = 0; i < 200; i++) kv.configureCommitWatcher!("test-recorder", "k", { prefix: "never-written/", i });
      await kv.flush();
      const conn = (kv as unknown as { conn: { watcherConfigs: Map<string, Array<{ config: { i: number } }>> } }).conn;
      const list = conn.watcherConfigs.get("test-recorder\nk") ?? [];
      expect(list.map((c) => c.config.i)).toEqual(Array.from({ length: 16 }, (_, j) => 184 + j)); // the newest, in order
      await kv.close();
    }, WATCHER_WORKER);
  }, 60_000);
});

describe("r231 (sound): a live shared-WAL handle's pin per baseline replaces the one before it in the replay list", () => {
  it("100 rebaselines keep at most 2 configs for the key", async () => {
    await withEngine(async (engine) => {
      const main: StoreSpec = { kind: "sqlite", path: root.fresh("pins.db") };
      const { pair, otherSnap, g, h } = sharedWalGroup(engine, main, { kind: "sqlite", path: root.fresh("pins-other.db") });
      for (let i = 0; i < 100; i++) {
        g.set("a", i);
        await h.rebaseline();
      }
      await pair.wal.flush();
      expect(kept(pair.wal, "g")).toBeLessThanOrEqual(2);
      await h.dispose();
      await otherSnap.close();
      await closePair(pair);
    });
  }, 180_000);
});

describe("r231 F3: an attach that throws after handing its fold rule to the actor never takes it back", () => {
  it("graph.snapshot() throws during attach: the store stays open with every tier closed", async () => {
    await withEngine(async (engine) => {
      const pair = tiers(engine, { kind: "sqlite", path: root.fresh("attach-throws.db") });
      const g = graph("g");
      // A graph whose snapshot fails (any graph not the built-in one is snapshotted at attach).
      Object.defineProperty(g, "snapshot", { value: () => { throw new Error("snapshot failed"); } });
      expect(() => attachSnapshotStorage(g, [pair])).toThrow("snapshot failed");
      await closePair(pair);
      expect(await openStores(engine)).toBe(0); // before: 1 (the rule cadenceOf sent stays)
    });
  }, 120_000);
});
