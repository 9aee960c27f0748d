/**
 * A follower of a store forgotten from its shared WAL's record (docs/design.md §3.10), the frames above its baseline
 * compacted away, is refused as restore is (RestoreError `wal-compacted-past-baseline`): its initial load rejects,
 * and a reload that finds it stops the follower (fatal, through onError, `done` and poll()). Before, the follower
 * started from (or reloaded) that baseline's older state and said nothing (review r172). Real SQLite files: sessions
 * of attach pairs {one, W} and {two, W}, W the WAL tier on store one; followers on read-only handles.
 */
import { realpathSync } from "node:fs";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { sqliteBackend, type SqliteBackend } from "../../src/backend/sqlite.js";
import { RestoreError } from "../../src/errors.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { followGraph, type FollowSource, type GraphFollower } from "../../src/persistence/follow.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { build, storedSeqs } from "./fixtures/shared-wal.js";

const tmp = tempDir("follow-forgotten");
afterAll(() => tmp.remove());
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const idOf = (path: string): string => `sqlite:${realpathSync(path)}`;
/** Never polls by itself: the tests poll. */
const NO_TIMER = 1_000_000_000;

/**
 * One session of pairs {one, W} and, when `two` is given, {two, W} (compactEvery `twoEvery`; store one's stays at its
 * attach baseline): restores g from store one when it holds it, sets a and b waves `from` .. `from + count - 1`,
 * flushing every 10, disposes. Resolves to the live values.
 */
async function session(one: string, two: string | undefined, from: number, count: number, twoEvery = 1_000_000): Promise<{ a: unknown; b: unknown }> {
  const b1 = sqliteBackend(one);
  const b2 = two === undefined ? undefined : sqliteBackend(two);
  const g = build();
  try {
    const wal = kvStorage<WALFrame>(b1, { codec: walFrameCodec });
    if (storedSeqs(one).baseline !== undefined) await restoreSnapshot(g, { snapshot: snapshotStorage<GraphCheckpointRecord>(b1), wal });
    const pairs = [{ snapshot: snapshotStorage<GraphCheckpointRecord>(b1, { compactEvery: 1_000_000 }), wal }];
    if (b2 !== undefined) pairs.push({ snapshot: snapshotStorage<GraphCheckpointRecord>(b2, { compactEvery: twoEvery }), wal });
    const h = attachSnapshotStorage(g, pairs);
    for (let i = from; i < from + count; i++) {
      g.set(i % 2 === 0 ? "a" : "b", i);
      if (i % 10 === 9) await h.flush();
    }
    await h.flush();
    await h.dispose();
  } finally {
    b1.close();
    b2?.close();
  }
  return { a: g.get("a"), b: g.get("b") };
}

/** Forgets store two from store one's record (forced: the session just ended) and compacts g there. */
async function forgetTwo(one: string, two: string): Promise<void> {
  const b = sqliteBackend(one);
  try {
    await compactGraph({ backend: b }, { graphName: "g", forgetStores: [idOf(two)], forceForget: true });
  } finally {
    b.close();
  }
}

/** The source a follower of store `snapshotPath`'s baseline and store one's WAL reads, on read-only handles. */
function sourceOf(snapshotPath: string, one: string): FollowSource {
  const bs = sqliteBackend(snapshotPath, { readOnly: true });
  const bw = snapshotPath === one ? bs : sqliteBackend(one, { readOnly: true });
  cleanups.push(() => {
    bs.close();
    if (bw !== bs) bw.close();
  });
  return { snapshot: snapshotStorage<GraphCheckpointRecord>(bs), wal: kvStorage<WALFrame>(bw, { codec: walFrameCodec }) };
}

function expectForgotten(err: unknown, two: string, baselineSeq: number): void {
  expect(err).toBeInstanceOf(RestoreError);
  expect(err).toMatchObject({ code: "wal-compacted-past-baseline", details: { graphName: "g", store: idOf(two), baselineSeq } });
  expect((err as RestoreError).details.forgottenAtSeq as number).toBeGreaterThan(baselineSeq);
}

describe("a follower of a forgotten store", () => {
  it("its initial load rejects wal-compacted-past-baseline, as restore does; a follower of the WAL's own store follows the live graph", async () => {
    const [one, two] = [tmp.path("initial-one.db"), tmp.path("initial-two.db")];
    const live = await session(one, two, 1, 100);
    const twoSeq = storedSeqs(two).baseline as number;
    await forgetTwo(one, two);
    expect(storedSeqs(one).frames.filter((s) => s > twoSeq)).toEqual([]); // the frames above two's baseline went

    const restored = build();
    const restoreErr = await restoreSnapshot(restored, sourceOf(two, one)).then(() => undefined, (e: unknown) => e);
    expectForgotten(restoreErr, two, twoSeq);

    const g = build();
    let follower: GraphFollower | undefined;
    const err = await followGraph(g, sourceOf(two, one), { pollMs: NO_TIMER }).then(
      (f) => void (follower = f),
      (e: unknown) => e,
    );
    if (follower !== undefined) cleanups.push(() => follower!.stop()); // before the fix: it started, at two's old state
    expectForgotten(err, two, twoSeq);

    // Control: store one's own baseline and WAL hold the live graph.
    const own = build();
    const f = await followGraph(own, sourceOf(one, one), { pollMs: NO_TIMER });
    cleanups.push(() => f.stop());
    expect({ a: own.get("a"), b: own.get("b") }).toEqual(live);
  });

  it("a reload that finds it stops the follower: poll() and done reject, onError hears it fatal", async () => {
    const [one, two] = [tmp.path("reload-one.db"), tmp.path("reload-two.db")];
    await session(one, two, 1, 30);
    const g = build();
    const errors: Array<{ error: Error; fatal: boolean }> = [];
    const follower = await followGraph(g, sourceOf(two, one), { pollMs: NO_TIMER, onError: (error, fatal) => void errors.push({ error, fatal }) });
    cleanups.push(() => follower.stop());
    const doneErr = follower.done.then(() => undefined, (e: unknown) => e);
    const applied = follower.stats().appliedSeq;
    expect({ a: g.get("a"), b: g.get("b") }).toEqual({ a: 30, b: 29 });

    // Store two's baseline moves past the follower's seq; frames above it follow; then it is forgotten and the
    // frames above its baseline are compacted away.
    await session(one, two, 31, 45, 20);
    const twoSeq = storedSeqs(two).baseline as number;
    expect(twoSeq).toBeGreaterThan(applied);
    expect(Math.max(...storedSeqs(one).frames)).toBeGreaterThan(twoSeq);
    await forgetTwo(one, two);
    expect(storedSeqs(one).frames.filter((s) => s > applied)).toEqual([]);

    // The poll finds the follower's frames gone and store two's baseline past them: it reloads, and is refused.
    const pollErr = await follower.poll().then(() => undefined, (e: unknown) => e);
    expectForgotten(pollErr, two, twoSeq);
    expectForgotten(await doneErr, two, twoSeq);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.fatal).toBe(true);
    expectForgotten(errors[0]?.error, two, twoSeq);
    expect(follower.stats().state).toBe("failed");
    expect({ a: g.get("a"), b: g.get("b") }).toEqual({ a: 30, b: 29 }); // the refused reload applied nothing
  });
});
