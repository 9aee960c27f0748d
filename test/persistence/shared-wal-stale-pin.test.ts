/**
 * The engine's background fold reports a stale pin of the shared-WAL record once (docs/design.md §3.10): a store
 * the WAL's store records as restoring from it (pairs sharing a WAL tier) whose seq held the graph's frames back at
 * two folds in a row. The record never expires on its own, so a store removed for good kept every frame above its
 * last baseline, and the folds (autoCompact here) said nothing while the WAL grew: onError heard nothing. Now it
 * hears StorageError `wal-pinned` (details.store, seq) once per graph and store. Real worker thread, real SQLite files.
 */
import { realpathSync } from "node:fs";
import { afterAll, expect, it } from "vitest";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { build, restoredFrom } from "./fixtures/shared-wal.js";

const tmp = tempDir("shared-wal-stale-pin");
afterAll(() => tmp.remove());

const pinned = (errors: readonly Error[]): StorageError[] =>
  errors.filter((e): e is StorageError => e instanceof StorageError && e.code === "wal-pinned");

it("a store whose pin does not move while the WAL's store folds: onError hears it once", async () => {
  const one = tmp.path("one.db");
  const two = tmp.path("two.db");
  const errors: Error[] = [];
  const contexts: Array<string | undefined> = [];
  // The WAL's store folds graph g every 20 frames committed.
  const engine = openStorageEngine({ threads: 1, autoCompact: { everyFrames: 20 }, onError: (e, ctx) => (errors.push(e), contexts.push(ctx.tier)) });
  try {
    const spec = (path: string): StoreSpec => ({ kind: "sqlite", path });
    const g = build();
    const wal = engine.kv(spec(one), { codec: walFrameCodec });
    // Store two never writes a baseline after its attach one (compactEvery huge): its pin stays at that seq.
    const h = attachSnapshotStorage(g, [
      { snapshot: engine.snapshot(spec(one), { compactEvery: 1_000_000 }), wal },
      { snapshot: engine.snapshot(spec(two), { compactEvery: 1_000_000 }), wal },
    ]);
    let i = 0;
    const waves = async (n: number): Promise<void> => {
      for (let k = 0; k < n; k++, i++) {
        g.set(i % 2 === 0 ? "a" : "b", i);
        if (i % 10 === 9) await h.flush();
      }
      await h.flush();
    };
    // Until the report comes (folds run in the store's actor as frames commit), at most 3,000 waves (150 folds).
    while (pinned(errors).length === 0 && i < 3_000) await waves(100);
    expect(pinned(errors)).toHaveLength(1); // before: none, whatever the WAL kept
    await waves(300); // more folds, the pin still where it was: not again
    expect(pinned(errors)).toHaveLength(1);
    const [report] = pinned(errors);
    expect(report!.details).toMatchObject({ graphName: "g", store: `sqlite:${realpathSync(two)}` });
    expect(report!.details.seq as number).toBeLessThan(report!.details.baselineSeq as number);
    expect(contexts[errors.indexOf(report!)]).toBe("g");
    expect(errors.filter((e) => !pinned(errors).includes(e as StorageError))).toEqual([]); // nothing else went wrong
    const live = { a: g.get("a"), b: g.get("b") };
    await h.dispose();
    await engine.close();
    // The pin kept what store two needs: both stores restore the live graph.
    expect({ one: await restoredFrom(one, one), two: await restoredFrom(two, one) }).toEqual({ one: live, two: live });
  } finally {
    await engine.close();
  }
}, 120_000);
