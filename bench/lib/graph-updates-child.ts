/**
 * One graph workload in a process of its own (suite 1's graph rows), so the peak RSS it reports is its own: a
 * graph of N state nodes `{ v, s: "x".repeat(20) }` attached with default options, inline (memory tiers) or
 * through the engine (a SQLite store); after a warm-up, U random sets paced (one per event-loop turn, `await
 * setImmediate` after each, as a request handler does), then U in a burst (one synchronous loop), each followed
 * by a flush until durable. The peak RSS is read after the burst (the paced part holds little).
 * The parent forks dist/bench/lib/graph-updates-child.js with a JSON GraphUpdatesConfig as argv[2] and gets one
 * GraphUpdatesResult back over IPC.
 */
import { join } from "node:path";
import { memoryBackend } from "../../src/backend/memory.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { attachSnapshotStorage, createGraph, type AttachPair, type GraphCheckpointRecord } from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { SnapshotStorageTier } from "../../src/tier/types.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { MainThreadMeter, type MeterReading } from "./meter.js";

export interface GraphUpdatesConfig {
  readonly nodes: number;
  readonly updates: number;
  readonly mode: "inline" | "engine";
  /** A fresh directory for the engine's SQLite store. */
  readonly dir: string;
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
  readonly paced: GraphUpdatesRun;
  readonly burst: GraphUpdatesRun;
  /** Peak resident set of the process before the burst (graph built, attached, paced part done) and after it (bytes). */
  readonly peakRssBeforeBytes: number;
  readonly peakRssBytes: number;
}

const PAD = "x".repeat(20);

async function run(cfg: GraphUpdatesConfig): Promise<GraphUpdatesResult> {
  const graph = createGraph("g");
  const paths: string[] = [];
  for (let i = 0; i < cfg.nodes; i++) paths.push(graph.state(`n${i}`, { v: i, s: PAD }));
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
  let seed = 0x9e3779b9;
  let value = 1_000_000;
  const pick = (): string => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return paths[Math.floor((seed / 4294967296) * paths.length)] as string;
  };
  const measure = async (paced: boolean, updates: number): Promise<GraphUpdatesRun> => {
    const picks = Array.from({ length: updates }, pick);
    const startSeq = handle.seq;
    baselines = 0;
    const meter = await MainThreadMeter.start();
    const t0 = performance.now();
    if (paced) {
      for (let i = 0; i < updates; i++) {
        graph.set(picks[i] as string, { v: value++, s: PAD });
        await new Promise<void>((r) => setImmediate(r));
      }
    } else {
      for (let i = 0; i < updates; i++) graph.set(picks[i] as string, { v: value++, s: PAD });
    }
    const endSeq = await handle.flush();
    const wallMs = performance.now() - t0;
    return { wallMs, reading: await meter.stop(), frames: endSeq - startSeq, mainThreadBaselines: baselines };
  };
  // Warm-up: the store's first pages and the JIT. A server runs warm; after only 500 updates the paths of an update
  // were still partly cold (twice the main-thread CPU of a warm paced update through the engine at N = 100).
  await measure(true, Math.round(cfg.updates * 2.5));
  const paced = await measure(true, cfg.updates);
  const peakRssBeforeBytes = process.resourceUsage().maxRSS * 1024;
  const burst = await measure(false, cfg.updates);
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  await handle.dispose();
  await engine?.close();
  return { paced, burst, peakRssBeforeBytes, peakRssBytes };
}

const cfg = JSON.parse(process.argv[2] ?? "null") as GraphUpdatesConfig | null;
if (cfg !== null && process.send !== undefined) {
  run(cfg).then(
    (result) => process.send!({ ok: true, result }, () => process.exit(0)),
    (err: unknown) => process.send!({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () => process.exit(1)),
  );
}
