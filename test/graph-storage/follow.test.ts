/**
 * followGraph (issue 14 item 3, docs/design.md §3.17): a follower over read-only tiers keeps a graph equal to the
 * writer's at every poll, across the writer's compactions and restarts; a torn tail waits, a hole or a bad frame
 * mid-stream stops it typed; transient failures are retried; stop() ends it cleanly. Polls are driven by hand
 * (`poll()`, with a poll interval no test waits for) except where the timer itself is under test. The writer runs in
 * this process here (inline or through an engine); test/reliability/crash-follow.test.ts kills a writer process.
 */
import { afterEach, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { sqliteBackend, type SqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { RestoreError, StorageError } from "../../src/errors.js";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph, compactGraphInEngine } from "../../src/persistence/compaction.js";
import { followGraph, IDLE_BASELINE_POLLS, type FollowerLag, type FollowOptions, type GraphFollower } from "../../src/persistence/follow.js";
import type { GraphCheckpointRecord, StorageHandle } from "../../src/persistence/storage-types.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { sealWalFrame, walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";
import { faultyBackend } from "../support/faulty-backend.js";
import { errorOf, until } from "../support/wait.js";
import { GRAPH, buildGraph, inlinePair, randomWave, rng, storedFrameSeqs, tempDir, type TempDir } from "../graph-compaction/fixtures.js";

type Kind = "file" | "sqlite";
const KINDS: readonly Kind[] = ["sqlite", "file"];
/** Long enough that the timer never polls during a test that polls by hand. */
const BY_HAND = 3_600_000;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Store {
  readonly kind: Kind;
  readonly location: string;
  /** The writer's backend (holds the lock). */
  readonly backend: StorageBackend;
  /** A fresh read-only handle on the same store. */
  reader(): StorageBackend;
}

function openStore(kind: Kind): Store {
  const tmp: TempDir = tempDir(`follow-${kind}`);
  const location = kind === "sqlite" ? tmp.path("store.db") : tmp.path("store");
  const open = (readOnly: boolean): StorageBackend =>
    kind === "sqlite" ? sqliteBackend(location, { readOnly }) : fileBackend(location, { readOnly });
  const backend = open(false);
  const readers: StorageBackend[] = [];
  cleanups.push(() => {
    for (const r of readers) r.close?.();
    backend.close?.();
    tmp.remove();
  });
  return {
    kind,
    location,
    backend,
    reader() {
      const r = open(true);
      readers.push(r);
      return r;
    },
  };
}

interface Writer {
  readonly graph: ReactiveGraph;
  readonly handle: StorageHandle;
  /** Runs `n` random waves and resolves with the seq flush() acknowledged. */
  waves(n: number): Promise<number>;
}

/** A writer: the fixture graph attached to the store (its attach baseline durable), baselines only when asked. */
async function startWriter(store: Store): Promise<Writer> {
  const graph = buildGraph();
  const handle = attachSnapshotStorage(graph, [inlinePair(store.backend)], { compactEvery: Number.POSITIVE_INFINITY });
  cleanups.push(() => handle.dispose());
  await handle.flush();
  const random = rng(0x5eed ^ store.location.length);
  return {
    graph,
    handle,
    async waves(n) {
      for (let i = 0; i < n; i++) randomWave(graph, random);
      return handle.flush();
    },
  };
}

async function follow(backend: StorageBackend, opts: FollowOptions = {}): Promise<{ graph: ReactiveGraph; follower: GraphFollower }> {
  const graph = buildGraph();
  const follower = await followGraph(graph, inlinePair(backend), { pollMs: BY_HAND, ...opts });
  cleanups.push(() => follower.stop());
  return { graph, follower };
}

async function compact(store: Store, keepFrames = 0): Promise<number> {
  return (await compactGraph({ backend: store.backend }, { graphName: GRAPH, keepFrames })).baselineSeq;
}

function expectCoded(err: unknown, type: typeof RestoreError | typeof StorageError, code: string): void {
  expect(err, `expected ${type.name}(${code})`).toBeInstanceOf(type);
  expect((err as RestoreError).code).toBe(code);
}

/** A sealed data frame setting state "a" (what a writer would store at `seq`). */
function frameAt(seq: number, value: number): WALFrame {
  return sealWalFrame({
    t: "c",
    lifecycle: "data",
    path: "a",
    change: { structure: "graph", version: 1, t_ns: 1, lifecycle: "data", change: { kind: "node.set", path: "a", value } },
    frame_seq: seq,
    frame_t_ns: Date.now() * 1e6,
  });
}

const frameKey = (seq: number): string => walFrameKey(graphWalPrefix(GRAPH), seq);
const putFrame = (b: StorageBackend, seq: number, value: number): void =>
  void b.write(frameKey(seq), walFrameCodec.encode(frameAt(seq, value)));

describe.each(KINDS)("followGraph over read-only tiers (%s)", (kind) => {
  it("equals the writer's graph after every poll, with no frames behind", async () => {
    const store = openStore(kind);
    const writer = await startWriter(store);
    await writer.handle.flush();
    const { graph, follower } = await follow(store.reader());
    expect(graph.snapshot()).toEqual(writer.graph.snapshot());
    for (let round = 0; round < 15; round++) {
      const seq = await writer.waves(1 + (round % 4));
      const lag = await follower.poll();
      expect(lag).toMatchObject({ appliedSeq: seq, storedSeq: seq, frames: 0 });
      expect(graph.snapshot(), `round ${round}`).toEqual(writer.graph.snapshot());
    }
    expect(follower.stats()).toMatchObject({ state: "following", reloads: 0, lastError: undefined });
    expect(follower.stats().appliedFrames).toBeGreaterThan(15);
  });

  it("applies one poll's frames as one wave of its graph", async () => {
    const store = openStore(kind);
    const writer = await startWriter(store);
    const { graph, follower } = await follow(store.reader());
    let waves = 0;
    graph.observe(() => void waves++);
    await writer.waves(12);
    await follower.poll();
    expect(waves).toBe(1);
    expect(graph.snapshot()).toEqual(writer.graph.snapshot());
  });

  it("reloads the newer baseline when a compaction folded frames it had not applied, and goes on from there", async () => {
    const store = openStore(kind);
    const writer = await startWriter(store);
    const { graph, follower } = await follow(store.reader());
    for (let round = 0; round < 8; round++) {
      await writer.waves(3);
      // Some frames above the follower are folded away, others stay above the new baseline (the hole shows).
      await compact(store, round % 2);
      await writer.waves(1 + (round % 3));
      await follower.poll();
      expect(graph.snapshot(), `round ${round}`).toEqual(writer.graph.snapshot());
    }
    expect(follower.stats().reloads).toBeGreaterThanOrEqual(8);
    expect(follower.stats().lastError).toBeUndefined();
  });

  it("catches a compaction that folded everything written since its last poll, leaving no frame at all", async () => {
    const store = openStore(kind);
    const writer = await startWriter(store);
    await writer.waves(4);
    await compact(store);
    const { graph, follower } = await follow(store.reader());
    expect(await storedFrameSeqs(store.backend)).toEqual([]);
    const seq = await writer.waves(5);
    expect(await compact(store)).toBe(seq);
    expect(await storedFrameSeqs(store.backend)).toEqual([]);
    // SQLite's change counter moved, so the first poll reads the baseline; without one, idle polls read it in turn.
    const polls = kind === "sqlite" ? 1 : IDLE_BASELINE_POLLS;
    for (let i = 0; i < polls; i++) await follower.poll();
    expect(follower.lag().appliedSeq).toBe(seq);
    expect(graph.snapshot()).toEqual(writer.graph.snapshot());
    expect(follower.stats().reloads).toBe(1);
  });

  it("follows a new writer that restarted on the store (its attach baseline takes a seq no frame has)", async () => {
    const store = openStore(kind);
    const first = await startWriter(store);
    await first.waves(5);
    const { graph, follower } = await follow(store.reader());
    await first.handle.dispose();
    const second = await startWriter(store); // a fresh graph attached: the store now holds its state
    await second.waves(3);
    await follower.poll();
    expect(graph.snapshot()).toEqual(second.graph.snapshot());
    expect(follower.stats().reloads).toBe(1);
  });

  it("catches a baseline stored above the frames a poll applied, the writer quiet after it (rebaseline)", async () => {
    const store = openStore(kind);
    const writer = await startWriter(store);
    const { graph, follower } = await follow(store.reader());
    const framed = await writer.waves(4);
    const seq = await writer.handle.rebaseline(); // a baseline at a seq no frame has, above the frames
    expect(seq).toBeGreaterThan(framed);
    expect(await follower.poll()).toMatchObject({ appliedSeq: framed, frames: 0 }); // the frames
    // The writer stays quiet (with SQLite, the change counter does not move again): the next poll still finds it.
    await follower.poll();
    expect(follower.lag()).toMatchObject({ appliedSeq: seq, frames: 0 });
    expect(graph.snapshot()).toEqual(writer.graph.snapshot());
    expect(follower.stats().reloads).toBe(1);
  });

  it("leaves a torn tail frame for a later poll, then applies it once it reads right", async () => {
    const store = openStore(kind);
    const writer = await startWriter(store);
    const seq = await writer.waves(3);
    await writer.handle.dispose();
    const errors: Error[] = [];
    const { graph, follower } = await follow(store.reader(), { onError: (e) => void errors.push(e) });
    const good = walFrameCodec.encode(frameAt(seq + 1, 4242));
    store.backend.write(frameKey(seq + 1), good.subarray(0, 20)); // the writer is mid-write
    expect(await follower.poll()).toMatchObject({ appliedSeq: seq, storedSeq: seq + 1, frames: 1 });
    expect(graph.describeNode("a")?.value).not.toBe(4242);
    store.backend.write(frameKey(seq + 1), good);
    expect(await follower.poll()).toMatchObject({ appliedSeq: seq + 1, frames: 0 });
    expect(graph.describeNode("a")?.value).toBe(4242);
    expect(errors).toEqual([]);
  });

  it("stops typed on a bad frame with later frames after it (torn-write-mid-stream), through onError, done and poll", async () => {
    const store = openStore(kind);
    const writer = await startWriter(store);
    const seq = await writer.waves(3);
    await writer.handle.dispose();
    const reported: Array<[Error, boolean]> = [];
    const { graph, follower } = await follow(store.reader(), { onError: (e, fatal) => void reported.push([e, fatal]) });
    const before = graph.snapshot();
    store.backend.write(frameKey(seq + 1), Uint8Array.of(123, 34)); // not a frame
    putFrame(store.backend, seq + 2, 7);
    const err = await errorOf(() => follower.poll());
    expectCoded(err, RestoreError, "torn-write-mid-stream");
    expect(reported).toEqual([[err, true]]);
    expect(await errorOf(() => follower.done)).toBe(err);
    expect(follower.stats()).toMatchObject({ state: "failed", lastError: err });
    expect(await errorOf(() => follower.poll())).toBe(err);
    expect(graph.snapshot(), "nothing of the bad poll is applied").toEqual(before);
    await follower.stop(); // stopping a failed follower is fine
  });

  it("stops with wal-gap when frames are missing and no baseline covers them", async () => {
    const store = openStore(kind);
    const writer = await startWriter(store);
    const seq = await writer.waves(2);
    await writer.handle.dispose();
    const { follower } = await follow(store.reader());
    putFrame(store.backend, seq + 1, 1);
    putFrame(store.backend, seq + 3, 3);
    const err = await errorOf(() => follower.poll());
    expectCoded(err, RestoreError, "wal-gap");
    expect((err as RestoreError).details).toMatchObject({ from: seq + 2, to: seq + 2 });
    expect(follower.stats().state).toBe("failed");
  });

  it("polls by itself every pollMs and reports each poll to onLag", async () => {
    const store = openStore(kind);
    const writer = await startWriter(store);
    const lags: FollowerLag[] = [];
    const { graph, follower } = await follow(store.reader(), { pollMs: 5, onLag: (l) => void lags.push(l) });
    const seq = await writer.waves(10);
    await until(() => follower.lag().appliedSeq === seq, "the follower catches up by itself");
    expect(graph.snapshot()).toEqual(writer.graph.snapshot());
    expect(lags.some((l) => l.appliedSeq === seq && l.frames === 0)).toBe(true);
    expect(follower.stats().polls).toBeGreaterThan(0);
  });

  it("stop() ends following: done resolves, poll() rejects closed, nothing more is applied", async () => {
    const store = openStore(kind);
    const writer = await startWriter(store);
    const { graph, follower } = await follow(store.reader(), { pollMs: 1 });
    await follower.stop();
    await follower.stop();
    await follower.done;
    expect(follower.stats().state).toBe("stopped");
    const polls = follower.stats().polls;
    const before = graph.snapshot();
    await writer.waves(5);
    expectCoded(await errorOf(() => follower.poll()), StorageError, "closed");
    await new Promise((r) => setTimeout(r, 20));
    expect(follower.stats().polls).toBe(polls);
    expect(graph.snapshot()).toEqual(before);
  });
});

describe("followGraph: failures and change detection", () => {
  it("reports a transient read failure, keeps following, and the next poll catches up", async () => {
    const store = openStore("file");
    const writer = await startWriter(store);
    const reader = faultyBackend(store.reader());
    const reported: Array<[Error, boolean]> = [];
    const { graph, follower } = await follow(reader, { onError: (e, fatal) => void reported.push([e, fatal]) });
    await writer.waves(4);
    reader.inject({ op: "list", errno: "EIO", times: 1 });
    const err = await errorOf(() => follower.poll());
    expectCoded(err, StorageError, "backend-error");
    expect(reported).toEqual([[err, false]]);
    expect(follower.stats()).toMatchObject({ state: "following", lastError: err });
    await follower.poll();
    expect(graph.snapshot()).toEqual(writer.graph.snapshot());
  });

  it("with a change counter (SQLite), a poll of an unchanged store lists nothing; without one every poll lists", async () => {
    const store = openStore("sqlite");
    const writer = await startWriter(store);
    const inner = store.reader() as SqliteBackend;
    let lists = 0;
    const counted: StorageBackend = {
      name: inner.name,
      supports: inner.supports,
      readOnly: true,
      read: (k) => inner.read(k),
      write: (k, b) => inner.write(k, b),
      list(prefix) {
        lists++;
        return inner.list(prefix);
      },
      changeCounter: () => inner.changeCounter(),
    };
    const { graph, follower } = await follow(counted);
    await follower.poll(); // the first poll has no counter value to compare with
    const idle = lists;
    for (let i = 0; i < 5; i++) await follower.poll();
    expect(lists).toBe(idle);
    await writer.waves(2);
    await follower.poll();
    expect(lists).toBeGreaterThan(idle);
    expect(graph.snapshot()).toEqual(writer.graph.snapshot());

    const fileStore = openStore("file");
    await startWriter(fileStore);
    const plain = faultyBackend(fileStore.reader());
    const other = await follow(plain);
    const before = plain.calls.list;
    for (let i = 0; i < 5; i++) await other.follower.poll();
    expect(plain.calls.list - before).toBeGreaterThanOrEqual(5);
  });

  it("rejects a store without a baseline, and bad arguments, before following anything", async () => {
    const store = openStore("sqlite");
    expectCoded(await errorOf(() => followGraph(buildGraph(), inlinePair(store.reader()))), RestoreError, "baseline-missing");
    await startWriter(store);
    const pair = inlinePair(store.reader());
    for (const pollMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(await errorOf(() => followGraph(buildGraph(), pair, { pollMs }))).toBeInstanceOf(RangeError);
    }
    expect(await errorOf(() => followGraph(buildGraph(), pair, { onLag: 5 as never }))).toBeInstanceOf(TypeError);
    expect(await errorOf(() => followGraph({} as never, pair))).toBeInstanceOf(TypeError);
    expectCoded(await errorOf(() => followGraph(buildGraph(), { snapshot: pair.snapshot } as never)), RestoreError, "wal-tier-required");
  });
});

describe("followGraph through engine proxies", () => {
  it.each(KINDS)("%s: follows a writer on the same engine store across engine.compact", async (kind) => {
    const tmp = tempDir(`follow-engine-${kind}`);
    const engine = openStorageEngine({ threads: 1 });
    cleanups.push(async () => {
      await engine.close();
      tmp.remove();
    });
    const spec: StoreSpec = kind === "sqlite" ? { kind: "sqlite", path: tmp.path("store.db") } : { kind: "file", dir: tmp.path("store") };
    const pair = (name: string): { snapshot: SnapshotStorageTier<GraphCheckpointRecord>; wal: KvStorageTier<WALFrame> } => ({
      snapshot: engine.snapshot<GraphCheckpointRecord>(spec, { name: `${name}-snap` }),
      wal: engine.kv<WALFrame>(spec, { name: `${name}-wal`, codec: walFrameCodec }),
    });
    const writerGraph = buildGraph();
    const handle = attachSnapshotStorage(writerGraph, [pair("writer")], { compactEvery: Number.POSITIVE_INFINITY });
    cleanups.push(() => handle.dispose());
    await handle.flush();
    const graph = buildGraph();
    const follower = await followGraph(graph, pair("follower"), { pollMs: BY_HAND });
    cleanups.push(() => follower.stop());
    const random = rng(99);
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 4; i++) randomWave(writerGraph, random);
      const seq = await handle.flush();
      if (round % 2 === 1) await compactGraphInEngine(engine, spec, GRAPH);
      expect(await follower.poll()).toMatchObject({ appliedSeq: seq, frames: 0 });
      expect(graph.snapshot(), `round ${round}`).toEqual(writerGraph.snapshot());
    }
    expect(follower.stats().reloads).toBeGreaterThan(0);
  });
});
