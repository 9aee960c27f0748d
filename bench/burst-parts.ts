/**
 * `node dist/bench/burst-parts.js [--nodes 100,10000] [--bursts 6] [--rounds 2]`: suite 1's inline graph burst
 * (bench/lib/graph-updates-child.ts: N state nodes `{ v, s }`, default options, memory tiers, a period's worth of
 * random sets in one synchronous loop, then a flush) split into its parts, each with its wall time, main-thread CPU
 * (Linux schedstat), minor page faults and GC time: the loop, the flush (which writes the baseline that fell due:
 * one per burst, a burst being one tick), and the 20 ms after the flush resolved (the reclaim of the WAL below the
 * baseline, which the row's wall time does not hold). Each burst starts half a baseline period after a baseline, as
 * the row's does. Also times a fresh page's first touch (what a page fault costs this machine). Prints medians and
 * ranges µs a set; the sizes alternate `--rounds` times, each in this one process. Design §3.58 (task 382).
 */
import { readFileSync } from "node:fs";
import { PerformanceObserver } from "node:perf_hooks";
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { memoryBackend } from "../src/backend/memory.js";
import { attachSnapshotStorage, createGraph, type GraphCheckpointRecord } from "../src/index.js";
import { kvStorage } from "../src/tier/kv.js";
import { snapshotStorage } from "../src/tier/snapshot.js";
import type { SnapshotStorageTier } from "../src/tier/types.js";
import { walFrameCodec, type WALFrame } from "../src/wal/index.js";

const { values: args } = parseArgs({
  options: {
    nodes: { type: "string", default: "100,10000" },
    bursts: { type: "string", default: "6" },
    rounds: { type: "string", default: "2" },
  },
});
const PAD = "x".repeat(20);
const SCHEDSTAT = `/proc/${process.pid}/task/${process.pid}/schedstat`;

const cpuMs = (): number => Number(readFileSync(SCHEDSTAT, "latin1").split(" ", 1)[0]) / 1e6;
const faults = (): number => process.resourceUsage().minorPageFault;
// GC entries reach the observer a turn or more later: each part takes those that started inside it, once all are in.
const gcs: Array<{ startTime: number; duration: number }> = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcs.push({ startTime: e.startTime, duration: e.duration });
}).observe({ entryTypes: ["gc"] });
const gcBetween = (from: number, to: number): number =>
  gcs.reduce((ms, e) => (e.startTime >= from && e.startTime < to ? ms + e.duration : ms), 0);

interface Part {
  wallMs: number;
  cpuMs: number;
  faults: number;
  gcMs: number;
  /** performance.now() at the part's start (GC attribution). */
  from: number;
}
const mark = (): Part => ({ wallMs: performance.now(), cpuMs: cpuMs(), faults: faults(), gcMs: 0, from: performance.now() });
const since = (a: Part): Part => {
  const b = mark();
  return { wallMs: b.wallMs - a.wallMs, cpuMs: b.cpuMs - a.cpuMs, faults: b.faults - a.faults, gcMs: 0, from: a.from };
};

/** µs of wall time per fresh page first touched (a 16 MiB buffer, a page fault each). */
function faultUs(): number {
  const f0 = faults();
  const t0 = performance.now();
  const b = new Uint8Array(16 << 20);
  for (let i = 0; i < b.length; i += 4096) b[i] = 1;
  return ((performance.now() - t0) * 1000) / Math.max(1, faults() - f0);
}

async function bursts(nodes: number, count: number): Promise<{ period: number; parts: Record<string, Part[]> }> {
  const graph = createGraph("g");
  const paths: string[] = [];
  for (let i = 0; i < nodes; i++) paths.push(graph.state(`n${i}`, { v: i, s: PAD }));
  const backend = memoryBackend();
  const inner = snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" });
  let sets = 0;
  const baselineAt: number[] = [];
  const snapshot = Object.assign(Object.create(inner) as SnapshotStorageTier<GraphCheckpointRecord>, {
    save(record: GraphCheckpointRecord) {
      baselineAt.push(sets);
      inner.save(record);
    },
  });
  const handle = attachSnapshotStorage(graph, [{ snapshot, wal: kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec }) }]);
  await handle.flush();
  let seed = 0x9e3779b9;
  const pick = (): string => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return paths[Math.floor((seed / 4294967296) * paths.length)] as string;
  };
  let value = 1_000_000;
  const paced = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      sets++;
      graph.set(pick(), { v: value++, s: PAD });
      await nextTurn();
    }
    await handle.flush();
  };
  // Warm-up as the row's (at least 15,000 paced sets), then the period between two paced baselines.
  await paced(15_000);
  while (baselineAt.length < 3) await paced(100);
  const period = (baselineAt.at(-1) as number) - (baselineAt.at(-2) as number);
  const window = period * Math.max(1, Math.ceil(2000 / period));
  const parts: Record<string, Part[]> = { loop: [], flush: [], after: [] };
  for (let b = 0; b < count; b++) {
    // Paced sets up to half a period past the last baseline: the burst's one baseline falls mid-burst.
    while (sets - (baselineAt.at(-1) as number) !== Math.floor(period / 2)) await paced(1);
    await sleep(20);
    const picks = Array.from({ length: window }, pick);
    const start = mark();
    for (const p of picks) graph.set(p, { v: value++, s: PAD });
    sets += window;
    parts.loop!.push(since(start));
    const flushStart = mark();
    await handle.flush();
    parts.flush!.push(since(flushStart));
    const afterStart = mark();
    await sleep(20);
    parts.after!.push(since(afterStart));
  }
  await handle.dispose();
  await sleep(50);
  for (const ps of Object.values(parts)) for (const p of ps) p.gcMs = gcBetween(p.from, p.from + p.wallMs);
  return { period, parts: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, v.map((p) => perSet(p, window))])) };
}

/** A part's figures per set of the burst. */
const perSet = (p: Part, n: number): Part => ({ wallMs: p.wallMs / n, cpuMs: p.cpuMs / n, faults: p.faults / n, gcMs: p.gcMs / n, from: p.from });

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const range = (xs: number[], scale: number, digits: number): string =>
  `${(median(xs) * scale).toFixed(digits)} [${(Math.min(...xs) * scale).toFixed(digits)}–${(Math.max(...xs) * scale).toFixed(digits)}]`;

console.log(`fresh page first touch: ${faultUs().toFixed(2)} µs a fault (median of 3: ${[faultUs(), faultUs(), faultUs()].map((x) => x.toFixed(2)).join(", ")})`);
for (let round = 0; round < Number(args.rounds); round++) {
  for (const nodes of args.nodes.split(",").map(Number)) {
    const { period, parts } = await bursts(nodes, Number(args.bursts));
    console.log(`N=${nodes} (period ${period} sets), µs a set, median [range] of ${args.bursts} bursts:`);
    for (const [name, ps] of Object.entries(parts)) {
      console.log(
        `  ${name.padEnd(5)} wall ${range(ps.map((p) => p.wallMs), 1000, 2)}  main CPU ${range(ps.map((p) => p.cpuMs), 1000, 2)}` +
          `  faults/set ${range(ps.map((p) => p.faults), 1, 3)}  GC ${range(ps.map((p) => p.gcMs), 1000, 2)}`,
      );
    }
  }
}
