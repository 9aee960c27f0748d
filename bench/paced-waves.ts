/**
 * `node dist/bench/paced-waves.js [--mode graph] [--sets 1] [--warmup 5000] [--waves 10000] [--windows 5] [--ring-bytes 0]`: main-thread CPU per paced
 * change, suite 1's paced rows alone, warm. `--mode graph` (default): a graph of 100 state nodes `{ v, s }` attached
 * with default options to an engine SQLite store, one wave per event-loop turn (`await setImmediate` after each),
 * `--sets` sets per wave (1: a one-frame wave, `save`; more: one `batch`, a wave of that many frames, `saveMany`).
 * `--mode bare`: the same sets with no storage attached; `--mode by-hand`: the same sets persisted by hand with lmdb-js
 * (graph.observe, one put of each changed node's value per wave: suite 1's "persisted by hand" row). `--mode kv`: one engine kv save of suite 1's values per turn (SQLite store); `--mode lmdb`: one lmdb-js put of
 * them per turn; `--mode lmdb-small`: one lmdb-js put per turn of the graph rows' `{ v, s }` under `n0`…`n99`; `--mode empty`: the turn alone. Each window is flushed until durable. Prints every window and their
 * median (Linux schedstat, the main thread alone). `--ring-bytes`: the engine's `turnRingBytes` (0: off; omitted: the engine's default, 1 MiB since task 198). To compare two builds, run it in a worktree of each,
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
/** The engine's `turnRingBytes` (`--ring-bytes`; read before any workload starts); undefined: the engine's default. */
let RING_BYTES: number | undefined;
const ringOption = (): { turnRingBytes?: number } => (RING_BYTES === undefined ? {} : { turnRingBytes: RING_BYTES });
type Mode = "graph" | "bare" | "by-hand" | "kv" | "lmdb" | "lmdb-small" | "empty";

/** One change per turn, then the durable wait, `n` times. */
interface Workload {
  change(i: number): void;
  durable(): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * `storage`: "engine" (attached to an engine SQLite store), "none" (the sets alone) or "lmdb" (persisted by hand as
 * suite 1's "persisted by hand" row does: graph.observe, one lmdb-js put of each changed node's value per wave).
 */
function graphWorkload(dir: string, sets: number, storage: "engine" | "none" | "lmdb"): Workload & { ready: Promise<unknown> } {
  const engine = storage === "engine" ? openStorageEngine(ringOption()) : undefined;
  const graph = createGraph("g");
  const paths: string[] = [];
  for (let i = 0; i < 100; i++) paths.push(graph.state(`n${i}`, { v: i, s: PAD }));
  const db = storage === "lmdb" ? openLmdb<unknown, string>({ path: join(dir, "db") }) : undefined;
  if (db !== undefined) {
    graph.observe((wave) => {
      for (const { path, signal } of wave.signals) if (signal === "data") void db.put(path, graph.get(path));
    });
  }
  const handle =
    engine !== undefined
      ? attachSnapshotStorage(graph, [engineGraphTiers(engine, { kind: "sqlite", path: join(dir, "store.db") }, "g")])
      : db !== undefined
        ? { flush: async () => void (await db.flushed), dispose: () => db.close() }
        : { flush: () => Promise.resolve(0), dispose: () => Promise.resolve() };
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
  const engine = openStorageEngine(ringOption());
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

/** `small`: the graph rows' values (`{ v, s }` under `n0`…`n99`) instead of suite 1's records. */
function lmdbWorkload(dir: string, small: boolean): Workload & { ready: Promise<unknown> } {
  const db = openLmdb<unknown, string>({ path: join(dir, "db") });
  let value = 1_000_000;
  return {
    ready: Promise.resolve(),
    change: small ? (i) => void db.put(`n${i % 100}`, { v: value++, s: PAD }) : (i) => void db.put(KEYS[i % 2000]!, VALUES[i % 2000]!),
    durable: () => db.flushed,
    close: () => db.close(),
  };
}

/** Main-thread CPU µs per change of each window: `waves` changes per window. */
async function measure(mode: Mode, sets: number, warmup: number, waves: number, windows: number): Promise<number[]> {
  const dir = makeTempDir("paced-waves");
  const w =
    mode === "graph" || mode === "bare" || mode === "by-hand" ? graphWorkload(dir, sets, mode === "graph" ? "engine" : mode === "bare" ? "none" : "lmdb")
    : mode === "kv" ? kvWorkload(dir)
    : mode === "lmdb" || mode === "lmdb-small" ? lmdbWorkload(dir, mode === "lmdb-small")
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
    "ring-bytes": { type: "string" },
  },
});
const mode = args.mode as Mode;
RING_BYTES = args["ring-bytes"] === undefined ? undefined : Number(args["ring-bytes"]);
if (!["graph", "bare", "by-hand", "kv", "lmdb", "lmdb-small", "empty"].includes(mode)) throw new Error(`--mode must be graph, bare, by-hand, kv, lmdb, lmdb-small or empty, got ${mode}`);
const perWave = await measure(mode, Number(args.sets), Number(args.warmup), Number(args.waves), Number(args.windows));
const median = [...perWave].sort((a, b) => a - b)[Math.floor(perWave.length / 2)]!;
const what = mode === "graph" || mode === "bare" || mode === "by-hand" ? `${mode}, ${args.sets} set(s) per wave` : mode;
console.log(`${what}, ring ${RING_BYTES === undefined ? "the engine's default" : `${RING_BYTES} bytes`}, ${args.warmup} warm-up, ${args.windows} windows of ${args.waves} changes, load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
console.log(`main-thread CPU µs per change: median ${median.toFixed(2)} (windows ${perWave.map((x) => x.toFixed(2)).join(", ")})`);
