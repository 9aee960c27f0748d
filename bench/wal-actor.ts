/**
 * `node dist/bench/wal-actor.js [--frames 100000] [--reps 3]`: durable frames/s of suite 2's two main contenders
 * alone (graph + attach + engine on SQLite FULL, and raw better-sqlite3 committing pre-encoded frames), repetitions
 * interleaved, medians. For profiling the store actor's thread: run with `node --cpu-prof --cpu-prof-dir=<dir>`
 * and the worker writes a .cpuprofile of its own. Not part of `npm run bench`.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { parseArgs } from "node:util";
import { openStorageEngine } from "../src/engine/index.js";
import { attachSnapshotStorage } from "../src/index.js";
import { buildGraph, engineGraphTiers, rotatingValues } from "./lib/graphs.js";
import { formatNumber as fmt } from "./report.js";
import { rawYardstick } from "./suites/wal-throughput.js";

const { values: args } = parseArgs({
  options: { frames: { type: "string", default: "100000" }, reps: { type: "string", default: "3" }, only: { type: "string" } },
});
const FRAMES = Number(args.frames);
const REPS = Number(args.reps);
const CHUNK = 1000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Suite 2's raw yardstick; returns frames/s for `FRAMES` frames. */
function rawRun(dir: string): number {
  const raw = rawYardstick(join(dir, "raw.db"), CHUNK);
  const t0 = performance.now();
  for (let c = 0; c < FRAMES / CHUNK; c++) raw.commitChunk();
  const ms = performance.now() - t0;
  raw.close();
  return (FRAMES * 1000) / ms;
}

/** On-CPU nanoseconds of every thread of this process, by tid (Linux schedstat; empty elsewhere). */
function threadCpuNs(): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync("/proc/self/task")) {
      try {
        out.set(tid, Number(readFileSync(`/proc/self/task/${tid}/schedstat`, "latin1").split(" ", 1)[0]));
      } catch {
        // The thread ended meanwhile.
      }
    }
  } catch {
    // Not Linux.
  }
  return out;
}

/** CPU µs per frame of the main thread, the busiest other thread (the store's actor) and all the rest. */
interface ThreadSplit {
  main: number;
  actor: number;
  rest: number;
}

const splits: ThreadSplit[] = [];

function split(before: Map<string, number>, after: Map<string, number>, frames: number): ThreadSplit {
  const main = String(process.pid);
  const deltas = [...after].map(([tid, ns]) => [tid, ns - (before.get(tid) ?? 0)] as const);
  const others = deltas.filter(([tid]) => tid !== main).map(([, d]) => d).sort((a, b) => b - a);
  const us = (ns: number) => ns / 1000 / frames;
  return {
    main: us(deltas.find(([tid]) => tid === main)?.[1] ?? 0),
    actor: us(others[0] ?? 0),
    rest: us(others.slice(1).reduce((a, b) => a + b, 0)),
  };
}

/** Graph + attach + engine (SQLite FULL), 1000 sets per tick, until durable; returns frames/s. */
async function attachRun(dir: string): Promise<number> {
  const engine = openStorageEngine(process.env.WAL_SYNC ? { synchronous: process.env.WAL_SYNC as "OFF" } : {});
  const { graph, paths } = buildGraph("g", CHUNK);
  const tiers = engineGraphTiers(engine, { kind: "sqlite", path: join(dir, "store.db") }, "g");
  const values = rotatingValues(CHUNK);
  const handle = attachSnapshotStorage(graph, [tiers], { compactEvery: Number.POSITIVE_INFINITY });
  await handle.flush();
  let round = 0;
  const drive = async (frames: number): Promise<void> => {
    for (let c = 0; c < frames / CHUNK; c++) {
      round++;
      for (let j = 0; j < CHUNK; j++) graph.set(paths[j]!, values[(j + round) % CHUNK]!);
      await nextTurn();
    }
    await handle.flush();
  };
  await drive(5 * CHUNK); // warm-up
  const cpu0 = threadCpuNs();
  const t0 = performance.now();
  await drive(FRAMES);
  const ms = performance.now() - t0;
  const cpu1 = threadCpuNs();
  splits.push(split(cpu0, cpu1, FRAMES));
  if (process.env.WAL_ACTOR_THREADS) {
    for (const [tid, ns] of cpu1) {
      const d = (ns - (cpu0.get(tid) ?? 0)) / 1000 / FRAMES;
      if (d > 0.05) console.log(`  thread ${tid} ${readFileSync(`/proc/self/task/${tid}/comm`, "latin1").trim()}: ${d.toFixed(2)} µs/frame`);
    }
  }
  await handle.dispose();
  await tiers.snapshot.close();
  await tiers.wal.close();
  await engine.close();
  return (FRAMES * 1000) / ms;
}

const raw: number[] = [];
const viaEngine: number[] = [];
for (let r = 0; r < REPS; r++) {
  const dir = mkdtempSync(join(tmpdir(), "wal-actor-"));
  try {
    if (args.only !== "attach") raw.push(rawRun(dir));
    if (args.only !== "raw") viaEngine.push(await attachRun(dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const line = (name: string, xs: number[]) => (xs.length ? `${name}: ${fmt(median(xs))} frames/s (runs ${xs.map(fmt).join(", ")})` : "");
console.log(`frames ${FRAMES} × ${REPS} reps, load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
console.log(line("raw better-sqlite3", raw));
console.log(line("graph + attach + engine", viaEngine));
if (splits.length) {
  const m = (f: (s: ThreadSplit) => number) => median(splits.map(f)).toFixed(2);
  console.log(`engine CPU µs/frame (medians): main ${m((s) => s.main)}, actor ${m((s) => s.actor)}, other threads ${m((s) => s.rest)}`);
}
if (raw.length && viaEngine.length) console.log(`ratio (medians): ${(median(viaEngine) / median(raw)).toFixed(2)}×`);
