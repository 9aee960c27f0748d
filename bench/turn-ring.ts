/**
 * `node dist/bench/turn-ring.js [--writes 10000] [--warmup 3000] [--reps 5] [--ring-bytes 1048576]`: what one
 * event-loop turn's hand-off to a store actor costs the main thread (issue 13 item 2, docs/design.md §3.22, §3.35). One write per turn (`await
 * setImmediate` after each), ops queued in the turn and handed off by one setImmediate (the connection's shape), a
 * kv put (suite 1's ~100-byte record) or a one-frame WAL wave as the engine's frame columns (a graph value `{ v, s }`,
 * each wave its own timestamp), handed off as
 *   - the engine's writes message (one flat array per turn on a MessagePort, not answered: protocol.ts packWrites);
 *   - a TurnRing record (bench/lib/turn-ring.ts: our own encoding into a SharedArrayBuffer, no message), the worker
 *     draining on a 1 ms timer while writes flow and sleeping after 20 ms without any (notified only then);
 *   - the same ring with the worker sleeping after every drain, so every turn's record wakes it (Atomics.notify);
 *   - the ring written at once, not at the end of the turn (no setImmediate of the hand-off's own; informational:
 *     the engine reads a saved value at the end of its turn).
 * plus an empty turn. After each window a SYNC message (carrying the ring position) waits until the worker applied
 * everything and checks its count and checksum (of every write, in the order applied) against the main thread's: a
 * small `--ring-bytes` (4096) makes the ring fill and fall back to messages often, which that check proves keep
 * issue order. Variants interleave within each
 * repetition; the table shows medians of the repetitions (main-thread CPU from Linux schedstat, all threads' CPU
 * from process.cpuUsage). Not part of `npm run bench`.
 */
import { deepStrictEqual, strictEqual } from "node:assert";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import { packWrites, type Op } from "../src/engine/protocol.js";
import { columnsLayout, frameColumns, type FrameColumns } from "../src/wal/frame-columns.js";
import { TurnRingReader, TurnRingWriter, createTurnRing, type RingOp } from "./lib/turn-ring.js";
import { MainThreadMeter, usPerOp } from "./lib/meter.js";
import { MODE, OPS, SYNC, SYNCED, type SyncedMessage, type TurnRingWorkerData } from "./lib/turn-ring-shared.js";
import { asUnsealed, makeFrameBody, makeKeys, makeValues } from "./lib/workload.js";
import { formatNumber as fmt } from "./report.js";

const { values: args } = parseArgs({
  options: {
    writes: { type: "string", default: "10000" },
    warmup: { type: "string", default: "3000" },
    reps: { type: "string", default: "5" },
    "ring-bytes": { type: "string", default: String(1 << 20) },
  },
});
const WRITES = Number(args.writes);
const WARMUP = Number(args.warmup);
const REPS = Number(args.reps);
const keys = makeKeys(2000);
const values = makeValues(2000);
const PAD = "x".repeat(20);
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

type Payload = "kv put" | "WAL frame";
/** A turn's op as the connection queues it: a lone put, or one frame pushed into fresh columns. */
const op = (payload: Payload, i: number, tNs?: number): RingOp => {
  if (payload === "kv put") return { t: "puts", tier: 1, w: 180, n: 1, keys: [keys[i % 2000]!], values: [values[i % 2000]!] };
  const cols = frameColumns.empty();
  const body = makeFrameBody(i, `n${i % 100}`, values[0]!);
  // A wave's own timestamp (attach's frames carry one per wave), or the workload's constant one.
  if (tNs !== undefined) (body as { frame_t_ns: number }).frame_t_ns = (body.change as { t_ns: number }).t_ns = tNs;
  // The graph's value shape ({ v, s }), as suite 1's graph rows write.
  (body.change.change as { value: unknown }).value = { v: i, s: PAD };
  frameColumns.push(cols, asUnsealed(body));
  return { t: "columns", tier: 1, w: 600, n: 1, keys: [`g/wal/${String(i).padStart(20, "0")}`], cols };
};

/** The worker's checksum of a write (turn-ring-worker.ts), for the main thread's expected total. */
function sum(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return h;
}
const mix = (h: number, write: number): number => (Math.imul(h, 1_000_003) + write) | 0;
function expected(o: RingOp): number {
  if (o.t === "puts") return (sum(o.keys[0]!) + sum(JSON.stringify(o.values[0]))) | 0;
  const cols = o.cols as FrameColumns;
  return (sum(o.keys[0]!) + sum(JSON.stringify(columnsLayout.payload(cols, 0))) + sum(String(columnsLayout.path(cols, 0)))) | 0;
}

/** The connection's shape: ops queued in a turn, handed off by one setImmediate, by `send`. */
class Batcher {
  private queue: RingOp[] = [];
  private scheduled = false;
  constructor(private readonly send: (ops: RingOp[]) => void) {}
  push(o: RingOp): void {
    this.queue.push(o);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const ops = this.queue;
      this.queue = [];
      this.send(ops);
    });
  }
}

/** Round trips of both encodings through a small ring (wrapping many times), and the fallbacks. */
function selfCheck(): void {
  const sab = createTurnRing(4096);
  const w = new TurnRingWriter(sab);
  const r = new TurnRingReader(sab);
  for (let i = 0; i < 300; i++) {
    // Frames whose timestamps vary every third record (header slots partly the previous record's), two per record.
    const ops = [op("kv put", i), op("WAL frame", i, 1.7e18 + Math.floor(i / 3)), op("WAL frame", i + 1, 1.7e18 + i), { t: "puts" as const, tier: 2, w: 1, n: 1, keys: ["é-ключ"], values: [{ s: "ünï 😀", a: [1, null, true], ["__proto__"]: { x: -0 } }], open: true as const }];
    strictEqual(w.tryWrite(ops, 0), true);
    const got = r.next(0);
    const want = ops.map((o) => (o.t === "columns" ? { ...o, cols: [...(o.cols as unknown[])] } : o));
    deepStrictEqual(JSON.parse(JSON.stringify(got?.ops)), JSON.parse(JSON.stringify(want)));
    strictEqual(r.next(0), undefined);
  }
  // No encoding: the caller posts a message instead; a record larger than the ring does not fit.
  strictEqual(w.tryWrite([{ t: "puts", tier: 1, w: 1, n: 1, keys: ["k"], values: [10n] }], 0), false);
  strictEqual(w.tryWrite([{ t: "puts", tier: 1, w: 1, n: 1, keys: ["k"], values: ["x".repeat(5000)] }], 0), false);
  // A full ring refuses until the reader consumed; a record waits for the messages posted before it.
  let written = 0;
  while (w.tryWrite([op("kv put", written)], 1)) written++;
  strictEqual(r.next(0), undefined);
  let read = 0;
  while (r.next(1) !== undefined) read++;
  strictEqual(read, written);
}

async function main(): Promise<void> {
  selfCheck();
  const ring = createTurnRing(Number(args["ring-bytes"]));
  const workerData: TurnRingWorkerData = { ring };
  const worker = new Worker(new URL("./lib/turn-ring-worker.js", import.meta.url), { workerData });
  const writer = new TurnRingWriter(ring);
  let messages = 0;
  let fallbacks = 0;
  let want = 0;
  let wantChecksum = 0;
  const answers: Array<(m: SyncedMessage) => void> = [];
  worker.on("message", (m: SyncedMessage) => {
    if (m.type === SYNCED) answers.shift()!(m);
  });
  const post = (m: unknown): void => {
    worker.postMessage(m);
    messages++;
  };
  const viaMessage = (ops: RingOp[]): void => post(packWrites(ops as unknown as Op[]));
  const viaRing = (ops: RingOp[]): void => {
    if (writer.tryWrite(ops, messages)) return;
    fallbacks++;
    post({ type: OPS, position: writer.position, batch: packWrites(ops as unknown as Op[]) });
  };
  const sync = async (): Promise<void> => {
    const answered = new Promise<SyncedMessage>((r) => answers.push(r));
    post({ type: SYNC, position: writer.position });
    const a = await answered;
    if (a.applied !== want || a.checksum !== wantChecksum) throw new Error(`worker applied ${a.applied} writes (checksum ${a.checksum}), sent ${want} (${wantChecksum})`);
  };
  const setMode = (idlePolls: number): void => post({ type: MODE, idlePolls });

  /** One window: `n` writes one per turn through `hand`, then a sync; main-thread and all-threads CPU per write. */
  async function window(payload: Payload | undefined, hand: ((ops: RingOp[]) => void) | undefined, batched: boolean, n: number) {
    const batcher = hand === undefined ? undefined : new Batcher(hand);
    const write = (i: number): void => {
      if (payload === undefined || hand === undefined) return;
      const o = op(payload, i, 1.7e18 + i * 1024); // each wave its own timestamp, as attach's frames
      want++;
      wantChecksum = mix(wantChecksum, expected(o));
      if (batched) batcher!.push(o);
      else hand([o]);
    };
    const meter = await MainThreadMeter.start();
    for (let i = 0; i < n; i++) {
      write(i);
      await turn();
    }
    await sync();
    return meter.stop();
  }

  type Variant = { name: string; payload?: Payload; hand?: (ops: RingOp[]) => void; batched?: boolean; idlePolls?: number };
  const variants: Variant[] = [
    { name: "empty turn" },
    ...(["kv put", "WAL frame"] as const).flatMap((payload): Variant[] => [
      { name: `${payload}: writes message (the engine's)`, payload, hand: viaMessage },
      { name: `${payload}: ring, actor drains on a timer`, payload, hand: viaRing, idlePolls: 20 },
      { name: `${payload}: ring, actor woken every turn`, payload, hand: viaRing, idlePolls: 0 },
      { name: `${payload}: ring written at once (no end-of-turn step)`, payload, hand: viaRing, batched: false, idlePolls: 20 },
    ]),
  ];
  const samples = new Map<string, { main: number[]; all: number[]; fallbacks: number }>(variants.map((v) => [v.name, { main: [], all: [], fallbacks: 0 }]));
  const load = loadavg()[0]!;
  for (let rep = 0; rep < REPS; rep++) {
    for (const v of variants) {
      setMode(v.idlePolls ?? 20);
      await window(v.payload, v.hand, v.batched ?? true, rep === 0 ? WARMUP : Math.min(WARMUP, 500)); // warm
      const before = fallbacks;
      const r = await window(v.payload, v.hand, v.batched ?? true, WRITES);
      const s = samples.get(v.name)!;
      s.fallbacks += fallbacks - before;
      const main = usPerOp(r.mainCpuMs, WRITES) ?? usPerOp(r.eluActiveMs, WRITES);
      if (main !== undefined) s.main.push(main);
      s.all.push(usPerOp(r.processCpuMs, WRITES)!);
    }
    process.stderr.write(`rep ${rep + 1}/${REPS}\n`);
  }
  const last = await (async () => {
    const answered = new Promise<SyncedMessage>((r) => answers.push(r));
    post({ type: SYNC, position: writer.position });
    return answered;
  })();
  await worker.terminate();

  const median = (xs: number[]): number | undefined => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length === 0 ? undefined : s[Math.floor(s.length / 2)];
  };
  console.log(
    `${WRITES} writes one per turn, ${REPS} repetitions interleaved, load average at start ${load.toFixed(2)}; ` +
      `ring fallbacks ${fallbacks}, ring records ${last.records}, messages ${last.messages}, worker sleeps ${last.sleeps}, notifies ${writer.notifies}`,
  );
  console.log("| hand-off | main-thread CPU µs/write (median) | min | max | all threads µs/write (median) | fallbacks |\n|---|---:|---:|---:|---:|---:|");
  for (const [name, s] of samples) {
    console.log(`| ${name} | ${fmt(median(s.main))} | ${fmt(Math.min(...s.main))} | ${fmt(Math.max(...s.main))} | ${fmt(median(s.all))} | ${s.fallbacks} |`);
  }
}

await main();
