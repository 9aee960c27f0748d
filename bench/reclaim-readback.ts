/**
 * `node dist/bench/reclaim-readback.js [--nodes 100000] [--rounds 5]`: the main thread's time for reclaim's
 * read-back of a stored baseline (docs/design.md §3.18): a full `load` (before) against `loadHead` (the record's
 * name and seq from its head), inline and through the engine, SQLite. A graph of N state nodes
 * `{ v, s: "x".repeat(20) }` is attached and flushed; each read's main-thread busy time is measured with the event
 * loop's utilization (a worker's time is not counted). Prints the median per read. Not part of `npm run bench`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { openStorageEngine } from "../src/engine/index.js";
import { attachSnapshotStorage, createGraph, sqliteBackend, snapshotStorage, type GraphCheckpointRecord } from "../src/index.js";
import type { SnapshotStorageTier } from "../src/tier/types.js";

const { values: args } = parseArgs({ options: { nodes: { type: "string", default: "100000" }, rounds: { type: "string", default: "5" } } });
const N = Number(args.nodes);
const ROUNDS = Number(args.rounds);
const PAD = "x".repeat(20);

/** Main-thread busy milliseconds of `read` (the event loop's active time while it ran). */
async function busyMs(read: () => Promise<unknown>): Promise<number> {
  const before = performance.eventLoopUtilization();
  await read();
  return performance.eventLoopUtilization(before).active;
}

async function median(read: () => Promise<unknown>): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < ROUNDS; i++) ms.push(await busyMs(read));
  ms.sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)]!;
}

async function report(label: string, tier: SnapshotStorageTier<GraphCheckpointRecord>): Promise<void> {
  const head = await tier.loadHead!("g");
  const full = await median(() => tier.load("g"));
  const probe = await median(() => tier.loadHead!("g"));
  console.log(`${label}: baseline seq ${head?.seq}; full load ${full.toFixed(1)} ms, loadHead ${probe.toFixed(2)} ms (main thread, median of ${ROUNDS})`);
}

const dir = mkdtempSync(join(tmpdir(), "reclaim-readback-"));
try {
  const graph = createGraph("g");
  for (let i = 0; i < N; i++) graph.state(`n${i}`, { v: i, s: PAD });
  const path = join(dir, "store.db");
  const backend = sqliteBackend(path);
  const snapshot = snapshotStorage<GraphCheckpointRecord>(backend);
  const handle = attachSnapshotStorage(graph, [{ snapshot }]);
  await handle.flush();
  await handle.dispose();
  const bytes = (await backend.read("g"))?.byteLength ?? 0;
  console.log(`N=${N}: stored baseline ${(bytes / 1e6).toFixed(1)} MB`);
  await report("inline sqlite", snapshot);
  await backend.close?.();
  const engine = openStorageEngine({ threads: 1 });
  try {
    await report("engine sqlite", engine.snapshot<GraphCheckpointRecord>({ kind: "sqlite", path }));
  } finally {
    await engine.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
