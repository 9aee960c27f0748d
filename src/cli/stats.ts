/**
 * `stats [store]`: a short built-in load through the storage engine (worker actor, WAL frames sealed in the
 * worker, a baseline through a snapshot tier), then the engine's stats table. Without a store the load runs on
 * a temporary store that is removed afterwards; on a given store it writes a scratch graph (refused if that
 * graph already exists) and deletes exactly the keys it wrote again, also when the load fails. A run killed
 * mid-way leaves its scratch graph behind: the next run removes it, but only when every key of that graph is
 * exactly what a load writes (a user's graph of that name is refused as before, never deleted).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { canonicalJson, parseJsonBytes } from "../codec/json.js";
import type { StorageEngine, StoreStats } from "../engine/engine.js";
import type { StoreSpec } from "../engine/protocol.js";
import type { GraphCheckpointRecord } from "../persistence/storage-types.js";
import { canonicalWalFrameBody } from "../wal/checksum.js";
import { walFrameCodec } from "../wal/codec.js";
import { parseWalFrame, type WALFrame } from "../wal/frame.js";
import { assertGraphName, graphWalPrefix, parseWalFrameKey, walFrameKey } from "../wal/keys.js";
import { CliError, EXIT } from "./errors.js";
import { formatBytes, formatTable, plural, printLine } from "./output.js";
import { positiveInt, withStoreOptions, type ProgressOptions, type StoreCommandOptions } from "./options.js";
import { createProgress, type Progress } from "./progress.js";
import { graphExists } from "./scan.js";
import { detectStoreKind, isPostgresStore, localStorePath, postgresTarget, withStore, type CliBackend } from "./store.js";

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

/** The load's baseline record. */
function loadBaseline(graph: string, tNs: number): GraphCheckpointRecord {
  return {
    name: graph,
    mode: "full",
    snapshot: { name: graph, nodes: {}, edges: [], subgraphs: [], version: 1 },
    seq: 1,
    timestamp_ns: tNs,
    format_version: 1,
  };
}

/** What the load has saved so far (frames 2 … frames + 1), for removing exactly that. */
export interface LoadWritten {
  frames: number;
}

/**
 * Writes a baseline (seq 1) and frames 2.. through `spec`'s actor, flushing every `batch` frames. `written` counts
 * the frames saved so far, also when a flush fails.
 */
export async function runLoad(
  engine: StorageEngine,
  spec: StoreSpec,
  opts: LoadOptions,
  progress: Progress,
  written: LoadWritten = { frames: 0 },
): Promise<LoadResult> {
  const snapshot = engine.snapshot<GraphCheckpointRecord>(spec, { name: opts.graph });
  const wal = engine.kv<WALFrame>(spec, { name: graphWalPrefix(opts.graph), codec: walFrameCodec });
  const prefix = graphWalPrefix(opts.graph);
  const started = performance.now();
  const tNs = Date.now() * 1_000_000;
  snapshot.save(loadBaseline(opts.graph, tNs));
  await snapshot.flush();
  let flushes = 0;
  progress.start("stats load", opts.frames);
  while (written.frames < opts.frames) {
    const n = Math.min(opts.batch, opts.frames - written.frames);
    for (let i = 0; i < n; i++) {
      const seq = 2 + written.frames;
      wal.save(walFrameKey(prefix, seq), loadFrame(seq, tNs + seq));
      written.frames++;
    }
    await wal.flush();
    flushes++;
    progress.advance(n);
  }
  progress.stop();
  return { frames: opts.frames, flushes, elapsedMs: performance.now() - started };
}

/** Keys deleted per message to the store's actor. */
const DELETE_CHUNK = 1024;

/**
 * Deletes the scratch graph's frame keys `frameKeys`, then its baseline: exactly what a load wrote, never other keys
 * under its prefix (they are the user's). The baseline goes last, so a run killed mid-way leaves a graph the next
 * run still recognizes as a leftover (`leftoverLoad`).
 */
async function removeLoad(engine: StorageEngine, spec: StoreSpec, graph: string, frameKeys: readonly string[]): Promise<void> {
  const kv = engine.kv<unknown>(spec, { name: `${graph}-cleanup` });
  for (let i = 0; i < frameKeys.length; i += DELETE_CHUNK) {
    const chunk = frameKeys.slice(i, i + DELETE_CHUNK);
    if (kv.deleteMany) await kv.deleteMany(chunk);
    else for (const key of chunk) await kv.delete(key);
  }
  await kv.delete(graph);
}

/** The frame keys a load of `frames` frames writes: seqs 2 … frames + 1. */
function loadFrameKeys(graph: string, frames: number): string[] {
  const prefix = graphWalPrefix(graph);
  return Array.from({ length: frames }, (_, i) => walFrameKey(prefix, 2 + i));
}

/**
 * The frame keys of a scratch graph a killed run left (its baseline is stored too), or undefined when anything of
 * graph `graph` is not exactly what `runLoad` writes (its baseline, frames 2.. setting n<seq % 32> to seq): then it
 * is a user's graph, and it is refused, not deleted. Keys under the prefix that are not frame keys are never the
 * load's, and are left alone. Reads every frame: only when the name is taken.
 */
export async function leftoverLoad(backend: CliBackend, graph: string): Promise<string[] | undefined> {
  const baseline = decoded(await backend.read(graph));
  if (!isRecordLike(baseline) || typeof baseline.timestamp_ns !== "number") return undefined;
  if (canonicalJson(baseline) !== canonicalJson(loadBaseline(graph, baseline.timestamp_ns))) return undefined;
  const prefix = graphWalPrefix(graph);
  const keys = (await backend.list(`${prefix}/`)).filter((k) => parseWalFrameKey(prefix, k) !== undefined);
  for (let i = 0; i < keys.length; i += DELETE_CHUNK) {
    const chunk = keys.slice(i, i + DELETE_CHUNK);
    const raws = await backend.readMany(chunk);
    for (let j = 0; j < chunk.length; j++) if (!isLoadFrame(raws[j], parseWalFrameKey(prefix, chunk[j]!)!)) return undefined;
  }
  return keys;
}

function decoded(bytes: Uint8Array | undefined): unknown {
  if (bytes === undefined) return undefined;
  try {
    return parseJsonBytes(bytes);
  } catch {
    return undefined;
  }
}

function isRecordLike(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** True when `raw` is exactly the frame the load writes at `seq` (any time stamp; its checksum is not read). */
function isLoadFrame(raw: Uint8Array | undefined, seq: number): boolean {
  if (seq < 2) return false;
  try {
    const frame = parseWalFrame(decoded(raw));
    if (typeof frame.frame_t_ns !== "number") return false;
    return canonicalWalFrameBody(frame) === canonicalWalFrameBody(loadFrame(seq, frame.frame_t_ns));
  } catch {
    return false;
  }
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
    /** A killed run's scratch graph, to remove before this run's load. */
    let leftover: string[] | undefined;
    /** Looks at what the store holds under the scratch graph's name (`shown` names the store in the refusal). */
    const checkFree = async (s: { backend: CliBackend }, shown: string): Promise<void> => {
      if (!(await graphExists(s.backend, graph))) return;
      leftover = await leftoverLoad(s.backend, graph);
      if (leftover === undefined) throw new CliError("usage", `graph "${graph}" already exists in ${shown}: pass another --graph`);
    };
    if (store === undefined) {
      temp = mkdtempSync(join(tmpdir(), "graphrefly-stats-"));
      spec = opts.backend === "file" ? { kind: "file", dir: join(temp, "store") } : { kind: "sqlite", path: join(temp, "stats.db") };
    } else if (isPostgresStore(store)) {
      const { url, store: name, schema, table } = postgresTarget(store);
      await withStore(store, { mode: "read" }, (s) => checkFree(s, s.path));
      spec = { kind: "postgres", url, store: name, ...(schema !== undefined ? { schema } : {}), ...(table !== undefined ? { table } : {}) };
    } else {
      const path = localStorePath(store); // refuses `<d>/link/..` before anything is made (review r249 F1)
      const kind = detectStoreKind(path, opts.backend, "create");
      // No private copy of a store this user cannot write: the load's writes would fail after it (review r330 F7).
      if (existsSync(path)) await withStore(path, { kind, mode: "read", writesAfter: "stats" }, (s) => checkFree(s, store));
      spec = kind === "file" ? { kind, dir: path } : { kind, path };
    }
    // Loaded on demand: the worker pool library is the slowest import, and only this command needs it.
    const { openStorageEngine } = await import("../engine/engine.js");
    const engine = openStorageEngine({ threads: 1 });
    try {
      if (leftover !== undefined) {
        await removeLoad(engine, spec, graph, leftover);
        process.stderr.write(`note: removed the scratch graph "${graph}" (baseline + ${plural(leftover.length, "frame")}) an interrupted stats run left\n`);
      }
      const written: LoadWritten = { frames: 0 };
      let load: LoadResult;
      let stats: StoreStats[];
      try {
        load = await runLoad(engine, spec, { graph, frames: opts.frames, batch: opts.batch }, createProgress(opts.progress), written);
        stats = await engine.stats();
      } catch (err) {
        // Exactly what this run saved goes again; the load's failure is the one reported.
        if (temp === undefined) await removeLoad(engine, spec, graph, loadFrameKeys(graph, written.frames)).catch(() => undefined);
        throw err;
      }
      if (temp === undefined) await removeLoad(engine, spec, graph, loadFrameKeys(graph, written.frames));
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
