/**
 * attach's outbox while its store is stuck (review s15c2 D-A): a writer not pacing on drained() kept every wave queued,
 * each with a copy of its diff (~400 B a wave: 1 GB of heap after 15 s of a paused PostgreSQL). Now queued waves past
 * maxQueuedBytes are replaced by one own baseline of the persisted state (docs/design.md §3.19): the outbox holds a
 * bounded number of items, the store catches up with one baseline, and restore (and a follower) equal the live graph.
 * Pairs sharing a WAL tier number alike, so they replace their queued waves together, each numbering its baseline
 * above whatever any of them numbered. The stuck store is real: a SQLite file another process holds locked
 * (test/support/sqlite-locker.cjs), written by an engine worker, until the test lets go.
 */
import { afterAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { createGraph, restoreSnapshot, type ReactiveGraph as Graph } from "../../src/index.js";
import { attachOutboxes, attachSnapshotStorage } from "../../src/persistence/attach.js";
import { followGraph } from "../../src/persistence/follow.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { graphWalPrefix, walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { tempRoot } from "../engine/fixtures/helpers.js";
import { lockSqliteFile } from "../support/sqlite-locker.js";

const root = tempRoot("attach-queue-bound");
afterAll(() => root.remove());

const NODES = 50;
/** Waves made while the store is locked: 40 turns of 250 (the engine's answers and timers run between turns). */
const TURNS = 40;
const WAVES_PER_TURN = 250;
/** A set of one node estimates ~330 B (size-estimate.ts): 32 KiB is ~100 waves. */
const MAX_QUEUED_BYTES = 32 * 1024;
/** Items the outbox may hold: the bound's worth of waves (plus the one that passed it), and one baseline. */
const QUEUED_MAX = 200;

function build(): Graph {
  const g = createGraph("g");
  for (let k = 0; k < NODES; k++) g.state(`n${k}`, 0);
  return g;
}

const values = (g: Graph): unknown[] => Array.from({ length: NODES }, (_, k) => g.get(`n${k}`));

/**
 * handle.flush() once the lock is gone: an attempt that met the lock (a retry of a write that failed while it was
 * held) rejects with the transient store-busy, as documented (§3.16); the next flush stores everything.
 */
async function flushAfterLock(handle: { flush(): Promise<number> }): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await handle.flush();
    } catch (err) {
      if (!(err instanceof StorageError && err.code === "store-busy") || attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Collapse reports: StorageError backpressure naming how many waves one baseline replaced. */
const collapses = (errors: readonly Error[]): StorageError[] =>
  errors.filter((e): e is StorageError => e instanceof StorageError && e.code === "backpressure" && typeof e.details.waves === "number");

it("a graph changing 10,000 times on a locked store holds a bounded outbox; after the lock flush resolves, restore and a follower equal the live graph", async () => {
  const path = root.fresh("stuck.db");
  const spec: StoreSpec = { kind: "sqlite", path };
  const engine = openStorageEngine({ threads: 1, maxPendingBytes: 64 * 1024 });
  const errors: Error[] = [];
  try {
    const graph = build();
    // compactEvery Infinity: no periodic baseline and no reclaim, so the WAL keeps every frame the outbox wrote.
    const handle = attachSnapshotStorage(graph, [{ snapshot: engine.snapshot(spec), wal: engine.kv(spec, { codec: walFrameCodec }) }], {
      compactEvery: Number.POSITIVE_INFINITY,
      maxQueuedBytes: MAX_QUEUED_BYTES,
      onError: (e) => errors.push(e),
    });
    graph.set("n0", -1);
    const before = await handle.flush();
    // A follower reading the file beside the writer (read-only, inline), caught up before the lock.
    const reader = sqliteBackend(path, { readOnly: true });
    const followed = build();
    const follower = await followGraph(
      followed,
      { snapshot: snapshotStorage<GraphCheckpointRecord>(reader), wal: kvStorage<WALFrame>(reader, { codec: walFrameCodec }) },
      { pollMs: 3_600_000 },
    );
    try {
      expect((await follower.poll()).appliedSeq).toBe(before);
      const [outbox] = attachOutboxes(handle);
      let most = 0;
      let i = 0;
      const locker = await lockSqliteFile(path);
      try {
        for (let turn = 0; turn < TURNS; turn++) {
          for (let w = 0; w < WAVES_PER_TURN; w++) {
            i++;
            graph.set(`n${i % NODES}`, i);
          }
          most = Math.max(most, outbox!.queued);
          await new Promise((r) => setImmediate(r));
        }
        // The store took nothing meanwhile, so the outbox was never empty: one spell, reported once.
        expect(collapses(errors)).toHaveLength(1);
        await locker.release();
      } finally {
        locker.kill();
      }
      expect(most).toBeGreaterThan(0); // the store was stuck: waves did wait
      expect(most).toBeLessThanOrEqual(QUEUED_MAX);
      const seq = await flushAfterLock(handle);
      expect(outbox!.queued).toBe(0);
      const live = values(graph);
      // The store caught up with one baseline, not the 10,000 waves' frames.
      const frames = await engine.kv<WALFrame>(spec, { codec: walFrameCodec }).list(`${graphWalPrefix("g")}/`);
      expect(frames.length).toBeLessThan(2_000);
      await handle.dispose();

      const restored = build();
      const result = await restoreSnapshot(restored, { snapshot: engine.snapshot(spec), wal: engine.kv(spec, { codec: walFrameCodec }) });
      expect(result.finalSeq).toBe(seq);
      expect(values(restored)).toEqual(live);
      // The follower finds the baseline above the frames it had (they were never written) and loads it.
      expect((await follower.poll()).appliedSeq).toBe(seq);
      expect(values(followed)).toEqual(live);
      expect(follower.stats().reloads).toBeGreaterThan(0);
    } finally {
      await follower.stop();
      await reader.close();
    }
  } finally {
    await engine.close();
  }
}, 120_000);

describe("pairs sharing a WAL tier", () => {
  /**
   * Two pairs, one WAL tier (in store A, beside pair 0's baseline; pair 1's baseline in store B). `locked` is the
   * store another process holds while the graph changes 10,000 times; with `rebaselineFirst` a rebaseline is asked for
   * just after the lock, so pair 1's own baseline cannot be made durable (store B locked) while pair 0's is: pair 0's
   * frames wait for pair 1's, and the pairs' seqs differ when their queued waves are replaced.
   */
  async function stuckGroup(locked: "A" | "B", rebaselineFirst: boolean): Promise<void> {
    const paths = [root.fresh("a.db"), root.fresh("b.db")];
    const specs: StoreSpec[] = paths.map((path) => ({ kind: "sqlite", path }));
    const engine = openStorageEngine({ threads: 1, maxPendingBytes: 64 * 1024 });
    const errors: Error[] = [];
    try {
      const graph = build();
      const wal = engine.kv<WALFrame>(specs[0]!, { codec: walFrameCodec });
      const pairs = specs.map((spec) => ({ snapshot: engine.snapshot<GraphCheckpointRecord>(spec), wal }));
      const handle = attachSnapshotStorage(graph, pairs, { maxQueuedBytes: MAX_QUEUED_BYTES, onError: (e) => errors.push(e) });
      graph.set("n0", -1);
      await handle.flush();
      const outboxes = attachOutboxes(handle);
      let most = 0;
      let i = 0;
      const locker = await lockSqliteFile(paths[locked === "A" ? 0 : 1]!);
      try {
        // Its flush fails (store-busy) while the lock lasts; the baseline stays owed and is retried meanwhile.
        if (rebaselineFirst) void handle.rebaseline().catch(() => undefined);
        for (let turn = 0; turn < TURNS; turn++) {
          for (let w = 0; w < WAVES_PER_TURN; w++) {
            i++;
            graph.set(`n${i % NODES}`, i);
          }
          for (const o of outboxes) most = Math.max(most, o.queued);
          await new Promise((r) => setImmediate(r));
        }
        expect(collapses(errors).length).toBeGreaterThan(0);
        await locker.release();
      } finally {
        locker.kill();
      }
      expect(most).toBeGreaterThan(0);
      expect(most).toBeLessThanOrEqual(QUEUED_MAX);
      const seq = await flushAfterLock(handle);
      const live = values(graph);
      await handle.dispose();
      for (const spec of specs) {
        const restored = build();
        const result = await restoreSnapshot(restored, { snapshot: engine.snapshot(spec), wal });
        expect(result.finalSeq).toBe(seq);
        expect(values(restored)).toEqual(live);
      }
    } finally {
      await engine.close();
    }
  }

  it("the WAL's store locked: both pairs' outboxes stay bounded, then both stores restore the live graph", () => stuckGroup("A", false), 120_000);

  it("one pair's own baseline stuck (its store locked after a rebaseline): bounded, and both restore the live graph", () =>
    stuckGroup("B", true), 120_000);
});
