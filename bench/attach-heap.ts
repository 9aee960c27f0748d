/**
 * `node dist/bench/attach-heap.js [--rows raw,frames,attach,inline] [--watch attach] [--profile live|all|none]
 * [--interval 1024] [--time 3000] [--top 25] [--snap]`: suite 2's rows in its shape (one engine, every contender opened
 * first, each row a warm-up then samples of 5,000 frames for `--time` ms and at least 10 samples, in the order
 * given), with the main isolate's collector read per row: scavenges and mark-compacts (count, ms), the heap's
 * spaces before and after, CPU by thread (main, the busiest other thread, the rest). `--watch` names the row whose
 * measured window gets a sampling heap profile by allocation site (`live`: what is still unreclaimed at the window's
 * end; `promoted`: what no scavenge reclaimed, i.e. what was promoted or pretenured, dead or alive; `all`: also what
 * the scavenges reclaimed, i.e. what was allocated), printed as
 * bytes a frame by the allocating function and by the stack's first frame in src/. The attach row also counts the
 * turns its outbox ended with waves queued; `--snap` writes a heap snapshot in a sample's third turn after the window.
 * `--nodes 10000 --wave 100` takes suite 4's shape instead (a graph of 10,000 nodes, 100 sets a turn to paths spread
 * over it, the sample's flush after its 50 turns), and the row `plain` runs the same sets on a graph with nothing
 * attached: attach's row minus plain's is suite 4's storage share.
 * `ATTACH_HEAP_MARK=1` prints a line at each window's start (to cut `--trace-gc-nvp` output). Design §3.47 (task 290).
 */
import { mkdtempSync, rmSync, readdirSync, readFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { PerformanceObserver, performance } from "node:perf_hooks";
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import v8 from "node:v8";
import { openStorageEngine } from "../src/engine/index.js";
import type { GraphCheckpointRecord } from "../src/index.js";
import { sqliteKv, sqliteSnapshot } from "../src/tier/index.js";
import { walFrameCodec, type WALFrame } from "../src/wal/index.js";
import { attachedStream, buildGraph, engineGraphTiers, rotatingValues } from "./lib/graphs.js";
import { attachOutboxes } from "../src/persistence/attach.js";
import { attachSnapshotStorage, type AttachPair } from "../src/index.js";
import { engineFrames, rawYardstick } from "./suites/wal-throughput.js";

const { values: args } = parseArgs({
  options: {
    rows: { type: "string", default: "raw,frames,attach,inline" },
    watch: { type: "string", default: "attach" },
    profile: { type: "string", default: "none" },
    interval: { type: "string", default: "1024" },
    time: { type: "string", default: "3000" },
    top: { type: "string", default: "25" },
    snap: { type: "boolean", default: false },
    // Suite 4's shape (task 304): a graph of `--nodes` nodes, `--wave` sets a turn to paths spread over it.
    nodes: { type: "string" },
    wave: { type: "string" },
  },
});
const CHUNK = args.wave === undefined ? 1000 : Number(args.wave);
const NODES = args.nodes === undefined ? CHUNK : Number(args.nodes);
const SAMPLE = 5000;
const TIME = Number(args.time);

interface Row {
  readonly name: string;
  stream(frames: number): Promise<void>;
  close(): Promise<void>;
  readonly ready?: Promise<unknown>;
}

function threadsNs(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
    try {
      out.set(tid, Number(readFileSync(`/proc/${process.pid}/task/${tid}/schedstat`, "latin1").split(" ", 1)[0]));
    } catch {
      // ended meanwhile
    }
  }
  return out;
}

let gcs: { kind: number; ms: number }[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcs.push({ kind: (e as unknown as { detail: { kind: number } }).detail.kind, ms: e.duration });
}).observe({ entryTypes: ["gc"] });

function spaces(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of v8.getHeapSpaceStatistics()) out[s.space_name] = s.space_used_size;
  return out;
}

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/** Sums a sampling profile's self bytes by the allocating function and by the innermost caller in src/. */
function summarize(root: ProfileNode, frames: number, top: number): void {
  const byFn = new Map<string, number>();
  const bySrc = new Map<string, number>();
  const walk = (n: ProfileNode, stack: ProfileNode[]) => {
    stack.push(n);
    if (n.selfSize > 0) {
      const f = n.callFrame;
      const short = (u: string) => u.replace(/^.*\/dist\//, "").replace(/^node:/, "");
      const k = `${f.functionName || "(anon)"} ${short(f.url)}:${f.lineNumber + 1}`;
      byFn.set(k, (byFn.get(k) ?? 0) + n.selfSize);
      let src = "(none in src/)";
      for (let i = stack.length - 1; i >= 0; i--) {
        const c = stack[i]!.callFrame;
        if (c.url.includes("/dist/src/")) {
          src = `${c.functionName || "(anon)"} ${short(c.url)}:${c.lineNumber + 1}`;
          break;
        }
      }
      bySrc.set(src, (bySrc.get(src) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c, stack);
    stack.pop();
  };
  walk(root, []);
  const total = [...byFn.values()].reduce((a, b) => a + b, 0);
  const show = (title: string, m: Map<string, number>) => {
    console.log(`  ${title} (B a frame; total ${(total / frames).toFixed(0)}):`);
    for (const [k, b] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${(b / frames).toFixed(1).padStart(8)}  ${k}`);
  };
  show("by allocating function", byFn);
  show("by innermost src/ caller", bySrc);
}

async function runRow(row: Row, watch: boolean, session: Session | undefined): Promise<void> {
  await row.ready;
  const w0 = performance.now();
  for (let i = 0; i < 2 || performance.now() - w0 < 500; i++) await row.stream(SAMPLE);
  await sleep(2);
  const h0 = spaces();
  const t0 = threadsNs();
  gcs = [];
  Object.assign(outboxSeen, { turns: 0, queuedTurns: 0, maxQueued: 0 });
  if (watch && session && args.profile !== "none") {
    await session.post("HeapProfiler.startSampling", {
      samplingInterval: Number(args.interval),
      includeObjectsCollectedByMajorGC: args.profile !== "live",
      includeObjectsCollectedByMinorGC: args.profile === "all",
    });
  }
  if (process.env.ATTACH_HEAP_MARK) console.log(`-- window ${row.name}`);
  const s0 = performance.now();
  let frames = 0;
  for (let i = 0; i < 10 || performance.now() - s0 < TIME; i++) {
    await row.stream(SAMPLE);
    frames += SAMPLE;
  }
  const ms = performance.now() - s0;
  if (watch && args.snap) {
    snapNow = true;
    await row.stream(SAMPLE);
  }
  let profile: ProfileNode | undefined;
  if (watch && session && args.profile !== "none") {
    profile = ((await session.post("HeapProfiler.stopSampling")) as unknown as { profile: { head: ProfileNode } }).profile.head;
  }
  await sleep(2);
  const t1 = threadsNs();
  const h1 = spaces();
  const seen = [...gcs];
  const main = String(process.pid);
  const deltas = [...t1].map(([tid, ns]) => [tid, (ns - (t0.get(tid) ?? 0)) / 1000 / frames] as const);
  const mainUs = deltas.find(([t]) => t === main)?.[1] ?? 0;
  const others = deltas.filter(([t]) => t !== main).map(([, d]) => d).sort((a, b) => b - a);
  const busiest = others[0] ?? 0;
  const rest = others.slice(1).reduce((a, b) => a + b, 0);
  const kind = (k: number) => seen.filter((g) => g.kind === k);
  const fmtK = (k: number) => `${kind(k).length} (${kind(k).reduce((a, g) => a + g.ms, 0).toFixed(0)} ms)`;
  const mb = (x: number | undefined) => ((x ?? 0) / 1048576).toFixed(1);
  console.log(
    `${row.name}: ${((frames * 1000) / ms).toFixed(0)} frames/s; CPU µs/frame main ${mainUs.toFixed(2)}, busiest ${busiest.toFixed(2)}, ` +
      `rest ${rest.toFixed(2)}, all ${(mainUs + busiest + rest).toFixed(2)}; scavenges ${fmtK(1)}, mark-compacts ${fmtK(2)}, ` +
      `incremental ${fmtK(4)}; new ${mb(h0.new_space)}→${mb(h1.new_space)} old ${mb(h0.old_space)}→${mb(h1.old_space)} MB`,
  );
  if (row.name === "attach") console.log(`  outbox: ${outboxSeen.queuedTurns} of ${outboxSeen.turns} turns ended with waves queued (most ${outboxSeen.maxQueued})`);
  if (profile) summarize(profile, frames, Number(args.top));
}

/** attachedStream (bench/lib/graphs.ts) that also counts the waves its outbox held at each turn's end. */
/** `--snap`: a heap snapshot in the third turn of the sample after the watched window (attach row only). */
let snapNow = false;
const outboxSeen = { turns: 0, queuedTurns: 0, maxQueued: 0 };
function watchedStream(tiers: AttachPair | undefined, name = "via-engine"): Omit<Row, "name"> {
  const { graph, paths: all } = buildGraph(name, NODES);
  // Suite 4 spreads a turn's sets over the graph (`--nodes` > `--wave`); suite 2 sets every node.
  const paths = Array.from({ length: CHUNK }, (_, w) => all[Math.floor((w * NODES) / CHUNK)]!);
  const values = rotatingValues(args.wave === undefined ? CHUNK : CHUNK + 1); // as suite 2 / suite 4
  const handle = tiers === undefined ? undefined : attachSnapshotStorage(graph, [tiers], { compactEvery: Number.POSITIVE_INFINITY });
  let round = 0;
  return {
    ready: handle?.flush(),
    async stream(frames) {
      for (let c = 0; c < frames / CHUNK; c++) {
        round++;
        for (let j = 0; j < CHUNK; j++) graph.set(paths[j]!, values[(j + round) % values.length]!);
        const q = handle === undefined ? 0 : (attachOutboxes(handle)[0]?.queued ?? 0);
        outboxSeen.turns++;
        if (q > 0) outboxSeen.queuedTurns++;
        if (q > outboxSeen.maxQueued) outboxSeen.maxQueued = q;
        await nextTurn();
        if (snapNow && c === 2) {
          snapNow = false;
          console.log(`  heap snapshot: ${v8.writeHeapSnapshot(join(tmpdir(), `attach-heap-${process.pid}.heapsnapshot`))}`);
        }
      }
      await handle?.flush();
    },
    async close() {
      await handle?.dispose();
      await tiers?.snapshot.close();
      await tiers?.wal?.close();
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), "attach-heap-"));
const engine = openStorageEngine();
const session = args.profile === "none" ? undefined : new Session();
session?.connect();
await session?.post("HeapProfiler.enable");
const rows: Row[] = [];
try {
  // Opened in suite 2's order, before any row runs, as the suite does.
  const names = args.rows.split(",");
  for (const n of ["raw", "frames", "attach", "inline", "plain"]) {
    if (!names.includes(n)) continue;
    if (n === "raw") {
      const raw = rawYardstick(join(dir, "raw.db"));
      rows.push({ name: "raw", stream: async (f) => { for (let c = 0; c < f / CHUNK; c++) raw.commitChunk(); }, close: async () => raw.close() });
    } else if (n === "frames") rows.push({ ...engineFrames(engine, join(dir, "frames.db")), name: "frames" });
    else if (n === "attach") {
      const s = watchedStream(engineGraphTiers(engine, { kind: "sqlite", path: join(dir, "attach.db") }, "via-engine"));
      rows.push({ name: "attach", ...s });
      await s.ready;
    } else if (n === "plain") {
      rows.push({ name: "plain", ...watchedStream(undefined, "plain") });
    } else {
      const s = attachedStream("via-inline", {
        snapshot: sqliteSnapshot<GraphCheckpointRecord>(join(dir, "snapshot.db"), { name: "via-inline" }),
        wal: sqliteKv<WALFrame>(join(dir, "wal.db"), { name: "wal", codec: walFrameCodec, debounceMs: 60_000, compactEvery: CHUNK }),
      }, CHUNK);
      rows.push({ name: "inline", ...s });
      await s.ready;
    }
  }
  console.log(`rows ${names.join(",")}, load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  const order = names.map((n) => rows.find((r) => r.name === n)!);
  for (const r of order) await runRow(r, r.name === args.watch, session);
} finally {
  for (const r of rows) await r.close();
  await engine.close();
  session?.disconnect();
  rmSync(dir, { recursive: true, force: true });
}
