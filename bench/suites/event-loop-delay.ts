/**
 * Suite 3: event-loop delay under a sustained write rate. A producer issues changes every millisecond at a target
 * rate (as a busy app would) while `monitorEventLoopDelay` records how late the loop runs; then we wait until
 * everything is durable. Not a tinybench loop: the quantity is a distribution over time, not a per-call latency.
 */
import { open as openLmdb } from "lmdb";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { openStorageEngine } from "../../src/engine/index.js";
import { sqliteKv } from "../../src/tier/index.js";
import { fmt, verdict } from "../lib/goals.js";
import { MainThreadMeter, usPerOp } from "../lib/meter.js";
import type { Row, Suite, SuiteContext, SuiteOutput } from "../lib/types.js";
import { makeKeys, makeValues, type NodeValue } from "../lib/workload.js";

const KEYSPACE = 10_000;
/** Both SQLite tiers commit what accumulated every 10 ms (one transaction each). */
const DEBOUNCE_MS = 10;
/** A producer that fell behind catches up by at most this much work per tick. */
const MAX_CATCH_UP_MS = 50;

interface Contender {
  readonly name: string;
  write(key: string, value: NodeValue): void;
  durable(): Promise<void>;
  close(): Promise<void>;
}

async function openContenders(ctx: SuiteContext, out: Contender[]): Promise<void> {
  out.push({ name: "idle producer (no writes)", write: () => undefined, durable: () => Promise.resolve(), close: () => Promise.resolve() });
  const engine = openStorageEngine();
  const kv = engine.kv<NodeValue>({ kind: "sqlite", path: join(ctx.tempDir("s3-engine"), "store.db") }, { name: "bench", debounceMs: DEBOUNCE_MS });
  out.push({
    name: `engine kv proxy (debounce ${DEBOUNCE_MS} ms)`,
    write: (k, v) => kv.save(k, v),
    durable: () => kv.flush(),
    close: async () => {
      await kv.close();
      await engine.close();
    },
  });
  const inline = sqliteKv<NodeValue>(join(ctx.tempDir("s3-inline"), "store.db"), { name: "bench", debounceMs: DEBOUNCE_MS });
  out.push({
    name: `inline sqliteKv (debounce ${DEBOUNCE_MS} ms)`,
    write: (k, v) => inline.save(k, v),
    durable: () => inline.flush(),
    close: () => inline.close(),
  });
  const lmdb = openLmdb<NodeValue, string>({ path: join(ctx.tempDir("s3-lmdb"), "db") });
  out.push({
    name: "lmdb async put",
    write: (k, v) => void lmdb.put(k, v),
    durable: async () => {
      await lmdb.flushed;
    },
    close: () => lmdb.close(),
  });
}

/** Issues `rate` writes per second for `ms`, from a 1 ms timer loop; returns how many it issued. */
function sustain(c: Contender, rate: number, ms: number, keys: readonly string[], values: readonly NodeValue[]): Promise<number> {
  return new Promise((resolve) => {
    const start = performance.now();
    const maxPerTick = Math.ceil((rate * MAX_CATCH_UP_MS) / 1000);
    let issued = 0;
    const tick = (): void => {
      const elapsed = performance.now() - start;
      if (elapsed >= ms) return resolve(issued);
      const owed = Math.min(Math.floor((rate * elapsed) / 1000) - issued, maxPerTick);
      for (let k = 0; k < owed; k++, issued++) c.write(keys[issued % KEYSPACE]!, values[issued % values.length]!);
      setTimeout(tick, 1);
    };
    setTimeout(tick, 1);
  });
}

const nsToMs = (ns: number): number => ns / 1e6;

export const eventLoopDelaySuite: Suite = {
  id: 3,
  title: "Event-loop delay under load",
  async run(ctx): Promise<SuiteOutput> {
    const rate = 50_000;
    const seconds = ctx.quick ? 1.5 : 6;
    const warmupSeconds = ctx.quick ? 0.3 : 1;
    const keys = makeKeys(KEYSPACE);
    const values = makeValues(1000);
    const contenders: Contender[] = [];
    const rows: Row[] = [];
    const figures: Record<string, unknown> = {};
    try {
      await openContenders(ctx, contenders);
      for (const c of contenders) {
        ctx.log(`suite 3: ${c.name}, ${rate}/s for ${seconds} s`);
        await sustain(c, rate, warmupSeconds * 1000, keys, values);
        await c.durable();
        const histogram = monitorEventLoopDelay({ resolution: 1 });
        const meter = await MainThreadMeter.start();
        histogram.enable();
        const issued = await sustain(c, rate, seconds * 1000, keys, values);
        histogram.disable();
        const drainStart = performance.now();
        await c.durable();
        const drainMs = performance.now() - drainStart;
        const reading = await meter.stop();
        const writing = !c.name.startsWith("idle");
        const row: Row = {
          name: c.name,
          achievedPerSec: writing ? issued / seconds : undefined,
          durablePerSec: writing ? issued / (seconds + drainMs / 1000) : undefined,
          eldMeanMs: nsToMs(histogram.mean),
          eldP50Ms: nsToMs(histogram.percentile(50)),
          eldP99Ms: nsToMs(histogram.percentile(99)),
          eldMaxMs: nsToMs(histogram.max),
          mainCpuUs: writing ? usPerOp(reading.mainCpuMs, issued) : undefined,
          loopBusyPct: (reading.eluActiveMs / reading.wallMs) * 100,
          drainMs: writing ? drainMs : undefined,
        };
        rows.push(row);
        figures[c.name] = { issued, seconds, drainMs, meter: reading, histogramCount: histogram.count };
      }
    } finally {
      for (const c of contenders) await c.close();
    }

    const engineRow = rows[1];
    const p99 = engineRow?.eldP99Ms as number | undefined;
    const achieved = engineRow?.achievedPerSec as number | undefined;
    const sustained = achieved !== undefined && achieved >= 0.95 * rate;
    return {
      title: "Event-loop delay under load",
      legend: [
        `Each row sustains ${fmt(rate)} changes/s for ${seconds} s from a 1 ms timer loop (after ${warmupSeconds} s of warm-up), ` +
          "then waits until all is durable (drain). Every write is a ~100-byte record to SQLite with synchronous FULL (lmdb: its default sync).",
        "Delay = Node's `monitorEventLoopDelay` histogram (1 ms resolution), mean / p50 / p99 / max in ms, judged as reported: its " +
          "values include the 1 ms sampling period itself (an idle loop reads ~1.1 ms), so the excess delay is ~1 ms less.",
        "main CPU = main-thread on-CPU µs per change (includes the producer loop: see the idle row's loop busy); loop busy = event-loop active share of wall time.",
      ],
      columns: [
        { key: "name", label: "contender" },
        { key: "achievedPerSec", label: "achieved changes/s", kind: "number" },
        { key: "durablePerSec", label: "durable changes/s", kind: "number" },
        { key: "eldMeanMs", label: "delay mean ms", kind: "number" },
        { key: "eldP50Ms", label: "delay p50 ms", kind: "number" },
        { key: "eldP99Ms", label: "delay p99 ms", kind: "number" },
        { key: "eldMaxMs", label: "delay max ms", kind: "number" },
        { key: "mainCpuUs", label: "main CPU µs/change", kind: "number" },
        { key: "loopBusyPct", label: "loop busy", kind: "percent" },
        { key: "drainMs", label: "drain ms", kind: "number" },
      ],
      rows,
      goals: [
        verdict(
          "3.p99",
          `event-loop delay p99 < 5 ms through the engine while sustaining ${fmt(rate)} changes/s`,
          p99 === undefined ? undefined : p99 < 5 && sustained,
          `p99 ${fmt(p99)} ms at ${fmt(achieved)} changes/s achieved` +
            (sustained ? "" : " (below 95% of the target rate)") +
            `; inline: p99 ${fmt(rows[2]?.eldP99Ms as number | undefined)} ms`,
        ),
      ],
      config: { rate, seconds, warmupSeconds, debounceMs: DEBOUNCE_MS, keyspace: KEYSPACE, maxCatchUpMs: MAX_CATCH_UP_MS },
      figures,
    };
  },
};
