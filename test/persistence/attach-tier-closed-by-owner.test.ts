/**
 * An attach pair whose tier its owner closed (tier.close() by the app: no refusal by the store, no engine close).
 * The pair said "the write at seq N was refused for good ... until handle.rebaseline()", which cannot write through
 * a closed tier; a WAL tier closed with frames pending also made the pair try to delete them past a "gap" (every
 * delete failing on the closed tier, told to onError as "could not be deleted ... it is deleted again"), and in a
 * WAL group every other pair tried the same deletes and told the same (task 321). Now the pair stops with `closed`
 * (details.reason "tier-closed") saying what to do, names the baseline when that is the write in question, deletes
 * nothing, and onError hears the stop alone. A restore of the stores gives what the close stored.
 * Real parts: an engine, SQLite files, its worker threads.
 */
import { afterAll, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { createGraph } from "../../src/graph/graph.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { settledTo } from "../support/settled.js";

const tmp = tempDir("tier-closed-by-owner");
afterAll(() => tmp.remove());

/** What `c` restores to from a snapshot tier in `snapPath` and a WAL tier in `walPath` (SQLite files, inline). */
async function restoredC(snapPath: string, walPath: string): Promise<unknown> {
  const snap = sqliteBackend(snapPath);
  const wal = walPath === snapPath ? snap : sqliteBackend(walPath);
  try {
    const g = createGraph("g");
    g.state("c", -1);
    await restoreSnapshot(g, { snapshot: snapshotStorage<GraphCheckpointRecord>(snap), wal: kvStorage<WALFrame>(wal, { codec: walFrameCodec }) });
    return g.get("c");
  } finally {
    await snap.close?.();
    if (wal !== snap) await wal.close?.();
  }
}

/** The stop's error, checked as no refusal: code closed, reason tier-closed, what to do said, rebaseline() not offered. */
function expectClosedByOwner(err: unknown, details: Record<string, unknown>): StorageError {
  expect(err).toBeInstanceOf(StorageError);
  const e = err as StorageError;
  expect(e.code).toBe("closed");
  expect(e.details).toMatchObject({ graph: "g", reason: "tier-closed", ...details });
  expect(e.message).toMatch(/was closed by its owner/);
  expect(e.message).toMatch(/dispose this handle and attach the graph again over open tiers/);
  expect(e.message).not.toMatch(/refused|until handle\.rebaseline\(\)/);
  expect(e.cause).toMatchObject({ code: "closed" });
  return e;
}

function engineOf(): StorageEngine {
  return openStorageEngine({ threads: 1, onError: () => undefined });
}

it("a WAL tier the app closed: the next wave's save stops the pair with closed (tier-closed), not 'refused for good'", async () => {
  const engine = engineOf();
  try {
    const spec: StoreSpec = { kind: "sqlite", path: tmp.path("wal-closed.db") };
    const wal = engine.kv<WALFrame>(spec, { codec: walFrameCodec });
    const g = createGraph("g");
    g.state("c", 0);
    const heard: unknown[] = [];
    const h = attachSnapshotStorage(g, [{ snapshot: engine.snapshot<GraphCheckpointRecord>(spec), wal }], { onError: (e) => void heard.push(e) });
    await h.flush();
    await wal.close();
    g.set("c", 1); // its frame's save throws closed
    const err = expectClosedByOwner(await settledTo(h.flush()), { seq: 2, tier: wal.name });
    expect(err.message).toMatch(/the write at seq 2 is not acknowledged/);
    expect(heard).toEqual([err]);
    // A rebaseline() anyway meets the closed tier again and says so, as the error told.
    expect(await settledTo(h.rebaseline())).toMatchObject({ code: "closed", details: { reason: "tier-closed" } });
    await h.dispose().catch(() => undefined);
  } finally {
    await engine.close().catch(() => undefined);
  }
}, 30_000);

it("a snapshot tier the app closed under a periodic baseline: the stop names the baseline at its seq", async () => {
  const engine = engineOf();
  try {
    const spec: StoreSpec = { kind: "sqlite", path: tmp.path("snap-closed.db") };
    const snapshot = engine.snapshot<GraphCheckpointRecord>(spec);
    const g = createGraph("g");
    g.state("c", 0);
    const heard: unknown[] = [];
    const h = attachSnapshotStorage(g, [{ snapshot, wal: engine.kv<WALFrame>(spec, { codec: walFrameCodec }) }], {
      compactEvery: 1,
      onError: (e) => void heard.push(e),
    });
    await h.flush();
    await snapshot.close();
    g.set("c", 1); // its frame is saved; its periodic baseline (seq 2) meets the closed snapshot tier
    const err = expectClosedByOwner(await settledTo(h.flush()), { seq: 2, baseline: 2, tier: snapshot.name });
    expect(err.message).toMatch(/the baseline at seq 2 is not acknowledged/);
    expect(heard).toEqual([err]);
    await h.dispose().catch(() => undefined);
  } finally {
    await engine.close().catch(() => undefined);
  }
}, 30_000);

it("a WAL tier the app closed with frames pending: no delete is tried, onError hears the stop alone, the stored frames restore", async () => {
  const engine = engineOf();
  const path = tmp.path("wal-pending.db");
  try {
    const spec: StoreSpec = { kind: "sqlite", path };
    const wal = engine.kv<WALFrame>(spec, { codec: walFrameCodec, debounceMs: 60_000 });
    const g = createGraph("g");
    g.state("c", 0);
    const heard: unknown[] = [];
    const h = attachSnapshotStorage(g, [{ snapshot: engine.snapshot<GraphCheckpointRecord>(spec), wal }], { onError: (e) => void heard.push(e) });
    await h.flush();
    g.set("c", 1);
    g.set("c", 2); // frames at seqs 2 and 3, pending in the WAL tier
    await new Promise((resolve) => setImmediate(resolve));
    await wal.close(); // the close writes them
    const err = expectClosedByOwner(await settledTo(h.flush()), { seq: 2, tier: wal.name });
    // Before: the pair listed and deleted "past the gap" on the closed tier, and told "could not be deleted".
    expect(heard).toEqual([err]);
    await h.dispose().catch(() => undefined);
  } finally {
    await engine.close().catch(() => undefined);
  }
  expect(await restoredC(path, path)).toBe(2);
}, 30_000);

it("a WAL group (two snapshot stores, one WAL) whose WAL tier the app closed: no pair deletes, nothing false reaches onError", async () => {
  const engine = engineOf();
  const walPath = tmp.path("group-wal.db");
  const snapPaths = [tmp.path("group-snap-a.db"), tmp.path("group-snap-b.db")];
  try {
    const wal = engine.kv<WALFrame>({ kind: "sqlite", path: walPath }, { codec: walFrameCodec, debounceMs: 60_000 });
    const g = createGraph("g");
    g.state("c", 0);
    const heard: unknown[] = [];
    const pairs = snapPaths.map((path) => ({ snapshot: engine.snapshot<GraphCheckpointRecord>({ kind: "sqlite", path }), wal }));
    const h = attachSnapshotStorage(g, pairs, { onError: (e) => void heard.push(e) });
    await h.flush();
    g.set("c", 1);
    g.set("c", 2); // the group's frames at seqs 2 and 3
    await new Promise((resolve) => setImmediate(resolve));
    await wal.close();
    const err = expectClosedByOwner(await settledTo(h.flush()), { seq: 2, tier: wal.name });
    // Each pair tells its stop (as any group stop does); before, the other pair also tried to delete the frames past
    // seq 2 on the closed tier and told onError "could not be deleted ... it is deleted again".
    expect(heard.length).toBeGreaterThan(0);
    for (const e of heard) expectClosedByOwner(e, { seq: 2 });
    expect(heard.some((e) => /could not be deleted/.test((e as Error).message))).toBe(false);
    await h.dispose().catch(() => undefined);
    expect(err.details.seq).toBe(2);
  } finally {
    await engine.close().catch(() => undefined);
  }
  // The close stored the frames: each snapshot store with the shared WAL restores the last wave.
  for (const snapPath of snapPaths) expect(await restoredC(snapPath, walPath)).toBe(2);
}, 30_000);
