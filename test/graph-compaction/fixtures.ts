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
import type { StoreSpec } from "../../src/engine/index.js";
import { createGraph } from "../../src/graph/graph.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import type { GraphPersistSnapshot, JsonValue, ReactiveGraph } from "../../src/graph/types.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { graphWalPrefix, parseWalFrameKey } from "../../src/wal/keys.js";

/** Deterministic PRNG (mulberry32), the project's one. */
export { mulberry32 as rng } from "../../src/base/prng.js";

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
