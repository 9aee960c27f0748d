/**
 * `node dist/bench/attach-stale.js [--nodes 100000] [--frames 20000] [--mode inline|engine]`: what attach over a
 * store holding many frames of the session before costs the main thread (docs/design.md §3.27). A graph of N state
 * nodes `{ v, s: "x".repeat(20) }` writes F frames with periodic baselines off, then a fresh graph of N nodes is
 * attached to the same SQLite store (reclaim reads every listed key, then deletes the frames below the attach
 * baseline). Prints: attach + flush wall time, time until the stale frames are gone, the main thread's busy time
 * from flush to gone, and the longest event-loop turn from attach to gone (sampled by a 1 ms timer) and from
 * flush to gone (the background reclaim alone). Not part of `npm run bench`.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { openStorageEngine } from "../src/engine/index.js";
import {
  attachSnapshotStorage,
  createGraph,
  kvStorage,
  sqliteBackend,
  snapshotStorage,
  walFrameCodec,
  type GraphCheckpointRecord,
  type WALFrame,
} from "../src/index.js";

const { values: args } = parseArgs({
  options: {
    nodes: { type: "string", default: "100000" },
    frames: { type: "string", default: "20000" },
    mode: { type: "string", default: "inline" },
    /** Hides the snapshot tier's loadHead (a custom tier without one): the read-back decodes the record. */
    "no-head": { type: "boolean", default: false },
    /** Writes a CPU profile of attach to gone (main thread) to this file. */
    profile: { type: "string" },
  },
});
const N = Number(args.nodes);
const F = Number(args.frames);
const PAD = "x".repeat(20);

function buildGraph(): ReturnType<typeof createGraph> {
  const graph = createGraph("g");
  for (let i = 0; i < N; i++) graph.state(`n${i}`, { v: i, s: PAD });
  return graph;
}

/** The longest gap between 1 ms timer ticks since `reset()`: the longest turn the event loop could not run. */
function turnMonitor(): { reset(): void; max(): number; stop(): void } {
  let last = performance.now();
  let max = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    max = Math.max(max, now - last);
    last = now;
  }, 1);
  return {
    reset() {
      last = performance.now();
      max = 0;
    },
    max: () => Math.max(max, performance.now() - last),
    stop: () => clearInterval(timer),
  };
}

const dir = mkdtempSync(join(tmpdir(), "attach-stale-"));
const path = join(dir, "store.db");
try {
  {
    const backend = sqliteBackend(path);
    const graph = buildGraph();
    const pair = { snapshot: snapshotStorage<GraphCheckpointRecord>(backend), wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }) };
    const handle = attachSnapshotStorage(graph, [pair], { compactEvery: Number.POSITIVE_INFINITY });
    for (let i = 0; i < F; i++) {
      graph.set(`n${i % N}`, { v: -i, s: PAD });
      if (i % 1000 === 999) await handle.flush();
    }
    await handle.flush();
    await handle.dispose();
    await backend.close?.();
  }
  const graph = buildGraph();
  const engine = args.mode === "engine" ? openStorageEngine({ threads: 1 }) : undefined;
  const backend = engine === undefined ? sqliteBackend(path) : undefined;
  let pair =
    engine !== undefined
      ? { snapshot: engine.snapshot<GraphCheckpointRecord>({ kind: "sqlite", path }), wal: engine.kv<WALFrame>({ kind: "sqlite", path }, { codec: walFrameCodec }) }
      : { snapshot: snapshotStorage<GraphCheckpointRecord>(backend!), wal: kvStorage<WALFrame>(backend!, { codec: walFrameCodec }) };
  if (args["no-head"]) pair.snapshot = Object.assign(Object.create(pair.snapshot) as typeof pair.snapshot, { loadHead: undefined });
  const keys = await pair.wal.list("g/wal/");
  const stale = keys.length;
  const lastKey = keys.sort().at(-1); // deleted last (keys go in listing order, a batch per turn)
  const monitor = turnMonitor();
  await new Promise((r) => setTimeout(r, 20));
  const session = args.profile === undefined ? undefined : new Session();
  if (session !== undefined) {
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 200 });
    await session.post("Profiler.start");
  }
  monitor.reset();
  const t0 = performance.now();
  const handle = attachSnapshotStorage(graph, [pair]);
  await handle.flush();
  const flushed = performance.now();
  const attachTurn = monitor.max();
  monitor.reset();
  const elu = performance.eventLoopUtilization();
  while (lastKey !== undefined && (await pair.wal.load(lastKey)) !== undefined && performance.now() - flushed < 120_000) {
    await new Promise((r) => setTimeout(r, 5));
  }
  const left = (await pair.wal.list("g/wal/")).filter((k) => lastKey !== undefined && k <= lastKey).length;
  const gone = performance.now();
  const busy = performance.eventLoopUtilization(elu).active;
  const reclaimTurn = monitor.max();
  monitor.stop();
  if (session !== undefined) {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(args.profile!, JSON.stringify(profile));
    session.disconnect();
  }
  console.log(
    `${args.mode}${args["no-head"] ? " (no loadHead)" : ""} N=${N} stale frames ${stale}: attach+flush ${(flushed - t0).toFixed(0)} ms (longest turn ${attachTurn.toFixed(0)} ms); ` +
      `stale gone ${(gone - flushed).toFixed(0)} ms after flush (${left} left), main thread busy ${busy.toFixed(0)} ms, longest turn ${reclaimTurn.toFixed(0)} ms`,
  );
  await handle.dispose();
  await engine?.close();
  await backend?.close?.();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
