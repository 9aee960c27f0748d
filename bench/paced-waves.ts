/**
 * `node dist/bench/paced-waves.js [--sets 1] [--waves 10000] [--windows 5]`: main-thread CPU per paced wave through
 * the engine, suite 1's paced graph row alone: a graph of 100 state nodes `{ v, s }` attached with default options
 * to an engine SQLite store, one wave per event-loop turn (`await setImmediate` after each), `--sets` sets per wave
 * (1: a one-frame wave, `save`; more: one `batch`, a wave of that many frames, `saveMany`), each window flushed until
 * durable. Prints every window and their median (Linux schedstat, the main thread alone). To compare two builds, run
 * it in a worktree of each, alternating. Not part of `npm run bench`.
 */
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openStorageEngine } from "../src/engine/index.js";
import { attachSnapshotStorage, createGraph } from "../src/index.js";
import { engineGraphTiers } from "./lib/graphs.js";
import { MainThreadMeter } from "./lib/meter.js";
import { makeTempDir, removeTempDir } from "./lib/temp.js";

const PAD = "x".repeat(20);

/** Main-thread CPU µs per wave of each window: `sets` sets per wave, `waves` waves per window. */
async function measure(sets: number, waves: number, windows: number): Promise<number[]> {
  const dir = makeTempDir("paced-waves");
  const engine = openStorageEngine();
  try {
    const graph = createGraph("g");
    const paths: string[] = [];
    for (let i = 0; i < 100; i++) paths.push(graph.state(`n${i}`, { v: i, s: PAD }));
    const handle = attachSnapshotStorage(graph, [engineGraphTiers(engine, { kind: "sqlite", path: join(dir, "store.db") }, "g")]);
    await handle.flush();
    // The same pseudo-random paths in every run (suite 1's picker).
    let seed = 0x9e3779b9;
    const pick = (): string => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return paths[Math.floor((seed / 4294967296) * paths.length)]!;
    };
    let value = 1_000_000;
    const wave = (): void => {
      if (sets === 1) graph.set(pick(), { v: value++, s: PAD });
      else graph.batch(() => {
        for (let j = 0; j < sets; j++) graph.set(pick(), { v: value++, s: PAD });
      });
    };
    const run = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        wave();
        await new Promise<void>((r) => setImmediate(r));
      }
      await handle.flush();
    };
    await run(5000); // warm-up: the JIT, the store's first pages, a background fold
    const perWave: number[] = [];
    for (let w = 0; w < windows; w++) {
      const meter = await MainThreadMeter.start();
      await run(waves);
      const { mainCpuMs, eluActiveMs } = await meter.stop();
      perWave.push(((mainCpuMs ?? eluActiveMs) * 1000) / waves); // loop busy where schedstat is missing
    }
    await handle.dispose();
    return perWave;
  } finally {
    await engine.close();
    removeTempDir(dir);
  }
}

const { values: args } = parseArgs({
  options: { sets: { type: "string", default: "1" }, waves: { type: "string", default: "10000" }, windows: { type: "string", default: "5" } },
});
const perWave = await measure(Number(args.sets), Number(args.waves), Number(args.windows));
const median = [...perWave].sort((a, b) => a - b)[Math.floor(perWave.length / 2)]!;
console.log(`${args.sets} set(s) per wave, ${args.windows} windows of ${args.waves} waves, load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
console.log(`main-thread CPU µs per wave: median ${median.toFixed(2)} (windows ${perWave.map((x) => x.toFixed(2)).join(", ")})`);
