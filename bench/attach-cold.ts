/**
 * `node dist/bench/attach-cold.js [--nodes 100,10000,100000] [--samples 400] [--sweep-mib 32]`: suite 4's attach
 * sample (100 `graph.set`s to paths spread over a graph of N nodes, one tick) with the caches warm (samples back to
 * back) and cold (a `--sweep-mib` pass over a buffer before each sample: what a durable flush's wait does to the main
 * thread's caches while the actor, SQLite and V8's helpers run), for the graph alone and for the same graph attached
 * to tiers that drop every write (attach's own work: the mirror, the frame, the outbox). One thread, no engine, so
 * the figures do not move with the machine's load as suite 4's wall time does. Prints the median µs a wave of each
 * row, alternating the rows twice. Design §3.52 (task 325).
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import { parseArgs } from "node:util";
import { attachSnapshotStorage } from "../src/index.js";
import { buildGraph, discardingTiers, rotatingValues } from "./lib/graphs.js";

const WAVES = 100;

const { values: args } = parseArgs({
  options: {
    nodes: { type: "string", default: "100,10000,100000" },
    samples: { type: "string", default: "400" },
    "sweep-mib": { type: "string", default: "32" },
  },
});
const samples = Number(args.samples);
const sweep = new Float64Array((Number(args["sweep-mib"]) << 20) / 8);

/** Touches one double per cache line of the sweep buffer (read and write): evicts what the sample left in the caches. */
function sweepCaches(): number {
  let sum = 0;
  for (let i = 0; i < sweep.length; i += 8) sum += ++sweep[i]!;
  return sum;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

let sink = 0;
for (const n of args.nodes.split(",").map(Number)) {
  const plain = buildGraph(`plain-${n}`, n);
  const attached = buildGraph(`attached-${n}`, n);
  const handle = attachSnapshotStorage(attached.graph, [discardingTiers()], { compactEvery: Number.POSITIVE_INFINITY });
  await handle.flush();
  const values = rotatingValues(WAVES + 1);
  const at = Array.from({ length: WAVES }, (_, w) => Math.floor((w * n) / WAVES));
  const rows = new Map<string, number[]>();
  let round = 0;
  for (let pass = 0; pass < 2; pass++) {
    for (const [name, g] of [["graph alone", plain], ["graph + attach (drop writes)", attached]] as const) {
      for (const cold of [false, true]) {
        const key = `${name}, ${cold ? "cold" : "warm"}`;
        const xs = rows.get(key) ?? [];
        rows.set(key, xs);
        for (let s = 0; s < samples; s++) {
          round++;
          if (cold) sink += sweepCaches();
          const t0 = performance.now();
          for (let w = 0; w < WAVES; w++) g.graph.set(g.paths[at[w]!]!, values[(w + round) % values.length]!);
          xs.push(((performance.now() - t0) * 1000) / WAVES);
          await nextTurn();
        }
      }
    }
  }
  const line = [...rows].map(([key, xs]) => `${key} ${median(xs).toFixed(2)}`).join("; ");
  process.stdout.write(`N = ${n}: µs a wave (median of ${2 * samples}): ${line}\n`);
  await handle.dispose();
}
if (sink === -1) process.stdout.write("\n");
