/**
 * Suite 1, second part: the paced workload a server runs (issue 13). One change per event-loop turn (`await
 * setImmediate` after each, as a request handler does) through the engine kv proxy and lmdb-js, and a graph of
 * N state nodes attached with default options, inline and through the engine, paced and in a burst. Each graph
 * variant runs in a child process of its own (bench/lib/graph-updates-child.ts), so its peak RSS is its own.
 */
import { fork } from "node:child_process";
import { open as openLmdb } from "lmdb";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { openStorageEngine } from "../../src/engine/index.js";
import { fmt, info, ratio, verdict } from "../lib/goals.js";
import type { GraphUpdatesConfig, GraphUpdatesResult } from "../lib/graph-updates-child.js";
import { MainThreadMeter, usPerOp, type MeterReading } from "../lib/meter.js";
import type { GoalResult, Row, SuiteContext } from "../lib/types.js";
import { makeKeys, makeValues, type NodeValue } from "../lib/workload.js";

const CHILD = join(dirname(fileURLToPath(import.meta.url)), "../lib/graph-updates-child.js");

export interface PacedPart {
  readonly rows: Row[];
  readonly goals: GoalResult[];
  readonly config: Record<string, unknown>;
  readonly figures: Record<string, unknown>;
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** `writes` changes, one per turn, then `durable()`: main-thread cost and wall time per change (after a warm-up). */
async function paced(writes: number, write: (i: number) => void, durable: () => Promise<void>): Promise<{ wallMs: number; reading: MeterReading }> {
  for (let i = 0; i < Math.min(writes, 200); i++) {
    write(i);
    await turn();
  }
  await durable();
  const meter = await MainThreadMeter.start();
  const t0 = performance.now();
  for (let i = 0; i < writes; i++) {
    write(i);
    await turn();
  }
  await durable();
  const wallMs = performance.now() - t0;
  return { wallMs, reading: await meter.stop() };
}

function runChild(cfg: GraphUpdatesConfig): Promise<GraphUpdatesResult> {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, [JSON.stringify(cfg)], { stdio: ["ignore", "ignore", "pipe", "ipc"], serialization: "json" });
    let stderr = "";
    let answer: { ok: boolean; result?: GraphUpdatesResult; error?: string } | undefined;
    child.stderr?.on("data", (d: Buffer) => void (stderr += d.toString()));
    child.on("message", (m: typeof answer) => void (answer = m));
    child.on("error", reject);
    child.on("close", (code) => {
      if (answer?.ok && answer.result) resolve(answer.result);
      else reject(new Error(`graph workload ${JSON.stringify(cfg)} failed (exit ${String(code)}): ${answer?.error ?? stderr}`));
    });
  });
}

const MB = 1024 * 1024;

export async function pacedPart(ctx: SuiteContext): Promise<PacedPart> {
  const writes = ctx.quick ? 200 : 2000;
  const sizes = ctx.quick ? [100, 10_000] : [100, 10_000, 100_000];
  const keys = makeKeys(writes);
  const values = makeValues(writes);
  const rows: Row[] = [];
  const figures: Record<string, unknown> = {};
  const main = (r: MeterReading, n: number): number | undefined => usPerOp(r.mainCpuMs, n) ?? usPerOp(r.eluActiveMs, n);
  const row = (name: string, workload: string, n: number, m: { wallMs: number; reading: MeterReading }, extra: Row = {}): Row => ({
    name,
    workload,
    writesPerSec: (n * 1000) / m.wallMs,
    msPerWrite: m.wallMs / n,
    mainCpuUs: usPerOp(m.reading.mainCpuMs, n),
    eluUs: usPerOp(m.reading.eluActiveMs, n),
    processCpuUs: usPerOp(m.reading.processCpuMs, n),
    ...extra,
  });

  // ---- one write per turn: the floor, the engine kv proxy, lmdb-js ------------------------------------------
  ctx.log(`suite 1: paced workload, ${writes} writes one per turn`);
  const harness = await paced(writes, () => undefined, () => Promise.resolve());
  rows.push(row("harness only (no writes), paced", "paced", writes, harness));
  const engine = openStorageEngine();
  const kv = engine.kv<NodeValue>({ kind: "sqlite", path: join(ctx.tempDir("s1-paced-engine"), "store.db") }, { name: "paced" });
  let engineKv: Awaited<ReturnType<typeof paced>>;
  try {
    await kv.flush(); // the worker is up and the store open before the window
    engineKv = await paced(writes, (i) => kv.save(keys[i]!, values[i]!), () => kv.flush());
  } finally {
    await kv.close();
    await engine.close();
  }
  rows.push(row("engine kv proxy (worker, SQLite FULL), paced", "paced", writes, engineKv));
  const lmdb = openLmdb<NodeValue, string>({ path: join(ctx.tempDir("s1-paced-lmdb"), "db") });
  let lmdbPut: Awaited<ReturnType<typeof paced>>;
  try {
    lmdbPut = await paced(writes, (i) => void lmdb.put(keys[i]!, values[i]!), async () => void (await lmdb.flushed));
  } finally {
    await lmdb.close();
  }
  rows.push(row("lmdb async put, paced", "paced", writes, lmdbPut));
  const engineKvMain = main(engineKv.reading, writes);
  for (const r of rows.slice(1)) r.vsEngine = ratio((r.mainCpuUs ?? r.eluUs) as number | undefined, engineKvMain);
  figures.paced = { writes, harness, engineKv, lmdbPut };

  // ---- graph updates with default options, each variant in its own process ------------------------------------
  const graph = new Map<string, GraphUpdatesResult>();
  for (const nodes of sizes) {
    for (const mode of ["inline", "engine"] as const) {
      ctx.log(`suite 1: graph of ${nodes} nodes, ${mode}, at least ${writes} sets paced then as many in a burst`);
      const r = await runChild({ nodes, updates: writes, mode, dir: ctx.tempDir(`s1-graph-${mode}-${nodes}`) });
      graph.set(`${mode} ${nodes}`, r);
      const name = `graph N=${nodes.toLocaleString("en-US")}, ${mode === "inline" ? "inline memory tiers" : "engine (SQLite FULL)"}`;
      const sets = (n: number): string => `${n.toLocaleString("en-US")} sets, baseline every ${r.baselinePeriod.toLocaleString("en-US")}`;
      rows.push(row(name, `graph paced (${sets(r.paced.frames)})`, r.paced.frames, r.paced, { baselines: String(r.paced.mainThreadBaselines) }));
      rows.push(
        row(name, `graph burst (${sets(r.burst.frames)})`, r.burst.frames, r.burst, { peakRssMb: r.peakRssBytes / MB, baselines: String(r.burst.mainThreadBaselines) }),
      );
    }
  }
  figures.graph = Object.fromEntries(graph);

  // ---- goals (issue 13) ---------------------------------------------------------------------------------------
  const run = (mode: string, workload: "paced" | "burst", n: number) => graph.get(`${mode} ${n}`)?.[workload];
  const perUpdate = (mode: string, workload: "paced" | "burst", n: number): number | undefined => {
    const r = run(mode, workload, n);
    return r === undefined ? undefined : r.wallMs / r.frames;
  };
  const flatness = (n: number, limit: number): { ok: boolean | undefined; detail: string } => {
    const parts: string[] = [];
    let ok: boolean | undefined = true;
    for (const mode of ["inline", "engine"]) {
      for (const workload of ["paced", "burst"] as const) {
        const q = ratio(perUpdate(mode, workload, n), perUpdate(mode, workload, sizes[0]!));
        if (q === undefined) ok = undefined;
        else if (ok !== undefined) ok &&= q <= limit;
        parts.push(`${mode} ${workload} ${fmt(q)}×`);
      }
    }
    return { ok, detail: `ms/update at N=${n.toLocaleString("en-US")} / at N=${sizes[0]}: ${parts.join(", ")}` };
  };
  const goals: GoalResult[] = [];
  const flat10k = flatness(10_000, 2);
  goals.push(verdict("1.flat10k", "graph per-update cost with defaults at N=10,000 within 2× of N=100 (inline and engine, paced and burst)", flat10k.ok, flat10k.detail));
  if (sizes.includes(100_000)) {
    const flat100k = flatness(100_000, 3);
    goals.push(verdict("1.flat100k", "graph per-update cost with defaults at N=100,000 within 3× of N=100", flat100k.ok, flat100k.detail));
  } else {
    goals.push(info("1.flat100k", "graph per-update cost with defaults at N=100,000 within 3× of N=100", "N=100,000 is not run in --quick"));
  }
  const graphEnginePaced = run("engine", "paced", sizes[0]!);
  const graphMain = graphEnginePaced === undefined ? undefined : main(graphEnginePaced.reading, graphEnginePaced.frames);
  const lmdbMain = main(lmdbPut.reading, writes);
  goals.push(
    verdict(
      "1.paced",
      "paced engine main-thread CPU per change ≤ lmdb-js's paced put",
      graphMain === undefined || lmdbMain === undefined ? undefined : graphMain <= lmdbMain,
      `graph update through the engine (N=${sizes[0]}) ${fmt(graphMain)} µs, engine kv save ${fmt(engineKvMain)} µs, lmdb put ${fmt(lmdbMain)} µs, ` +
        `an empty turn ${fmt(main(harness.reading, writes))} µs main-thread CPU per change`,
    ),
  );
  const rss = ["inline", "engine"].map((mode) => graph.get(`${mode} 10000`)?.peakRssBytes);
  const burstSets = graph.get("engine 10000")?.burst.frames;
  goals.push(
    verdict(
      "1.rss",
      "peak RSS under the burst workload at N=10,000 below 300 MB",
      rss.some((b) => b === undefined) ? undefined : rss.every((b) => (b as number) < 300 * MB),
      `inline ${fmt(rss[0] === undefined ? undefined : rss[0] / MB)} MB, engine ${fmt(rss[1] === undefined ? undefined : rss[1] / MB)} MB (whole process, ${fmt(burstSets)} sets in one tick)`,
    ),
  );
  return { rows, goals, config: { pacedWrites: writes, graphSizes: sizes, graphValue: '{ v, s: "x".repeat(20) }', graphOptions: "attach defaults" }, figures };
}
