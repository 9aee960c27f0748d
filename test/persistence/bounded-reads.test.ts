/**
 * Readers of a stored graph hold a bounded number of bytes of frames (docs/design.md §3.16): a chunk is sized by the
 * bytes of the frames read last, up to FRAME_CHUNK_BYTES, where it was a count (512 frames through tiers, 256 from a
 * backend) whatever the frames' size. With frames of 1 MiB each, before: restore, a follower and compaction read
 * 80 MiB in one readMany (the whole WAL), an engine tier's loadMany asked for 80 frames in one message, and a
 * compaction of 120 such frames ran out of a 96 MiB heap. Small frames are still read 512 (256) at a time.
 * Real SQLite stores and PostgreSQL (test/support); a real engine worker; the compaction in a real child process (it loads dist/: build first).
 */
import { spawnSync } from "node:child_process";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { postgresBackend } from "../../src/backend/postgres.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { createGraph } from "../../src/graph/graph.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { followGraph } from "../../src/persistence/follow.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { FRAME_CHUNK_BYTES } from "../../src/persistence/stored-graph.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { wrapBackend } from "../support/test-backend.js";
import { until } from "../support/wait.js";
import { inlinePair, tempDir } from "../graph-compaction/fixtures.js";

const tmp = tempDir("bounded-reads");
const database = useTestDatabase();
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => tmp.remove());

/** Characters of each big value: its frame stores a little more. */
const MIB = 1 << 20;
/** One chunk's answer: the budget, and one frame bigger than the frames before it foretold. */
const CHUNK_LIMIT = FRAME_CHUNK_BYTES + MIB + 4096;

function buildGraph(): ReactiveGraph {
  const g = createGraph("big");
  g.state("v", "");
  g.state("n", 0);
  return g;
}

/** A SQLite store (else the backend given) written by attach: `frames` frames of `chars` characters each (n: small frames). */
async function storeWith(frames: number, chars: number, on?: StorageBackend) {
  const path = tmp.path("store.db");
  const backend = on ?? sqliteBackend(path);
  const graph = buildGraph();
  const handle = attachSnapshotStorage(graph, [inlinePair(backend)], { compactEvery: Number.POSITIVE_INFINITY });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await handle.dispose();
    if (on === undefined) await backend.close?.();
  };
  cleanups.push(close);
  let written = 0;
  const write = async (n: number, size = chars): Promise<void> => {
    for (let i = 0; i < n; i++, written++) {
      if (size > 0) graph.set("v", String.fromCharCode(97 + (written % 26)).repeat(size));
      else graph.set("n", written + 1);
      if (i % 16 === 15) await handle.flush();
    }
    await handle.flush();
  };
  await write(frames);
  return { path, backend, graph, write, close };
}

type Values = ReadonlyArray<Uint8Array | undefined>;

/** `inner` with every readMany answer's bytes and keys recorded (a sync backend's answers stay sync); its sizes pass. */
function measured(inner: StorageBackend): { backend: StorageBackend; answers: Array<{ keys: number; bytes: number }> } {
  const backend = wrapBackend(inner, { readMany: true, sizes: true });
  const answers: Array<{ keys: number; bytes: number }> = [];
  const readMany = backend.readMany!.bind(backend);
  const record = (keys: readonly string[], values: Values): Values => {
    answers.push({ keys: keys.length, bytes: values.reduce((n, v) => n + (v?.byteLength ?? 0), 0) });
    return values;
  };
  backend.readMany = (keys: readonly string[]) => {
    const values = readMany(keys);
    return values instanceof Promise ? values.then((v: Values) => record(keys, v)) : record(keys, values as Values);
  };
  return { backend, answers };
}

const largest = (answers: ReadonlyArray<{ bytes: number }>): number => Math.max(0, ...answers.map((a) => a.bytes));
const mostKeys = (answers: ReadonlyArray<{ keys: number }>): number => Math.max(0, ...answers.map((a) => a.keys));

describe("readers of frames of 1 MiB hold a bounded number of bytes", () => {
  it("restore through inline tiers: no readMany answers more than FRAME_CHUNK_BYTES (+ a frame)", async () => {
    const s = await storeWith(80, MIB);
    const { backend, answers } = measured(s.backend);
    const graph = buildGraph();
    const result = await restoreSnapshot(graph, inlinePair(backend));
    expect(result.replayedFrames).toBe(80);
    expect(graph.snapshot()).toEqual(s.graph.snapshot());
    expect(answers.reduce((n, a) => n + a.bytes, 0)).toBeGreaterThan(80 * MIB); // every frame came by readMany
    expect(largest(answers)).toBeLessThanOrEqual(CHUNK_LIMIT); // before: one answer of all 80 frames
  });

  it("restore through inline PostgreSQL tiers (whose readMany answers 8 MiB per statement, all of a call at once)", async () => {
    const db = await database();
    const pg = await postgresBackend({ url: db.url, schema: db.schema, store: "bounded-reads" });
    cleanups.push(() => pg.close());
    const s = await storeWith(40, MIB, pg);
    const { backend, answers } = measured(pg);
    const graph = buildGraph();
    expect((await restoreSnapshot(graph, inlinePair(backend))).replayedFrames).toBe(40);
    expect(graph.snapshot()).toEqual(s.graph.snapshot());
    expect(largest(answers)).toBeLessThanOrEqual(CHUNK_LIMIT); // before: one answer of all 40 frames
  });

  it("a follower catching up on 40 frames, and its initial load", async () => {
    const s = await storeWith(40, MIB);
    const { backend, answers } = measured(s.backend);
    const graph = buildGraph();
    const follower = await followGraph(graph, inlinePair(backend), { pollMs: 60_000 });
    cleanups.push(() => follower.stop());
    expect(graph.snapshot()).toEqual(s.graph.snapshot());
    const loaded = answers.length;
    await s.write(40);
    await follower.poll();
    expect(graph.snapshot()).toEqual(s.graph.snapshot());
    expect(follower.lag().frames).toBe(0);
    expect(answers.length).toBeGreaterThan(loaded);
    expect(largest(answers)).toBeLessThanOrEqual(CHUNK_LIMIT); // before: 40 frames in one answer, twice
  });

  it("compaction (the backend reader of the actor and the CLI)", async () => {
    const s = await storeWith(80, MIB);
    await s.close();
    const inner = sqliteBackend(s.path);
    cleanups.push(() => inner.close());
    const { backend, answers } = measured(inner);
    const r = await compactGraph({ backend }, { graphName: "big" });
    expect(r.foldedFrames).toBe(80);
    expect(largest(answers)).toBeLessThanOrEqual(CHUNK_LIMIT); // before: all 80 frames in one answer
  });

  it("attach's reclaim of the frames an earlier session left (each is read: is it a frame at its seq?)", async () => {
    const s = await storeWith(80, MIB); // an explicit compactEvery keeps every frame
    await s.close();
    const inner = sqliteBackend(s.path);
    cleanups.push(() => inner.close());
    const { backend, answers } = measured(inner);
    const graph = buildGraph();
    await restoreSnapshot(graph, inlinePair(backend));
    answers.length = 0; // the reclaim's reads from here on
    const handle = attachSnapshotStorage(graph, [inlinePair(backend)]);
    cleanups.push(() => handle.dispose());
    await handle.flush();
    await until(async () => inner.list("big/wal/").length === 0, "the earlier session's frames deleted", { timeoutMs: 20_000 });
    expect(answers.reduce((n, a) => n + a.keys, 0)).toBeGreaterThanOrEqual(80);
    expect(largest(answers)).toBeLessThanOrEqual(CHUNK_LIMIT); // before: all 80 frames in one answer
  });

  it("restore through an engine tier: no loadMany (one message to the actor) asks for more than the budget", async () => {
    const s = await storeWith(80, MIB);
    const engine = openStorageEngine({ threads: 1 });
    cleanups.push(() => engine.close());
    const store = { kind: "sqlite" as const, path: s.path, readOnly: true };
    const wal = engine.kv<WALFrame>(store, { codec: walFrameCodec });
    const asked: number[] = [];
    // The tier as restore sees it, its loadMany calls counted.
    const counted = new Proxy(wal, {
      get(target, prop) {
        if (prop === "loadMany") {
          return (keys: readonly string[]) => {
            asked.push(keys.length);
            return target.loadMany!(keys);
          };
        }
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as KvStorageTier<WALFrame>;
    const graph = buildGraph();
    const result = await restoreSnapshot(graph, { snapshot: engine.snapshot<GraphCheckpointRecord>(store), wal: counted });
    expect(result.replayedFrames).toBe(80);
    expect(graph.snapshot()).toEqual(s.graph.snapshot());
    expect(asked.reduce((a, b) => a + b, 0)).toBe(80);
    // Each frame stores more than 1 MiB: at most the budget's worth of them per message (before: 80 in one).
    expect(Math.max(...asked)).toBeLessThanOrEqual(FRAME_CHUNK_BYTES / MIB);
  });

  it("a compaction of 120 such frames fits in a child process with a 96 MiB heap", async () => {
    const s = await storeWith(120, MIB);
    await s.close();
    const script = `
      const [, path, entry] = process.argv;
      const { sqliteBackend, compactGraph } = await import(entry);
      const backend = sqliteBackend(path);
      const r = await compactGraph({ backend }, { graphName: "big" });
      backend.close();
      process.stdout.write(JSON.stringify({ folded: r.foldedFrames, deleted: r.deletedFrames }));
    `;
    const entry = new URL("../../dist/src/index.js", import.meta.url).href;
    const child = spawnSync(process.execPath, ["--max-old-space-size=96", "--input-type=module", "-e", script, s.path, entry], {
      encoding: "utf8",
    });
    // Before: "JavaScript heap out of memory" (a chunk of 120 frames parsed at once).
    expect(child.stderr.includes("heap out of memory") ? "out of memory" : child.status).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual({ folded: 120, deleted: 120 });
  });
});

describe("small frames are still read a full chunk at a time", () => {
  it("restore reaches 512 frames per readMany, compaction 256", async () => {
    const s = await storeWith(2000, 0);
    const restoring = measured(s.backend);
    const graph = buildGraph();
    await restoreSnapshot(graph, inlinePair(restoring.backend));
    expect(graph.snapshot()).toEqual(s.graph.snapshot());
    expect(mostKeys(restoring.answers)).toBe(512);
    // A few short chunks first (frames' sizes are unknown until read), then full ones.
    expect(restoring.answers.length).toBeLessThanOrEqual(Math.ceil(2000 / 512) + 5);
    await s.close();
    const inner = sqliteBackend(s.path);
    cleanups.push(() => inner.close());
    const compacting = measured(inner);
    expect((await compactGraph({ backend: compacting.backend }, { graphName: "big" })).foldedFrames).toBe(2000);
    expect(mostKeys(compacting.answers)).toBe(256);
    expect(compacting.answers.length).toBeLessThanOrEqual(Math.ceil(2000 / 256) + 4);
  });
});

/**
 * A chunk sized by the frames read before it misjudged a burst of big frames after small ones: 600 small frames,
 * then 40 of 1 MiB were read 512 (256) frames at a time, all 40 MiB in one answer (through an engine, one message).
 * Sizes come first now (StorageBackend.sizes), so no chunk of several frames holds more than FRAME_CHUNK_BYTES
 * whatever the order of the frames' sizes: a frame bigger than that would be read alone.
 */
describe("a burst of big frames after small ones: no chunk of several frames holds more than FRAME_CHUNK_BYTES", () => {
  const SMALL = 600;
  const BIG = 40;
  /** Answers of several frames above the budget (a frame read alone may be bigger than it). */
  const overBudget = (answers: ReadonlyArray<{ keys: number; bytes: number }>) =>
    answers.filter((a) => a.keys > 1 && a.bytes > FRAME_CHUNK_BYTES);

  async function burstStore(on?: StorageBackend) {
    const s = await storeWith(SMALL, 0, on);
    await s.write(BIG, MIB);
    return s;
  }

  async function restoresBounded(s: Awaited<ReturnType<typeof burstStore>>, inner: StorageBackend): Promise<void> {
    const { backend, answers } = measured(inner);
    const graph = buildGraph();
    expect((await restoreSnapshot(graph, inlinePair(backend))).replayedFrames).toBe(SMALL + BIG);
    expect(graph.snapshot()).toEqual(s.graph.snapshot());
    expect(answers.reduce((n, a) => n + a.keys, 0)).toBe(SMALL + BIG); // every frame came by readMany
    expect(overBudget(answers)).toEqual([]); // before: one answer of 88 small frames and all 40 big ones
    expect(mostKeys(answers)).toBe(512); // small frames still go a full chunk at a time
  }

  it("restore through inline tiers on a SQLite file", async () => {
    const s = await burstStore();
    await restoresBounded(s, s.backend);
  });

  it("a backend whose sizes fail: asked once, then chunks are sized by the frames read last, and the restore goes on", async () => {
    const s = await burstStore();
    const { backend, answers } = measured(s.backend);
    let asked = 0;
    backend.sizes = () => {
      asked++;
      throw Object.assign(new Error("EIO: injected sizes failure"), { code: "EIO" });
    };
    const graph = buildGraph();
    expect((await restoreSnapshot(graph, inlinePair(backend))).replayedFrames).toBe(SMALL + BIG);
    expect(graph.snapshot()).toEqual(s.graph.snapshot());
    expect(asked).toBe(1);
    expect(answers.reduce((n, a) => n + a.keys, 0)).toBe(SMALL + BIG);
  });

  it("restore through inline tiers on a file store and on a memory store", async () => {
    const files = fileBackend(tmp.path("files"));
    cleanups.push(() => files.close());
    await restoresBounded(await burstStore(files), files);
    const memory = memoryBackend();
    await restoresBounded(await burstStore(memory), memory);
  });

  it("compaction (the backend reader of the actor and the CLI)", async () => {
    const s = await burstStore();
    await s.close();
    const inner = sqliteBackend(s.path);
    cleanups.push(() => inner.close());
    const { backend, answers } = measured(inner);
    expect((await compactGraph({ backend }, { graphName: "big" })).foldedFrames).toBe(SMALL + BIG);
    expect(answers.reduce((n, a) => n + a.keys, 0)).toBe(SMALL + BIG);
    expect(overBudget(answers)).toEqual([]); // before: one answer of 84 small frames and all 40 big ones
    expect(mostKeys(answers)).toBe(256);
  });

  it("a follower that read small frames, then polls a burst of big ones", async () => {
    const s = await storeWith(SMALL, 0);
    const { backend, answers } = measured(s.backend);
    const graph = buildGraph();
    const follower = await followGraph(graph, inlinePair(backend), { pollMs: 60_000 });
    cleanups.push(() => follower.stop());
    expect(graph.snapshot()).toEqual(s.graph.snapshot());
    answers.length = 0;
    await s.write(BIG, MIB);
    await follower.poll();
    expect(graph.snapshot()).toEqual(s.graph.snapshot());
    expect(follower.lag().frames).toBe(0);
    expect(answers.reduce((n, a) => n + a.keys, 0)).toBe(BIG);
    expect(overBudget(answers)).toEqual([]); // before: all 40 in one answer (the plan the small frames left)
  });

  it("restore through an engine tier on a SQLite file: no message asks for more than the budget", async () => {
    const s = await burstStore();
    const engine = openStorageEngine({ threads: 1 });
    cleanups.push(() => engine.close());
    const store = { kind: "sqlite" as const, path: s.path, readOnly: true };
    const wal = engine.kv<WALFrame>(store, { codec: walFrameCodec });
    const asked: string[][] = [];
    // The tier as restore sees it, the keys of each loadMany (one message to the store's actor) recorded.
    const counted = new Proxy(wal, {
      get(target, prop) {
        if (prop === "loadMany") {
          return (keys: readonly string[]) => {
            asked.push([...keys]);
            return target.loadMany!(keys);
          };
        }
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as KvStorageTier<WALFrame>;
    const graph = buildGraph();
    const result = await restoreSnapshot(graph, { snapshot: engine.snapshot<GraphCheckpointRecord>(store), wal: counted });
    expect(result.replayedFrames).toBe(SMALL + BIG);
    expect(graph.snapshot()).toEqual(s.graph.snapshot());
    const sizes = s.backend.sizes!.bind(s.backend) as (keys: readonly string[]) => ReadonlyArray<number | undefined>;
    const answers = asked.map((keys) => ({ keys: keys.length, bytes: sizes(keys).reduce<number>((n, b) => n + (b ?? 0), 0) }));
    expect(answers.reduce((n, a) => n + a.keys, 0)).toBe(SMALL + BIG);
    expect(overBudget(answers)).toEqual([]); // before: one message of 88 small frames and all 40 big ones
    expect(mostKeys(answers)).toBe(512);
  });
});
