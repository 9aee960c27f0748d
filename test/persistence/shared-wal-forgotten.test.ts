/**
 * A store dropped from the shared-WAL record (docs/design.md §3.10) stays marked forgotten, whatever attaches the
 * graph later, so its restore fails RestoreError `wal-compacted-past-baseline` once the frames above its baseline are
 * compacted away, never returns that baseline's older state; and forgetStores refuses a store a live handle named
 * lately (StorageError `store-live`) unless forced. Real SQLite files; sessions of attach pairs {one, W} and
 * {two, W}, W the WAL tier on store one, each ended with dispose; a child process writes where another process
 * matters. Forgets "later" run with the clock moved on (Date only), past the live window.
 */
import { fork } from "node:child_process";
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { sqliteBackend, type SqliteBackend } from "../../src/backend/sqlite.js";
import { RestoreError, StorageError } from "../../src/errors.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { compactGraph, compactGraphInEngine, type CompactGraphOptions, type CompactionResult } from "../../src/persistence/compaction.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { sharedWalRecordKey } from "../../src/persistence/shared-wal-record.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { requireBuiltBin, runCli } from "../cli/fixtures/cli.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { build, restoredFrom, storedSeqs } from "./fixtures/shared-wal.js";

const tmp = tempDir("shared-wal-forgotten");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());
afterEach(() => void vi.useRealTimers());

const HOUR = 60 * 60 * 1_000;
const idOf = (path: string): string => `sqlite:${realpathSync(path)}`;

interface PairSpec {
  /** Snapshot store file. */
  readonly snapshot: string;
  /** compactEvery of its snapshot tier (default: it stays at its attach baseline). */
  readonly every?: number;
  /** Open its store read-only (its baselines are refused). */
  readonly readOnly?: boolean;
}

/**
 * One session: restores graph g from store one (if it holds it), attaches `pairs` (each with the WAL tier on store
 * one; one pair alone: attach's defaults, which delete the frames its baselines cover), sets a and b `count` times
 * from `from` on, flushing every 10, and disposes. Resolves to the live values (and the flush/dispose failure, if any).
 */
async function session(one: string, pairs: readonly PairSpec[], from: number, count: number): Promise<{ a: unknown; b: unknown; failed?: unknown }> {
  const backends = new Map<string, SqliteBackend>();
  const backend = (path: string, readOnly = false): SqliteBackend =>
    backends.get(path) ?? backends.set(path, sqliteBackend(path, readOnly ? { readOnly } : {})).get(path)!;
  const g = build();
  let failed: unknown;
  try {
    const wal = kvStorage<WALFrame>(backend(one), { codec: walFrameCodec });
    if (storedSeqs(one).baseline !== undefined) await restoreSnapshot(g, { snapshot: snapshotStorage<GraphCheckpointRecord>(backend(one)), wal });
    const h = attachSnapshotStorage(
      g,
      pairs.map((p) => ({
        snapshot: snapshotStorage<GraphCheckpointRecord>(backend(p.snapshot, p.readOnly), pairs.length > 1 ? { compactEvery: p.every ?? 1_000_000 } : {}),
        wal,
      })),
    );
    try {
      for (let i = from; i < from + count; i++) {
        g.set(i % 2 === 0 ? "a" : "b", i);
        if (i % 10 === 9) await h.flush();
      }
      await h.flush();
    } catch (err) {
      failed = err;
    }
    await h.dispose().catch((err: unknown) => (failed ??= err));
  } finally {
    for (const b of backends.values()) b.close();
  }
  return { a: g.get("a"), b: g.get("b"), ...(failed !== undefined ? { failed } : {}) };
}

/** compactGraph inline on store one, `hoursLater` hours from now by the clock (Date only). */
async function compactOne(one: string, opts: Omit<CompactGraphOptions, "graphName"> = {}, hoursLater = 0): Promise<CompactionResult> {
  if (hoursLater > 0) vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + hoursLater * HOUR });
  const b = sqliteBackend(one);
  try {
    return await compactGraph({ backend: b }, { graphName: "g", ...opts });
  } finally {
    b.close();
    vi.useRealTimers();
  }
}

/** What restoring g through `snapshotPath`'s baseline and store one's WAL does: the values, or the error. */
async function restoreOutcome(snapshotPath: string, one: string): Promise<{ values?: unknown; error?: unknown }> {
  const bs = sqliteBackend(snapshotPath);
  const bw = sqliteBackend(one);
  const g = build();
  try {
    await restoreSnapshot(g, { snapshot: snapshotStorage<GraphCheckpointRecord>(bs), wal: kvStorage<WALFrame>(bw, { codec: walFrameCodec }) });
    return { values: { a: g.get("a"), b: g.get("b") } };
  } catch (error) {
    return { error };
  } finally {
    bs.close();
    bw.close();
  }
}

/** The shared-WAL record stored in store one, as its payload (undefined: none). */
function recordOf(one: string): { stores: Record<string, number>; forgotten?: Record<string, number>; seen?: Record<string, number> } | undefined {
  const b = sqliteBackend(one, { readOnly: true });
  try {
    const raw = b.read(sharedWalRecordKey("g")) as Uint8Array | undefined;
    if (raw === undefined) return undefined;
    return (JSON.parse(Buffer.from(raw).toString("utf8")) as { change: { change: never } }).change.change;
  } finally {
    b.close();
  }
}

/** Expects `outcome` to be the refusal for store `path` restoring from its baseline `baselineSeq`. */
function expectRefused(outcome: { values?: unknown; error?: unknown }, path: string, baselineSeq: number): void {
  // Before: { values: <the baseline's older state> }, no error.
  expect(outcome.values).toBeUndefined();
  expect(outcome.error).toBeInstanceOf(RestoreError);
  expect(outcome.error).toMatchObject({ code: "wal-compacted-past-baseline", details: { graphName: "g", store: idOf(path), baselineSeq } });
  expect((outcome.error as RestoreError).details.forgottenAtSeq as number).toBeGreaterThan(baselineSeq);
}

describe("a store left out of a later attach is marked forgotten", () => {
  it("a later session of one pair on the WAL: store two's restore is refused once the frames above its baseline are gone", async () => {
    const [one, two] = [tmp.path("single-one.db"), tmp.path("single-two.db")];
    await session(one, [{ snapshot: one }, { snapshot: two }], 1, 100);
    const twoSeq = storedSeqs(two).baseline as number;
    expect(recordOf(one)?.stores).toEqual({ [idOf(two)]: twoSeq });
    // Store one's pair alone: it deletes the frames its baselines cover, the shared session's with them. The record
    // was deleted: store two was dropped with no mark.
    const live = await session(one, [{ snapshot: one }], 101, 50);
    expect(recordOf(one)).toMatchObject({ stores: {}, forgotten: { [idOf(two)]: 101 } });
    await compactOne(one);
    expect(storedSeqs(one).frames).toEqual([]);
    expectRefused(await restoreOutcome(two, one), two, twoSeq);
    expect(await restoredFrom(one, one)).toEqual({ a: live.a, b: live.b });
  }, 120_000);

  it("a later session of pairs {one, W}, {three, W}: store two stays refused after three is forgotten too", async () => {
    const [one, two, three] = [tmp.path("group-one.db"), tmp.path("group-two.db"), tmp.path("group-three.db")];
    await session(one, [{ snapshot: one }, { snapshot: two }], 1, 100);
    const twoSeq = storedSeqs(two).baseline as number;
    const live = await session(one, [{ snapshot: one }, { snapshot: three }], 101, 50);
    // The record was written blind: it named three alone, and two was dropped with no mark.
    expect(recordOf(one)).toMatchObject({ stores: { [idOf(three)]: storedSeqs(three).baseline }, forgotten: { [idOf(two)]: 101 } });
    await compactOne(one, { forgetStores: [idOf(three)] }, 2);
    expect(storedSeqs(one).frames).toEqual([]);
    expectRefused(await restoreOutcome(two, one), two, twoSeq);
    expectRefused(await restoreOutcome(three, one), three, storedSeqs(three).baseline as number);
    expect(await restoredFrom(one, one)).toEqual({ a: live.a, b: live.b });
  }, 120_000);
});

describe("a forget's mark lasts", () => {
  it("over a later session of pairs {one, W}, {three, W} and a forget of three", async () => {
    const [one, two, three] = [tmp.path("carry-one.db"), tmp.path("carry-two.db"), tmp.path("carry-three.db")];
    await session(one, [{ snapshot: one }, { snapshot: two }], 1, 100);
    const twoSeq = storedSeqs(two).baseline as number;
    await compactOne(one, { forgetStores: [idOf(two)] }, 2);
    const mark = recordOf(one)?.forgotten?.[idOf(two)] as number;
    expect(mark).toBeGreaterThan(twoSeq);
    await session(one, [{ snapshot: one }, { snapshot: three }], 101, 50);
    expect(recordOf(one)?.forgotten).toEqual({ [idOf(two)]: mark }); // before: the later attach's record had no forgotten
    await compactOne(one, { forgetStores: [idOf(three)] }, 4);
    expect(storedSeqs(one).frames).toEqual([]);
    expectRefused(await restoreOutcome(two, one), two, twoSeq);
  }, 120_000);

  it("over a single-pair session", async () => {
    const [one, two] = [tmp.path("carry1-one.db"), tmp.path("carry1-two.db")];
    await session(one, [{ snapshot: one }, { snapshot: two }], 1, 100);
    const twoSeq = storedSeqs(two).baseline as number;
    await compactOne(one, { forgetStores: [idOf(two)] }, 2);
    const mark = recordOf(one)?.forgotten?.[idOf(two)] as number;
    await session(one, [{ snapshot: one }], 101, 50);
    expect(recordOf(one)).toMatchObject({ stores: {}, forgotten: { [idOf(two)]: mark } }); // before: deleted
    await compactOne(one);
    expectRefused(await restoreOutcome(two, one), two, twoSeq);
  }, 120_000);
});

describe("a forgotten store attached again", () => {
  it("whose new baselines are refused (read-only store): its restore stays refused, never its old baseline's state", async () => {
    const [one, two] = [tmp.path("again-ro-one.db"), tmp.path("again-ro-two.db")];
    await session(one, [{ snapshot: one }, { snapshot: two }], 1, 100);
    const twoSeq = storedSeqs(two).baseline as number;
    await compactOne(one, { forgetStores: [idOf(two)] }, 2);
    const mark = recordOf(one)?.forgotten?.[idOf(two)] as number;
    // Store two attached again, its attach baseline refused: the pairs stop, nothing of the session is stored.
    const again = await session(one, [{ snapshot: one }, { snapshot: two, readOnly: true }], 101, 20);
    expect(again.failed).toBeInstanceOf(StorageError);
    expect(storedSeqs(two).baseline).toBe(twoSeq);
    // Named again (pinned at its stored baseline), and still marked: that baseline is below the mark. Before: the
    // mark was gone and its restore returned the state at its old baseline.
    expect(recordOf(one)).toMatchObject({ stores: { [idOf(two)]: twoSeq }, forgotten: { [idOf(two)]: mark } });
    expectRefused(await restoreOutcome(two, one), two, twoSeq);
  }, 120_000);

  it("that writes its baselines: named again, the mark dropped once its baseline covers it, it restores the live graph", async () => {
    const [one, two] = [tmp.path("again-one.db"), tmp.path("again-two.db")];
    await session(one, [{ snapshot: one }, { snapshot: two }], 1, 100);
    await compactOne(one, { forgetStores: [idOf(two)] }, 2);
    const live = await session(one, [{ snapshot: one }, { snapshot: two, every: 20 }], 101, 100);
    const twoSeq = storedSeqs(two).baseline as number;
    const record = recordOf(one);
    expect(record?.stores[idOf(two)]).toBeGreaterThan(101);
    expect(record?.stores[idOf(two)]).toBeLessThanOrEqual(twoSeq);
    expect(record?.forgotten).toBeUndefined();
    expect(await restoredFrom(two, one)).toEqual({ a: live.a, b: live.b });
  }, 120_000);
});

describe("an attach of this process registering while a forget runs", () => {
  it("inline compactGraph checks the attached stores again before rewriting the record: the forget is refused", async () => {
    const [one, two] = [tmp.path("race-one.db"), tmp.path("race-two.db")];
    await session(one, [{ snapshot: one }, { snapshot: two }], 1, 100);
    const before = { ...storedSeqs(one), record: recordOf(one) };
    const b1 = sqliteBackend(one);
    const b2 = sqliteBackend(two);
    try {
      // The forget starts (its first check finds no handle), then an attach of store two registers at once.
      const forgetting = compactGraph({ backend: b1 }, { graphName: "g", forgetStores: [idOf(two)], forceForget: true }).then(
        () => undefined,
        (e: unknown) => e,
      );
      const g = build();
      const wal = kvStorage<WALFrame>(b1, { codec: walFrameCodec });
      const h = attachSnapshotStorage(g, [
        { snapshot: snapshotStorage<GraphCheckpointRecord>(b1, { compactEvery: 1_000_000 }), wal },
        { snapshot: snapshotStorage<GraphCheckpointRecord>(b2, { compactEvery: 1_000_000 }), wal },
      ]);
      const err = await forgetting;
      // Before: the forget went on (store two's frames above its baseline deleted under the new handle).
      expect(err).toBeInstanceOf(StorageError);
      expect(err).toMatchObject({ code: "invalid-argument", details: { graphName: "g", attachedStores: [idOf(two)] } });
      expect(storedSeqs(one).frames).toEqual(before.frames);
      g.set("a", 1_000);
      await h.flush();
      await h.dispose();
    } finally {
      b1.close();
      b2.close();
    }
    const record = recordOf(one);
    expect(Object.keys(record?.stores ?? {})).toEqual([idOf(two)]);
    expect(record?.forgotten).toBeUndefined();
    expect({ one: await restoredFrom(one, one), two: await restoredFrom(two, one) }).toEqual({ one: { a: 1_000, b: 0 }, two: { a: 1_000, b: 0 } });
  }, 120_000);
});

const WRITER = fileURLToPath(new URL("./fixtures/shared-wal-writer.mjs", import.meta.url));

/** The shared-WAL writer fixture in a child process (pairs {one, W}, {two, W}, W on one), exiting without dispose. */
function writeInChild(name: string): Promise<{ one: string; two: string; state: unknown }> {
  const [one, two] = [tmp.path(`${name}-one.db`), tmp.path(`${name}-two.db`)];
  const child = fork(WRITER, [JSON.stringify({ one, two, mode: "inline", end: "exit" })], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  let state: unknown;
  child.on("message", (m: { state: unknown }) => (state = m.state));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 && state !== undefined ? resolve({ one, two, state }) : reject(new Error(`writer exited ${String(code)}`))));
  });
}

describe("forgetting a store a live handle named lately", () => {
  it("is refused (store-live), nothing changed, unless forced; accepted once the window passed", async () => {
    const w = await writeInChild("live");
    const before = { ...storedSeqs(w.one), record: recordOf(w.one) };
    const err = await compactOne(w.one, { forgetStores: [idOf(w.two)] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    // Before: accepted, and the frames store two's writer may still need were deleted.
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ code: "store-live", details: { graphName: "g", liveStores: [idOf(w.two)] } });
    expect((err as StorageError).details.seenAt).toHaveLength(1);
    expect({ ...storedSeqs(w.one), record: recordOf(w.one) }).toEqual(before);
    // Through an engine's store actor (the job's thread): the same error, typed across it.
    const engine = openStorageEngine({ threads: 1, onError: () => {} });
    const viaEngine = await compactGraphInEngine(engine, { kind: "sqlite", path: w.one }, "g", { forgetStores: [idOf(w.two)] })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
      .finally(() => engine.close());
    expect(viaEngine).toBeInstanceOf(StorageError);
    expect(viaEngine).toMatchObject({ code: "store-live", details: { liveStores: [idOf(w.two)] } });
    expect({ ...storedSeqs(w.one), record: recordOf(w.one) }).toEqual(before);
    // The CLI: an error (exit 4, failed) naming the way through; nothing changed.
    const r = runCli(["compact", w.one, "--graph", "g", "--forget-store", idOf(w.two)]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("store-live");
    expect(r.stderr).toContain("--force");
    expect({ ...storedSeqs(w.one), record: recordOf(w.one) }).toEqual(before);
    // An hour on (the clock moved): accepted without force.
    const later = await compactOne(w.one, { forgetStores: [idOf(w.two)] }, 2);
    expect(later.sharedWalPins).toBeUndefined();
    expect(recordOf(w.one)?.forgotten?.[idOf(w.two)]).toBeGreaterThan(42);
    expect(await restoredFrom(w.one, w.one)).toEqual(w.state);
  }, 120_000);

  it("--force forgets it at once; its restore is then refused, not its attach state", async () => {
    const w = await writeInChild("live-force");
    const r = runCli(["compact", w.one, "--graph", "g", "--forget-store", idOf(w.two), "--force", "--json"]);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).not.toHaveProperty("sharedWalPins");
    expect(storedSeqs(w.one).frames).toEqual([]);
    expectRefused(await restoreOutcome(w.two, w.one), w.two, 42);
    expect(await restoredFrom(w.one, w.one)).toEqual(w.state);
  }, 120_000);
});
