/**
 * One unreadable stale key does not hold attach's reclaim back (docs/design.md §3.27). The keys listed at attach
 * are read before any is deleted; a read that THROWS (rather than find bytes that do not decode) was the whole
 * reclaim's: a WAL codec that throws something other than CodecError on bytes it does not know (a third-party
 * decoder's TypeError), or a read error on one key (EIO). Then the stale keys AND the pair's own dead frames were
 * given back and the read-back retried on a timer forever, each time decoding the whole baseline and failing again:
 * the pair's own frames were never reclaimed (the WAL grew without bound) and onError heard nothing.
 * Now the pair's own dead frames go once the baseline is proven, the key that cannot be read is kept and reported
 * once, the other stale keys are deleted, and only the unread keys are read again (no baseline decoded again).
 * A codec's own throw is CodecError("decode-failed") since task 182 (docs/design.md §3.2): such a value is one that
 * does not decode, kept unreported as the built-in frame codec's undecodable values are (it may be a kv value of the
 * user's, §3.27), never deleted. Real SQLite files, real engine worker.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import type { Codec } from "../../src/codec/types.js";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { attachSnapshotStorage, StorageError, type StorageHandle } from "../../src/index.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { kvStorage } from "../../src/tier/kv.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";
import { faultyBackend } from "../support/faulty-backend.js";
import { until } from "../support/wait.js";
import { GRAPH, buildGraph, inlinePair, restoredSnapshot, storedBaseline, storedFrameSeqs, tempDir } from "../graph-compaction/fixtures.js";

const tmp = tempDir("reclaim-unreadable");
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => tmp.remove());

const frameKey = (seq: number): string => walFrameKey(graphWalPrefix(GRAPH), seq);
/** What a binary decoder meets in a value it did not write: neither JSON nor a frame. */
const ALIEN = Uint8Array.from([0xc1, 0xff, 0x00, 0x13]);

/**
 * The frame codec, as a third-party decoder would be: on bytes it does not know it throws its own error (a
 * TypeError), not CodecError. Frames it wrote decode as before.
 */
const strictDecoder: Codec<WALFrame> = {
  name: "strict-wal-frame",
  version: 1,
  encode: (frame) => walFrameCodec.encode(frame),
  decode(bytes) {
    if (bytes[0] !== 0x7b) throw new TypeError(`unexpected byte 0x${(bytes[0] ?? 0).toString(16)} at offset 0`);
    return walFrameCodec.decode(bytes);
  },
};

function pairOf(backend: StorageBackend, codec: Codec<WALFrame>): { snapshot: SnapshotStorageTier<GraphCheckpointRecord>; wal: KvStorageTier<WALFrame> } {
  return { snapshot: snapshotStorage<GraphCheckpointRecord>(backend), wal: kvStorage<WALFrame>(backend, { codec }) };
}

/** A session that keeps its frames (compactEvery: Infinity): 30 changes above its attach baseline (seq 1). */
async function firstSession(backend: StorageBackend, codec: Codec<WALFrame>): Promise<number> {
  const graph = buildGraph();
  const handle = attachSnapshotStorage(graph, [pairOf(backend, codec)], { compactEvery: Number.POSITIVE_INFINITY });
  for (let i = 0; i < 30; i++) graph.set("a", 100 + i);
  const seq = await handle.flush();
  await handle.dispose();
  return seq;
}

/** ~600-byte values against a 64 KiB baseline floor: a periodic baseline every ~220 frames. */
async function churn(graph: ReturnType<typeof buildGraph>, handle: StorageHandle, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    graph.set("c", `${"payload ".repeat(75)}${i}`);
    if (i % 50 === 49) await handle.flush();
  }
  await handle.flush();
}

/** Frames at or below the stored baseline's seq, but `kept`. */
async function deadFramesBut(backend: StorageBackend, kept: number): Promise<number[]> {
  const base = (await storedBaseline(backend)).seq;
  return (await storedFrameSeqs(backend)).filter((s) => s <= base && s !== kept);
}

describe("attach over a store where one stale key cannot be read (inline SQLite tiers)", () => {
  it("a value the WAL codec throws on (not a CodecError): own frames reclaimed past several baselines, the key kept as an undecodable value", async () => {
    const path = tmp.path("alien-value.db");
    const backend = sqliteBackend(path);
    cleanups.push(() => backend.close());
    expect(await firstSession(backend, strictDecoder)).toBeGreaterThan(5);
    backend.write(frameKey(5), ALIEN); // a value of another program's under a frame key
    const errors: Error[] = [];
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [pairOf(backend, strictDecoder)], { onError: (e) => void errors.push(e) });
    cleanups.push(() => handle.dispose());
    await handle.flush();
    await churn(graph, handle, 700); // three periodic baselines or so
    const base = (await storedBaseline(backend)).seq;
    expect(base).toBeGreaterThan(500);
    // Before: the own frames of this session were never deleted (every reclaim given back, retried forever).
    await until(async () => (await deadFramesBut(backend, 5)).length === 0, "the dead frames deleted but the unreadable key", {
      timeoutMs: 15_000,
    });
    expect((await storedFrameSeqs(backend))[0]).toBe(5);
    expect(Buffer.from(backend.read(frameKey(5)) as Uint8Array)).toEqual(Buffer.from(ALIEN));
    await new Promise((r) => setTimeout(r, 1_000));
    // The codec's throw is CodecError("decode-failed") (task 182): a value that does not decode, kept as the built-in
    // codec's are (a kv value of the user's, §3.27), with nothing to report or read again.
    expect(errors).toEqual([]);
    expect(await restoredSnapshot(inlinePair(backend))).toEqual(graph.snapshot());
  });

  it("a read error on one key (EIO): the other stale keys and the own frames go, that key stays, one report", async () => {
    const inner = sqliteBackend(tmp.path("eio.db"));
    cleanups.push(() => inner.close());
    const before = await firstSession(inner, walFrameCodec);
    const backend = faultyBackend(inner);
    backend.inject({ op: "read", errno: "EIO", key: new RegExp(`^${frameKey(7)}$`) });
    const errors: Error[] = [];
    const graph = buildGraph();
    const pair = inlinePair(backend);
    // Whole decodes of the stored baseline (a read-back's head is loadHead): the stale keys' check is one.
    let decodes = 0;
    const load = pair.snapshot.load.bind(pair.snapshot);
    pair.snapshot.load = (key) => {
      decodes++;
      return load(key);
    };
    const handle = attachSnapshotStorage(graph, [pair], { onError: (e) => void errors.push(e) });
    cleanups.push(() => handle.dispose());
    await handle.flush();
    await until(async () => (await storedFrameSeqs(inner)).every((s) => s === 7 || s > before), "the readable stale keys deleted", {
      timeoutMs: 15_000,
    });
    const decoded = decodes;
    await new Promise((r) => setTimeout(r, 1_500)); // the key's reads are retried meanwhile (100 ms doubling)
    expect(backend.failures.filter((f) => f.keys.includes(frameKey(7))).length).toBeGreaterThan(2);
    expect(decodes).toBe(decoded); // a retry reads the key, not the baseline again
    await churn(graph, handle, 500);
    await until(async () => (await deadFramesBut(inner, 7)).length === 0, "the own dead frames deleted", { timeoutMs: 15_000 });
    expect((await storedFrameSeqs(inner))[0]).toBe(7);
    const reported = errors.filter((e) => e instanceof StorageError && e.details.key === frameKey(7));
    expect(reported).toHaveLength(1);
    expect(errors).toHaveLength(1);
    // The disk healed: a retry reads it and deletes it (a frame of the session before, below the baseline).
    backend.heal();
    await until(async () => !(await storedFrameSeqs(inner)).includes(7), "the healed key deleted by a retry", { timeoutMs: 30_000 });
    expect(await restoredSnapshot(inlinePair(inner))).toEqual(graph.snapshot());
  });
});

describe("engine tiers of one store (the actor folds; the pair reclaims the stale keys)", () => {
  it("a value the WAL codec throws on: the other stale keys go, that key stays (an undecodable value)", async () => {
    const store: StoreSpec = { kind: "sqlite", path: tmp.path("engine-alien.db") };
    const backend = sqliteBackend(store.path);
    const before = await firstSession(backend, strictDecoder);
    backend.write(frameKey(5), ALIEN);
    backend.close();
    const engine = openStorageEngine({ threads: 1 });
    cleanups.push(() => engine.close());
    const errors: Error[] = [];
    const graph = buildGraph();
    const pair = { snapshot: engine.snapshot<GraphCheckpointRecord>(store), wal: engine.kv<WALFrame>(store, { codec: strictDecoder }) };
    const handle = attachSnapshotStorage(graph, [pair], { onError: (e) => void errors.push(e) });
    cleanups.push(() => handle.dispose());
    await handle.flush();
    const prefix = `${graphWalPrefix(GRAPH)}/`;
    await until(async () => (await pair.wal.list(prefix)).every((k) => k === frameKey(5) || k > frameKey(before)), "the stale frames deleted", {
      timeoutMs: 15_000,
    });
    expect(await pair.wal.list(prefix)).toContain(frameKey(5));
    await new Promise((r) => setTimeout(r, 1_000));
    expect(errors).toEqual([]); // a codec's throw is CodecError("decode-failed") since task 182: kept unreported
  });
});

describe("the read-back at attach decodes the stored baseline once", () => {
  it("a snapshot tier without loadHead: the seq bootstrap's decode and the check's, not a third for a head", async () => {
    const backend = sqliteBackend(tmp.path("no-head.db"));
    cleanups.push(() => backend.close());
    const before = await firstSession(backend, walFrameCodec);
    const inline = inlinePair(backend);
    let decodes = 0;
    // A custom tier: no loadHead, so every read of the record decodes it whole.
    const snapshot = Object.assign(Object.create(inline.snapshot) as SnapshotStorageTier<GraphCheckpointRecord>, {
      loadHead: undefined,
      load: (key: string) => {
        decodes++;
        return inline.snapshot.load(key);
      },
    });
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [{ snapshot, wal: inline.wal }]);
    cleanups.push(() => handle.dispose());
    await handle.flush();
    await until(async () => (await storedFrameSeqs(backend)).every((s) => s > before), "the stale frames deleted", { timeoutMs: 15_000 });
    expect(decodes).toBe(2); // before: 3 (the check read a head first, a whole decode here, then the record again)
  });
});
