/**
 * Suite 2: durable WAL throughput. Graph changes become checksummed frames (attach) and reach SQLite with
 * synchronous FULL through the engine; the yardstick is raw better-sqlite3 committing the same frames,
 * pre-encoded, in 1000-row transactions. Every contender commits 1000 frames per transaction.
 */
import Database from "better-sqlite3";
import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import type { AttachPair, GraphCheckpointRecord } from "../../src/index.js";
import { NEW_STORE_PAGE_SIZE } from "../../src/backend/sqlite.js";
import { sqliteKv, sqliteSnapshot } from "../../src/tier/index.js";
import { graphWalPrefix, walFrameCodec, walFrameKey, type WALFrame } from "../../src/wal/index.js";
import { attachedStream, engineGraphTiers, rotatingValues } from "../lib/graphs.js";
import { fmt, ratio, verdict } from "../lib/goals.js";
import { addMeteredStreams, threadKindsNote, usPerOp, type StreamReading } from "../lib/meter.js";
import { latencyOf, newBench, type Budget } from "../lib/timing.js";
import type { Row, Suite, SuiteContext, SuiteOutput } from "../lib/types.js";
import { asUnsealed, makeFrameBody, makeKeys } from "../lib/workload.js";

/** Frames per transaction for every contender (per tick for the asynchronous ones). */
const CHUNK = 1000;
const RAW = "raw better-sqlite3 (pre-encoded, 1000-row txns)";
const ATTACH_ENGINE = "graph + attach + engine";

interface Contender {
  readonly name: string;
  readonly how: string;
  /** Writes `frames` frames (a multiple of CHUNK) and resolves when they are durable. */
  stream(frames: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * The raw yardstick: better-sqlite3 with the same pragmas (page size, normal locking, WAL, FULL) and table as the engine's
 * SQLite backend, so only the path to the disk differs; frames encoded and sealed before timing, one prepared
 * INSERT per frame, `chunk` frames per transaction. Suite 2 and bench/wal-actor.ts both measure this one.
 */
export function rawYardstick(path: string, chunk = CHUNK): { commitChunk(): void; close(): void } {
  const db = new Database(path);
  db.pragma(`page_size = ${NEW_STORE_PAGE_SIZE}`); // as a store the backend creates: before the first table
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.exec("CREATE TABLE IF NOT EXISTS graphrefly_storage (k TEXT PRIMARY KEY, v BLOB NOT NULL)");
  const insert = db.prepare<[string, Uint8Array]>("INSERT OR REPLACE INTO graphrefly_storage (k, v) VALUES (?, ?)");
  const paths = makeKeys(chunk, "n");
  const values = rotatingValues(chunk);
  const encoded = paths.map((p, j) => walFrameCodec.encode(asUnsealed(makeFrameBody(j + 1, p, values[j]!))));
  const prefix = graphWalPrefix("raw");
  let seq = 0;
  const commitChunk = db.transaction(() => {
    for (let j = 0; j < chunk; j++) insert.run(walFrameKey(prefix, ++seq), encoded[j]!);
  });
  return { commitChunk: () => commitChunk(), close: () => db.close() };
}

function rawSqlite(path: string): Contender {
  const raw = rawYardstick(path);
  return {
    name: RAW,
    how: "frames encoded and sealed before timing; one prepared INSERT per frame, synchronous on the main thread",
    stream: async (frames) => {
      for (let c = 0; c < frames / CHUNK; c++) raw.commitChunk();
    },
    close: async () => raw.close(),
  };
}

/** The engine kv row (frames without a graph); bench/attach-heap.ts runs it too. */
export function engineFrames(engine: StorageEngine, path: string): Contender {
  const wal = engine.kv<WALFrame>({ kind: "sqlite", path }, { name: "wal", codec: walFrameCodec });
  const paths = makeKeys(CHUNK, "n");
  const values = rotatingValues(CHUNK);
  const prefix = graphWalPrefix("frames");
  let seq = 0;
  return {
    name: "engine kv, frames without a graph",
    how: "frame bodies built on the main thread, `save()` ×1000 per tick; the worker seals (RFC 8785 + SHA-256) and commits",
    stream: async (frames) => {
      for (let c = 0; c < frames / CHUNK; c++) {
        for (let j = 0; j < CHUNK; j++) {
          seq++;
          wal.save(walFrameKey(prefix, seq), asUnsealed(makeFrameBody(seq, paths[j]!, values[j]!)));
        }
        await nextTurn();
      }
      await wal.flush();
    },
    close: () => wal.close(),
  };
}

/** One wave = one `graph.set` = one frame; 1000 waves per tick. `tiers` get the graph's name (the snapshot key). */
function attached(name: string, how: string, graphName: string, tiersFor: (graphName: string) => AttachPair): Contender & { ready: Promise<unknown> } {
  return { name, how, ...attachedStream(graphName, tiersFor(graphName), CHUNK) };
}

async function openContenders(ctx: SuiteContext, engine: StorageEngine, out: Contender[]): Promise<void> {
  out.push(rawSqlite(join(ctx.tempDir("s2-raw"), "store.db")));
  out.push(engineFrames(engine, join(ctx.tempDir("s2-frames"), "store.db")));
  const store = { kind: "sqlite" as const, path: join(ctx.tempDir("s2-attach"), "store.db") };
  const viaEngine = attached(
    ATTACH_ENGINE,
    "`graph.set()` ×1000 per tick → attach diffs each wave into a frame → engine WAL kv (sealed in the worker)",
    "via-engine",
    (graphName) => engineGraphTiers(engine, store, graphName),
  );
  out.push(viaEngine);
  await viaEngine.ready;
  const dir = ctx.tempDir("s2-inline");
  const viaInline = attached(
    "graph + attach + inline sqlite tiers",
    "the same graph writes on the main thread: sealing, encoding and the 1000-row transaction (compactEvery 1000) run inline",
    "via-inline",
    (graphName) => ({
      snapshot: sqliteSnapshot<GraphCheckpointRecord>(join(dir, "snapshot.db"), { name: graphName }),
      wal: sqliteKv<WALFrame>(join(dir, "wal.db"), { name: "wal", codec: walFrameCodec, debounceMs: 60_000, compactEvery: CHUNK }),
    }),
  );
  out.push(viaInline);
  await viaInline.ready;
}

/** bench/sample-timeline.ts's hook: set only when that module was loaded with `--import` (a timeline run). */
interface TimelineHook {
  mark(start: boolean, contender: string): void;
  dump(): Promise<void>;
}
const timeline = (globalThis as { __graphreflyTimeline?: TimelineHook }).__graphreflyTimeline;

/** `c` with each sample's start and end marked on the timeline. */
function timed(c: Contender, hook: TimelineHook): Contender {
  return {
    name: c.name,
    how: c.how,
    stream: async (frames) => {
      hook.mark(true, c.name);
      await c.stream(frames);
      hook.mark(false, c.name);
    },
    close: () => c.close(),
  };
}

export const walThroughputSuite: Suite = {
  id: 2,
  title: "Durable WAL throughput",
  async run(ctx): Promise<SuiteOutput> {
    const frames = ctx.quick ? 2 * CHUNK : 5 * CHUNK;
    const budget: Budget = ctx.quick
      ? { time: 300, iterations: 3, warmupTime: 100, warmupIterations: 1 }
      : { time: 3000, iterations: 10, warmupTime: 500, warmupIterations: 2 };
    // Measurement only (design §3.53): GRAPHREFLY_SUITE2_CHECKPOINT_THREAD=0 runs the engine without its checkpointer thread.
    const engine = openStorageEngine(process.env["GRAPHREFLY_SUITE2_CHECKPOINT_THREAD"] === "0" ? { checkpointThread: false } : {});
    const contenders: Contender[] = [];
    const readings = new Map<string, StreamReading>();
    const bench = newBench("durable WAL throughput", budget);
    try {
      await openContenders(ctx, engine, contenders);
      addMeteredStreams(bench, timeline ? contenders.map((c) => timed(c, timeline)) : contenders, frames, readings);
      ctx.log(`suite 2: ${contenders.length} contenders, ${frames} frames per sample`);
      await bench.run();
      await timeline?.dump(); // before the engine's workers end
    } finally {
      for (const c of contenders) await c.close();
      await engine.close();
    }

    const rate = new Map<string, number>();
    const rows: Row[] = contenders.map((c) => {
      const lat = latencyOf(bench.getTask(c.name)!);
      const m = readings.get(c.name)!;
      const perSec = (frames * 1000) / lat.meanMs;
      rate.set(c.name, perSec);
      return {
        name: c.name,
        framesPerSec: perSec,
        sampleMeanMs: lat.meanMs,
        sampleP99Ms: lat.p99Ms,
        mainCpuUs: m.reading ? usPerOp(m.reading.mainCpuMs ?? m.reading.eluActiveMs, m.frames) : undefined,
        processCpuUs: m.reading ? usPerOp(m.reading.processCpuMs, m.frames) : undefined,
      };
    });
    for (const row of rows) row.vsRaw = ratio(rate.get(String(row.name)), rate.get(RAW));
    // Where the CPU beyond the main thread goes (the store actor's worker against V8's helper threads), for design §3.40.
    for (const c of contenders) {
      const m = readings.get(c.name)!;
      const t = m.reading?.otherThreadsCpuMs;
      if (t === undefined || c.name === RAW) continue;
      const k = t.byKind;
      ctx.log(
        `suite 2: ${c.name}: other threads CPU µs/frame: busiest ${fmt(usPerOp(t.busiest, m.frames))}, ` +
          `rest ${fmt(usPerOp(t.rest, m.frames))}` +
          (k === undefined
            ? ""
            : ` (by kind: actor ${fmt(usPerOp(k.actor, m.frames))}, other workers ${fmt(usPerOp(k.workers, m.frames))}, ` +
              `checkpointer ${fmt(usPerOp(k.checkpointer, m.frames))}, libuv ${fmt(usPerOp(k.libuv, m.frames))}, ` +
              `platform ${fmt(usPerOp(k.platform, m.frames))})`),
      );
    }
    const kinds = threadKindsNote();
    if (kinds !== undefined) ctx.log(`suite 2: threads by kind: ${kinds}`);
    const attachRatio = ratio(rate.get(ATTACH_ENGINE), rate.get(RAW));
    return {
      title: "Durable WAL throughput",
      legend: [
        `One sample = ${frames} frames written as ${frames / CHUNK} transactions of ${CHUNK}, timed until the last is durable ` +
          "(SQLite WAL journal, synchronous FULL, normal locking for every contender); frames/s = frames / sample mean.",
        "Frames are `node.set` frames of a ~100-byte record (~450 bytes sealed). main CPU / all-threads CPU as in suite 1, per frame.",
        `Rows: ${contenders.map((c) => `${c.name}: ${c.how}`).join("; ")}.`,
      ],
      columns: [
        { key: "name", label: "contender" },
        { key: "framesPerSec", label: "durable frames/s", kind: "number" },
        { key: "sampleMeanMs", label: "sample mean ms", kind: "number" },
        { key: "sampleP99Ms", label: "sample p99 ms", kind: "number" },
        { key: "mainCpuUs", label: "main CPU µs/frame", kind: "number" },
        { key: "processCpuUs", label: "all-threads CPU µs/frame", kind: "number" },
        { key: "vsRaw", label: "× raw rate", kind: "ratio" },
      ],
      rows,
      goals: [
        verdict(
          "2.raw",
          "attach + engine durable frames/s ≥ 0.6× raw batched SQLite (issue 13)",
          attachRatio === undefined ? undefined : attachRatio >= 0.6,
          `${fmt(rate.get(ATTACH_ENGINE))} vs ${fmt(rate.get(RAW))} frames/s = ${fmt(attachRatio)}×`,
        ),
      ],
      config: { framesPerSample: frames, chunk: CHUNK, budget, sqliteSynchronous: "FULL", attachCompactEvery: "Infinity" },
      figures: Object.fromEntries(contenders.map((c) => [c.name, { ...readings.get(c.name), latency: latencyOf(bench.getTask(c.name)!) }])),
    };
  },
};
