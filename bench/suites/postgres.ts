/**
 * Suite 6: PostgreSQL. Durable WAL frames/s and main-thread CPU per change through the engine (graph + attach, the
 * store's connection in its actor) against raw `pg` inserting the same frames pre-encoded, 1000 per statement, in the
 * same run on the same server; then failover time: kill -9 of a writer process → first write acknowledged by the
 * writer process that was waiting for the store. The suite starts its own throwaway server (fsync on, as the tests'
 * helper starts it otherwise), or uses PG_URL.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { byteaArray } from "../../src/backend/postgres-codec.js";
import { openStorageEngine, type PostgresStoreSpec, type StorageEngine } from "../../src/engine/index.js";
import { graphWalPrefix, walFrameCodec, walFrameKey } from "../../src/wal/index.js";
import { attachedStream, engineGraphTiers, rotatingValues } from "../lib/graphs.js";
import { fmt, info, notMeasured, ratio } from "../lib/goals.js";
import { addMeteredStreams, usPerOp, type StreamReading } from "../lib/meter.js";
import { startPostgresServer, type PostgresServer } from "../lib/postgres-server.js";
import { latencyOf, newBench, type Budget } from "../lib/timing.js";
import type { Row, Suite, SuiteContext, SuiteOutput } from "../lib/types.js";
import { asUnsealed, makeFrameBody, makeKeys } from "../lib/workload.js";

const CHUNK = 1000;
const RAW = "raw pg (pre-encoded, 1000 rows per statement)";
const ATTACH_ENGINE = "graph + attach + engine (PostgreSQL)";
const ENTRY = new URL("../../src/index.js", import.meta.url).href;

interface Contender {
  readonly name: string;
  readonly how: string;
  stream(frames: number): Promise<void>;
  close(): Promise<void>;
}

interface Database {
  readonly url: string;
  readonly schema: string;
  close(): Promise<void>;
}

/** The suite's database: a throwaway server (fsync on), or PG_URL with a schema of its own, dropped at the end. */
async function database(ctx: SuiteContext): Promise<Database> {
  const schema = `bench_${randomBytes(4).toString("hex")}`;
  const given = process.env.PG_URL;
  let server: PostgresServer | undefined;
  if (!given) {
    ctx.log("suite 6: starting a throwaway PostgreSQL server (fsync on)");
    server = await startPostgresServer({ fsync: true });
    await server.ready();
  }
  const url = given ?? server!.url;
  return {
    url,
    schema,
    async close() {
      if (server) return server.stop();
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    },
  };
}

/** Raw pg, one statement per 1000 pre-encoded frames into a table of the backend's layout (no lease, no fencing). */
async function rawPg(db: Database): Promise<Contender> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  const table = `"${db.schema}".raw_frames`;
  await c.query(`CREATE SCHEMA IF NOT EXISTS "${db.schema}"`);
  await c.query(`CREATE TABLE ${table} (store text COLLATE "C" NOT NULL, k text COLLATE "C" NOT NULL, v bytea NOT NULL, PRIMARY KEY (store, k))`);
  const paths = makeKeys(CHUNK, "n");
  const values = rotatingValues(CHUNK);
  const encoded = paths.map((p, j) => walFrameCodec.encode(asUnsealed(makeFrameBody(j + 1, p, values[j]!))));
  const prefix = graphWalPrefix("raw");
  const sql = `INSERT INTO ${table} (store, k, v) SELECT 'raw', u.k, u.v FROM unnest($1::text[], $2::bytea[]) AS u(k, v)
    ON CONFLICT (store, k) DO UPDATE SET v = EXCLUDED.v`;
  let seq = 0;
  return {
    name: RAW,
    how: "frames encoded and sealed before timing; keys text[] and values as one binary bytea[] (unnest), autocommit, on the main thread",
    stream: async (frames) => {
      for (let n = 0; n < frames / CHUNK; n++) {
        const keys = encoded.map(() => walFrameKey(prefix, ++seq));
        await c.query({ name: "raw_insert", text: sql, values: [keys, byteaArray(encoded)] });
      }
    },
    close: () => c.end(),
  };
}

/** One wave = one `graph.set` = one frame; 1000 waves per tick. */
function attached(engine: StorageEngine, store: PostgresStoreSpec): Contender & { ready: Promise<unknown> } {
  return {
    name: ATTACH_ENGINE,
    how: "`graph.set()` ×1000 per tick → attach diffs each wave into a frame → engine WAL kv; the actor seals and commits (one fenced statement per flush)",
    ...attachedStream("pg-bench", engineGraphTiers(engine, store, "pg-bench"), CHUNK),
  };
}

/** A writer process: waits for the store's lease, then saves and flushes one key after another, saying "ack". */
const WRITER = `
const { openStorageEngine } = await import(process.argv[1]);
const store = JSON.parse(process.argv[2]);
const engine = openStorageEngine({ threads: 1, onError: () => undefined });
const kv = engine.kv(store, { name: "failover" });
for (let i = 0; ; i++) {
  kv.save("k" + (i % 100), i);
  await kv.flush();
  process.stdout.write("ack\\n");
}
`;

interface Writer {
  readonly child: ChildProcess;
  acks(): number;
  /** Resolves at the arrival of the first "ack" line after now. */
  nextAck(): Promise<number>;
}

function startWriter(store: PostgresStoreSpec): Writer {
  const child = spawn(process.execPath, ["--input-type=module", "-e", WRITER, ENTRY, JSON.stringify(store)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let acks = 0;
  const waiting: Array<(at: number) => void> = [];
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    const at = performance.now();
    acks += chunk.split("\n").length - 1;
    for (const w of waiting.splice(0)) w(at);
  });
  return { child, acks: () => acks, nextAck: () => new Promise((resolve) => waiting.push(resolve)) };
}

async function stopWriter(w: Writer): Promise<void> {
  if (w.child.exitCode !== null || w.child.signalCode !== null) return;
  const closed = once(w.child, "close");
  w.child.kill("SIGKILL");
  await closed;
}

/**
 * SQL: whether the session named $1 (application_name) is blocked on an advisory lock: a writer waiting for the lease
 * on the holder's liveness lock (fast failover), which the server grants the moment the holder's session ends.
 */
const WAITS_ON_LIVENESS_SQL = `SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock' AND wait_event = 'advisory'`;

/**
 * Resolves once `waiter` (its sessions named `name`) is seen blocked on the holder's liveness lock ("waiting"), or
 * has written ("acked": the holder lost its lease first). A waiter still starting when the holder dies takes the
 * store only at the lease's expiry: with a fixed delay before the kill, a loaded machine's round timed the lease.
 */
async function waitingOnLiveness(db: Database, name: string, waiter: Writer): Promise<"waiting" | "acked"> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  // Only a safety net (a waiter that never gets there would hang the run): no figure depends on it.
  const giveUpAt = performance.now() + 120_000;
  try {
    for (;;) {
      if (waiter.acks() > 0) return "acked";
      if ((await c.query(WAITS_ON_LIVENESS_SQL, [name])).rows.length > 0) return "waiting";
      if (waiter.child.exitCode !== null || waiter.child.signalCode !== null) throw new Error(`suite 6: failover writer ${name} ended`);
      if (performance.now() > giveUpAt) throw new Error(`suite 6: failover writer ${name} was never seen waiting on the holder's liveness lock in 120 s`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    await c.end();
  }
}

/** kill -9 of the holder → first write acknowledged by the writer that was waiting, `rounds` times. */
async function failover(db: Database, ctx: SuiteContext, ttlMs: number, rounds: number): Promise<number[]> {
  // Each writer's sessions by a name of their own, so the waiter's lease connection can be found in pg_stat_activity.
  const writer = (name: string): Writer => {
    const url = new URL(db.url);
    url.searchParams.set("application_name", name);
    const store: PostgresStoreSpec = {
      kind: "postgres",
      url: url.href,
      schema: db.schema,
      store: "failover",
      lease: { ttlMs, renewEveryMs: Math.max(1, Math.floor(ttlMs / 4)), waitMs: 600_000 },
    };
    return startWriter(store);
  };
  const times: number[] = [];
  let holder = writer(`grf-bench-failover-0-${db.schema}`);
  const all = [holder];
  try {
    await holder.nextAck();
    for (let r = 0; r < rounds; r++) {
      const name = `grf-bench-failover-${r + 1}-${db.schema}`;
      const waiter = writer(name);
      all.push(waiter);
      if ((await waitingOnLiveness(db, name, waiter)) === "acked") {
        // The holder could not renew in time (an overloaded machine): the lease did its job, but there is no kill to time.
        ctx.log(`suite 6: failover ${r + 1}/${rounds} not measured: the holder lost its lease before the kill`);
        await stopWriter(holder);
        holder = waiter;
        continue;
      }
      const first = waiter.nextAck();
      const killedAt = performance.now();
      await stopWriter(holder);
      times.push((await first) - killedAt);
      ctx.log(`suite 6: failover ${r + 1}/${rounds}: ${times[times.length - 1]!.toFixed(0)} ms (lease ${ttlMs} ms)`);
      holder = waiter;
    }
  } finally {
    for (const w of all) await stopWriter(w);
  }
  return times;
}

export const postgresSuite: Suite = {
  id: 6,
  title: "PostgreSQL: durable frames and failover",
  async run(ctx): Promise<SuiteOutput> {
    const frames = ctx.quick ? 2 * CHUNK : 5 * CHUNK;
    const budget: Budget = ctx.quick
      ? { time: 300, iterations: 3, warmupTime: 100, warmupIterations: 1 }
      : { time: 3000, iterations: 10, warmupTime: 500, warmupIterations: 2 };
    const ttlMs = ctx.quick ? 2000 : 3000;
    const rounds = ctx.quick ? 1 : 3;
    const db = await database(ctx);
    const engine = openStorageEngine();
    const contenders: Contender[] = [];
    const readings = new Map<string, StreamReading>();
    const bench = newBench("PostgreSQL durable frames", budget);
    let failovers: number[];
    try {
      contenders.push(await rawPg(db));
      const viaEngine = attached(engine, { kind: "postgres", url: db.url, schema: db.schema, store: "bench" });
      contenders.push(viaEngine);
      await viaEngine.ready;
      addMeteredStreams(bench, contenders, frames, readings);
      ctx.log(`suite 6: ${contenders.length} contenders, ${frames} frames per sample`);
      await bench.run();
      for (const c of contenders.splice(0)) await c.close();
      await engine.close();
      failovers = await failover(db, ctx, ttlMs, rounds);
    } finally {
      for (const c of contenders) await c.close().catch(() => undefined);
      await engine.close();
      await db.close();
    }

    const rate = new Map<string, number>();
    const names = [RAW, ATTACH_ENGINE];
    const rows: Row[] = names.map((name) => {
      const lat = latencyOf(bench.getTask(name)!);
      const m = readings.get(name)!;
      const perSec = (frames * 1000) / lat.meanMs;
      rate.set(name, perSec);
      return {
        name,
        framesPerSec: perSec,
        sampleMeanMs: lat.meanMs,
        sampleP99Ms: lat.p99Ms,
        mainCpuUs: m.reading ? usPerOp(m.reading.mainCpuMs ?? m.reading.eluActiveMs, m.frames) : undefined,
        processCpuUs: m.reading ? usPerOp(m.reading.processCpuMs, m.frames) : undefined,
      };
    });
    for (const row of rows) row.vsRaw = ratio(rate.get(String(row.name)), rate.get(RAW));
    const meanFailover = failovers.length === 0 ? undefined : failovers.reduce((a, b) => a + b, 0) / failovers.length;
    rows.push({ name: `failover: kill -9 → first ack by the waiting writer (lease ${ttlMs} ms, ${failovers.length} of ${rounds})`, failoverMs: meanFailover });
    const engineRow = rows[1]!;
    return {
      title: "PostgreSQL: durable frames and failover",
      legend: [
        `One sample = ${frames} frames as ${frames / CHUNK} statements of ${CHUNK}, timed until the last is committed ` +
          "(synchronous_commit on; the throwaway server runs with fsync on). frames/s = frames / sample mean.",
        "main CPU / all-threads CPU as in suite 1, per frame (one frame = one graph change).",
        `Rows: ${RAW}: frames encoded and sealed before timing, one binary bytea[] per statement, no lease; ` +
          `${ATTACH_ENGINE}: the real path, every statement also checks and extends the store's lease.`,
        "Failover: a writer process (engine kv, flush per write) holds the store; a second one waits for the lease; once " +
          "pg_stat_activity shows it blocked on the holder's liveness lock, the holder is killed with SIGKILL; the figure is " +
          "the time to the waiting process's first acknowledged write " +
          "(the end of the killed holder's session, which wakes the waiting process's wait on its liveness lock " +
          "(lease.fastFailover), then its open and first commit; without that lock seen held, the lease expiry by the database clock and at most 250 ms of polling).",
      ],
      columns: [
        { key: "name", label: "contender" },
        { key: "framesPerSec", label: "durable frames/s", kind: "number" },
        { key: "sampleMeanMs", label: "sample mean ms", kind: "number" },
        { key: "sampleP99Ms", label: "sample p99 ms", kind: "number" },
        { key: "mainCpuUs", label: "main CPU µs/frame", kind: "number" },
        { key: "processCpuUs", label: "all-threads CPU µs/frame", kind: "number" },
        { key: "vsRaw", label: "× raw rate", kind: "ratio" },
        { key: "failoverMs", label: "failover ms", kind: "number" },
      ],
      rows,
      goals: [
        info(
          "6.raw",
          "attach + engine on PostgreSQL vs raw pg batched inserts (durable frames/s)",
          `${fmt(rate.get(ATTACH_ENGINE))} vs ${fmt(rate.get(RAW))} frames/s = ${fmt(ratio(rate.get(ATTACH_ENGINE), rate.get(RAW)))}×; main CPU ${fmt(engineRow.mainCpuUs as number | undefined)} µs per change`,
        ),
        meanFailover === undefined
          ? notMeasured("6.failover", "failover time, kill -9 → first write acknowledged by the new holder", "every holder lost its lease before the kill (overloaded machine)")
          : info("6.failover", "failover time, kill -9 → first write acknowledged by the new holder", `${fmt(meanFailover)} ms mean over ${failovers.length} (lease ${ttlMs} ms)`),
      ],
      config: { framesPerSample: frames, chunk: CHUNK, budget, leaseTtlMs: ttlMs, failoverRounds: rounds, server: process.env.PG_URL ? "PG_URL" : "throwaway, fsync on" },
      figures: {
        failoverMs: failovers,
        ...Object.fromEntries(names.map((n) => [n, { ...readings.get(n), latency: latencyOf(bench.getTask(n)!) }])),
      },
    };
  },
};
