/**
 * attach reports a tier's backpressure once per spell (docs/design.md §3.19): from the first refusal until the outbox
 * ran empty, as followers report a failing spell once (97e3ddf). It was reported again after every save that got
 * through, so a writer not pacing on drained() over a store slower than it made onError hear it ~16 times a second
 * (326 reports in 20 s: engine SQLite store, 256 KiB bound, 200 sets a turn). Real worker thread, real SQLite file.
 */
import { afterAll, expect, it } from "vitest";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { createGraph, restoreSnapshot, type ReactiveGraph as Graph } from "../../src/index.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { walFrameCodec } from "../../src/wal/index.js";
import { tempRoot } from "../engine/fixtures/helpers.js";

const root = tempRoot("attach-backpressure-reports");
afterAll(() => root.remove());

const NODES = 50;
/**
 * Store commits a burst runs on after its first report. Before the fix every commit between refusals brought one
 * more report (29-31 for 30 commits), so 10 tell one report from one a commit as surely, at a third of the turns.
 */
const COMMITS = 10;

function build(): Graph {
  const g = createGraph("g");
  for (let k = 0; k < NODES; k++) g.state(`n${k}`, 0);
  return g;
}

/** Plain backpressure reports (a collapse's report names its waves: a report of its own, once per spell too). */
const pressed = (errors: readonly Error[]): number =>
  errors.filter((e) => e instanceof StorageError && e.code === "backpressure" && e.details.waves === undefined).length;

it("a writer not pacing over a store slower than it: backpressure is reported once per spell, again after the outbox ran empty", async () => {
  const spec: StoreSpec = { kind: "sqlite", path: root.fresh("s.db") };
  // 64 KiB: one turn's 1,000 sets (~150-300 KB of frames) pass it, however fast the store.
  const engine = openStorageEngine({ threads: 1, maxPendingBytes: 64 * 1024 });
  const errors: Error[] = [];
  try {
    const graph = build();
    const handle = attachSnapshotStorage(graph, [{ snapshot: engine.snapshot(spec), wal: engine.kv(spec, { codec: walFrameCodec }) }], {
      onError: (e) => errors.push(e),
    });
    await handle.flush();
    let i = 0;
    /** Turns of 1,000 sets (more frames than the bound), without pacing, until the store committed `commits` flushes since a new report. */
    const burst = async (commits: number): Promise<void> => {
      const reported = pressed(errors);
      let refusedSince: number | undefined;
      let flushes = 0;
      for (let turn = 0; turn < 2_000; turn++) {
        for (let w = 0; w < 1000; w++) graph.set(`n${++i % NODES}`, i);
        await new Promise((r) => setImmediate(r));
        const [s] = await engine.stats();
        flushes = s!.flushes;
        if (refusedSince === undefined && pressed(errors) > reported) refusedSince = flushes;
        // Many saves got through meanwhile (each reported the backpressure again before).
        if (refusedSince !== undefined && flushes - refusedSince >= commits) return;
      }
      throw new Error(`no ${commits} commits after a report: reports ${pressed(errors) - reported}, flushes ${flushes} (${String(refusedSince)} at the report)`);
    };
    await burst(COMMITS);
    expect(pressed(errors)).toBe(1); // before: one per save that got through between refusals
    // Caught up: the outbox ran empty, so the spell ended; the next one is reported again, once.
    await handle.flush();
    await burst(COMMITS);
    expect(pressed(errors)).toBe(2);
    const seq = await handle.flush();
    const live = Array.from({ length: NODES }, (_, k) => graph.get(`n${k}`));
    await handle.dispose();
    const restored = build();
    const result = await restoreSnapshot(restored, { snapshot: engine.snapshot(spec), wal: engine.kv(spec, { codec: walFrameCodec }) });
    expect(result.finalSeq).toBe(seq);
    expect(Array.from({ length: NODES }, (_, k) => restored.get(`n${k}`))).toEqual(live);
  } finally {
    await engine.close();
  }
}, 120_000);
