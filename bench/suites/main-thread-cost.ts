/**
 * Suite 1: main-thread cost per write. Each contender takes the same batches (1000 records in one tick, then
 * wait until they are durable) and we read what the main thread spent per record, beside durable writes/s.
 * Then the paced workload (one change per event-loop turn) and graph updates with default options
 * (main-thread-paced.ts).
 */
import { ClassicLevel } from "classic-level";
import { open as openLmdb } from "lmdb";
import { join } from "node:path";
import { openStorageEngine } from "../../src/engine/index.js";
import { sqliteKv } from "../../src/tier/index.js";
import { fmt, ratio, verdict } from "../lib/goals.js";
import { MainThreadMeter, usPerOp, type MeterReading } from "../lib/meter.js";
import { latencyOf, newBench, type Budget } from "../lib/timing.js";
import type { Row, Suite, SuiteContext, SuiteOutput } from "../lib/types.js";
import { makeKeys, makeValues, type NodeValue } from "../lib/workload.js";
import { pacedPart, type PacedPart } from "./main-thread-paced.js";

const BATCH = 1000;
const KEYSPACE = 10 * BATCH;
/** Both tiers buffer until the batch's flush() (a debounce longer than any batch), so each batch is one transaction. */
const DEBOUNCE_MS = 1000;

interface Contender {
  readonly name: string;
  readonly how: string;
  write(key: string, value: NodeValue): void;
  /** Resolves when everything written so far is durable. */
  durable(): Promise<void>;
  close(): Promise<void>;
}

/** Opens every contender into `out` (so the caller can close what opened even if a later one fails). */
async function openContenders(ctx: SuiteContext, out: Contender[]): Promise<void> {
  out.push({
    name: "harness only (no writes)",
    how: "the same loop and await with no storage call: the floor every row includes",
    write: () => undefined,
    durable: () => Promise.resolve(),
    close: () => Promise.resolve(),
  });

  const engine = openStorageEngine();
  const kv = engine.kv<NodeValue>({ kind: "sqlite", path: join(ctx.tempDir("s1-engine"), "store.db") }, { name: "bench", debounceMs: DEBOUNCE_MS });
  out.push({
    name: "engine kv proxy (worker, SQLite FULL)",
    how: "`engine.kv(...).save()` ×1000, `flush()`; the worker encodes (RFC 8785 JSON) and commits one transaction",
    write: (k, v) => kv.save(k, v),
    durable: () => kv.flush(),
    close: async () => {
      await kv.close();
      await engine.close();
    },
  });

  const inline = sqliteKv<NodeValue>(join(ctx.tempDir("s1-inline"), "store.db"), { name: "bench", debounceMs: DEBOUNCE_MS });
  out.push({
    name: "inline sqliteKv (main thread, SQLite FULL)",
    how: "`sqliteKv(...).save()` ×1000, `flush()`: encoding and the transaction (with its fsync) run on the main thread",
    write: (k, v) => inline.save(k, v),
    durable: () => inline.flush(),
    close: () => inline.close(),
  });

  const lmdb = openLmdb<NodeValue, string>({ path: join(ctx.tempDir("s1-lmdb"), "db") });
  out.push({
    name: "lmdb async put",
    how: "`db.put()` ×1000 (msgpack on the main thread, commit in lmdb's write thread), `await db.flushed`",
    write: (k, v) => void lmdb.put(k, v),
    durable: async () => {
      await lmdb.flushed;
    },
    close: () => lmdb.close(),
  });

  const level = new ClassicLevel<string, NodeValue>(join(ctx.tempDir("s1-level"), "db"), { valueEncoding: "json" });
  await level.open();
  let ops: Array<{ type: "put"; key: string; value: NodeValue }> = [];
  out.push({
    name: "classic-level batch",
    how: "1000 put ops, one `db.batch(ops, { sync: true })` (JSON on the main thread, write in libuv's pool)",
    write: (k, v) => void ops.push({ type: "put", key: k, value: v }),
    durable: async () => {
      const batch = ops;
      ops = [];
      await level.batch(batch, { sync: true });
    },
    close: () => level.close(),
  });
}

interface Measured {
  readonly contender: Contender;
  reading?: MeterReading;
  writes: number;
}

export const mainThreadCostSuite: Suite = {
  id: 1,
  title: "Main-thread cost per write",
  async run(ctx): Promise<SuiteOutput> {
    const budget: Budget = ctx.quick
      ? { time: 300, iterations: 5, warmupTime: 100, warmupIterations: 2 }
      : { time: 3000, iterations: 20, warmupTime: 500, warmupIterations: 5 };
    const keys = makeKeys(KEYSPACE);
    const values = makeValues(BATCH);
    const contenders: Contender[] = [];
    const measured: Measured[] = [];
    const bench = newBench("main-thread cost per write", budget);
    try {
      await openContenders(ctx, contenders);
      measured.push(...contenders.map((contender) => ({ contender, writes: 0 })));
      for (const m of measured) {
        let cursor = 0;
        let meter: MainThreadMeter | undefined;
        bench.add(
          m.contender.name,
          async () => {
            const base = cursor;
            cursor = (cursor + BATCH) % KEYSPACE;
            for (let j = 0; j < BATCH; j++) m.contender.write(keys[base + j]!, values[j]!);
            await m.contender.durable();
            if (meter) m.writes += BATCH;
          },
          {
            async: true,
            beforeAll: async (mode) => {
              if (mode === "run") meter = await MainThreadMeter.start();
            },
            afterAll: async (mode) => {
              if (mode === "run" && meter) {
                m.reading = await meter.stop();
                meter = undefined;
              }
            },
          },
        );
      }
      ctx.log(`suite 1: ${measured.length} contenders, batches of ${BATCH}`);
      await bench.run();
    } finally {
      for (const c of contenders) await c.close();
    }
    const pacing: PacedPart = await pacedPart(ctx);

    const rows: Row[] = [];
    const perWrite = new Map<string, { main: number | undefined }>();
    for (const m of measured) {
      const task = bench.getTask(m.contender.name)!;
      const lat = latencyOf(task);
      const r = m.reading;
      const mainCpu = r ? usPerOp(r.mainCpuMs, m.writes) : undefined;
      const elu = r ? usPerOp(r.eluActiveMs, m.writes) : undefined;
      // Figures compare on main-thread CPU when the OS gives it per thread, else on event-loop busy time.
      const main = mainCpu ?? elu;
      perWrite.set(m.contender.name, { main });
      rows.push({
        name: m.contender.name,
        workload: `burst ×${BATCH}`,
        writesPerSec: m.contender.name.startsWith("harness") ? undefined : (BATCH * 1000) / lat.meanMs,
        msPerWrite: lat.meanMs / BATCH,
        batchMeanMs: lat.meanMs,
        batchP99Ms: lat.p99Ms,
        mainCpuUs: mainCpu,
        eluUs: elu,
        processCpuUs: r ? usPerOp(r.processCpuMs, m.writes) : undefined,
        samples: lat.samples,
      });
    }
    const engineName = contenders[1]!.name;
    const engineMain = perWrite.get(engineName)?.main;
    for (const row of rows) {
      row.vsEngine = row.name === contenders[0]!.name ? undefined : ratio(perWrite.get(String(row.name))?.main, engineMain);
    }
    const lmdbMain = perWrite.get(contenders[3]!.name)?.main;
    const inlineMain = perWrite.get(contenders[2]!.name)?.main;
    const inlineRatio = ratio(inlineMain, engineMain);
    const metric = rows[1]?.mainCpuUs !== undefined ? "main-thread CPU" : "event-loop busy time";
    rows.push(...pacing.rows);

    return {
      title: "Main-thread cost per write",
      legend: [
        `One sample = ${BATCH} writes issued in one tick, then awaited until durable; writes/s = ${BATCH} / batch mean.`,
        "main CPU = on-CPU time of the main thread only (Linux per-thread schedstat); loop busy = event-loop active time " +
          "(includes blocking syscalls such as an inline fsync); all-threads CPU = process.cpuUsage (workers and peers' threads too). " +
          "All per write, over the whole measured phase.",
        `× engine = the row's main-thread cost / the engine kv proxy's in the same workload. Rows: ${contenders.map((c) => `${c.name}: ${c.how}`).join("; ")}.`,
        `Paced rows: ${String(pacing.config.pacedWrites)} writes, one per event-loop turn (\`await setImmediate\` after each, as a request handler does), then ` +
          "awaited until durable; ms/write = that wall time / writes; each run in a process of its own as the graph rows are, the kv save and the lmdb put " +
          "writing the same record (suite 1's). Graph rows: N state nodes `{ v, s: \"x\".repeat(20) }`, attach with " +
          "default options (baselines by size: inline attach writes them, through the engine the store's actor folds the WAL), " +
          `random sets paced or in one synchronous burst, then flushed: at least ${String(pacing.config.pacedWrites)}, a whole number of the periods between two ` +
          "default baselines (the workload column gives both), so every window pays its share of baselines at every N; each variant in a process of its own, " +
          "peak RSS = that process's maximum resident set (burst rows); baselines = full baselines the main thread handed over after attach. " +
          "The \"no storage\" graph row runs the same sets with nothing attached (same warm-up): the graph's own share of an update. " +
          "The \"persisted by hand\" graph row runs them with lmdb-js as a user would without this package (graph.observe, one async put of each changed " +
          "node's value per wave, `await db.flushed` ending the window): what a graph update through the engine is weighed against. " +
          "The paced goal holds when both like-for-like comparisons do: the engine kv save ≤ the lmdb put, and the graph through the engine ≤ persisted by hand. " +
          `Repetitions (${String(pacing.config.repetitions)}, interleaved, where the workload says "median of"): the paced kv rows show the run with the median ` +
          "main CPU; a graph row shows the run with the median ms/write, the paced goal takes the median main CPU, peak RSS is the highest run's.",
      ],
      columns: [
        { key: "name", label: "contender" },
        { key: "workload", label: "workload" },
        { key: "writesPerSec", label: "durable writes/s", kind: "number" },
        { key: "msPerWrite", label: "ms/write", kind: "number" },
        { key: "batchMeanMs", label: "batch mean ms", kind: "number" },
        { key: "batchP99Ms", label: "batch p99 ms", kind: "number" },
        { key: "mainCpuUs", label: "main CPU µs/write", kind: "number" },
        { key: "eluUs", label: "loop busy µs/write", kind: "number" },
        { key: "processCpuUs", label: "all-threads CPU µs/write", kind: "number" },
        { key: "peakRssMb", label: "peak RSS MB", kind: "number" },
        { key: "baselines", label: "baselines" },
        { key: "vsEngine", label: "× engine (main)", kind: "ratio" },
      ],
      rows,
      goals: [
        verdict(
          "1.lmdb",
          "engine main-thread cost per write ≤ lmdb's",
          engineMain === undefined || lmdbMain === undefined ? undefined : engineMain <= lmdbMain,
          `engine ${fmt(engineMain)} µs vs lmdb ${fmt(lmdbMain)} µs ${metric} per write`,
        ),
        verdict(
          "1.inline",
          "engine ≥ 8× less main-thread cost than inline SQLite",
          inlineRatio === undefined ? undefined : inlineRatio >= 8,
          `inline ${fmt(inlineMain)} µs / engine ${fmt(engineMain)} µs = ${fmt(inlineRatio)}× (${metric})`,
        ),
        verdict(
          "1.bar",
          "DESIGN bar: ~1 µs main-thread work per persisted change (met at ≤ 1.5 µs)",
          engineMain === undefined ? undefined : engineMain <= 1.5,
          `engine kv save: ${fmt(engineMain)} µs ${metric} per write, batches of ${BATCH}`,
        ),
        ...pacing.goals,
      ],
      config: { batch: BATCH, keyspace: KEYSPACE, debounceMs: DEBOUNCE_MS, budget, sqliteSynchronous: "FULL", lmdbEncoding: "msgpack (default)", levelValueEncoding: "json", ...pacing.config },
      figures: {
        ...Object.fromEntries(measured.map((m) => [m.contender.name, { writes: m.writes, meter: m.reading, latency: latencyOf(bench.getTask(m.contender.name)!) }])),
        ...pacing.figures,
      },
    };
  },
};
