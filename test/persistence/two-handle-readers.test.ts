/**
 * The documented reader (README, docs/api.md): restoreSnapshot / followGraph over two read-only handles of one
 * store, `sqliteSnapshot(path, { readOnly })` + `sqliteKv(path, { readOnly, codec })` (on PostgreSQL, two read-only
 * backends). Each handle holds its own point in time (docs/design.md §3.16). Before, the snapshot handle's was taken
 * first: a compaction committed between the two was seen by the WAL handle (folded frames gone) and not by the
 * snapshot handle (old baseline), whose frozen re-read never showed the baseline move, so the reader reported a
 * false RestoreError `wal-gap` ("frames 2..30 missing above the baseline (seq 1)") and a follower's load rejected
 * with it (review s12a F2; on PostgreSQL 4-11 false gaps in 200 restores beside a compacting writer).
 *
 * The compaction is put in that window deterministically, whichever order the reader takes the two points in time:
 * a real compaction on the writer's handle runs when the second of the two tiers takes its point in time (SQLite:
 * at readConsistent's entry; PostgreSQL: a REPEATABLE READ transaction's first statement). Either a full fold, or a
 * fold that listed before the last frames were written (it leaves frames above its new baseline). What the reader
 * gives must be a state the writer had.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { postgresBackend } from "../../src/backend/postgres.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import type { GraphPersistSnapshot } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { followGraph } from "../../src/persistence/follow.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord, StorageHandle } from "../../src/persistence/storage-types.js";
import { sqliteKv, sqliteSnapshot } from "../../src/tier/factories.js";
import { kvStorage, snapshotStorage } from "../../src/tier/index.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { graphWalPrefix, parseWalFrameKey } from "../../src/wal/keys.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { GRAPH, buildGraph, randomWave, rng, tempDir } from "../graph-compaction/fixtures.js";

const tmp = tempDir("two-handle-readers");
afterAll(() => tmp.remove());
const database = useTestDatabase();
/** Closed last first: followers, readers, the writer's handle, its backend. */
const closing: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close();
});

type Pair = { snapshot: SnapshotStorageTier<GraphCheckpointRecord>; wal: KvStorageTier<WALFrame> };
type Kind = "sqlite" | "postgres";
/** How the compaction folds: every frame, or only those a fold that listed 5 frames ago saw. */
type Fold = "every frame" | "all but the last 5 frames";

/** A writer with a baseline and 30 frames, and the state it had at each seq. */
async function writtenStore(kind: Kind): Promise<{
  writer: StorageBackend;
  readers: () => Promise<Pair>;
  handle: StorageHandle;
  history: Map<number, GraphPersistSnapshot>;
  wave: () => Promise<void>;
}> {
  let writer: StorageBackend;
  let readers: () => Promise<Pair>;
  if (kind === "sqlite") {
    const path = tmp.path(`store-${Math.random().toString(36).slice(2, 8)}.db`);
    writer = sqliteBackend(path);
    readers = async () => {
      const pair = {
        snapshot: sqliteSnapshot<GraphCheckpointRecord>(path, { readOnly: true }),
        wal: sqliteKv<WALFrame>(path, { readOnly: true, codec: walFrameCodec }),
      };
      closing.push(() => pair.snapshot.close(), () => pair.wal.close());
      return pair;
    };
  } else {
    const db = await database();
    const store = `two-${Math.random().toString(36).slice(2, 8)}`;
    writer = await postgresBackend({ url: db.url, schema: db.schema, store });
    readers = async () => {
      const a = await postgresBackend({ url: db.url, schema: db.schema, store, readOnly: true });
      const b = await postgresBackend({ url: db.url, schema: db.schema, store, readOnly: true });
      closing.push(() => a.close(), () => b.close());
      return { snapshot: snapshotStorage<GraphCheckpointRecord>(a), wal: kvStorage<WALFrame>(b, { codec: walFrameCodec }) };
    };
  }
  closing.push(() => writer.close?.());
  const g = buildGraph();
  const handle = attachSnapshotStorage(g, [{ snapshot: snapshotStorage<GraphCheckpointRecord>(writer), wal: kvStorage<WALFrame>(writer, { codec: walFrameCodec }) }], {
    compactEvery: Number.POSITIVE_INFINITY,
  });
  closing.push(() => handle.dispose());
  const history = new Map<number, GraphPersistSnapshot>();
  const random = rng(11);
  const wave = async (): Promise<void> => {
    randomWave(g, random);
    await handle.flush();
    history.set(handle.seq, g.snapshot());
  };
  await handle.flush();
  history.set(handle.seq, g.snapshot());
  while (handle.seq < 30) await wave();
  return { writer, readers, handle, history, wave };
}

/** A compaction on the writer's handle; "all but the last 5 frames" folds as one that listed 5 frames ago would. */
async function compact(writer: StorageBackend, fold: Fold): Promise<number> {
  const prefix = graphWalPrefix(GRAPH);
  const seqs = (await writer.list!(`${prefix}/`)).map((k) => parseWalFrameKey(prefix, k) ?? -1);
  const upTo = Math.max(...seqs) - (fold === "every frame" ? 0 : 5);
  const earlier: StorageBackend = Object.assign(Object.create(writer) as StorageBackend, {
    list: async (p?: string) => (await writer.list!(p)).filter((k) => (parseWalFrameKey(prefix, k) ?? -1) <= upTo),
  });
  const result = await compactGraph({ backend: earlier }, { graphName: GRAPH });
  expect(result.baselineSeq).toBe(upTo);
  return upTo;
}

/**
 * `pair` with `between` run once, right before the second of its two tiers takes its point in time: at
 * readConsistent's entry (SQLite begins its read transaction there) or at its first read (PostgreSQL's REPEATABLE
 * READ snapshot is taken at the first statement), whichever tier the reader goes to first.
 */
function windowed(pair: Pair, kind: Kind, between: () => Promise<void>): Pair {
  const began = new Set<string>();
  let armed = true;
  const begin = async (tier: string): Promise<void> => {
    if (armed && began.size === 1 && !began.has(tier)) {
      armed = false;
      await between();
    }
    began.add(tier);
  };
  const wrap = <T extends object>(tier: T, name: string, methods: readonly string[]): T => {
    const over: Record<string, unknown> = {};
    for (const m of methods) {
      const original = (tier as Record<string, unknown>)[m];
      if (typeof original !== "function") continue;
      over[m] = async (...args: unknown[]) => {
        await begin(name);
        return (original as (...a: unknown[]) => unknown).apply(tier, args);
      };
    }
    return Object.assign(Object.create(tier) as T, over);
  };
  if (kind === "sqlite") {
    return { snapshot: wrap(pair.snapshot, "snapshot", ["readConsistent"]), wal: wrap(pair.wal, "wal", ["readConsistent"]) };
  }
  // loadMany answers with an array of promises, not a promise: its first read goes through `load` beside it.
  const wal = wrap(pair.wal, "wal", ["list", "load", "listByPrefix"]);
  const loadMany = pair.wal.loadMany!.bind(pair.wal);
  const walFirstRead = async (keys: readonly string[]) => {
    await begin("wal");
    return Promise.all(loadMany(keys));
  };
  return {
    snapshot: wrap(pair.snapshot, "snapshot", ["load", "loadHead"]),
    wal: Object.assign(wal, {
      loadMany: (keys: readonly string[]) => {
        const all = walFirstRead(keys);
        return keys.map((_k, i) => all.then((values) => values[i]));
      },
    }),
  };
}

const CASES: Array<[Kind, Fold]> = [
  ["sqlite", "every frame"],
  ["sqlite", "all but the last 5 frames"],
  ["postgres", "every frame"],
  ["postgres", "all but the last 5 frames"],
];

describe.each(CASES)("readers on two read-only %s handles, a compaction (%s) between their points in time", (kind, fold) => {
  it("restoreSnapshot gives a state the writer had, not a false wal-gap", async () => {
    const { writer, readers, history, wave } = await writtenStore(kind);
    let folded: number | undefined;
    const pair = windowed(await readers(), kind, async () => {
      folded = await compact(writer, fold);
      await wave(); // and writes on above the new baseline
    });
    const g = buildGraph();
    const r = await restoreSnapshot(g, pair);
    expect(folded).toBeDefined();
    expect(r.finalSeq).toBeGreaterThanOrEqual(30);
    expect(g.snapshot()).toEqual(history.get(r.finalSeq));
  });

  it("followGraph loads without a false wal-gap and follows on", async () => {
    const { writer, readers, handle, history, wave } = await writtenStore(kind);
    let folded: number | undefined;
    const pair = windowed(await readers(), kind, async () => {
      folded = await compact(writer, fold);
      await wave();
    });
    const g = buildGraph();
    const errors: string[] = [];
    const follower = await followGraph(g, pair, { pollMs: 3_600_000, onError: (e) => errors.push(String(e)) });
    closing.push(() => follower.stop());
    expect(folded).toBeDefined();
    expect(g.snapshot()).toEqual(history.get(follower.lag().appliedSeq));
    await wave();
    await follower.poll();
    await follower.poll();
    expect(errors).toEqual([]);
    expect(follower.lag().appliedSeq).toBe(handle.seq);
    expect(g.snapshot()).toEqual(history.get(handle.seq));
  });
});
