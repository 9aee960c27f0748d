/**
 * Readers through inline tiers read frames in chunks (docs/design.md §3.26): restore and followers read a graph
 * through its tiers (tierSource), and an inline kv tier now answers `loadMany` with one backend `readMany` (a range
 * scan on SQLite, one query on PostgreSQL) where each frame was its own `read` before. Each frame still settles as
 * its own load: a joint read that fails is read key by key with the same result, a torn frame stops the read
 * where it is, and restore's outcome is the one a key-by-key reader gets.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { RestoreError } from "../../src/errors.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import { walFrameKey, graphWalPrefix } from "../../src/wal/keys.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { followGraph } from "../../src/persistence/follow.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import type { WALFrame } from "../../src/wal/frame.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { wrapBackend, type TestBackend } from "../support/test-backend.js";
import { GRAPH, buildGraph, sqliteStoreWithFrames, tempDir } from "../graph-compaction/fixtures.js";

const tmp = tempDir("tier-read-many");
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => tmp.remove());

/** 1,300 waves (thousands of frames): a first chunk of 4 frames (their sizes learnt), then chunks of 512. */
const WAVES = 1300;

/** The chunk (0-based) holding the `at`-th frame a reader reads, of small frames (stored-graph.ts FRAME_CHUNK_BYTES). */
const chunkOf = (at: number, cap = 512): number => (at < 4 ? 0 : 1 + Math.floor((at - 4) / cap));

/** Chunks a reader reads `n` small frames in. */
const chunksFor = (n: number): number => chunkOf(n - 1) + 1;

interface Counted {
  readonly backend: TestBackend;
  /** `read` calls of frame keys (readMany's keys not counted). */
  frameReads(): number;
  /** Joint reads that failed by injection. */
  failedJoint(): number;
}

/** `inner` counted: frame keys read one by one, and readMany calls (each failing while `failJoint` says so). */
function counted(inner: StorageBackend, opts: { async?: boolean; readMany?: boolean; failJoint?: () => boolean } = {}): Counted {
  const backend = wrapBackend(inner, { async: opts.async === true, readMany: opts.readMany !== false });
  let frameReads = 0;
  let failed = 0;
  const read = backend.read.bind(backend);
  backend.read = (key: string) => {
    if (key.includes("/wal/")) frameReads++;
    return read(key);
  };
  const readMany = backend.readMany?.bind(backend);
  if (readMany !== undefined && opts.failJoint !== undefined) {
    const fail = opts.failJoint;
    backend.readMany = (keys: readonly string[]) => {
      if (fail()) {
        failed++;
        throw Object.assign(new Error("EIO: injected joint read failure"), { code: "EIO" });
      }
      return readMany(keys);
    };
  }
  return { backend, frameReads: () => frameReads, failedJoint: () => failed };
}

const tiers = (backend: StorageBackend) => ({
  snapshot: snapshotStorage<GraphCheckpointRecord>(backend),
  wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }),
});

async function store(name: string) {
  const s = await sqliteStoreWithFrames(tmp.path(`${name}.db`), WAVES, 0x5eed, cleanups);
  expect(s.seq).toBeGreaterThan(WAVES); // attach baseline 1, a frame (or more) per wave
  return s;
}

describe("inline tiers read a graph's frames with one readMany per chunk", () => {
  it("the kv tier's loadMany: one readMany, each key its own value (missing keys undefined, no keys no call)", async () => {
    const s = await store("load-many");
    const c = counted(s.backend);
    const { wal } = tiers(c.backend);
    const prefix = graphWalPrefix(GRAPH);
    const keys = [walFrameKey(prefix, 2), walFrameKey(prefix, 3), walFrameKey(prefix, 10 ** 9)];
    const values = await Promise.all(wal.loadMany!(keys));
    expect(values.map((v) => v?.frame_seq)).toEqual([2, 3, undefined]);
    expect(values.slice(0, 2)).toEqual(await Promise.all(keys.slice(0, 2).map((k) => wal.load(k))));
    expect(c.backend.counts.readManyCalls).toBe(1);
    expect(wal.loadMany!([])).toEqual([]);
    expect(c.backend.counts.readManyCalls).toBe(1);
    expect(() => wal.loadMany!("nope" as unknown as string[])).toThrow(TypeError);
  });

  for (const async of [false, true]) {
    it(`restore reads ${WAVES}+ frames in chunks, not a read per frame (${async ? "async" : "sync"} backend)`, async () => {
      const s = await store(`restore-${String(async)}`);
      const c = counted(s.backend, { async });
      const graph = buildGraph();
      const result = await restoreSnapshot(graph, tiers(c.backend));
      expect(result.finalSeq).toBe(s.seq);
      expect(graph.snapshot()).toEqual(s.graph.snapshot());
      expect(c.frameReads()).toBe(0);
      const chunks = chunksFor(s.seq - 1);
      // Each chunk once; a chunk read ahead of a moved baseline would add some, none here.
      expect(c.backend.counts.readManyCalls).toBe(chunks);
    });
  }

  it("a failing joint read is read key by key: the same restore", async () => {
    const s = await store("joint-fails");
    let fail = true;
    const c = counted(s.backend, { failJoint: () => fail });
    const graph = buildGraph();
    const result = await restoreSnapshot(graph, tiers(c.backend));
    expect(result.finalSeq).toBe(s.seq);
    expect(graph.snapshot()).toEqual(s.graph.snapshot());
    expect(c.failedJoint()).toBe(chunksFor(s.seq - 1));
    expect(c.frameReads()).toBe(s.seq - 1);
    fail = false;
  });

  it("a torn frame mid-stream stops restore as a key-by-key reader does, the graph untouched", async () => {
    const s = await store("torn");
    const torn = 700;
    s.backend.write(walFrameKey(graphWalPrefix(GRAPH), torn), new TextEncoder().encode('{"frame_seq": 7'));
    const outcome = async (readMany: boolean) => {
      const c = counted(s.backend, { readMany });
      const graph = buildGraph();
      const before = graph.snapshot();
      const err = await restoreSnapshot(graph, tiers(c.backend)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(graph.snapshot()).toEqual(before);
      return { err, joint: c.backend.counts.readManyCalls, one: c.frameReads() };
    };
    const joint = await outcome(true);
    const alone = await outcome(false);
    expect(joint.err).toBeInstanceOf(RestoreError);
    expect((joint.err as RestoreError).code).toBe("torn-write-mid-stream");
    expect((joint.err as RestoreError).details).toEqual((alone.err as RestoreError).details);
    expect((joint.err as RestoreError).details.frame_seq).toBe(torn);
    expect(joint.one).toBe(1); // the torn frame alone, read again as a record (is it another record? §3.27)
    // Not past the chunk after the torn frame's (read ahead while it was screened); frames above the baseline at 1.
    expect(joint.joint).toBeLessThanOrEqual(chunkOf(torn - 2) + 2);
  });

  it("a follower catches up through joint reads", async () => {
    const s = await store("follow");
    const c = counted(s.backend);
    const graph = buildGraph();
    const follower = await followGraph(graph, tiers(c.backend), { pollMs: 10_000 });
    cleanups.push(() => follower.stop());
    expect(graph.snapshot()).toEqual(s.graph.snapshot());
    for (let i = 0; i < 600; i++) s.graph.set("a", i);
    await s.handle.flush();
    const joint = c.backend.counts.readManyCalls;
    await follower.poll();
    expect(graph.snapshot()).toEqual(s.graph.snapshot());
    expect(c.frameReads()).toBe(0);
    expect(c.backend.counts.readManyCalls).toBeGreaterThanOrEqual(joint + 2); // 600 frames: two chunks
  });
});
