/**
 * Baselines amortize by size (docs/design.md §3.18): with default options a new baseline is due once the WAL
 * written since the last one exceeds `baselineRatio` (2) × that baseline's size (64 KiB at least), so the WAL
 * above the stored baseline, which restore reads, stays within that bound however long the graph keeps changing.
 * Inline, attach writes the baseline (from its mirror, at the last frame's seq). With engine tiers of one store
 * the main thread writes none after attach: the store's actor folds the WAL into the new baseline.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { openStorageEngine } from "../../src/engine/index.js";
import {
  attachSnapshotStorage,
  createGraph,
  restoreSnapshot,
  type AttachPair,
  type GraphCheckpointRecord,
  type ReactiveGraph,
} from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { SnapshotStorageTier } from "../../src/tier/types.js";
import { graphWalPrefix, parseWalFrameKey, walFrameCodec, type WALFrame } from "../../src/wal/index.js";

const tmp = mkdtempSync(join(tmpdir(), "grf-baseline-ratio-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const NODES = 400;
const PAD = "x".repeat(200);
/** A baseline of ~120 KB (above the 64 KiB floor); one set is one frame of ~560 bytes. */
function build(): ReactiveGraph {
  const g = createGraph("g");
  for (let i = 0; i < NODES; i++) g.state(`n${i}`, { v: i, s: PAD });
  return g;
}

/** The snapshot tier with every save recorded (its seq). */
function counted(inner: SnapshotStorageTier<GraphCheckpointRecord>): { tier: SnapshotStorageTier<GraphCheckpointRecord>; seqs: number[] } {
  const seqs: number[] = [];
  const tier = Object.assign(Object.create(inner) as SnapshotStorageTier<GraphCheckpointRecord>, {
    save(record: GraphCheckpointRecord) {
      seqs.push(record.seq);
      inner.save(record);
    },
  });
  return { tier, seqs };
}

/** Stored bytes of the baseline and of the frames above it. */
async function stored(b: StorageBackend): Promise<{ baselineSeq: number; baselineBytes: number; above: number; below: number }> {
  const raw = (await b.read("g")) as Uint8Array;
  const baselineSeq = (JSON.parse(new TextDecoder().decode(raw)) as GraphCheckpointRecord).seq;
  let above = 0;
  let below = 0;
  const prefix = graphWalPrefix("g");
  for (const key of await b.list!(`${prefix}/`)) {
    const seq = parseWalFrameKey(prefix, key) as number;
    if (seq <= baselineSeq) below++;
    else above += ((await b.read(key)) as Uint8Array).byteLength;
  }
  return { baselineSeq, baselineBytes: raw.byteLength, above, below };
}

/**
 * 3,000 sets, 50 per tick, a flush after each tick; after every flush the WAL above the stored baseline is at
 * most ratio × baseline (plus the tick that made a baseline due and estimation slack). Returns the largest
 * WAL / baseline proportion seen.
 */
async function churn(g: ReactiveGraph, flush: () => Promise<number>, inspect: () => Promise<Awaited<ReturnType<typeof stored>>>): Promise<number> {
  let worst = 0;
  for (let i = 0; i < 3000; i++) {
    g.set(`n${(i * 7) % NODES}`, { v: -i, s: PAD });
    if (i % 50 === 49) {
      await flush();
      const s = await inspect();
      const bound = 2 * s.baselineBytes * 1.25 + 50 * 600;
      expect(s.above, `after ${i + 1} sets: ${s.above} WAL bytes above a baseline of ${s.baselineBytes}`).toBeLessThanOrEqual(bound);
      worst = Math.max(worst, s.above / s.baselineBytes);
    }
  }
  return worst;
}

describe("default baselines follow the size of the WAL", () => {
  it("inline: attach writes a baseline at the last frame's seq once the WAL outgrows twice the last baseline", async () => {
    const backend = memoryBackend();
    const { tier: snapshot, seqs } = counted(snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }));
    const wal = kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec });
    const g = build();
    const h = attachSnapshotStorage(g, [{ snapshot, wal }]);
    const worst = await churn(g, () => h.flush(), () => stored(backend));
    // ~1.7 MB of WAL against baselines of ~120 KB: one baseline per ~240 KB, each at a frame's seq.
    expect(seqs.length - 1).toBeGreaterThanOrEqual(4);
    expect(seqs.length - 1).toBeLessThanOrEqual(12);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(worst).toBeGreaterThan(1); // the bound is reached, not undercut by needless baselines
    const r = build();
    await restoreSnapshot(r, { snapshot, wal });
    expect(r.snapshot()).toEqual(g.snapshot());
    await h.dispose();
  });

  it("engine: the main thread writes no baseline after attach; the store's actor folds the WAL within the same bound", async () => {
    const engine = openStorageEngine({ threads: 1 });
    const path = join(tmp, "engine.db");
    const spec = { kind: "sqlite" as const, path };
    let reader: StorageBackend | undefined;
    try {
      const { tier: snapshot, seqs } = counted(engine.snapshot<GraphCheckpointRecord>(spec, { name: "snap" }));
      const wal = engine.kv<WALFrame>(spec, { name: "wal", codec: walFrameCodec });
      const g = build();
      const h = attachSnapshotStorage(g, [{ snapshot, wal }]);
      await h.flush();
      const r0 = (reader = sqliteBackend(path, { readOnly: true })); // a reader beside the writer (no lock)
      // A compaction the last flush set off runs before the next op of the store: flush twice before looking.
      const flush = async (): Promise<number> => (await h.flush(), h.flush());
      // One read transaction: a fold the actor commits mid-look (a loaded machine) cannot delete a listed frame.
      const look = async (): Promise<Awaited<ReturnType<typeof stored>>> => {
        r0.db.exec("BEGIN");
        try {
          return await stored(r0);
        } finally {
          r0.db.exec("COMMIT");
        }
      };
      const worst = await churn(g, flush, look);
      expect(seqs).toEqual([1]); // only the attach baseline crossed from this thread
      const s = await look();
      expect(s.baselineSeq).toBeGreaterThan(1); // the actor folded the WAL
      expect(s.below).toBe(0); // and deleted the frames it covers
      expect(worst).toBeGreaterThan(1);
      const r = build();
      await restoreSnapshot(r, { snapshot, wal });
      expect(r.snapshot()).toEqual(g.snapshot());
      await h.dispose();
    } finally {
      await reader?.close?.();
      await engine.close();
    }
  });

  it("engine tiers of two stores (baseline and WAL apart): attach writes the baselines itself", async () => {
    const engine = openStorageEngine({ threads: 1 });
    try {
      const walStore = { kind: "sqlite" as const, path: join(tmp, "wal-apart.db") };
      const snapStore = { kind: "sqlite" as const, path: join(tmp, "snap-apart.db") };
      const { tier: snapshot, seqs } = counted(engine.snapshot<GraphCheckpointRecord>(snapStore, { name: "snap" }));
      const pair: AttachPair = { snapshot, wal: engine.kv<WALFrame>(walStore, { name: "wal", codec: walFrameCodec }) };
      const g = build();
      const h = attachSnapshotStorage(g, [pair]);
      for (let i = 0; i < 1000; i++) g.set(`n${i % NODES}`, { v: -i, s: PAD });
      await h.flush();
      expect(seqs.length).toBe(2); // the attach baseline and one written here (the burst's last one due)
      expect(seqs[1]).toBe(h.seq);
      await h.dispose();
    } finally {
      await engine.close();
    }
  });

  it("validates baselineRatio", () => {
    const backend = memoryBackend();
    const pair = { snapshot: snapshotStorage<GraphCheckpointRecord>(backend), wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }) };
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, "2"]) {
      expect(() => attachSnapshotStorage(build(), [pair], { baselineRatio: bad as number })).toThrow(RangeError);
    }
  });
});
