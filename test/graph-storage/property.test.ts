/**
 * The correctness property of the storage integration: for random add / remove / mount / unmount / set /
 * invalidate sequences in random batches (some rolled back) with random flush points, restoring the store into a
 * graph freshly built by the same code equals the live snapshot at the last flushed wave, and the pure fold of
 * the WAL equals it too (derived values included). Run on memory, file and SQLite, inline and through the engine.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import {
  attachSnapshotStorage,
  createGraph,
  foldWal,
  restoreSnapshot,
  type GraphCheckpointRecord,
  type GraphPersistSnapshot,
  type JsonValue,
  type ReactiveGraph,
} from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { graphWalPrefix, walFrameCodec, type WALFrame } from "../../src/wal/index.js";

// ---- the "code" and the operations ---------------------------------------------------------------------------

/** Builds the initial topology; the restoring process runs the same function. */
function buildCode(): ReactiveGraph {
  const g = createGraph("g");
  g.state("s0", 0);
  g.state("s1", 1);
  g.state("s2");
  g.derived("sum", ["s0", "s1"], (a, b) => [a, b]);
  g.derived("pair", ["sum", "s2"], (x, y) => ({ x, y }));
  g.mount("m");
  g.state("m::t", "t");
  g.derived("m::d", ["m::t", "s0"], (t, s) => [t, s]);
  return g;
}

// Node and mount names come from disjoint pools; derived names are removable (and re-addable as state nodes).
const NODE_PATHS = ["s0", "s1", "s2", "sum", "pair", "n0", "n1", "m::t", "m::d", "m::n0", "k::n0", "k::j::n1", "m::q::n2"];
const MOUNT_PATHS = ["m", "k", "k::j", "m::q"];
/** Meta is a function of the path, so a re-added node gets the meta the code would give it. */
const metaOf = (path: string): Record<string, JsonValue> => (path.endsWith("0") ? { origin: path } : {});

type Op =
  | { t: "set"; path: string; value: JsonValue }
  | { t: "invalidate"; path: string }
  | { t: "add"; path: string; value: JsonValue | undefined }
  | { t: "remove"; path: string }
  | { t: "mount"; path: string }
  | { t: "unmount"; path: string }
  | { t: "batch"; ops: Op[]; fail: boolean }
  | { t: "flush" };

const nodePath = fc.constantFrom(...NODE_PATHS);
const value = fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<JsonValue>;
const simpleOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ t: fc.constant("set" as const), path: nodePath, value }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("invalidate" as const), path: nodePath }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("add" as const), path: nodePath, value: fc.option(value, { nil: undefined }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("remove" as const), path: nodePath }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("mount" as const), path: fc.constantFrom(...MOUNT_PATHS) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("unmount" as const), path: fc.constantFrom(...MOUNT_PATHS) }) },
);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: simpleOp },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("batch" as const), ops: fc.array(simpleOp, { maxLength: 6 }), fail: fc.boolean() }) },
  { weight: 2, arbitrary: fc.constant({ t: "flush" as const }) },
);
const compactEvery = fc.constantFrom(1, 3, 7, Number.POSITIVE_INFINITY);

class Rollback extends Error {}

/** Applies one non-flush op; an op the graph refuses (TypeError, before any change) is simply skipped. */
function apply(g: ReactiveGraph, o: Op): void {
  if (o.t === "batch") {
    try {
      g.batch(() => {
        for (const inner of o.ops) apply(g, inner);
        if (o.fail) throw new Rollback();
      });
    } catch (err) {
      if (!(err instanceof Rollback)) throw err;
    }
    return;
  }
  try {
    switch (o.t) {
      case "set":
        g.set(o.path, o.value);
        break;
      case "invalidate":
        if (g.kindOf(o.path) === "state") g.invalidate(o.path); // derived invalidation is not restorable (recomputes)
        break;
      case "add":
        g.addState(o.path, o.value, metaOf(o.path));
        break;
      case "remove":
        g.remove(o.path);
        break;
      case "mount":
        g.mount(o.path);
        break;
      case "unmount":
        g.unmount(o.path);
        break;
      case "flush":
        break;
    }
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
  }
}

// ---- stores ----------------------------------------------------------------------------------------------------

interface Store {
  snapshot: SnapshotStorageTier<GraphCheckpointRecord>;
  wal: KvStorageTier<WALFrame>;
  close(): Promise<void>;
}

type OpenStore = () => Store;

function inlineStore(open: () => { backend: StorageBackend; cleanup?: () => void }): OpenStore {
  return () => {
    const { backend, cleanup } = open();
    const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" });
    const wal = kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec });
    return {
      snapshot,
      wal,
      async close() {
        await snapshot.close();
        await wal.close();
        await backend.close?.();
        cleanup?.();
      },
    };
  };
}

function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "graph-storage-prop-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const memoryStore = inlineStore(() => ({ backend: memoryBackend() }));
const fileStore = inlineStore(() => {
  const { dir, cleanup } = tempDir();
  return { backend: fileBackend(join(dir, "store")), cleanup };
});
const sqliteStore = inlineStore(() => {
  const { dir, cleanup } = tempDir();
  return { backend: sqliteBackend(join(dir, "g.db")), cleanup };
});

let storeCounter = 0;
/** Engine stores stay open in their actor until the engine closes; their directories are removed after that. */
const engineDirs: Array<() => void> = [];
function engineStore(engine: () => StorageEngine, kind: "memory" | "file" | "sqlite"): OpenStore {
  return () => {
    const { dir, cleanup } = tempDir();
    engineDirs.push(cleanup);
    const spec: StoreSpec =
      kind === "memory"
        ? { kind, name: `prop-${process.pid}-${storeCounter++}` }
        : kind === "file"
          ? { kind, dir: join(dir, "store") }
          : { kind, path: join(dir, "g.db") };
    const snapshot = engine().snapshot<GraphCheckpointRecord>(spec, { name: "snap" });
    const wal = engine().kv<WALFrame>(spec, { name: "wal", codec: walFrameCodec });
    return {
      snapshot,
      wal,
      async close() {
        await snapshot.close();
        await wal.close();
      },
    };
  };
}

// ---- the property ----------------------------------------------------------------------------------------------

async function allFrames(wal: KvStorageTier<WALFrame>): Promise<WALFrame[]> {
  const keys = await wal.list(`${graphWalPrefix("g")}/`);
  return Promise.all(keys.map(async (k) => (await wal.load(k)) as WALFrame));
}

async function restored(s: Store, targetSeq?: number): Promise<GraphPersistSnapshot> {
  const g = buildCode();
  await restoreSnapshot(g, { snapshot: s.snapshot, wal: s.wal, ...(targetSeq === undefined ? {} : { targetSeq }) });
  return g.snapshot();
}

async function scenario(openStore: OpenStore, ops: readonly Op[], every: number): Promise<void> {
  const s = openStore();
  try {
    const live = buildCode();
    const handle = attachSnapshotStorage(live, [{ snapshot: s.snapshot, wal: s.wal }], { compactEvery: every });
    const points: Array<{ seq: number; snapshot: GraphPersistSnapshot }> = [];
    for (const o of ops) {
      if (o.t === "flush") points.push({ seq: await handle.flush(), snapshot: live.snapshot() });
      else apply(live, o);
    }
    const finalSeq = await handle.flush();
    const final = live.snapshot();
    await handle.dispose();

    expect(await restored(s)).toEqual(final);

    const baseline = (await s.snapshot.load("g")) as GraphCheckpointRecord;
    const frames = await allFrames(s.wal);
    const fold = foldWal(baseline, frames);
    expect(fold.snapshot).toEqual(final);
    expect(fold.seq).toBeLessThanOrEqual(finalSeq);

    // With only the attach baseline every flush point is still restorable (point in time).
    if (every === Number.POSITIVE_INFINITY) {
      for (const p of points) {
        expect(await restored(s, p.seq)).toEqual(p.snapshot);
        expect(foldWal(baseline, frames, { targetSeq: p.seq }).snapshot).toEqual(p.snapshot);
      }
    }
  } finally {
    await s.close();
  }
}

const ops = fc.array(op, { minLength: 1, maxLength: 30 });

describe("restore(baseline + WAL) equals the live snapshot at the last flushed wave (inline tiers)", () => {
  it("memory", async () => {
    await fc.assert(fc.asyncProperty(ops, compactEvery, (o, e) => scenario(memoryStore, o, e)), { numRuns: 300 });
  });
  it("file", async () => {
    await fc.assert(fc.asyncProperty(ops, compactEvery, (o, e) => scenario(fileStore, o, e)), { numRuns: 25 });
  });
  it("sqlite", async () => {
    await fc.assert(fc.asyncProperty(ops, compactEvery, (o, e) => scenario(sqliteStore, o, e)), { numRuns: 40 });
  });
});

describe("restore(baseline + WAL) equals the live snapshot at the last flushed wave (engine proxies)", () => {
  let engine: StorageEngine | undefined;
  const get = (): StorageEngine => engine as StorageEngine;
  beforeAll(() => {
    engine = openStorageEngine({ threads: 2 });
  });
  afterAll(async () => {
    await engine?.close();
    for (const cleanup of engineDirs.splice(0)) cleanup();
  });

  for (const kind of ["memory", "sqlite", "file"] as const) {
    it(kind, async () => {
      await fc.assert(fc.asyncProperty(ops, compactEvery, (o, e) => scenario(engineStore(get, kind), o, e)), {
        numRuns: kind === "memory" ? 25 : 10,
      });
    });
  }
});
