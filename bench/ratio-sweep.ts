/**
 * `node dist/bench/ratio-sweep.js [--nodes 10000]`: what attach's `baselineRatio` trades (docs/design.md §3.18),
 * for the choice of the default. A ratio r writes a baseline of B bytes after r × B bytes of WAL, so per update
 * it adds (cost of one baseline) / (updates between baselines) to the write cost, and restore reads at most the
 * baseline plus r × B of frames. Both sides are measured as parts, each the median of many small samples (robust
 * on a loaded machine, where an end-to-end run's noise exceeds the effect), on a graph of N state nodes
 * `{ v, s: "x".repeat(20) }` with inline memory tiers (attach writes the baselines on the main thread):
 * - an update: main-thread CPU of one `graph.set` and its frame, in ticks of 50 with a flush each;
 * - a baseline: main-thread CPU of one periodic baseline (the mirror's snapshot, encoding, the write);
 * - stored bytes of a frame and of the baseline;
 * - restore: wall time from the baseline alone and from the baseline plus K frames.
 * Prints the parts and a table per ratio. Not part of `npm run bench` (bench/README.md has the figures).
 */
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { memoryBackend } from "../src/backend/memory.js";
import type { StorageBackend } from "../src/backend/types.js";
import { attachSnapshotStorage, createGraph, restoreSnapshot, type GraphCheckpointRecord, type ReactiveGraph } from "../src/index.js";
import { kvStorage } from "../src/tier/kv.js";
import { snapshotStorage } from "../src/tier/snapshot.js";
import { graphWalPrefix, walFrameCodec, type WALFrame } from "../src/wal/index.js";
import { formatNumber as fmt } from "./report.js";
import { MainThreadMeter } from "./lib/meter.js";

const PAD = "x".repeat(20);
const TICK = 50;

function build(n: number): { graph: ReactiveGraph; paths: string[] } {
  const graph = createGraph("g");
  const paths: string[] = [];
  for (let i = 0; i < n; i++) paths.push(graph.state(`n${i}`, { v: i, s: PAD }));
  return { graph, paths };
}

function tiers(backend: StorageBackend) {
  return {
    snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }),
    wal: kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec }),
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function cpuUs(fn: () => Promise<unknown>): Promise<number> {
  const meter = await MainThreadMeter.start();
  await fn();
  const r = await meter.stop();
  return (r.mainCpuMs ?? r.eluActiveMs) * 1000;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { nodes: { type: "string", default: "10000" } } });
  const n = Number(values.nodes);
  const { graph, paths } = build(n);
  let seed = 12345;
  let v = 0;
  const set = (): void => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    graph.set(paths[Math.floor((seed / 4294967296) * paths.length)] as string, { v: v++, s: PAD });
  };

  // An update, without periodic baselines.
  const plain = memoryBackend();
  const h1 = attachSnapshotStorage(graph, [tiers(plain)], { compactEvery: Number.POSITIVE_INFINITY });
  await h1.flush();
  const perUpdate: number[] = [];
  for (let s = 0; s < 60; s++) {
    perUpdate.push(
      (await cpuUs(async () => {
        for (let i = 0; i < TICK; i++) set();
        await h1.flush();
      })) / TICK,
    );
  }
  await h1.dispose();
  const prefix = graphWalPrefix("g");
  const frameKeys = (plain.list!(`${prefix}/`) as readonly string[]).slice(-1000);
  const frameBytes = frameKeys.reduce((sum, k) => sum + (plain.read(k) as Uint8Array).byteLength, 0) / frameKeys.length;

  // A periodic baseline: one update and the baseline it makes due (compactEvery 1), less the update.
  const withBaselines = memoryBackend();
  const h2 = attachSnapshotStorage(graph, [tiers(withBaselines)], { compactEvery: 1 });
  await h2.flush();
  const perBaseline: number[] = [];
  for (let s = 0; s < 15; s++) {
    perBaseline.push(
      (await cpuUs(async () => {
        set();
        await h2.flush();
      })) - median(perUpdate),
    );
  }
  await h2.dispose();
  const baselineBytes = (withBaselines.read("g") as Uint8Array).byteLength;

  // Restore from the baseline alone, and from the baseline plus K frames (the first store: attach baseline + WAL).
  const restoreMs = async (store: StorageBackend, targetSeq?: number): Promise<number> => {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { graph: g } = build(n);
      const t0 = performance.now();
      await restoreSnapshot(g, { ...tiers(store), ...(targetSeq === undefined ? {} : { targetSeq }) });
      times.push(performance.now() - t0);
    }
    return median(times);
  };
  const k = Math.min(3000, (plain.list!(`${prefix}/`) as readonly string[]).length);
  const restoreBase = await restoreMs(plain, 1);
  const restoreK = await restoreMs(plain, 1 + k);
  const perFrameMs = (restoreK - restoreBase) / k;

  const update = median(perUpdate);
  const baseline = median(perBaseline);
  const out: string[] = [
    `N = ${n} nodes, inline memory tiers; load average ${loadavg().map((l) => l.toFixed(1)).join(" / ")}`,
    "",
    `Parts (medians): an update ${fmt(update)} µs main-thread CPU (ticks of ${TICK}, flush each); a periodic baseline ` +
      `${fmt(baseline / 1000)} ms; a frame ${fmt(frameBytes)} bytes stored, the baseline ${fmt(baselineBytes / 1024)} KB; restore from ` +
      `the baseline alone ${fmt(restoreBase)} ms, + ${fmt(perFrameMs * 1000)} µs per frame above it (${k} frames: ${fmt(restoreK)} ms).`,
    "",
    "| ratio | updates between baselines | baseline share of an update µs | write cost vs no baseline | WAL above baseline at most | restore at most ms |",
    "| ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const ratio of [1, 2, 3, 4]) {
    const between = (ratio * baselineBytes) / frameBytes;
    const share = baseline / between;
    out.push(
      `| ${ratio} | ${fmt(between)} | ${fmt(share)} | +${fmt((share / update) * 100)}% | ${fmt((ratio * baselineBytes) / 1024)} KB | ${fmt(restoreBase + between * perFrameMs)} |`,
    );
  }
  process.stdout.write(out.join("\n") + "\n");
}

void main();
