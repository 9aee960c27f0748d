/**
 * Review r237 #1: MAX_REPLAYED_CONFIGS kept the newest 16 configs of a watcher key whatever the watcher answered. A
 * fold rule followed by configs that do not replace it (lifts, which keep a rule: task 222; invalid configs, which
 * leave the rule before them in force: docs/api.md) was dropped from the replay list once 16 of them came after it,
 * while the live actor still had it. A crash-restarted actor then never got the rule: the live handle's WAL was
 * never folded again, and the store no longer counted as holding state. Now the config answered "replaces all" is
 * never evicted, a repeat of the last config takes its place, and a refused one is dropped (connection.ts).
 * Real worker threads, real SQLite file. 15 configs: control; 40 alternating lifts and invalid configs: both kinds.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { StoreSpec } from "../../src/engine/index.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { tempRoot } from "../engine/fixtures/helpers.js";
import { closePair, framesOf, graph, openStores, tiers, touchStore, withTestEngine, writePadded } from "../persistence/fixtures/fold-rule-stores.js";

const root = tempRoot("r237-replay");
afterAll(() => root.remove());

async function scenario(kind: "lift" | "invalid" | "mixed", count: number): Promise<{ kept: number; frames: number }> {
  const path = root.fresh(`${kind}-${count}.db`);
  const store: StoreSpec = { kind: "sqlite", path };
  const g = graph("g");
  const kept = await withTestEngine(async (access) => {
    const engine = access.engine;
    const pair = tiers(engine, store);
    const h = attachSnapshotStorage(g, [pair]); // default cadence: the rule goes to the store's actor
    g.set("a", 1);
    await h.flush();
    // Public API (docs/api.md configureCommitWatcher): configs that leave the live handle's rule in force.
    for (let i = 0; i < count; i++) {
      const lift = kind === "lift" || (kind === "mixed" && i % 2 === 0);
      pair.wal.configureCommitWatcher?.("wal-growth", "g", lift ? { keepAboveSeq: Number.POSITIVE_INFINITY } : { ratio: -1, minBytes: 0 });
    }
    await h.flush();
    await access.terminate(store); // the actor crashes: the next op starts a new one, configs replayed
    await writePadded(g, h, 600); // due for folds many times over under the rule (ratio 2, 64 KiB min)
    await touchStore(engine, store);
    await closePair(pair);
    const open = await openStores(engine); // 1: the new actor holds the live handle's rule
    await h.dispose().catch(() => undefined);
    return open;
  });
  return { kept, frames: framesOf(path, "g") };
}

describe("r237: a crash-restarted actor after a fold rule and 16 configs that keep it", () => {
  for (const kind of ["lift", "invalid"] as const) {
    it(`${kind}: 15 after the rule: the new actor still folds (control)`, async () => {
      const r = await scenario(kind, 15);
      expect(r.kept).toBe(1);
      expect(r.frames).toBeLessThan(300);
    }, 120_000);
    it(`${kind}: 16 after the rule: the new actor still holds and folds the live handle's rule`, async () => {
      const r = await scenario(kind, 16);
      expect.soft(r.kept).toBe(1); // was 0: the rule was dropped from the replay list
      expect(r.frames).toBeLessThan(300); // was ~600: nothing folded after the crash
    }, 120_000);
  }
  it("mixed: 40 lifts and invalid configs alternating after the rule: the new actor still folds", async () => {
    const r = await scenario("mixed", 40);
    expect.soft(r.kept).toBe(1);
    expect(r.frames).toBeLessThan(300);
  }, 120_000);
});
