/**
 * A frame refused for good (DESIGN §3.16) stops its pair: nothing after the refused seq is written or
 * acknowledged, flush() keeps rejecting with one typed error naming that seq (onError hears it once), restore
 * gives the acknowledged state, and handle.rebaseline() writes a fresh baseline of the live graph above the gap,
 * after which frames continue and flush() resolves again. Transient failures stay retryable (attach-restore).
 *
 * The refusal comes from a WAL codec that refuses one value the graph accepts: inline (memory, file, SQLite) it
 * runs in the tier's flush, in engine mode in the actor; debounced and sync-through cadences both.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import type { Codec } from "../../src/codec/types.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { CodecError, StorageError } from "../../src/errors.js";
import {
  attachSnapshotStorage,
  createGraph,
  restoreSnapshot,
  type AttachOptions,
  type GraphCheckpointRecord,
  type GraphPersistSnapshot,
  type ReactiveGraph,
} from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { graphWalPrefix, parseWalFrameKey, walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { faultyBackend } from "../support/faulty-backend.js";
import { errorOf } from "../support/wait.js";

const REFUSED = "refuse-me";
const CODEC_MODULE = pathToFileURL(join(import.meta.dirname, "fixtures/refusing-wal-codec.mjs")).href;

/** Inline twin of fixtures/refusing-wal-codec.mjs (that one runs in the worker against dist/). */
const refusingWalCodec: Codec<WALFrame> = {
  name: "refusing-wal",
  version: 1,
  encode(frame) {
    if ((frame.change.change as { value?: unknown }).value === REFUSED) {
      throw new CodecError("encode-failed", `test codec refuses frame ${frame.frame_seq}`, { path: "$.change.change.value" });
    }
    return walFrameCodec.encode(frame);
  },
  decode: (bytes) => walFrameCodec.decode(bytes),
};

const tmp = mkdtempSync(join(tmpdir(), "grf-attach-gap-"));
let n = 0;
const fresh = (name: string): string => join(tmp, `${n++}-${name}`);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

interface Env {
  snapshot: SnapshotStorageTier<GraphCheckpointRecord>;
  wal: KvStorageTier<WALFrame>;
}

type Cadence = "debounced" | "sync-through";
const CADENCES: Cadence[] = ["debounced", "sync-through"];
const debounceOf = (c: Cadence): number | undefined => (c === "debounced" ? 60_000 : undefined);

function inlineEnv(kind: "memory" | "file" | "sqlite", cadence: Cadence): Env {
  let backend: StorageBackend;
  if (kind === "memory") backend = memoryBackend();
  else if (kind === "file") backend = fileBackend(fresh("files"));
  else backend = sqliteBackend(fresh("store.db"));
  cleanups.push(() => backend.close?.());
  return {
    snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }),
    wal: kvStorage<WALFrame>(backend, { name: "wal", codec: refusingWalCodec, debounceMs: debounceOf(cadence) }),
  };
}

function engineEnv(kind: "sqlite" | "file", cadence: Cadence): Env {
  const engine: StorageEngine = openStorageEngine({ threads: 1 });
  cleanups.push(() => engine.close());
  const store = kind === "sqlite" ? { kind: "sqlite" as const, path: fresh("store.db") } : { kind: "file" as const, dir: fresh("files") };
  return {
    snapshot: engine.snapshot<GraphCheckpointRecord>(store, { name: "snap" }),
    wal: engine.kv<WALFrame>(store, {
      name: "wal",
      codec: { module: CODEC_MODULE, export: "codec" },
      debounceMs: debounceOf(cadence),
    }),
  };
}

function build(name = "g"): ReactiveGraph {
  const g = createGraph(name);
  g.state("a", 0);
  g.state("b", 0);
  return g;
}

/** Seqs of the WAL frames in the store (read back from the store's keys). */
async function storedFrameSeqs(env: Env, graphName = "g"): Promise<number[]> {
  const prefix = graphWalPrefix(graphName);
  return (await env.wal.list(`${prefix}/`)).map((k) => parseWalFrameKey(prefix, k) as number);
}

async function restored(env: Env, graphName = "g"): Promise<GraphPersistSnapshot> {
  const g = build(graphName);
  await restoreSnapshot(g, { snapshot: env.snapshot, wal: env.wal });
  return g.snapshot();
}

function expectStopped(err: unknown, seq: number): StorageError {
  expect(err).toBeInstanceOf(StorageError);
  expect((err as StorageError).code).toBe("write-refused");
  expect((err as StorageError).details["seq"]).toBe(seq);
  expect((err as StorageError).message).toContain(`seq ${seq}`);
  return err as StorageError;
}

/**
 * The whole story on one store: acknowledged state, a refused frame and later waves, the stop, the store's
 * contents, restore before and after rebaseline.
 */
async function refusedFrameStory(env: Env, opts: AttachOptions = {}): Promise<void> {
  const g = build();
  const errors: Error[] = [];
  const h = attachSnapshotStorage(g, [env], { compactEvery: Number.POSITIVE_INFINITY, onError: (e) => errors.push(e), ...opts });
  g.set("a", 1); // frame 2
  expect(await h.flush()).toBe(2);
  const acknowledged = g.snapshot();

  g.set("a", REFUSED); // frame 3: the graph accepts the value, the WAL codec refuses the frame
  g.set("b", 2); // frames after the refused one must never land
  const err = expectStopped(await errorOf(() => h.flush()), 3);
  expect(err.cause).toBeInstanceOf(CodecError);
  g.set("b", 3); // the pair stays stopped: nothing is saved
  expect(await errorOf(() => h.flush())).toBe(err); // keeps rejecting with the same error
  expect(await errorOf(() => h.flush())).toBe(err);
  expect(errors).toEqual([err]); // heard once

  expect(await storedFrameSeqs(env)).toEqual([2]); // nothing past the gap
  expect(await restored(env)).toEqual(acknowledged);

  g.set("a", "fine");
  const base = await h.rebaseline();
  // Above every seq ever handed out: 4 with a debounced WAL; a sync-through one refused frame 3 as it was saved, and
  // the pair stopped before frame 4 was numbered.
  expect(base).toBeGreaterThan(3);
  expect(((await env.snapshot.load("g")) as GraphCheckpointRecord).seq).toBe(base);
  expect(await restored(env)).toEqual(g.snapshot());

  g.set("b", 5);
  expect(await h.flush()).toBe(base + 1);
  expect(await storedFrameSeqs(env)).toEqual([2, base + 1]);
  expect(await restored(env)).toEqual(g.snapshot());
  expect(errors).toEqual([err]);
  await h.dispose();
}

describe.each(CADENCES)("a refused frame stops the pair (%s WAL)", (cadence) => {
  for (const kind of ["memory", "file", "sqlite"] as const) {
    it(`inline ${kind}`, async () => {
      await refusedFrameStory(inlineEnv(kind, cadence));
    });
  }
  for (const kind of ["sqlite", "file"] as const) {
    it(`engine ${kind} (refused in the actor)`, async () => {
      await refusedFrameStory(engineEnv(kind, cadence));
    });
  }
});

describe("refusals at save time (sync throw)", () => {
  it("a WAL tier whose saveMany throws a CodecError stops the pair at the wave's first frame; nothing of the wave is stored", async () => {
    const env = inlineEnv("sqlite", "sync-through");
    const inner = env.wal;
    const wal: KvStorageTier<WALFrame> = Object.assign(Object.create(inner) as KvStorageTier<WALFrame>, {
      saveMany(entries: ReadonlyArray<readonly [string, WALFrame]>) {
        for (const [, frame] of entries) refusingWalCodec.encode(frame); // all or none: refused before any is taken
        inner.saveMany!(entries);
      },
    });
    const g = build();
    const errors: Error[] = [];
    const h = attachSnapshotStorage(g, [{ snapshot: env.snapshot, wal }], {
      compactEvery: Number.POSITIVE_INFINITY,
      onError: (e) => errors.push(e),
    });
    expect(await h.flush()).toBe(1);
    g.batch(() => {
      g.set("a", 7); // frame 2
      g.set("b", REFUSED); // frame 3, refused: the wave (one unit) is refused at its first frame
    });
    g.set("a", 8);
    const err = expectStopped(errors[0], 2);
    expect(errors).toHaveLength(1);
    expect(await errorOf(() => h.flush())).toBe(err);
    expect(await storedFrameSeqs(env)).toEqual([]);
    expect(await restored(env)).toEqual(build().snapshot());

    expect(await h.rebaseline()).toBe(4);
    g.set("b", 1);
    expect(await h.flush()).toBe(5);
    expect(await restored(env)).toEqual(g.snapshot());
    await h.dispose();
  });

  it("a WAL tier without saveMany whose save throws a CodecError stops the pair at that frame; earlier frames of the wave stay", async () => {
    const env = inlineEnv("sqlite", "sync-through");
    const inner = env.wal;
    const wal: KvStorageTier<WALFrame> = Object.assign(Object.create(inner) as KvStorageTier<WALFrame>, {
      save(key: string, frame: WALFrame) {
        refusingWalCodec.encode(frame); // refuses synchronously, like a main-thread codec in an engine proxy
        inner.save(key, frame);
      },
      saveMany: undefined, // a hand-written tier: attach saves a wave frame by frame
    });
    const g = build();
    const errors: Error[] = [];
    const h = attachSnapshotStorage(g, [{ snapshot: env.snapshot, wal }], {
      compactEvery: Number.POSITIVE_INFINITY,
      onError: (e) => errors.push(e),
    });
    expect(await h.flush()).toBe(1);
    g.batch(() => {
      g.set("a", 7); // frame 2
      g.set("b", REFUSED); // frame 3, refused
    });
    g.set("a", 8);
    const err = expectStopped(errors[0], 3);
    expect(errors).toHaveLength(1);
    expect(await errorOf(() => h.flush())).toBe(err);
    expect(await storedFrameSeqs(env)).toEqual([2]);
    const partial = build();
    partial.set("a", 7);
    expect(await restored(env)).toEqual(partial.snapshot());

    expect(await h.rebaseline()).toBe(4);
    g.set("b", 1);
    expect(await h.flush()).toBe(5);
    expect(await restored(env)).toEqual(g.snapshot());
    await h.dispose();
  });

  it("a key the file backend can never store (a long graph name) stops the pair at the first frame", async () => {
    const name = "n".repeat(230); // the baseline's file name fits in 255 bytes, a frame key's does not
    const backend = fileBackend(fresh("files"));
    const env: Env = {
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }),
      wal: kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec }),
    };
    const g = build(name);
    const errors: Error[] = [];
    const h = attachSnapshotStorage(g, [env], { onError: (e) => errors.push(e) });
    const atAttach = g.snapshot();
    g.set("a", 1);
    const err = expectStopped(await errorOf(() => h.flush()), 2);
    expect((err.cause as StorageError).code).toBe("invalid-key");
    expect(errors).toEqual([err]);
    expect(await storedFrameSeqs(env, name)).toEqual([]);
    expect(await restored(env, name)).toEqual(atAttach);
  });
});

describe("where the gap is", () => {
  it("unacknowledged frames before the refused one stay; restore gives the changes up to the gap", async () => {
    const env = inlineEnv("memory", "debounced");
    const g = build();
    const h = attachSnapshotStorage(g, [env], { compactEvery: Number.POSITIVE_INFINITY });
    g.set("a", 1); // frame 2
    g.set("a", REFUSED); // frame 3
    g.set("b", 1); // frame 4
    expectStopped(await errorOf(() => h.flush()), 3);
    expect(await storedFrameSeqs(env)).toEqual([2]);
    const upToGap = build();
    upToGap.set("a", 1);
    expect(await restored(env)).toEqual(upToGap.snapshot());
  });

  it("periodic baselines take no seq: the refused frame is found among consecutive frames", async () => {
    const backend = sqliteBackend(fresh("store.db"));
    cleanups.push(() => backend.close?.());
    const env: Env = {
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }),
      wal: kvStorage<WALFrame>(backend, { name: "wal", codec: refusingWalCodec, debounceMs: 60_000 }),
    };
    const g = build();
    const h = attachSnapshotStorage(g, [env], { compactEvery: 2 });
    g.set("a", 1); // frame 2
    g.set("b", 1); // frame 3, a baseline is due
    await Promise.resolve(); // baseline at seq 3
    g.set("a", 2); // frame 4
    g.set("b", REFUSED); // frame 5, a baseline is due
    await Promise.resolve(); // baseline at seq 5
    const atBaseline5 = g.snapshot();
    g.set("a", 3); // frame 6
    const err = expectStopped(await errorOf(() => h.flush()), 5);
    expect(await storedFrameSeqs(env)).toEqual([2, 3, 4]);
    // Baseline 5 (the snapshot codec stores the value) is a whole state the writer had: restore starts there,
    // and frame 6, past the gap, is gone.
    expect(((await env.snapshot.load("g")) as GraphCheckpointRecord).seq).toBe(5);
    expect(await restored(env)).toEqual(atBaseline5);
    expect(await errorOf(() => h.flush())).toBe(err);
  });
});

describe("rebaseline", () => {
  it("retries a failed seq bootstrap, then resumes", async () => {
    const inner = memoryBackend();
    const backend = faultyBackend(inner, [{ op: "list", errno: "EIO" }]);
    const env: Env = {
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }),
      wal: kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec }),
    };
    const g = build();
    const h = attachSnapshotStorage(g, [env]);
    g.set("a", 1);
    expect(await errorOf(() => h.flush())).toBeInstanceOf(StorageError);
    backend.heal();
    expect(await h.rebaseline()).toBe(1);
    g.set("b", 1);
    expect(await h.flush()).toBe(2);
    expect(await restored(env)).toEqual(g.snapshot());
    await h.dispose();
  });

  it("persists changes a paths gate held back, so the baseline and the frames after it agree", async () => {
    const env = inlineEnv("memory", "sync-through");
    const g = build();
    const h = attachSnapshotStorage(g, [env], { paths: ["b"], compactEvery: Number.POSITIVE_INFINITY });
    g.set("a", 1); // gated: not persisted yet
    expect(await h.rebaseline()).toBe(3); // frame 2 carries "a", baseline 3
    g.set("a", 2); // gated again
    g.set("b", 1); // triggers: frames 4 ("a") and 5 ("b")
    expect(await h.flush()).toBe(5);
    expect(await restored(env)).toEqual(g.snapshot());
    await h.dispose();
  });

  it("is refused after dispose", async () => {
    const h = attachSnapshotStorage(build(), [inlineEnv("memory", "sync-through")]);
    await h.dispose();
    const err = await errorOf(() => h.rebaseline());
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("closed");
  });

  it("on a healthy handle writes a baseline of the live graph and resolves with its seq", async () => {
    const env = inlineEnv("memory", "sync-through");
    const g = build();
    const h = attachSnapshotStorage(g, [env], { compactEvery: Number.POSITIVE_INFINITY });
    g.set("a", 1);
    expect(await h.rebaseline()).toBe(3);
    expect(((await env.snapshot.load("g")) as GraphCheckpointRecord).seq).toBe(3);
    g.set("b", 1);
    expect(await h.flush()).toBe(4);
    expect(await restored(env)).toEqual(g.snapshot());
    await h.dispose();
  });

  it("a pair whose baseline is refused (no WAL) stops at that seq; rebaseline resumes once the value is storable", async () => {
    const backend = memoryBackend();
    const snapshotCodec: Codec<GraphCheckpointRecord> = {
      name: "refusing-snapshot",
      version: 1,
      encode(record) {
        if (JSON.stringify(record).includes(REFUSED)) throw new CodecError("encode-failed", "test codec refuses it", {});
        return new TextEncoder().encode(JSON.stringify(record));
      },
      decode: (bytes) => JSON.parse(new TextDecoder().decode(bytes)) as GraphCheckpointRecord,
    };
    const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap", codec: snapshotCodec, debounceMs: 60_000 });
    const g = build();
    const errors: Error[] = [];
    const h = attachSnapshotStorage(g, [{ snapshot }], { onError: (e) => errors.push(e) });
    g.set("a", 1);
    expect(await h.flush()).toBe(2);
    g.set("a", REFUSED); // baseline 3, refused
    const err = expectStopped(await errorOf(() => h.flush()), 3);
    g.set("b", 1); // no baseline is written while stopped
    expect(await errorOf(() => h.flush())).toBe(err);
    expect(errors).toEqual([err]);
    expect(((await snapshot.load("g")) as GraphCheckpointRecord).seq).toBe(2);
    g.set("a", 2);
    expect(await h.rebaseline()).toBe(4);
    expect(((await snapshot.load("g")) as GraphCheckpointRecord).snapshot).toEqual(g.snapshot());
    await h.dispose();
  });

  it("a healthy pair beside a stopped one keeps every frame", async () => {
    const bad = inlineEnv("memory", "debounced");
    const goodBackend = memoryBackend();
    const goodEnv: Env = {
      snapshot: snapshotStorage<GraphCheckpointRecord>(goodBackend, { name: "snap" }),
      wal: kvStorage<WALFrame>(goodBackend, { name: "wal", codec: walFrameCodec }),
    };
    const g = build();
    const h = attachSnapshotStorage(g, [bad, goodEnv], { compactEvery: Number.POSITIVE_INFINITY });
    g.set("a", REFUSED);
    g.set("b", 1);
    expectStopped(await errorOf(() => h.flush()), 2);
    expect(await storedFrameSeqs(goodEnv)).toEqual([2, 3]);
    await h.rebaseline();
    g.set("b", 2);
    await h.flush();
    expect(await restored(goodEnv)).toEqual(g.snapshot());
    expect(await restored(bad)).toEqual(g.snapshot());
    await h.dispose();
  });
});
