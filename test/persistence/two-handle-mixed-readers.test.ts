/**
 * Readers on two handles where only the snapshot's holds a point in time: the baseline in a SQLite store in WAL mode
 * (its read-only handle's readConsistent holds one), the WAL in a SQLite store not in WAL mode (another program's
 * rollback journal: readConsistent runs the reads as usual, docs/api.md). The reader enters both readConsistent calls,
 * so it read the baseline at the snapshot handle's frozen time and the WAL live: a compaction committed after the
 * snapshot's point in time showed its deleted frames as a hole under the older baseline, whose re-read never moved:
 * restore failed with a false wal-gap (a compaction before the listing) or torn-write-mid-stream (after it, before
 * the frames were read), and a follower's load with them. A hole seen inside a point in time now makes the reader
 * read the graph again without one, where the compaction moves the baseline.
 * Controls: a WAL in a file or memory store (its tier has no readConsistent: the reader reads live and sees the
 * baseline move), and a true hole, which is still a wal-gap.
 * The compaction is real (compactGraph over both stores: the baseline first, then the deletions); it runs when the
 * reader first calls the named method of its tiers.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { sortKeys } from "../../src/backend/keys.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { BatchOp, StorageBackend } from "../../src/backend/types.js";
import { RestoreError } from "../../src/errors.js";
import type { GraphPersistSnapshot } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { followGraph } from "../../src/persistence/follow.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { sqliteKv, sqliteSnapshot } from "../../src/tier/factories.js";
import { kvStorage, snapshotStorage } from "../../src/tier/index.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";
import { errorOf } from "../support/wait.js";
import { GRAPH, buildGraph, randomWave, rng, tempDir } from "../graph-compaction/fixtures.js";

const tmp = tempDir("two-handle-mixed");
afterAll(() => tmp.remove());
const closing: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close();
});

type Pair = { snapshot: SnapshotStorageTier<GraphCheckpointRecord>; wal: KvStorageTier<WALFrame> };
type WalKind = "sqlite, not in WAL mode" | "file" | "memory";
let n = 0;

/** The writer's two stores (baseline in one, WAL in the other) with a baseline and 20 frames, and its history. */
async function writtenStores(walKind: WalKind) {
  const id = n++;
  const snapPath = tmp.path(`snap-${id}.db`);
  const snapW = sqliteBackend(snapPath);
  let walW: StorageBackend;
  let walReader: () => KvStorageTier<WALFrame>;
  if (walKind === "sqlite, not in WAL mode") {
    const path = tmp.path(`wal-${id}.db`);
    const w = sqliteBackend(path);
    w.db.pragma("journal_mode = DELETE"); // as a rollback-journal writer leaves it
    walW = w;
    walReader = () => sqliteKv<WALFrame>(path, { readOnly: true, codec: walFrameCodec });
  } else if (walKind === "file") {
    const dir = tmp.path(`wal-${id}`);
    walW = fileBackend(dir);
    walReader = () => kvStorage<WALFrame>(fileBackend(dir, { readOnly: true }), { codec: walFrameCodec });
  } else {
    walW = memoryBackend();
    walReader = () => kvStorage<WALFrame>(walW, { codec: walFrameCodec });
  }
  closing.push(() => snapW.close(), () => walW.close?.());
  const g = buildGraph();
  const handle = attachSnapshotStorage(
    g,
    [{ snapshot: snapshotStorage<GraphCheckpointRecord>(snapW), wal: kvStorage<WALFrame>(walW, { codec: walFrameCodec }) }],
    { compactEvery: Number.POSITIVE_INFINITY },
  );
  closing.push(() => handle.dispose());
  const history = new Map<number, GraphPersistSnapshot>();
  const random = rng(5);
  const wave = async (): Promise<void> => {
    randomWave(g, random);
    await handle.flush();
    history.set(handle.seq, g.snapshot());
  };
  await handle.flush();
  history.set(handle.seq, g.snapshot());
  while (handle.seq < 20) await wave();
  const readers = (): Pair => {
    const pair = { snapshot: sqliteSnapshot<GraphCheckpointRecord>(snapPath, { readOnly: true }), wal: walReader() };
    closing.push(() => pair.snapshot.close(), () => pair.wal.close());
    return pair;
  };
  /** A real compaction over both stores: the new baseline first, then the deletion of the frames it covers. */
  const compact = async (): Promise<void> => {
    const of = (k: string): StorageBackend => (k === GRAPH ? snapW : walW);
    const both: StorageBackend = {
      name: "two stores",
      supports: { list: true, delete: true, atomicBatch: false, persistent: true, durable: true, sync: false },
      read: (k) => of(k).read(k),
      write: (k, v) => of(k).write(k, v),
      delete: (k) => of(k).delete!(k),
      list: async (p) => sortKeys([...(await snapW.list(p)), ...(await walW.list!(p))]),
      writeBatch: async (ops: readonly BatchOp[]) => {
        for (const op of ops) await (op.op === "put" ? of(op.key).write(op.key, op.value) : of(op.key).delete!(op.key));
      },
    };
    const result = await compactGraph({ backend: both }, { graphName: GRAPH });
    expect(result.deletedFrames).toBeGreaterThan(0);
  };
  return { walW, history, wave, readers, compact };
}

/** `pair`, running `between` once, when the reader first calls `method` of either tier. */
function windowed(pair: Pair, method: "list" | "loadMany", between: () => Promise<void>): Pair {
  let armed = true;
  const fire = async (): Promise<void> => {
    if (!armed) return;
    armed = false;
    await between();
  };
  const wal = Object.create(pair.wal) as KvStorageTier<WALFrame>;
  if (method === "list") {
    wal.list = async (prefix) => {
      await fire();
      return pair.wal.list(prefix);
    };
  } else {
    // loadMany answers with an array of promises, not a promise.
    const loadMany = pair.wal.loadMany!.bind(pair.wal);
    wal.loadMany = (keys) => {
      const all = fire().then(() => Promise.all(loadMany(keys)));
      return keys.map((_k, i) => all.then((values) => values[i]));
    };
  }
  return { snapshot: pair.snapshot, wal };
}

const WINDOWS = [
  ["list", "after both points in time were taken, before the WAL is listed"],
  ["loadMany", "after the WAL was listed, before its frames are read"],
] as const;

describe.each<WalKind>(["sqlite, not in WAL mode", "file", "memory"])("baseline in a SQLite store in WAL mode, WAL in a %s store", (walKind) => {
  describe.each(WINDOWS)("a compaction when the reader first calls %s (%s)", (method) => {
    it("restoreSnapshot gives a state the writer had, not a false wal-gap", async () => {
      const { history, wave, readers, compact } = await writtenStores(walKind);
      const pair = windowed(readers(), method, async () => {
        await compact();
        await wave(); // and the writer goes on above the new baseline
      });
      const g = buildGraph();
      const r = await restoreSnapshot(g, pair);
      expect(r.finalSeq).toBeGreaterThanOrEqual(20);
      expect(g.snapshot()).toEqual(history.get(r.finalSeq));
    });

    it("followGraph loads a state the writer had and follows on", async () => {
      const { history, wave, readers, compact } = await writtenStores(walKind);
      const pair = windowed(readers(), method, async () => {
        await compact();
        await wave();
      });
      const g = buildGraph();
      const errors: unknown[] = [];
      const follower = await followGraph(g, pair, { pollMs: 3_600_000, onError: (e) => errors.push(e) });
      closing.push(() => follower.stop());
      expect(g.snapshot()).toEqual(history.get(follower.lag().appliedSeq));
      await wave();
      await follower.poll();
      expect(errors).toEqual([]);
      expect(g.snapshot()).toEqual(history.get(Math.max(...history.keys())));
    });
  });

  it("a true hole (a frame deleted by hand) is still a wal-gap", async () => {
    const { walW, readers } = await writtenStores(walKind);
    await walW.delete!(walFrameKey(graphWalPrefix(GRAPH), 7));
    const err = await errorOf(() => restoreSnapshot(buildGraph(), readers()));
    expect(err).toBeInstanceOf(RestoreError);
    expect(err).toMatchObject({ code: "wal-gap", details: { from: 7, to: 7 } });
  });
});
