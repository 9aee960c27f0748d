/**
 * Attach's reclaim trusts no foreign record (docs/design.md §3.27). It deletes frames below a baseline it proved
 * stored; the proof was the stored record's head (name, seq), and the frames a store held when the pair attached
 * were deleted by key. So:
 * - a record another writer put under the graph's key, whose head names the graph at a high enough seq, was trusted
 *   though restore refuses it (a spec projection, a malformed snapshot, JSON not written sorted that names another
 *   graph after its snapshot, or says another seq there): the frames went, and with them changes restore needed;
 * - attaching graph `g` over a store whose frame key holds another graph's baseline deleted that record with g's
 *   frames of the session before.
 * Now a record read back at attach, or at a seq this pair did not save, is checked as restore checks a baseline,
 * and each key listed at attach is read: only a frame at its seq is deleted; another record is kept and reported
 * (`corrupt-store`). Real SQLite files throughout.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { jsonCodec } from "../../src/codec/json.js";
import { StorageError } from "../../src/errors.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { attachSnapshotStorage } from "../../src/index.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { SnapshotStorageTier } from "../../src/tier/types.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";
import { until } from "../support/wait.js";
import { GRAPH, buildGraph, inlinePair, restoredSnapshot, storedBaseline, storedFrameSeqs, tempDir } from "../graph-compaction/fixtures.js";

const tmp = tempDir("reclaim-foreign");
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => tmp.remove());

const text = new TextEncoder();
const frameKey = (seq: number): string => walFrameKey(graphWalPrefix(GRAPH), seq);

function openStore(name: string): StorageBackend {
  const backend = sqliteBackend(tmp.path(`${name}.db`));
  cleanups.push(() => backend.close());
  return backend;
}

/** A session that keeps its frames (compactEvery: Infinity): 30 changes above its attach baseline (seq 1). */
async function firstSession(backend: StorageBackend): Promise<{ snapshot: unknown; seq: number }> {
  const graph = buildGraph();
  const handle = attachSnapshotStorage(graph, [inlinePair(backend)], { compactEvery: Number.POSITIVE_INFINITY });
  for (let i = 0; i < 30; i++) graph.set("a", 100 + i);
  const seq = await handle.flush();
  await handle.dispose();
  return { snapshot: graph.snapshot(), seq };
}

/** The snapshot tier, counting read-backs that settled (the seq bootstrap's read is the first). */
function countedSnapshot(backend: StorageBackend, filter?: (r: GraphCheckpointRecord) => boolean) {
  const tier: SnapshotStorageTier<GraphCheckpointRecord> = snapshotStorage<GraphCheckpointRecord>(backend, filter ? { filter } : {});
  const loadHead = tier.loadHead!.bind(tier);
  let heads = 0;
  tier.loadHead = async (key) => {
    try {
      return await loadHead(key);
    } finally {
      heads++;
    }
  };
  return { tier, heads: () => heads };
}

/** Lets a reclaim decided by now run its deletes (a batch per turn) before the store is looked at. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 150));

describe("attach over a store whose frame key holds another graph's baseline", () => {
  it("deletes the last session's frames but keeps that record, and reports it as corrupt-store", async () => {
    const backend = openStore("foreign-frame-key");
    const first = await firstSession(backend);
    // An older store: graph "g/wal/…05" (a name refused since, §3.27) stored its baseline over g's frame 5.
    const foreignName = frameKey(5);
    const foreign = jsonCodec.encode({
      format_version: 1,
      mode: "full",
      name: foreignName,
      seq: 0,
      snapshot: { ...buildGraph().snapshot(), name: foreignName },
      timestamp_ns: 1,
    });
    backend.write(foreignName, foreign);
    const errors: Error[] = [];
    const graph = buildGraph();
    graph.set("b", 7);
    const handle = attachSnapshotStorage(graph, [inlinePair(backend)], { onError: (e) => void errors.push(e) });
    cleanups.push(() => handle.dispose());
    await handle.flush();
    await until(async () => (await storedFrameSeqs(backend)).every((s) => s === 5), "the other stale frames deleted", {
      timeoutMs: 10_000,
    });
    await settle();
    expect(await storedFrameSeqs(backend)).toEqual([5]); // before: [] (the other graph's record deleted with them)
    expect(Buffer.from(backend.read(foreignName) as Uint8Array).equals(Buffer.from(foreign))).toBe(true);
    const reported = errors.filter((e) => e instanceof StorageError && e.code === "corrupt-store");
    expect(reported).toHaveLength(1);
    expect((reported[0] as StorageError).details.key).toBe(foreignName);
    expect(first.seq).toBeGreaterThan(5);
    // Below the attach baseline: restore never reads it.
    expect(await restoredSnapshot(inlinePair(backend))).toEqual(graph.snapshot());
  });
});

/**
 * The stored record under GRAPH, as another writer puts it there when this pair's save of a baseline at `seq`
 * happens: its head says graph g at `seq`, its whole says otherwise.
 */
type Liar = (seq: number, session: GraphCheckpointRecord) => Uint8Array;

const canonical = (record: Record<string, unknown>): Uint8Array => jsonCodec.encode(record);
const unsorted = (head: string, snapshot: unknown, tail: string): Uint8Array =>
  text.encode(`${head}"snapshot":${JSON.stringify(snapshot)}${tail}`);

const LIARS: ReadonlyArray<readonly [string, Liar]> = [
  [
    "JSON not written sorted, naming another graph after its snapshot",
    (seq, s) => unsorted(`{"format_version":1,"mode":"full","name":"g","seq":${seq},`, s.snapshot, `,"name":"h","timestamp_ns":1}`),
  ],
  [
    "JSON not written sorted, with another seq after its snapshot (a real baseline at seq 1)",
    (seq, s) => unsorted(`{"format_version":1,"mode":"full","name":"g","seq":${seq},`, s.snapshot, `,"seq":1,"timestamp_ns":1}`),
  ],
  [
    "a spec projection",
    (seq, s) => canonical({ format_version: 1, lifecycle: "spec", mode: "full", name: GRAPH, seq, snapshot: s.snapshot, timestamp_ns: 1 }),
  ],
  [
    "a malformed snapshot",
    (seq) => canonical({ format_version: 1, mode: "full", name: GRAPH, seq, snapshot: { name: GRAPH, nodes: 7, version: 1 }, timestamp_ns: 1 }),
  ],
];

describe("a record another writer put under the graph's key is checked whole before frames go on its word", () => {
  it.each(LIARS)("at attach (the frames of the session before stay): %s", async (what, liar) => {
    const backend = openStore("liar-attach");
    const first = await firstSession(backend);
    const session = await storedBaseline(backend);
    const before = await storedFrameSeqs(backend);
    // This pair's attach baseline is not stored (its filter drops it); another writer's record lands instead.
    const { tier, heads } = countedSnapshot(backend, (r) => {
      backend.write(GRAPH, liar(r.seq, session));
      return false;
    });
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [{ snapshot: tier, wal: inlinePair(backend).wal }]);
    cleanups.push(() => handle.dispose());
    await handle.flush();
    await until(() => heads() >= 2, "the attach baseline read back");
    await settle();
    expect(await storedFrameSeqs(backend)).toEqual(before); // before the fix: [] (all deleted)
    if (what.includes("another seq")) {
      // That record decodes as the session's own baseline: its frames are what restore replays above it.
      expect(await restoredSnapshot(inlinePair(backend))).toEqual(first.snapshot);
    }
  });

  it.each(LIARS)("at a periodic baseline, a record at a seq this pair did not save (its frames stay): %s", async (what, liar) => {
    const { backend, heads, readBacks, seq } = await periodicBaselinesReplaced("liar-periodic", (r, backend) =>
      liar(r.seq + 1000, storedBaselineSync(backend)),
    );
    await until(() => heads() > readBacks, "a periodic baseline read back");
    await settle();
    const seqs = await storedFrameSeqs(backend);
    expect(seqs).toEqual(Array.from({ length: seq - 1 }, (_, i) => i + 2)); // before the fix: those below it deleted
  });
});

/**
 * A pair attached to a fresh store (nothing to reclaim at attach, so no read-back yet) whose periodic baselines,
 * from then on, are not saved: `replace` writes what the store holds under the graph's key instead. Then 300
 * ~600-byte values against a 64 KiB baseline floor: a periodic baseline every ~220 frames.
 */
async function periodicBaselinesReplaced(store: string, replace: (r: GraphCheckpointRecord, backend: StorageBackend) => Uint8Array) {
  const backend = openStore(store);
  let armed = false;
  const { tier, heads } = countedSnapshot(backend, (r) => {
    if (!armed) return true;
    backend.write(GRAPH, replace(r, backend));
    return false;
  });
  const graph = buildGraph();
  const handle = attachSnapshotStorage(graph, [{ snapshot: tier, wal: inlinePair(backend).wal }]);
  cleanups.push(() => handle.dispose());
  await handle.flush();
  armed = true;
  const readBacks = heads();
  for (let i = 0; i < 300; i++) {
    graph.set("c", `${"payload ".repeat(75)}${i}`);
    if (i % 50 === 49) await handle.flush();
  }
  const seq = await handle.flush();
  return { backend, heads, readBacks, seq };
}

function storedBaselineSync(backend: StorageBackend): GraphCheckpointRecord {
  return jsonCodec.decode(backend.read(GRAPH) as Uint8Array) as GraphCheckpointRecord;
}

describe("what is reclaimed still", () => {
  it("a periodic baseline another pair's compaction moved past (a real baseline at a higher seq): checked whole, frames deleted", async () => {
    // A real baseline of g, at a seq above this pair's (as a compaction's fold writes one).
    const { backend } = await periodicBaselinesReplaced("higher-real", (r) =>
      canonical({ ...r, seq: r.seq + 1 } as unknown as Record<string, unknown>),
    );
    const baselineSeq = (await storedBaseline(backend)).seq;
    await until(async () => (await storedFrameSeqs(backend)).every((s) => s > baselineSeq - 1), "frames below it deleted", {
      timeoutMs: 10_000,
    });
  });
});
