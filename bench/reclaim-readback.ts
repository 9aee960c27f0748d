/**
 * `node dist/bench/reclaim-readback.js [--nodes 100000] [--rounds 5]`: the main thread's time for reclaim's
 * read-back of a stored baseline (docs/design.md §3.18): a full `load` (before) against `loadHead` (the record's
 * name and seq from its head), inline and through the engine, SQLite. A graph of N state nodes
 * `{ v, s: "x".repeat(20) }` is attached and flushed; each read's main-thread busy time is measured with the event
 * loop's utilization (a worker's time is not counted). Prints the median per read. Then a follower over a
 * read-only SQLite handle: the main-thread time of its first idle poll after a poll that applied a frame, which asks
 * whether the baseline moved past the frames (docs/design.md §3.17). Not part of `npm run bench`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { openStorageEngine } from "../src/engine/index.js";
import {
  attachSnapshotStorage,
  createGraph,
  followGraph,
  kvStorage,
  sqliteBackend,
  snapshotStorage,
  walFrameCodec,
  type GraphCheckpointRecord,
  type WALFrame,
} from "../src/index.js";
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

function buildGraph(): ReturnType<typeof createGraph> {
  const graph = createGraph("g");
  for (let i = 0; i < N; i++) graph.state(`n${i}`, { v: i, s: PAD });
  return graph;
}

/** A writer (WAL on, no periodic baselines) and a follower on a read-only handle; the follower's idle polls. */
async function follower(path: string): Promise<void> {
  const writer = sqliteBackend(path);
  const graph = buildGraph();
  const pair = { snapshot: snapshotStorage<GraphCheckpointRecord>(writer), wal: kvStorage<WALFrame>(writer, { codec: walFrameCodec }) };
  const handle = attachSnapshotStorage(graph, [pair], { compactEvery: Number.POSITIVE_INFINITY });
  await handle.flush();
  const reader = sqliteBackend(path, { readOnly: true });
  const copy = buildGraph();
  const f = await followGraph(copy, { snapshot: snapshotStorage(reader), wal: kvStorage(reader, { codec: walFrameCodec }) }, { pollMs: 3_600_000 });
  const ms: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    graph.set("n0", { v: -i, s: PAD });
    await handle.flush();
    await f.poll(); // applies the frame
    ms.push(await busyMs(() => f.poll())); // nothing new: does the baseline cover more than the follower applied?
  }
  ms.sort((a, b) => a - b);
  console.log(`follower idle poll after applying a frame: ${ms[Math.floor(ms.length / 2)]!.toFixed(2)} ms (main thread, median of ${ROUNDS})`);
  await f.stop();
  await handle.dispose();
  await reader.close();
  await writer.close();
}

const dir = mkdtempSync(join(tmpdir(), "reclaim-readback-"));
try {
  const graph = buildGraph();
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
  await follower(join(dir, "follow.db"));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
