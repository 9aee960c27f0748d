/**
 * `node dist/bench/wal-actor.js [--frames 100000] [--reps 3] [--sample 5000] [--only raw,attach,frames] [--young MB]`: durable
 * frames/s of suite 2's contenders alone: raw better-sqlite3 committing pre-encoded frames, graph + attach + engine
 * on SQLite FULL ("attach"), and the engine kv tier fed frame bodies without a graph ("frames"); repetitions
 * interleaved, medians, with each engine contender's CPU per frame split by thread (main, the store's actor, the
 * rest: V8's helper threads, libuv). `--sample N` drives suite 2's shape (N frames, 1000 per tick, then a durable
 * flush, repeated until `--frames`); without it one sustained stream. For profiling the store actor's thread: run
 * with `node --cpu-prof --cpu-prof-dir=<dir>` and the worker writes a .cpuprofile of its own. `--young MB`: the
 * store actor's worker gets that young generation (the engine's `resourceLimits.maxYoungGenerationSizeMb`). Not part of
 * `npm run bench`.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { parseArgs } from "node:util";
import { openStorageEngine, type StorageEngine } from "../src/engine/index.js";
import { graphWalPrefix, walFrameCodec, walFrameKey, type WALFrame } from "../src/wal/index.js";
import { attachedStream, engineGraphTiers, rotatingValues } from "./lib/graphs.js";
import { asUnsealed, makeFrameBody, makeKeys } from "./lib/workload.js";
import { formatNumber as fmt } from "./report.js";
import { rawYardstick } from "./suites/wal-throughput.js";

const { values: args } = parseArgs({
  options: {
    frames: { type: "string", default: "100000" },
    reps: { type: "string", default: "3" },
    sample: { type: "string" },
    only: { type: "string", default: "raw,attach,frames" },
    young: { type: "string" },
  },
});
const FRAMES = Number(args.frames);
const REPS = Number(args.reps);
const CHUNK = 1000;
const SAMPLE = args.sample === undefined ? FRAMES : Number(args.sample);
const ONLY = new Set(args.only.split(","));

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

/** An engine contender: writes `frames` (a multiple of CHUNK), 1000 per tick, and resolves when they are durable. */
interface Driven {
  drive(frames: number): Promise<void>;
  close(): Promise<void>;
}

function attached(engine: StorageEngine, dir: string): Driven & { ready: Promise<void> } {
  const s = attachedStream("g", engineGraphTiers(engine, { kind: "sqlite", path: join(dir, "store.db") }, "g"), CHUNK);
  return { ready: s.ready.then(() => undefined), drive: (frames) => s.stream(frames), close: () => s.close() };
}

/** Suite 2's "engine kv, frames without a graph". */
function frameBodies(engine: StorageEngine, dir: string): Driven & { ready: Promise<void> } {
  const wal = engine.kv<WALFrame>({ kind: "sqlite", path: join(dir, "frames.db") }, { name: "wal", codec: walFrameCodec });
  const paths = makeKeys(CHUNK, "n");
  const values = rotatingValues(CHUNK);
  const prefix = graphWalPrefix("frames");
  let seq = 0;
  return {
    ready: Promise.resolve(),
    drive: async (frames) => {
      for (let c = 0; c < frames / CHUNK; c++) {
        for (let j = 0; j < CHUNK; j++) {
          seq++;
          wal.save(walFrameKey(prefix, seq), asUnsealed(makeFrameBody(seq, paths[j]!, values[j]!)));
        }
        await nextTurn();
      }
      await wal.flush();
    },
    close: () => wal.close(),
  };
}

const splits = new Map<string, ThreadSplit[]>();

/** One engine contender's run: a warm-up, then FRAMES frames in samples of SAMPLE; returns frames/s. */
async function engineRun(name: string, open: (engine: StorageEngine) => Driven & { ready: Promise<void> }): Promise<number> {
  const engine = openStorageEngine({
    ...(process.env.WAL_SYNC ? { synchronous: process.env.WAL_SYNC as "OFF" } : {}),
    ...(args.young === undefined ? {} : { resourceLimits: { maxYoungGenerationSizeMb: Number(args.young) } }),
  });
  const c = open(engine);
  await c.ready;
  await c.drive(5 * CHUNK); // warm-up
  const cpu0 = threadCpuNs();
  const t0 = performance.now();
  for (let done = 0; done < FRAMES; done += SAMPLE) await c.drive(Math.min(SAMPLE, FRAMES - done));
  const ms = performance.now() - t0;
  const cpu1 = threadCpuNs();
  (splits.get(name) ?? splits.set(name, []).get(name)!).push(split(cpu0, cpu1, FRAMES));
  if (process.env.WAL_ACTOR_THREADS) {
    for (const [tid, ns] of cpu1) {
      const d = (ns - (cpu0.get(tid) ?? 0)) / 1000 / FRAMES;
      if (d > 0.05) console.log(`  ${name} thread ${tid} ${readFileSync(`/proc/self/task/${tid}/comm`, "latin1").trim()}: ${d.toFixed(2)} µs/frame`);
    }
  }
  await c.close();
  await engine.close();
  return (FRAMES * 1000) / ms;
}

const rates = new Map<string, number[]>();
const add = (name: string, x: number) => (rates.get(name) ?? rates.set(name, []).get(name)!).push(x);
for (let r = 0; r < REPS; r++) {
  const dir = mkdtempSync(join(tmpdir(), "wal-actor-"));
  try {
    if (ONLY.has("raw")) add("raw better-sqlite3", rawRun(dir));
    if (ONLY.has("attach")) add("graph + attach + engine", await engineRun("graph + attach + engine", (e) => attached(e, dir)));
    if (ONLY.has("frames")) add("engine kv, frames without a graph", await engineRun("engine kv, frames without a graph", (e) => frameBodies(e, dir)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const shape = SAMPLE === FRAMES ? "one stream" : `samples of ${SAMPLE}`;
console.log(`frames ${FRAMES} × ${REPS} reps (${shape}), load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
const raw = rates.get("raw better-sqlite3");
for (const [name, xs] of rates) {
  const s = splits.get(name);
  const m = (f: (t: ThreadSplit) => number) => (s ? median(s.map(f)).toFixed(2) : "");
  const vs = raw && name !== "raw better-sqlite3" ? `, ${(median(xs) / median(raw)).toFixed(2)}× raw` : "";
  console.log(`${name}: ${fmt(median(xs))} frames/s (runs ${xs.map(fmt).join(", ")})${vs}`);
  if (s) console.log(`  CPU µs/frame (medians): main ${m((t) => t.main)}, actor ${m((t) => t.actor)}, other threads ${m((t) => t.rest)}, all ${m((t) => t.main + t.actor + t.rest)}`);
}
