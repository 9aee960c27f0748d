/**
 * `node dist/bench/actor-replay.js [--frames 20000] [--reps 7] [--trees /path/a,/path/b] [--ahead first|later|none]`:
 * the store actor's own CPU per WAL frame on suite 2's attach stream, without the main thread or the port. The
 * frames a graph of 1000 nodes saves through attach (one `graph.set` a wave, 1000 waves a tick) are captured by a
 * WAL tier that keeps them, then replayed into an in-process StoreActor on a SQLite file in suite 2's shape:
 * samples of 5 ticks of 1000 frames, each tick one columns op as the connection builds it (`frameColumns.push`),
 * the whole sample applied as a backlog, then a flush. As the connection does while the actor trails, ticks after a
 * sample's first cross with their payloads as canonical text (`--ahead later`, the default; `first`: every tick,
 * `none`: none). Each op crosses a MessageChannel: posted before the clock starts, received inside it, so the figure
 * includes the worker's deserialization of the message, not the main thread's serialization.
 * `--trees`: compiled work trees (each with dist/) replayed in turn, interleaved, in one process: the A/B of two
 * builds of the actor under the same machine load. CPU is this thread's (Linux schedstat; the actor runs on it).
 * For a profile: `node --cpu-prof dist/bench/actor-replay.js`. Not part of `npm run bench`.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { MessageChannel, receiveMessageOnPort } from "node:worker_threads";
import { walFrameCodec, type WALFrame } from "../src/wal/index.js";
import { attachedStream, discardingTiers } from "./lib/graphs.js";

const { values: args } = parseArgs({
  options: {
    frames: { type: "string", default: "20000" },
    reps: { type: "string", default: "7" },
    trees: { type: "string" },
    ahead: { type: "string", default: "later" },
    synchronous: { type: "string", default: "FULL" },
  },
});
const TICK = 1000;
const SAMPLE = 5 * TICK;
const FRAMES = Math.ceil(Number(args.frames) / SAMPLE) * SAMPLE;
const REPS = Number(args.reps);
const AHEAD = args.ahead;
const SYNC = args.synchronous as "FULL" | "OFF";

type Modules = {
  actor: typeof import("../src/engine/actor.js");
  counters: typeof import("../src/engine/actor-counters.js");
  columns: typeof import("../src/wal/frame-columns.js");
  protocol: typeof import("../src/engine/protocol.js");
};

/** The compiled modules of a work tree (its dist/), or of this build. */
async function load(tree: string | undefined): Promise<Modules> {
  const at = (path: string) => (tree === undefined ? `../src/${path}` : pathToFileURL(resolve(tree, "dist/src", path)).href);
  return {
    actor: (await import(at("engine/actor.js"))) as Modules["actor"],
    counters: (await import(at("engine/actor-counters.js"))) as Modules["counters"],
    columns: (await import(at("wal/frame-columns.js"))) as Modules["columns"],
    protocol: (await import(at("engine/protocol.js"))) as Modules["protocol"],
  };
}

/** Suite 2's attach stream: what the WAL tier is given, key and frame, `frames` of them after a warm-up. */
async function capture(frames: number): Promise<Array<readonly [string, WALFrame]>> {
  const got: Array<readonly [string, WALFrame]> = [];
  let on = false;
  const tiers = discardingTiers();
  tiers.wal.save = (key: string, frame: WALFrame) => void (on && got.push([key, frame]));
  const stream = attachedStream("g", tiers, TICK);
  await stream.ready;
  await stream.stream(2 * TICK);
  on = true;
  await stream.stream(frames);
  await stream.close();
  return got;
}

/** The columns ops of the stream, one a tick, payloads ahead as `--ahead` says; cloned as a port clones them. */
function columnsOps(m: Modules, frames: ReadonlyArray<readonly [string, WALFrame]>): unknown[] {
  const fc = m.columns.frameColumns;
  const ops: unknown[] = [];
  for (let t = 0; t * TICK < frames.length; t++) {
    const cols = fc.empty();
    const keys: string[] = [];
    for (const [key, frame] of frames.slice(t * TICK, (t + 1) * TICK)) {
      if (!fc.push(cols, frame)) throw new Error(`frame ${key} does not fit the columns`);
      keys.push(key);
    }
    const first = t % 5 === 0;
    if (AHEAD === "first" || (AHEAD === "later" && !first)) fc.encodeAhead!(cols);
    ops.push({ t: "columns", tier: 1, keys, cols, w: 300 * TICK, n: TICK });
  }
  return ops;
}

const nap = new Int32Array(new SharedArrayBuffer(4));
/** This thread's CPU ns. schedstat is brought up to date when the thread is descheduled: a 1 ms sleep first. */
function threadCpuNs(): number {
  Atomics.wait(nap, 0, 0, 1);
  return Number(readFileSync("/proc/thread-self/schedstat", "latin1").split(" ", 1)[0]);
}

/**
 * One replay into a fresh store; the actor's CPU µs per frame. The ops are posted on a MessageChannel before the
 * clock starts and received inside it (`receiveMessageOnPort`), so the figure includes their deserialization, as the
 * worker pays it, and not their serialization (the main thread's).
 */
async function replay(m: Modules, ops: unknown[]): Promise<number> {
  const { port1, port2 } = new MessageChannel();
  for (const op of ops) port1.postMessage(op);
  const dir = mkdtempSync(join(tmpdir(), "actor-replay-"));
  const actor = new m.actor.StoreActor({ store: { kind: "sqlite", path: join(dir, "store.db") }, synchronous: SYNC, counters: new m.counters.ActorCounters().buffer });
  try {
    await actor.ready();
    const spec = { kind: "kv" as const, name: "g-wal", debounceMs: undefined, compactEvery: undefined, codec: { kind: "builtin" as const, name: walFrameCodec.name } };
    await actor.apply([{ t: "open", tier: 1, spec, id: 1 }]);
    let id = 2;
    const cpu0 = threadCpuNs();
    for (let s = 0; s < ops.length; s += 5) {
      for (let t = s; t < s + 5 && t < ops.length; t++) actor.applyWrites([receiveMessageOnPort(port2)!.message as never]);
      const { results } = await actor.apply([{ t: "flush", tier: 1, id: id++ }]);
      if (!results[0]!.ok) throw new Error(`flush failed: ${JSON.stringify(results[0])}`);
    }
    return (threadCpuNs() - cpu0) / 1000 / (ops.length * TICK);
  } finally {
    port1.close();
    await actor.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
}

const trees = args.trees === undefined ? [undefined] : args.trees.split(",");
const frames = await capture(FRAMES);
const builds = await Promise.all(trees.map(async (tree) => ({ tree: tree ?? "this build", m: await load(tree) })));
const runs = builds.map(() => [] as number[]);
for (const { m } of builds) await replay(m, columnsOps(m, frames)); // warm-up (the JIT, the heap): not counted
for (let r = 0; r < REPS; r++) {
  for (const [i, { m }] of builds.entries()) runs[i]!.push(await replay(m, columnsOps(m, frames)));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
console.log(`${FRAMES} frames × ${REPS} (samples of ${SAMPLE}, payloads ahead: ${AHEAD}, synchronous ${SYNC}), load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
for (const [i, { tree }] of builds.entries()) {
  const xs = runs[i]!;
  console.log(`${tree}: actor CPU µs/frame median ${median(xs).toFixed(2)}, min ${Math.min(...xs).toFixed(2)} (runs ${xs.map((x) => x.toFixed(2)).join(", ")})`);
}
