/**
 * `node dist/bench/fold-latency.js [--nodes 100000] [--seconds 15]`: how long a store's flushes wait while its actor
 * folds a graph's WAL in the background (docs/design.md §3.10). A graph of N state nodes `{ v, s: "x".repeat(20) }`
 * is attached with the defaults through the engine (SQLite FULL) and updated at ~15,000 sets/s (20 per 1 ms timer)
 * while a marker kv tier on the same store saves and flushes every 20 ms; prints the flush latencies' p50, p99 and
 * max. Not part of `npm run bench`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { openStorageEngine } from "../src/engine/index.js";
import { attachSnapshotStorage, createGraph } from "../src/index.js";
import { engineGraphTiers } from "./lib/graphs.js";

const { values: args } = parseArgs({ options: { nodes: { type: "string", default: "100000" }, seconds: { type: "string", default: "15" } } });
const N = Number(args.nodes);
const SECONDS = Number(args.seconds);
const PAD = "x".repeat(20);

const dir = mkdtempSync(join(tmpdir(), "fold-latency-"));
const engine = openStorageEngine();
try {
  const graph = createGraph("g");
  const paths = Array.from({ length: N }, (_, i) => graph.state(`n${i}`, { v: i, s: PAD }));
  const store = { kind: "sqlite", path: join(dir, "store.db") } as const;
  const handle = attachSnapshotStorage(graph, [engineGraphTiers(engine, store, "g")]);
  await handle.flush();
  const marker = engine.kv<{ t: number }>(store, { name: "marker" });

  let v = 1_000_000;
  let sets = 0;
  let stop = false;
  const writer = (async () => {
    while (!stop) {
      for (let i = 0; i < 20; i++, sets++) graph.set(paths[(v * 7919) % N]!, { v: v++, s: PAD });
      await sleep(1);
    }
  })();
  const waits: number[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < SECONDS * 1000) {
    marker.save("m", { t: Date.now() });
    const started = performance.now();
    await marker.flush();
    waits.push(performance.now() - started);
    await sleep(20);
  }
  stop = true;
  await writer;
  await handle.flush();
  await handle.dispose();
  waits.sort((a, b) => a - b);
  const at = (q: number) => waits[Math.min(waits.length - 1, Math.floor(q * waits.length))]!.toFixed(1);
  console.log(
    `N=${N}: ${sets} sets (${Math.round(sets / SECONDS)}/s); ${waits.length} marker flushes: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${waits[waits.length - 1]!.toFixed(1)} ms`,
  );
} finally {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
}
