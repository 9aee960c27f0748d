/**
 * Stale pins of the shared-WAL record, through the engine (docs/design.md §3.10): pairs {one, W}, {two, W} of one
 * attach, W in store one, whose actor folds graph g every 20 frames (autoCompact). Real worker thread, real SQLite
 * files.
 * - A store attached in a live handle is never reported as a stale pin (StorageError `wal-pinned`), whatever its
 *   baselines' pace: the report once counted two folds of store one without a move of store two's pin, so a healthy
 *   store two writing a baseline every 100 waves (or on the default rule) was reported after ~50 waves, with advice
 *   to forget it. (When a pin is stale by frames and time: stale-pin-policy.test.ts, on the watcher alone.)
 * - Forgetting a store attached in this process is refused (invalid-argument, details.attachedStores).
 * - Once forgotten (after its handle ended), the compactions delete the frames above its baseline: its restore
 *   rejects RestoreError `wal-compacted-past-baseline` (both seqs), where it returned its baseline's older state
 *   without a word (180 acknowledged waves missing).
 */
import { realpathSync } from "node:fs";
import { afterAll, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { RestoreError, StorageError } from "../../src/errors.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph, compactGraphInEngine } from "../../src/persistence/compaction.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord, StorageHandle } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { build, restoredFrom, storedSeqs } from "./fixtures/shared-wal.js";

const tmp = tempDir("shared-wal-stale-pin");
afterAll(() => tmp.remove());

const spec = (path: string): StoreSpec => ({ kind: "sqlite", path });
const pinned = (errors: readonly Error[]): string[] =>
  errors.filter((e) => e instanceof StorageError && e.code === "wal-pinned").map((e) => e.message);

interface Run {
  readonly engine: StorageEngine;
  readonly h: StorageHandle;
  readonly one: string;
  readonly two: string;
  readonly errors: Error[];
  /** The live graph's values. */
  readonly live: () => { a: unknown; b: unknown };
}

/**
 * Runs `waves` waves (a flush every 10) with store two's pair on `twoEvery` (undefined: the default baseline rule),
 * then `then` with the handle still attached; closes everything after.
 */
async function withPairs(name: string, twoEvery: number | undefined, waves: number, then: (run: Run) => Promise<void>): Promise<void> {
  const one = tmp.path(`${name}-one.db`);
  const two = tmp.path(`${name}-two.db`);
  const errors: Error[] = [];
  const engine = openStorageEngine({ threads: 1, autoCompact: { everyFrames: 20 }, onError: (e) => void errors.push(e) });
  try {
    const g = build();
    const wal = engine.kv(spec(one), { codec: walFrameCodec });
    const h = attachSnapshotStorage(g, [
      { snapshot: engine.snapshot(spec(one), { compactEvery: 1_000_000 }), wal },
      { snapshot: engine.snapshot(spec(two), twoEvery === undefined ? {} : { compactEvery: twoEvery }), wal },
    ]);
    for (let i = 0; i < waves; i++) {
      g.set(i % 2 === 0 ? "a" : "b", i);
      if (i % 10 === 9) await h.flush();
    }
    await h.flush();
    await then({ engine, h, one, two, errors, live: () => ({ a: g.get("a"), b: g.get("b") }) });
  } finally {
    await engine.close();
  }
}

for (const [rule, every] of [
  ["a baseline every 100 waves", 100],
  ["the default baseline rule", undefined],
  ["no baseline after its attach one", 1_000_000],
] as const) {
  it(`a store attached in this process (${rule}), the WAL's store folding every 20 frames: no wal-pinned, both restore`, async () => {
    await withPairs(`attached-${String(every)}`, every, 1_000, async ({ engine, h, one, two, errors, live }) => {
      const values = live();
      await h.dispose();
      await engine.close();
      expect(pinned(errors)).toEqual([]); // before: "... if that store is gone for good, forget it" after ~50 waves
      expect(errors).toEqual([]);
      expect({ one: await restoredFrom(one, one), two: await restoredFrom(two, one) }).toEqual({ one: values, two: values });
    });
  }, 120_000);
}

it("forgetting a store attached in this process is refused, nothing changed", async () => {
  await withPairs("forget-attached", 100, 200, async ({ engine, h, one, two, live }) => {
    const id = `sqlite:${realpathSync(two)}`;
    const refused = await compactGraphInEngine(engine, spec(one), "g", { forgetStores: [id] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(StorageError);
    expect(refused).toMatchObject({ code: "invalid-argument", details: { graphName: "g", attachedStores: [id] } });
    const values = live();
    await h.dispose();
    await engine.close();
    expect(await restoredFrom(two, one)).toEqual(values);
  });
}, 120_000);

it("a store forgotten after its handle ended, its frames compacted away: its restore rejects wal-compacted-past-baseline", async () => {
  await withPairs("forgotten", 100, 1_000, async ({ engine, h, one, two, live }) => {
    const values = live();
    await h.dispose();
    await engine.close();
    const id = `sqlite:${realpathSync(two)}`;
    const b = sqliteBackend(one);
    try {
      // Named in the record moments ago by the handle: forgetting it now is on purpose (forceForget).
      await compactGraph({ backend: b }, { graphName: "g", forgetStores: [id], forceForget: true });
    } finally {
      b.close();
    }
    const twoSeq = storedSeqs(two).baseline as number;
    expect(storedSeqs(one).frames.filter((s) => s > twoSeq)).toEqual([]); // the frames two needed are gone
    const bs = sqliteBackend(two);
    const bw = sqliteBackend(one);
    const g = build();
    try {
      const err = await restoreSnapshot(g, {
        snapshot: snapshotStorage<GraphCheckpointRecord>(bs),
        wal: kvStorage<WALFrame>(bw, { codec: walFrameCodec }),
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      // Before: resolved, with two's baseline's values (a: 818, b: 819 against 998, 999 live), no error.
      expect(err).toBeInstanceOf(RestoreError);
      expect(err).toMatchObject({ code: "wal-compacted-past-baseline", details: { graphName: "g", store: id, baselineSeq: twoSeq } });
      expect((err as RestoreError).details.forgottenAtSeq as number).toBeGreaterThan(twoSeq);
      expect({ a: g.get("a"), b: g.get("b") }).toEqual({ a: 0, b: 0 }); // the graph untouched
      expect(values).not.toEqual({ a: 0, b: 0 });
    } finally {
      bs.close();
      bw.close();
    }
    expect(await restoredFrom(one, one)).toEqual(values); // the WAL's store has it all
  });
}, 120_000);
