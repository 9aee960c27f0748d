/**
 * `stats [store]`: a short built-in load through the storage engine (worker actor, WAL frames sealed in the
 * worker, a baseline through a snapshot tier), then the engine's stats table. Without a store the load runs on
 * a temporary store that is removed afterwards; on a given store it writes a scratch graph (refused if that
 * graph already exists) and deletes it again.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Command } from "commander";
import { canonicalJson } from "../codec/json.js";
import type { StorageEngine, StoreStats } from "../engine/engine.js";
import type { StoreSpec } from "../engine/protocol.js";
import type { GraphCheckpointRecord } from "../persistence/storage-types.js";
import { walFrameCodec } from "../wal/codec.js";
import type { WALFrame } from "../wal/frame.js";
import { assertGraphName, graphWalPrefix, walFrameKey } from "../wal/keys.js";
import { CliError, EXIT } from "./errors.js";
import { formatBytes, formatTable, printLine } from "./output.js";
import { positiveInt, withStoreOptions, type ProgressOptions, type StoreCommandOptions } from "./options.js";
import { createProgress, type Progress } from "./progress.js";
import { graphExists } from "./scan.js";
import { detectStoreKind, isPostgresStore, postgresTarget, withStore } from "./store.js";

export interface LoadOptions {
  graph: string;
  frames: number;
  batch: number;
}

export interface LoadResult {
  frames: number;
  flushes: number;
  elapsedMs: number;
}

/** Spreads the values over a few paths, like a graph whose hot nodes change repeatedly. */
const HOT_PATHS = 32;
const DEFAULT_GRAPH = "graphrefly-stats";

function loadFrame(seq: number, tNs: number): WALFrame {
  const path = `n${seq % HOT_PATHS}`;
  return {
    t: "c",
    lifecycle: "data",
    path,
    change: { structure: "graph.value", version: 0, t_ns: tNs, lifecycle: "data", change: { kind: "node.set", path, value: seq } },
    frame_seq: seq,
    frame_t_ns: tNs,
    checksum: "", // sealed by the WAL codec in the worker (docs/design.md §3.14)
    format_version: 1,
  };
}

/** Writes a baseline (seq 1) and frames 2.. through `spec`'s actor, flushing every `batch` frames. */
export async function runLoad(engine: StorageEngine, spec: StoreSpec, opts: LoadOptions, progress: Progress): Promise<LoadResult> {
  const snapshot = engine.snapshot<GraphCheckpointRecord>(spec, { name: opts.graph });
  const wal = engine.kv<WALFrame>(spec, { name: graphWalPrefix(opts.graph), codec: walFrameCodec });
  const prefix = graphWalPrefix(opts.graph);
  const started = performance.now();
  const tNs = Date.now() * 1_000_000;
  snapshot.save({
    name: opts.graph,
    mode: "full",
    snapshot: { name: opts.graph, nodes: {}, edges: [], subgraphs: [], version: 1 },
    seq: 1,
    timestamp_ns: tNs,
    format_version: 1,
  });
  await snapshot.flush();
  let flushes = 0;
  progress.start("stats load", opts.frames);
  for (let written = 0; written < opts.frames; ) {
    const n = Math.min(opts.batch, opts.frames - written);
    for (let i = 0; i < n; i++) {
      const seq = 2 + written + i;
      wal.save(walFrameKey(prefix, seq), loadFrame(seq, tNs + seq));
    }
    await wal.flush();
    flushes++;
    written += n;
    progress.advance(n);
  }
  progress.stop();
  return { frames: opts.frames, flushes, elapsedMs: performance.now() - started };
}

/** Removes the scratch graph the load wrote into a user's store. */
async function removeLoad(engine: StorageEngine, spec: StoreSpec, graph: string): Promise<void> {
  const kv = engine.kv<unknown>(spec, { name: `${graph}-cleanup` });
  for (const key of await kv.list(graphWalPrefix(graph) + "/")) await kv.delete(key);
  await kv.delete(graph);
}

function statsRows(s: StoreStats): string[][] {
  const ms = (v: number | undefined): string => (v === undefined ? "-" : `${v.toFixed(2)} ms`);
  const store =
    s.store.kind === "sqlite"
      ? s.store.path
      : s.store.kind === "file"
        ? s.store.dir
        : s.store.kind === "memory"
          ? s.store.name
          : `${s.store.url} store ${JSON.stringify(s.store.store)}`; // engine stats carry the URL without its password
  return [
    ["store", `${s.store.kind} ${store}`],
    ["alive", s.alive ? "yes" : "no"],
    ["queue depth", String(s.queueDepth)],
    ["pending entries", String(s.pendingEntries)],
    ["pending bytes", formatBytes(s.pendingBytes)],
    ["flushes", String(s.flushes)],
    ["failed flushes", String(s.failedFlushes)],
    ["flush latency p50", ms(s.flushLatencyP50Ms)],
    ["flush latency p99", ms(s.flushLatencyP99Ms)],
    ["bytes written", formatBytes(s.bytesWritten)],
    ["frames (backend writes)", String(s.frames)],
    ["last error", s.lastError ?? "-"],
  ];
}

interface StatsOptions extends StoreCommandOptions, ProgressOptions {
  frames: number;
  batch: number;
  graph?: string;
  json?: boolean;
}

export function statsCommand(): Command {
  return withStoreOptions(
    new Command("stats")
      .description("run a short built-in load through the engine and print the engine's stats table")
      .argument("[store]", "store to load (default: a temporary store, removed afterwards)")
      .option("--frames <n>", "WAL frames to write", positiveInt, 2000)
      .option("--batch <n>", "frames per flush", positiveInt, 100)
      .option("--graph <name>", `scratch graph name (default ${DEFAULT_GRAPH})`)
      .option("--json", "machine-readable output (one JSON document)"),
  ).action(async (store: string | undefined, opts: StatsOptions) => {
    const graph = opts.graph ?? DEFAULT_GRAPH;
    assertGraphName(graph, "--graph"); // the scratch graph is written into the store like any graph
    let temp: string | undefined;
    let spec: StoreSpec;
    if (store === undefined) {
      temp = mkdtempSync(join(tmpdir(), "graphrefly-stats-"));
      spec = opts.backend === "file" ? { kind: "file", dir: join(temp, "store") } : { kind: "sqlite", path: join(temp, "stats.db") };
    } else if (isPostgresStore(store)) {
      const { url, store: name, schema, table } = postgresTarget(store);
      const { clash, shown } = await withStore(store, { mode: "read" }, async (s) => ({ clash: await graphExists(s.backend, graph), shown: s.path }));
      if (clash) throw new CliError("usage", `graph "${graph}" already exists in ${shown}: pass another --graph`);
      spec = { kind: "postgres", url, store: name, ...(schema !== undefined ? { schema } : {}), ...(table !== undefined ? { table } : {}) };
    } else {
      const path = resolve(store);
      const kind = detectStoreKind(path, opts.backend, "create");
      if (existsSync(path)) {
        const clash = await withStore(path, { kind, mode: "read" }, (s) => graphExists(s.backend, graph));
        if (clash) throw new CliError("usage", `graph "${graph}" already exists in ${store}: pass another --graph`);
      }
      spec = kind === "file" ? { kind, dir: path } : { kind, path };
    }
    // Loaded on demand: the worker pool library is the slowest import, and only this command needs it.
    const { openStorageEngine } = await import("../engine/engine.js");
    const engine = openStorageEngine({ threads: 1 });
    try {
      const load = await runLoad(engine, spec, { graph, frames: opts.frames, batch: opts.batch }, createProgress(opts.progress));
      const stats = await engine.stats();
      if (temp === undefined) await removeLoad(engine, spec, graph);
      if (opts.json) {
        printLine(canonicalJson({ load, stats }));
      } else {
        const rate = load.elapsedMs > 0 ? Math.round((load.frames / load.elapsedMs) * 1000) : 0;
        printLine(`load: baseline + ${load.frames} frames in ${load.flushes} flushes, ${load.elapsedMs.toFixed(0)} ms (${rate} frames/s)`);
        for (const s of stats) printLine("\n" + formatTable(["stat", "value"], statsRows(s)));
      }
    } finally {
      await engine.close();
      if (temp !== undefined) rmSync(temp, { recursive: true, force: true });
    }
    process.exitCode = EXIT.ok;
  });
}
