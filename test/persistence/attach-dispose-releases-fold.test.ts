/**
 * Task 223: a default attach through the engine hands the graph's fold rule to its WAL store's actor (background
 * folding) and dispose never took it back, so the store stayed open until engine.close(), after dispose and with
 * every tier closed: a server attaching and disposing one graph per tenant kept one actor (and its SQLite
 * connection) per tenant ever seen. Now dispose takes the rule back after its last flush: a store nothing else holds
 * shuts down with its last tier; a graph attached again folds again; another graph's rule on the store is its own.
 * Real worker threads, real SQLite files.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { StoreSpec } from "../../src/engine/index.js";
import { unpinSharedWal } from "../../src/persistence/shared-wal.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { tempRoot } from "../engine/fixtures/helpers.js";
import { closePair, disposeAndClose, expectFolded, graph, openStores, restored, tiers, touchStore, withEngine, withTestEngine, writePadded } from "./fixtures/fold-rule-stores.js";

const root = tempRoot("t223-dispose-fold");
afterAll(() => root.remove());

describe("dispose of a graph attached through the engine with background folding", () => {
  it("lets each tenant's store shut down: 50 tenants attached, written, disposed and closed leave 0 store actors", async () => {
    const paths: string[] = [];
    await withEngine(async (engine) => {
      for (let t = 0; t < 50; t++) {
        const path = root.fresh(`tenant-${t}.db`);
        paths.push(path);
        const pair = tiers(engine, { kind: "sqlite", path });
        const g = graph("g");
        const h = attachSnapshotStorage(g, [pair]); // default cadence: the store's actor folds in the background
        g.set("a", t);
        g.set("b", `tenant ${t}`);
        await h.flush();
        await disposeAndClose(h, pair);
      }
      // Before: 50 (each store kept open by the fold rule dispose left set).
      expect(await openStores(engine)).toBe(0);
    });
    expect(await restored(paths[31]!, "g")).toEqual({ a: 31, b: "tenant 31" });
  }, 180_000);

  it("folds a graph attached again after dispose in the background again", async () => {
    const path = root.fresh("again.db");
    const g = graph("g");
    await withEngine(async (engine) => {
      const pair = tiers(engine, { kind: "sqlite", path });
      const first = attachSnapshotStorage(g, [pair]);
      g.set("a", "first");
      await first.flush();
      await first.dispose(); // takes the rule back, through the same tiers (they stay open)
      const second = attachSnapshotStorage(g, [pair]); // hands it again: after the release, in the store's order
      await writePadded(g, second, 600); // ~600 KiB of frames: several times the size rule's bound (2 × 64 KiB)
      await disposeAndClose(second, pair);
      expect(await openStores(engine)).toBe(0); // released again: nothing holds the store
    });
    await expectFolded(path, g);
  }, 120_000);

  it("of one of two graphs on one store leaves the other's rule: its folds go on; both disposed, the store shuts down", async () => {
    const path = root.fresh("two-graphs.db");
    const one = graph("one");
    const two = graph("two");
    await withEngine(async (engine) => {
      const pair = tiers(engine, { kind: "sqlite", path });
      const h1 = attachSnapshotStorage(one, [pair]);
      const h2 = attachSnapshotStorage(two, [pair]);
      one.set("a", 1);
      two.set("a", 1);
      await Promise.all([h1.flush(), h2.flush()]);
      await h1.dispose();
      await writePadded(two, h2, 600); // folded in the background: graph two's rule is its own
      await disposeAndClose(h2, pair);
      expect(await openStores(engine)).toBe(0);
    });
    await expectFolded(path, two);
    expect(await restored(path, "one")).toEqual({ a: 1, b: 0 });
  }, 120_000);
});

describe("a store actor restarted (its worker terminated) after configs of a graph's rule", () => {
  it("after the rule's release holds nothing: the store shuts down with its last tier", async () => {
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("revive-released.db") };
    await withTestEngine(async (access) => {
      const engine = access.engine;
      const pair = tiers(engine, store);
      const g = graph("g");
      const h = attachSnapshotStorage(g, [pair]);
      g.set("a", 1);
      await h.flush();
      await h.dispose(); // the release follows the rule (and attach's lift) in the store's order
      await access.terminate(store);
      await touchStore(engine, store); // the next op starts a new actor: configs replayed
      await closePair(pair);
      expect(await openStores(engine)).toBe(0);
    });
  }, 120_000);

  it("after a rule and a lift keeps the rule: the store stays open with no tier, and the graph's WAL is folded", async () => {
    const path = root.fresh("revive-rule.db");
    const store: StoreSpec = { kind: "sqlite", path };
    const g = graph("g");
    await withTestEngine(async (access) => {
      const engine = access.engine;
      const pair = tiers(engine, store);
      const h = attachSnapshotStorage(g, [pair]);
      g.set("a", 1);
      await h.flush();
      for (let i = 0; i < 5; i++) unpinSharedWal(g.name, pair.wal); // lifts: the rule stays (replayed before them)
      await access.terminate(store);
      await writePadded(g, h, 600);
      await touchStore(engine, store);
      expect(await openStores(engine)).toBe(1); // a live handle's rule, known to the new actor
      await disposeAndClose(h, pair);
      expect(await openStores(engine)).toBe(0);
    });
    await expectFolded(path, g);
  }, 120_000);
});
