/**
 * Shared fixtures for the compaction tests: real stores in temp dirs, a graph with state, derived and mounted
 * nodes, seeded random waves that exercise every frame kind, and raw store inspection.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileBackend } from "../../src/backend/file.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { jsonCodec } from "../../src/codec/json.js";
import type { StorageEngine, StoreSpec } from "../../src/engine/index.js";
import { createGraph } from "../../src/graph/graph.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import type { GraphPersistSnapshot, JsonValue, ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { graphWalPrefix, parseWalFrameKey } from "../../src/wal/keys.js";
import { until } from "../support/wait.js";

/** Deterministic PRNG (mulberry32), the project's one. */
export { mulberry32 as rng } from "../../src/base/prng.js";
import { mulberry32 } from "../../src/base/prng.js";

export const GRAPH = "g";

export interface TempDir {
  readonly dir: string;
  path(name: string): string;
  remove(): void;
}

export function tempDir(prefix: string): TempDir {
  const dir = mkdtempSync(join(tmpdir(), `grf-compaction-${prefix}-`));
  let n = 0;
  return { dir, path: (name) => join(dir, `${n++}-${name}`), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export type BackendKind = "memory" | "file" | "sqlite";
export const BACKEND_KINDS: readonly BackendKind[] = ["memory", "file", "sqlite"];

/** A fresh inline backend of `kind` (memory backends are per call, so "reopen" is the same object). */
export function openBackend(kind: BackendKind, tmp: TempDir): StorageBackend {
  switch (kind) {
    case "memory":
      return memoryBackend();
    case "file":
      return fileBackend(tmp.path("store"));
    case "sqlite":
      return sqliteBackend(tmp.path("store.db"));
  }
}

/** An engine store spec of `kind` in `tmp`. */
export function storeSpec(kind: BackendKind, tmp: TempDir): StoreSpec {
  switch (kind) {
    case "memory":
      return { kind: "memory", name: tmp.path("mem") };
    case "file":
      return { kind: "file", dir: tmp.path("store") };
    case "sqlite":
      return { kind: "sqlite", path: tmp.path("store.db") };
  }
}

/** The graph "code": what both the writer and every restoring process build. */
export function buildGraph(): ReactiveGraph {
  const g = createGraph(GRAPH);
  g.state("a", 1);
  g.state("b", 2);
  g.state("c");
  g.derived("sum", ["a", "b"], (a, b) => (a as number) + (b as number));
  g.mount("m");
  const m = g.subgraph("m");
  m.state("x", { n: 0 });
  m.derived("xn", ["x"], (x) => (typeof x === "object" && x !== null ? (x as { n: number }).n : x));
  g.derived("all", ["sum", "m::xn"], (s, x) => [s, x]);
  return g;
}


/**
 * One random wave: sets and invalidations of the fixed state nodes, plus nodes and mounts added and removed over
 * time, so the WAL carries every frame kind (add, remove, mount, unmount, set, invalidate).
 */
export function randomWave(g: ReactiveGraph, random: () => number): void {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const value = (): JsonValue => (random() < 0.5 ? Math.floor(random() * 100) : { v: Math.floor(random() * 10) });
  g.batch(() => {
    const ops = 1 + Math.floor(random() * 4);
    for (let i = 0; i < ops; i++) {
      const r = random();
      const extras = g.paths().filter((p) => p.startsWith("n") || p.startsWith("t"));
      if (r < 0.45) g.set(pick(["a", "b", "m::x"]), random() < 0.7 ? Math.floor(random() * 100) : { n: 1 });
      else if (r < 0.5) g.invalidate(pick(["a", "c"]));
      else if (r < 0.6) g.set("c", value());
      else if (r < 0.7) {
        const name = `n${Math.floor(random() * 5)}`;
        if (g.kindOf(name) === undefined) g.addState(name, random() < 0.8 ? value() : undefined);
        else g.set(name, value());
      } else if (r < 0.78 && extras.some((p) => p.startsWith("n"))) g.remove(pick(extras.filter((p) => p.startsWith("n"))));
      else if (r < 0.86) {
        const mount = `t${Math.floor(random() * 3)}`;
        if (!g.hasMount(mount)) {
          g.mount(mount);
          g.addState(`${mount}::y`, value());
        } else g.unmount(mount);
      } else g.set(pick(["a", "b"]), Math.floor(random() * 1000));
    }
  });
}

/** Every key and its bytes (hex), for "nothing changed" assertions. */
export async function dumpStore(backend: StorageBackend): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const key of await backend.list!()) {
    const bytes = await backend.read(key);
    out.set(key, Buffer.from(bytes ?? new Uint8Array()).toString("hex"));
  }
  return out;
}

/** Frame seqs stored for the graph, ascending. */
export async function storedFrameSeqs(backend: StorageBackend, graph = GRAPH): Promise<number[]> {
  const prefix = graphWalPrefix(graph);
  const keys = await backend.list!(`${prefix}/`);
  return keys.map((k) => parseWalFrameKey(prefix, k)).filter((s): s is number => s !== undefined);
}

export async function storedBaseline(backend: StorageBackend, graph = GRAPH): Promise<GraphCheckpointRecord> {
  const bytes = await backend.read(graph);
  if (bytes === undefined) throw new Error(`no baseline stored for ${graph}`);
  return jsonCodec.decode(bytes) as GraphCheckpointRecord;
}

/** Inline tiers over `backend`, as attach and restore take them. */
export function inlinePair(backend: StorageBackend): { snapshot: SnapshotStorageTier<GraphCheckpointRecord>; wal: KvStorageTier<WALFrame> } {
  return {
    snapshot: snapshotStorage<GraphCheckpointRecord>(backend),
    wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }),
  };
}

/** Restores the stored state into a freshly built graph and returns its snapshot. */
export async function restoredSnapshot(pair: RestorePair): Promise<GraphPersistSnapshot> {
  const fresh = buildGraph();
  await restoreSnapshot(fresh, pair);
  return fresh.snapshot();
}

type RestorePair = { snapshot: SnapshotStorageTier<GraphCheckpointRecord>; wal: KvStorageTier<WALFrame> };

// ---- background folds through the engine (fold-after-burst, fold-retry) ----------------------------------------

/** Attach's defaults (src/persistence/attach.ts): baselineRatio 2, baselines under 64 KiB count as 64 KiB. */
export const BASELINE_RATIO = 2;
export const MIN_BASELINE_BYTES = 64 * 1024;
/** Characters of each value a fold test's burst sets: each frame stores at least that many bytes. */
export const BURST_VALUE_CHARS = 640;

/** A graph's engine tiers on one store (defaults: the actor folds its WAL in the background). */
export function enginePair(e: StorageEngine, store: StoreSpec) {
  return {
    snapshot: e.snapshot<GraphCheckpointRecord>(store),
    wal: e.kv<WALFrame>(store, { codec: walFrameCodec }),
  };
}

/**
 * The stored baseline and the WAL frames above its seq: their count and stored bytes (the codecs' encodings).
 * `folding`: a frame listed was gone when read (a fold committed between the reads), so the figures are not one
 * state of the store and the caller polls again.
 */
export async function aboveBaseline({ snapshot, wal }: ReturnType<typeof enginePair>) {
  const baseline = await snapshot.load(GRAPH);
  if (baseline === undefined) throw new Error("no baseline stored");
  const prefix = graphWalPrefix(GRAPH);
  const keys = (await wal.list(`${prefix}/`)).filter((k) => (parseWalFrameKey(prefix, k) ?? -1) > baseline.seq);
  let bytes = 0;
  let folding = false;
  for (const key of keys) {
    const frame = await wal.load(key);
    if (frame === undefined) folding = true;
    else bytes += walFrameCodec.encode(frame).byteLength;
  }
  return { baselineSeq: baseline.seq, baselineBytes: jsonCodec.encode(baseline).byteLength, frames: keys.length, bytes, folding };
}

/** The WAL above the baseline is within attach's default bound (ratio × max(baseline, 64 KiB)), read as one state. */
export function withinFoldBound(a: Awaited<ReturnType<typeof aboveBaseline>>): boolean {
  return !a.folding && a.bytes <= BASELINE_RATIO * Math.max(a.baselineBytes, MIN_BASELINE_BYTES);
}

/**
 * Polls until the WAL above the baseline is within the bound while nothing writes (only the store's watcher can
 * fold it); a timeout names the last figures read and `context()`.
 */
export async function untilWithinFoldBound(pair: ReturnType<typeof enginePair>, timeoutMs: number, context = (): string => ""): Promise<void> {
  let last: Awaited<ReturnType<typeof aboveBaseline>> | undefined;
  await until(
    async () => withinFoldBound((last = await aboveBaseline(pair))),
    "the WAL above the baseline to be within ratio × baseline while idle",
    { timeoutMs, intervalMs: 20 },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}: ${JSON.stringify(last)}${context()}`);
  });
}

/**
 * A SQLite store at `path` whose graph has `waves` seeded random frames above its attach baseline (baselines only
 * when asked); `cleanups` gets the handle's dispose and the backend's close.
 */
export async function sqliteStoreWithFrames(path: string, waves: number, seed: number, cleanups: Array<() => Promise<void> | void>) {
  const backend = sqliteBackend(path);
  const graph = buildGraph();
  const handle = attachSnapshotStorage(graph, [inlinePair(backend)], { compactEvery: Number.POSITIVE_INFINITY });
  cleanups.push(async () => {
    await handle.dispose();
    backend.close();
  });
  const random = mulberry32(seed);
  for (let i = 0; i < waves; i++) randomWave(graph, random);
  const seq = await handle.flush();
  const baseline = (): GraphCheckpointRecord => jsonCodec.decode(backend.read(GRAPH) as Uint8Array) as GraphCheckpointRecord;
  return { backend, graph, handle, seq, baseline };
}
