/**
 * Suite 1's paced kv rows, each in a process of its own as the graph rows are (graph-updates-child.ts): `writes`
 * changes, one per event-loop turn (`await setImmediate` after each, as a request handler does), then awaited until
 * durable, after a warm-up of 2.5 × writes; `windows` such windows in a row, the median one reported
 * (bench/lib/paced-windows.ts). Modes: "turn" an empty turn (the floor),
 * "kv" an engine kv save of suite 1's record, "lmdb" an lmdb-js async put of the same record. The process holds
 * only what its mode needs: these rows ran in the bench's own process before, an engine open beside the lmdb put
 * and the heap the earlier suites left, while each graph row they were compared with ran in a fresh child
 * (design §3.35, §3.38).
 * The parent forks dist/bench/lib/paced-writes-child.js with a JSON PacedWritesConfig as argv[2] (bench/lib/child.ts)
 * and gets one PacedWritesResult back over IPC.
 */
import { join } from "node:path";
import { open as openLmdb } from "lmdb";
import { openStorageEngine } from "../../src/engine/index.js";
import { serveChild } from "./child.js";
import { MainThreadMeter, type MeterReading } from "./meter.js";
import { medianWindow } from "./paced-windows.js";
import { makeKeys, makeValues, type NodeValue } from "./workload.js";

export interface PacedWritesConfig {
  readonly mode: "turn" | "kv" | "lmdb";
  readonly writes: number;
  /** A fresh directory for the engine's SQLite store or the lmdb database. */
  readonly dir: string;
  /** Windows of `writes` measured one after another (default 1); the result is the one with the median main-thread CPU. */
  readonly windows?: number;
}

export interface PacedWritesResult {
  /** First write to durable. */
  readonly wallMs: number;
  readonly reading: MeterReading;
  /** The process that ran it (a fresh one per run: the report shows it). */
  readonly pid: number;
  /** Main-thread CPU µs per write of each window, in the order they ran. */
  readonly windowsUs: number[];
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * The warm-up is as long as the graph rows': with 200 writes the first window still ran partly cold (~10 µs against
 * ~4–5 µs warm for a kv save and an lmdb put alike, design §3.35).
 */
async function paced(cfg: PacedWritesConfig, write: (i: number) => void, durable: () => Promise<void>): Promise<PacedWritesResult> {
  const { writes } = cfg;
  for (let i = 0; i < Math.round(writes * 2.5); i++) {
    write(i % writes);
    await turn();
  }
  await durable();
  const measure = async (): Promise<{ wallMs: number; reading: MeterReading }> => {
    const meter = await MainThreadMeter.start();
    const t0 = performance.now();
    for (let i = 0; i < writes; i++) {
      write(i);
      await turn();
    }
    await durable();
    const wallMs = performance.now() - t0;
    return { wallMs, reading: await meter.stop() };
  };
  const { median, windowsUs } = await medianWindow(cfg.windows ?? 1, measure, () => writes);
  return { ...median, pid: process.pid, windowsUs };
}

async function run(cfg: PacedWritesConfig): Promise<PacedWritesResult> {
  const keys = makeKeys(cfg.writes);
  const values = makeValues(cfg.writes);
  if (cfg.mode === "turn") return paced(cfg, () => undefined, () => Promise.resolve());
  if (cfg.mode === "kv") {
    const engine = openStorageEngine();
    const kv = engine.kv<NodeValue>({ kind: "sqlite", path: join(cfg.dir, "store.db") }, { name: "paced" });
    try {
      await kv.flush(); // the worker is up and the store open before the window
      return await paced(cfg, (i) => kv.save(keys[i]!, values[i]!), () => kv.flush());
    } finally {
      await kv.close();
      await engine.close();
    }
  }
  const lmdb = openLmdb<NodeValue, string>({ path: join(cfg.dir, "db") });
  try {
    return await paced(cfg, (i) => void lmdb.put(keys[i]!, values[i]!), async () => void (await lmdb.flushed));
  } finally {
    await lmdb.close();
  }
}

serveChild(run);
