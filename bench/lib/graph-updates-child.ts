/**
 * One graph workload in a process of its own (suite 1's graph rows), so the peak RSS it reports is its own: a
 * graph of N state nodes `{ v, s: "x".repeat(20) }` attached with default options, inline (memory tiers) or
 * through the engine (a SQLite store); after a warm-up, random sets paced (one per event-loop turn, `await
 * setImmediate` after each, as a request handler does), then as many in a burst (one synchronous loop), each
 * followed by a flush until durable; the paced part is `windows` such windows in a row, the median one reported
 * (bench/lib/paced-windows.ts). The peak RSS is read after the burst (the paced part holds little).
 * A default baseline falls due once the WAL outgrows the last baseline (attach's size rule), every P sets where P
 * grows with N: a window of U sets would hold one baseline or none depending on where it starts, and none at all
 * at N = 100,000 (P is about 60,000 there). So each window is a whole number of periods, at least U sets, and holds
 * its share of baselines at every N; the warm-up runs a baseline first (its code paths are warm too).
 * The parent forks dist/bench/lib/graph-updates-child.js with a JSON GraphUpdatesConfig as argv[2] (bench/lib/child.ts)
 * and gets one GraphUpdatesResult back over IPC.
 */
import { join } from "node:path";
import { open as openLmdb } from "lmdb";
import { memoryBackend } from "../../src/backend/memory.js";
import { jsonCodec } from "../../src/codec/json.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { attachSnapshotStorage, createGraph, type AttachPair, type GraphCheckpointRecord } from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { SnapshotStorageTier } from "../../src/tier/types.js";
import { BASELINE_MIN_BYTES, DEFAULT_BASELINE_RATIO } from "../../src/persistence/attach.js";
import { graphWalPrefix, walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { serveChild } from "./child.js";
import { MainThreadMeter, type MeterReading } from "./meter.js";
import { medianWindow } from "./paced-windows.js";

export interface GraphUpdatesConfig {
  readonly nodes: number;
  readonly updates: number;
  /**
   * "bare": the same graph and sets with no storage attached, the graph's own share of an update. "lmdb": the same
   * sets persisted by hand, as a user of the graph would without this package: graph.observe, and one lmdb-js put of
   * each changed node's value per wave.
   */
  readonly mode: "inline" | "engine" | "bare" | "lmdb";
  /** A fresh directory for the engine's SQLite store (or the lmdb database). */
  readonly dir: string;
  /** Paced windows measured one after another (default 1); `paced` is the one with the median main-thread CPU per set. */
  readonly windows?: number;
}

export interface GraphUpdatesRun {
  /** First set to durable flush. */
  readonly wallMs: number;
  readonly reading: MeterReading;
  /** Frames the updates wrote (seqs handed out). */
  readonly frames: number;
  /** Baselines this thread handed to the snapshot tier during the run. */
  readonly mainThreadBaselines: number;
}

export interface GraphUpdatesResult {
  /** Sets between two default baselines (estimated from the stored sizes after the first warm-up). */
  readonly baselinePeriod: number;
  readonly paced: GraphUpdatesRun;
  /** Main-thread CPU µs per set of each paced window, in the order they ran. */
  readonly pacedWindowsUs: number[];
  readonly burst: GraphUpdatesRun;
  /** Peak resident set of the process before the burst (graph built, attached, paced part done) and after it (bytes). */
  readonly peakRssBeforeBytes: number;
  readonly peakRssBytes: number;
}

const PAD = "x".repeat(20);

type Graph = ReturnType<typeof createGraph>;

/**
 * Paced sets before the measured windows, the same in every mode: 2.5 × a window's sets, and at least 15,000, run as
 * windows of the measured length (each ends with its durable wait, as the measured one does). After 5,000 sets in one
 * run the first window still paid the JIT's tier-up, unevenly: at N = 100 a window of ~2,100 sets right after it read
 * (main-thread CPU µs per set, medians of 6 alternating runs, load ~5.5) 7.99 through the engine, 3.70 with no
 * storage, 5.28 persisted by hand with lmdb, and the sixth such window (~15,600 sets in) 5.08, 2.25, 5.10: the
 * engine's path, the longest, warms last (task 212, design §3.38). A server runs warm.
 */
const WARM_UP_MIN_SETS = 15_000;

async function warmUp(updates: number, window: (sets: number) => Promise<unknown>): Promise<void> {
  const total = Math.max(Math.round(updates * 2.5), WARM_UP_MIN_SETS);
  for (let done = 0; done < total; done += updates) await window(Math.min(updates, total - done));
}

function buildGraph(nodes: number): { graph: Graph; paths: string[] } {
  const graph = createGraph("g");
  const paths: string[] = [];
  for (let i = 0; i < nodes; i++) paths.push(graph.state(`n${i}`, { v: i, s: PAD }));
  return { graph, paths };
}

/** Deterministic random paths, the same sequence in every variant. */
function picker(paths: readonly string[]): () => string {
  let seed = 0x9e3779b9;
  return () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return paths[Math.floor((seed / 4294967296) * paths.length)] as string;
  };
}

/** Sets `picks` in order with fresh values: one per event-loop turn (paced) or in one synchronous loop. */
async function drive(graph: Graph, picks: readonly string[], paced: boolean, next: () => number): Promise<void> {
  if (paced) {
    for (const path of picks) {
      graph.set(path, { v: next(), s: PAD });
      await new Promise<void>((r) => setImmediate(r));
    }
  } else {
    for (const path of picks) graph.set(path, { v: next(), s: PAD });
  }
}

/**
 * The graph alone ("bare"), or persisted by hand with lmdb-js ("lmdb"): the same warm-up length and windows as
 * `run`, no baselines; a window of "lmdb" ends when its puts are durable (`await db.flushed`).
 */
async function runBare(cfg: GraphUpdatesConfig): Promise<GraphUpdatesResult> {
  const { graph, paths } = buildGraph(cfg.nodes);
  const db = cfg.mode === "lmdb" ? openLmdb<unknown, string>({ path: join(cfg.dir, "db") }) : undefined;
  if (db !== undefined) {
    // What a user finds in the graph's API: each settled wave names the nodes that changed; their values are put.
    graph.observe((wave) => {
      for (const { path, signal } of wave.signals) if (signal === "data") void db.put(path, graph.get(path));
    });
  }
  const pick = picker(paths);
  let value = 1_000_000;
  const next = (): number => value++;
  const measure = async (paced: boolean, updates: number): Promise<GraphUpdatesRun> => {
    const picks = Array.from({ length: updates }, pick);
    const meter = await MainThreadMeter.start();
    const t0 = performance.now();
    await drive(graph, picks, paced, next);
    if (db !== undefined) await db.flushed;
    const wallMs = performance.now() - t0;
    return { wallMs, reading: await meter.stop(), frames: updates, mainThreadBaselines: 0 };
  };
  await warmUp(cfg.updates, (n) => measure(true, n));
  const { median: paced, windowsUs: pacedWindowsUs } = await medianWindow(cfg.windows ?? 1, () => measure(true, cfg.updates), (r) => r.frames);
  const peakRssBeforeBytes = process.resourceUsage().maxRSS * 1024;
  const burst = await measure(false, cfg.updates);
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  await db?.close();
  return { baselinePeriod: 0, paced, pacedWindowsUs, burst, peakRssBeforeBytes, peakRssBytes };
}

async function run(cfg: GraphUpdatesConfig): Promise<GraphUpdatesResult> {
  if (cfg.mode === "bare" || cfg.mode === "lmdb") return runBare(cfg);
  const { graph, paths } = buildGraph(cfg.nodes);
  const engine = cfg.mode === "engine" ? openStorageEngine() : undefined;
  let pair: AttachPair;
  if (engine !== undefined) {
    const store = { kind: "sqlite" as const, path: join(cfg.dir, "store.db") };
    pair = { snapshot: engine.snapshot<GraphCheckpointRecord>(store, { name: "snap" }), wal: engine.kv<WALFrame>(store, { name: "wal", codec: walFrameCodec }) };
  } else {
    const backend = memoryBackend();
    pair = { snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }), wal: kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec }) };
  }
  let baselines = 0;
  const inner = pair.snapshot;
  const snapshot = Object.assign(Object.create(inner) as SnapshotStorageTier<GraphCheckpointRecord>, {
    save(record: GraphCheckpointRecord) {
      baselines++;
      inner.save(record);
    },
  });
  const handle = attachSnapshotStorage(graph, [{ snapshot, wal: pair.wal }]);
  await handle.flush();
  const pick = picker(paths);
  let value = 1_000_000;
  const next = (): number => value++;
  const measure = async (paced: boolean, updates: number): Promise<GraphUpdatesRun> => {
    const picks = Array.from({ length: updates }, pick);
    const startSeq = handle.seq;
    baselines = 0;
    const meter = await MainThreadMeter.start();
    const t0 = performance.now();
    await drive(graph, picks, paced, next);
    const endSeq = await handle.flush();
    const wallMs = performance.now() - t0;
    return { wallMs, reading: await meter.stop(), frames: endSeq - startSeq, mainThreadBaselines: baselines };
  };
  // Warm-up: the store's first pages and the JIT. A server runs warm; after only 500 updates the paths of an update
  // were still partly cold (twice the main-thread CPU of a warm paced update through the engine at N = 100).
  const attachedSeq = handle.seq;
  await warmUp(cfg.updates, (n) => measure(true, n));
  const period = await baselinePeriod(pair, async () => {
    graph.set(pick(), { v: next(), s: PAD });
    await handle.flush();
  });
  // Baselines fall due every `period` sets from attach: the warm-up runs past one and stops half a period after one,
  // so the windows' baselines fall mid-window, not at a boundary where the flush ending a window may or may not wait
  // for one that just fell due.
  const done = handle.seq - attachedSeq;
  let extra = (Math.floor(period / 2) - (done % period) + period) % period;
  if (done + extra < period) extra += period;
  if (extra > 0) await measure(true, extra);
  const window = period * Math.max(1, Math.ceil(cfg.updates / period));
  // Each window is a whole number of periods, so every one starts at the same phase of the baseline cadence.
  const { median: paced, windowsUs: pacedWindowsUs } = await medianWindow(cfg.windows ?? 1, () => measure(true, window), (r) => r.frames);
  const peakRssBeforeBytes = process.resourceUsage().maxRSS * 1024;
  const burst = await measure(false, window);
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  await handle.dispose();
  await engine?.close();
  return { baselinePeriod: period, paced, pacedWindowsUs, burst, peakRssBeforeBytes, peakRssBytes };
}

/**
 * Sets between two baselines by attach's default rule: WAL bytes > ratio × max(baseline bytes, minimum). A fold may
 * just have removed every frame: then `another` writes one more.
 */
async function baselinePeriod(pair: AttachPair, another: () => Promise<void>): Promise<number> {
  const wal = pair.wal!;
  let frame: WALFrame | undefined;
  for (let tries = 0; frame === undefined && tries < 10; tries++) {
    const keys = await wal.list(`${graphWalPrefix("g")}/`);
    const last = keys.sort().at(-1);
    frame = last === undefined ? undefined : await wal.load(last);
    if (frame === undefined) await another();
  }
  const baseline = await pair.snapshot.load("g");
  if (baseline === undefined || frame === undefined) throw new Error("graph-updates child: no baseline or frame stored after the warm-up");
  const baselineBytes = jsonCodec.encode(baseline).byteLength;
  return Math.ceil((DEFAULT_BASELINE_RATIO * Math.max(baselineBytes, BASELINE_MIN_BYTES)) / walFrameCodec.encode(frame).byteLength);
}

serveChild(run);
