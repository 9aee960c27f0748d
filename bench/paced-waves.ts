/**
 * `node dist/bench/paced-waves.js [--mode graph] [--sets 1] [--warmup 5000] [--waves 10000] [--windows 5] [--ring-bytes 0]`: main-thread CPU per paced
 * change, suite 1's paced rows alone, warm. `--mode graph` (default): a graph of 100 state nodes `{ v, s }` attached
 * with default options to an engine SQLite store, one wave per event-loop turn (`await setImmediate` after each),
 * `--sets` sets per wave (1: a one-frame wave, `save`; more: one `batch`, a wave of that many frames, `saveMany`).
 * `--mode bare`: the same sets with no storage attached. `--mode kv`: one engine kv save of suite 1's values per turn (SQLite store); `--mode lmdb`: one lmdb-js put of
 * them per turn; `--mode empty`: the turn alone. Each window is flushed until durable. Prints every window and their
 * median (Linux schedstat, the main thread alone). `--ring-bytes`: the engine's `turnRingBytes` (0, its default: off). To compare two builds, run it in a worktree of each,
 * alternating. Not part of `npm run bench`.
 */
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { open as openLmdb } from "lmdb";
import { openStorageEngine } from "../src/engine/index.js";
import { attachSnapshotStorage, createGraph } from "../src/index.js";
import { engineGraphTiers } from "./lib/graphs.js";
import { MainThreadMeter } from "./lib/meter.js";
import { makeTempDir, removeTempDir } from "./lib/temp.js";
import { makeKeys, makeValues, type NodeValue } from "./lib/workload.js";

const PAD = "x".repeat(20);
/** The engine's `turnRingBytes` (`--ring-bytes`; read before any workload starts). */
let RING_BYTES = 0;
type Mode = "graph" | "bare" | "kv" | "lmdb" | "empty";

/** One change per turn, then the durable wait, `n` times. */
interface Workload {
  change(i: number): void;
  durable(): Promise<unknown>;
  close(): Promise<void>;
}

function graphWorkload(dir: string, sets: number, bare: boolean): Workload & { ready: Promise<unknown> } {
  const engine = bare ? undefined : openStorageEngine({ turnRingBytes: RING_BYTES });
  const graph = createGraph("g");
  const paths: string[] = [];
  for (let i = 0; i < 100; i++) paths.push(graph.state(`n${i}`, { v: i, s: PAD }));
  const handle =
    engine === undefined
      ? { flush: () => Promise.resolve(0), dispose: () => Promise.resolve() }
      : attachSnapshotStorage(graph, [engineGraphTiers(engine, { kind: "sqlite", path: join(dir, "store.db") }, "g")]);
  // The same pseudo-random paths in every run (suite 1's picker).
  let seed = 0x9e3779b9;
  const pick = (): string => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return paths[Math.floor((seed / 4294967296) * paths.length)]!;
  };
  let value = 1_000_000;
  return {
    ready: handle.flush(),
    change(): void {
      if (sets === 1) graph.set(pick(), { v: value++, s: PAD });
      else graph.batch(() => {
        for (let j = 0; j < sets; j++) graph.set(pick(), { v: value++, s: PAD });
      });
    },
    durable: () => handle.flush(),
    async close(): Promise<void> {
      await handle.dispose();
      await engine?.close();
    },
  };
}

const KEYS = makeKeys(2000);
const VALUES = makeValues(2000);

function kvWorkload(dir: string): Workload & { ready: Promise<unknown> } {
  const engine = openStorageEngine({ turnRingBytes: RING_BYTES });
  const kv = engine.kv<NodeValue>({ kind: "sqlite", path: join(dir, "store.db") }, { name: "paced" });
  return {
    ready: kv.flush(),
    change: (i) => kv.save(KEYS[i % 2000]!, VALUES[i % 2000]!),
    durable: () => kv.flush(),
    async close(): Promise<void> {
      await kv.close();
      await engine.close();
    },
  };
}

function lmdbWorkload(dir: string): Workload & { ready: Promise<unknown> } {
  const db = openLmdb<NodeValue, string>({ path: join(dir, "db") });
  return {
    ready: Promise.resolve(),
    change: (i) => void db.put(KEYS[i % 2000]!, VALUES[i % 2000]!),
    durable: () => db.flushed,
    close: () => db.close(),
  };
}

/** Main-thread CPU µs per change of each window: `waves` changes per window. */
async function measure(mode: Mode, sets: number, warmup: number, waves: number, windows: number): Promise<number[]> {
  const dir = makeTempDir("paced-waves");
  const w =
    mode === "graph" || mode === "bare" ? graphWorkload(dir, sets, mode === "bare")
    : mode === "kv" ? kvWorkload(dir)
    : mode === "lmdb" ? lmdbWorkload(dir)
    : { ready: Promise.resolve(), change: () => undefined, durable: () => Promise.resolve(), close: () => Promise.resolve() };
  try {
    await w.ready;
    let i = 0;
    const run = async (n: number): Promise<void> => {
      for (let k = 0; k < n; k++) {
        w.change(i++);
        await new Promise<void>((r) => setImmediate(r));
      }
      await w.durable();
    };
    await run(warmup); // the JIT, the store's first pages, a background fold
    const perWave: number[] = [];
    for (let k = 0; k < windows; k++) {
      const meter = await MainThreadMeter.start();
      await run(waves);
      const { mainCpuMs, eluActiveMs } = await meter.stop();
      perWave.push(((mainCpuMs ?? eluActiveMs) * 1000) / waves); // loop busy where schedstat is missing
    }
    return perWave;
  } finally {
    await w.close();
    removeTempDir(dir);
  }
}

const { values: args } = parseArgs({
  options: {
    mode: { type: "string", default: "graph" },
    warmup: { type: "string", default: "5000" },
    sets: { type: "string", default: "1" },
    waves: { type: "string", default: "10000" },
    windows: { type: "string", default: "5" },
    "ring-bytes": { type: "string", default: "0" },
  },
});
const mode = args.mode as Mode;
RING_BYTES = Number(args["ring-bytes"]);
if (!["graph", "bare", "kv", "lmdb", "empty"].includes(mode)) throw new Error(`--mode must be graph, bare, kv, lmdb or empty, got ${mode}`);
const perWave = await measure(mode, Number(args.sets), Number(args.warmup), Number(args.waves), Number(args.windows));
const median = [...perWave].sort((a, b) => a - b)[Math.floor(perWave.length / 2)]!;
const what = mode === "graph" || mode === "bare" ? `${mode}, ${args.sets} set(s) per wave` : mode;
console.log(`${what}, ring ${RING_BYTES} bytes, ${args.warmup} warm-up, ${args.windows} windows of ${args.waves} changes, load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
console.log(`main-thread CPU µs per change: median ${median.toFixed(2)} (windows ${perWave.map((x) => x.toFixed(2)).join(", ")})`);
