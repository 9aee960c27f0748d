/**
 * `node dist/bench/turn-ring.js [--writes 2000] [--reps 5]`: what one event-loop turn's hand-off to a store actor
 * costs the main thread (issue 13 item 2, docs/design.md §3.19): a MessagePort message answered by the worker
 * (the connection's comlink `apply`, coalesced per turn with setImmediate), a plain message on the same port that
 * is not answered, and a SharedArrayBuffer TurnRing
 * (the same batch serialized into shared memory, the worker woken by Atomics.notify, no answer). One write per
 * turn (`await setImmediate` after each), then a sync round trip; a kv put (~100-byte record) or a WAL frame as
 * columns; plus the real engine kv proxy on a memory store and an empty turn for reference. Variants interleave
 * within each repetition; the table shows the median of the repetitions. The worker only counts what it receives.
 * Not part of `npm run bench` (docs/design.md §3.19 has the figures and the decision).
 */
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import { wrap, type Remote } from "comlink";
import nodeEndpoint from "comlink/dist/esm/node-adapter.mjs";
import { openStorageEngine } from "../src/engine/index.js";
import { frameColumns } from "../src/wal/frame-columns.js";
import { TurnRingWriter, createTurnRing } from "./lib/turn-ring.js";
import { MainThreadMeter, usPerOp } from "./lib/meter.js";
import { OPS, type TurnRingWorkerData } from "./lib/turn-ring-shared.js";
import { asUnsealed, makeFrameBody, makeKeys, makeValues, type NodeValue } from "./lib/workload.js";
import { formatNumber as fmt } from "./report.js";

interface WorkerApi {
  apply(ops: unknown[]): { results: never[]; errors: never[] };
  sync(position: number): number;
}

const { values: args } = parseArgs({ options: { writes: { type: "string", default: "2000" }, reps: { type: "string", default: "5" } } });
const WRITES = Number(args.writes);
const REPS = Number(args.reps);
const keys = makeKeys(WRITES);
const values = makeValues(WRITES);
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

type Payload = "kv put" | "WAL frame";
const op = (payload: Payload, i: number): unknown => {
  if (payload === "kv put") return { t: "puts", tier: 1, keys: [keys[i]!], values: [values[i]!] };
  const cols = frameColumns.empty();
  frameColumns.push(cols, asUnsealed(makeFrameBody(i, `n${i % 100}`, values[i]!)));
  return { t: "columns", tier: 1, keys: [`g/wal/${String(i).padStart(20, "0")}`], cols };
};

/** The connection's shape: ops queued in a turn, sent by one setImmediate, by `post`. */
class Batcher {
  private queue: unknown[] = [];
  private scheduled = false;
  constructor(private readonly post: (ops: unknown[]) => void) {}
  push(o: unknown): void {
    this.queue.push(o);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const ops = this.queue;
      this.queue = [];
      this.post(ops);
    });
  }
}

async function paced(write: (i: number) => void, durable: () => Promise<void>): Promise<number | undefined> {
  for (let i = 0; i < Math.min(WRITES, 200); i++) {
    write(i);
    await turn();
  }
  await durable();
  const meter = await MainThreadMeter.start();
  for (let i = 0; i < WRITES; i++) {
    write(i);
    await turn();
  }
  await durable();
  const r = await meter.stop();
  return usPerOp(r.mainCpuMs, WRITES) ?? usPerOp(r.eluActiveMs, WRITES);
}

async function main(): Promise<void> {
  const ring = createTurnRing();
  const workerData: TurnRingWorkerData = { ring };
  const worker = new Worker(new URL("./lib/turn-ring-worker.js", import.meta.url), { workerData });
  const remote: Remote<WorkerApi> = wrap<WorkerApi>(nodeEndpoint(worker));
  const writer = new TurnRingWriter(ring);
  let messages = 0;
  let fallbacks = 0;
  const ready = Promise.resolve();
  const death = new Promise<never>(() => undefined);
  // As StoreConnection.postMessage: chained on ready, raced with death, the answer awaited.
  const viaMessage = new Batcher((ops) => void ready.then(() => Promise.race([remote.apply(ops), death]).then(() => undefined)));
  // On comlink's own port, in an envelope comlink ignores (it skips message types it does not know).
  const viaPort = new Batcher((ops) => worker.postMessage({ type: OPS, ops }));
  const viaRing = new Batcher((ops) => {
    if (!writer.tryWrite(ops, messages)) {
      fallbacks++;
      void remote.apply(ops);
    }
  });
  const sync = async (): Promise<void> => {
    const position = writer.position;
    messages++;
    await remote.sync(position);
  };
  await sync();

  const engine = openStorageEngine();
  const kv = engine.kv<NodeValue>({ kind: "memory", name: "turn-ring-bench" }, { name: "bench" });
  await kv.flush();

  const variants: Array<{ name: string; run: () => Promise<number | undefined> }> = [
    { name: "empty turn", run: () => paced(() => undefined, () => Promise.resolve()) },
    ...(["kv put", "WAL frame"] as const).flatMap((payload) => [
      { name: `${payload}: message (comlink apply, answered)`, run: () => paced((i) => viaMessage.push(op(payload, i)), sync) },
      { name: `${payload}: plain message, not answered`, run: () => paced((i) => viaPort.push(op(payload, i)), sync) },
      { name: `${payload}: TurnRing (SharedArrayBuffer, Atomics.notify)`, run: () => paced((i) => viaRing.push(op(payload, i)), sync) },
    ]),
    { name: "kv put: engine kv proxy (memory store)", run: () => paced((i) => kv.save(keys[i]!, values[i]!), () => kv.flush()) },
  ];
  const samples = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  const load = loadavg()[0]!;
  for (let rep = 0; rep < REPS; rep++) {
    for (const v of variants) {
      const us = await v.run();
      if (us !== undefined) samples.get(v.name)!.push(us);
    }
    process.stderr.write(`rep ${rep + 1}/${REPS}\n`);
  }
  await kv.close();
  await engine.close();
  await worker.terminate();

  const median = (xs: number[]): number | undefined => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length === 0 ? undefined : s[Math.floor(s.length / 2)];
  };
  console.log(`${WRITES} writes one per turn, ${REPS} repetitions interleaved, load average at start ${load.toFixed(2)}; ring fallbacks ${fallbacks}`);
  console.log("| hand-off | main-thread CPU µs/write (median) | min | max |\n|---|---|---|---|");
  for (const [name, xs] of samples) console.log(`| ${name} | ${fmt(median(xs))} | ${fmt(Math.min(...xs))} | ${fmt(Math.max(...xs))} |`);
}

await main();
