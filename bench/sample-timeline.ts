/**
 * A timeline of suite 2's samples on both threads (docs/design.md §3.49), a bench tool, off unless loaded:
 *
 *   GRAPHREFLY_TIMELINE=/tmp/tl.json node --import ./dist/bench/sample-timeline.js dist/bench/run.js --suite 2
 *   node dist/bench/sample-timeline.js /tmp/tl.json [--contender attach] [--all]
 *
 * Loaded with `--import` (the engine's workers inherit it through execArgv), it records in every thread, on one clock
 * (performance.timeOrigin + now(), ms since the epoch): on the main thread each tick's end (the bench's `nextTurn`
 * call) and start (its resolution), each writes batch posted (its puts, whether a part: MORE), each request batch
 * posted (the flush) and each answer heard; in a store actor's thread each message dispatched (and its listener's
 * end), the actor's apply of it, `putEach` (the columns' encoding and the tier's puts), each SQLite transaction
 * (its start, the end of its statements, its end after COMMIT: the fsync), each answer posted; GC pauses in both
 * isolates (PerformanceObserver "gc"). Suite 2 marks each sample's start and end (bench/suites/wal-throughput.ts,
 * through `globalThis.__graphreflyTimeline`, absent unless this module was loaded) and asks for the dump before its
 * engine closes; the workers answer over a BroadcastChannel. Run without `--import` the module is the report: per
 * sample of a contender, where its wall time went, and the fast and slow samples compared.
 *
 * Measurement-only switches (the engine's stores, never raw, which runs on the main thread): GRAPHREFLY_TIMELINE_
 * AUTOCHECKPOINT=<pages> sets their wal_autocheckpoint; GRAPHREFLY_TIMELINE_CHECKPOINTER=1 checkpoints from a thread
 * and connection of its own (startCheckpointer), with the writer's autocheckpoint off, or with it kept as the bound
 * when GRAPHREFLY_TIMELINE_CHECKPOINTER_AT=<frames> sets where the thread starts; GRAPHREFLY_TIMELINE_DEFER_SYNC=1
 * commits at synchronous NORMAL and syncs the -wal before the actor posts answers, =2 also syncs it on libuv's pool
 * after each commit (design §3.55). GRAPHREFLY_TIMELINE_BOUND=<frames> (report: the writer's bound, default 4000).
 */
import { BroadcastChannel, isMainThread, MessagePort, threadId, Worker } from "node:worker_threads";
import { PerformanceObserver, performance } from "node:perf_hooks";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { closeSync, fdatasync, fdatasyncSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from "node:fs";

/** Event codes: one number each, so recording is an array push of four numbers. */
const E = {
  sampleStart: 1,
  sampleEnd: 2,
  tickEnd: 3,
  tickStart: 4,
  postWrites: 5,
  postRequests: 6,
  heardAnswer: 7,
  dispatch: 10,
  dispatchEnd: 11,
  applyStart: 12,
  applyEnd: 13,
  putEachStart: 14,
  putEachEnd: 15,
  txStart: 16,
  txStatementsEnd: 17,
  txEnd: 18,
  postAnswer: 19,
  gc: 20,
  /** This thread's schedstat: a = CPU ms, b = ms runnable but waiting for a core (both since the thread started). */
  sched: 21,
  /** The core this thread last ran on (a). */
  core: 22,
  /** A transaction's end found the database file grown (a = MiB): SQLite's autocheckpoint ran inside its COMMIT. */
  checkpoint: 23,
  /** The wal-index header at a transaction's start and end (a = mxFrame, b = nBackfill): read from the -shm. */
  walAtTxStart: 24,
  walAtTxEnd: 25,
  /** All of the process's threads' CPU (a) and run-queue wait (b), ms, summed over /proc/self/task: at a sample's bounds. */
  processSched: 26,
} as const;

const CHANNEL = "graphrefly-sample-timeline";
/** [time ms, code, a, b] flattened. */
type Events = number[];

interface Dump {
  readonly main: Events;
  readonly contenders: string[];
  readonly workers: Array<{ threadId: number; events: Events }>;
}

interface TimelineHook {
  mark(start: boolean, contender: string): void;
  dump(): Promise<void>;
}

const now = (): number => performance.timeOrigin + performance.now();

function install(out: string): void {
  const events: Events = [];
  const rec = (code: number, a = 0, b = 0): void => void events.push(now(), code, a, b);
  // This thread's CPU and run-queue wait (Linux), read at the points that bound a sample's phases: ~5 µs a read.
  const fd = openSync("/proc/thread-self/schedstat", "r");
  const statFd = openSync("/proc/thread-self/stat", "r");
  const buf = Buffer.alloc(1024);
  const sched = (): void => {
    const t = now();
    let n = readSync(fd, buf, 0, buf.length, 0);
    const [cpu, wait] = buf.toString("latin1", 0, n).split(" ");
    events.push(t, E.sched, Number(cpu) / 1e6, Number(wait) / 1e6);
    n = readSync(statFd, buf, 0, buf.length, 0);
    const text = buf.toString("latin1", 0, n);
    // Field 39 (processor), counted from the state after the command's closing parenthesis (field 3).
    events.push(t, E.core, Number(text.slice(text.lastIndexOf(")") + 2).split(" ")[36]), 0);
  };
  // Every thread of the process (the checkpointer's and V8's too): is the second core busy through a sample?
  const processSched = (): void => {
    const t = now();
    let cpu = 0;
    let wait = 0;
    for (const tid of readdirSync("/proc/self/task")) {
      try {
        const f = openSync(`/proc/self/task/${tid}/schedstat`, "r");
        const n = readSync(f, buf, 0, buf.length, 0);
        closeSync(f);
        const [c, w] = buf.toString("latin1", 0, n).split(" ");
        cpu += Number(c) / 1e6;
        wait += Number(w) / 1e6;
      } catch {
        // a thread that ended meanwhile
      }
    }
    events.push(t, E.processSched, cpu, wait);
  };
  /** Set in a worker under GRAPHREFLY_TIMELINE_DEFER_SYNC=1 (below): runs before the actor posts answers. */
  let beforeAnswer: (() => void) | undefined;
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind ?? 0;
      events.push(performance.timeOrigin + entry.startTime, E.gc, entry.duration, kind);
    }
  });
  gc.observe({ entryTypes: ["gc"] });
  const proto = MessagePort.prototype as unknown as Record<string, unknown>;
  const post = proto.postMessage as (this: MessagePort, ...args: unknown[]) => unknown;
  // The native handle's answer is returned: BroadcastChannel reads it (undefined: "could not be posted").
  proto.postMessage = function (this: MessagePort, m: unknown, ...rest: unknown[]): unknown {
    if (Array.isArray(m) && m[0] === "graphrefly.writes") {
      const { puts, more } = writesSummary(m);
      rec(E.postWrites, puts, more ? 1 : 0);
    } else if (isTyped(m, "graphrefly.requests")) {
      rec(E.postRequests, (m as { ops: unknown[] }).ops.length);
      if (isMainThread) processSched();
    }
    else if (isTyped(m, "graphrefly.results")) beforeAnswer?.(), rec(E.postAnswer, (m as { results?: unknown[] }).results?.length ?? 0), sched();
    return post.apply(this, [m, ...rest]);
  };
  // Listeners are wrapped, so `off(listener)` no longer finds them: fine for a bench run, the tool is for nothing else.
  const on = proto.on as (this: MessagePort, type: string, l: (m: unknown) => void) => MessagePort;
  const wrapOn = function (this: MessagePort, type: string, l: (m: unknown) => void): MessagePort {
    if (type !== "message") return on.call(this, type, l);
    return on.call(this, type, (m: unknown) => {
      if (isMainThread) {
        if (isTyped(m, "graphrefly.results")) rec(E.heardAnswer), sched();
        return l(m);
      }
      if (Array.isArray(m) && m[0] === "graphrefly.writes") {
        const { puts, more } = writesSummary(m);
        rec(E.dispatch, puts, more ? 1 : 0);
      } else rec(E.dispatch, -1, isTyped(m, "graphrefly.requests") ? 1 : 0);
      sched();
      try {
        return l(m);
      } finally {
        rec(E.dispatchEnd);
      }
    });
  };
  proto.on = wrapOn;
  proto.addListener = wrapOn;

  if (isMainThread) {
    // The bench's ticks: its loops end a tick with timers/promises' setImmediate.
    const require = createRequire(import.meta.url);
    const timers = require("node:timers/promises") as { setImmediate: <T>(v?: T) => Promise<T> };
    const immediate = timers.setImmediate;
    timers.setImmediate = <T>(v?: T): Promise<T> => {
      rec(E.tickEnd);
      sched();
      return immediate<T>(v).then((x) => {
        sched();
        rec(E.tickStart);
        return x;
      });
    };
    syncBuiltinESMExports();
    const contenders: string[] = [];
    const hook: TimelineHook = {
      mark(start, contender) {
        let id = contenders.indexOf(contender);
        if (id < 0) id = contenders.push(contender) - 1;
        if (!start) sched(), processSched();
        rec(start ? E.sampleStart : E.sampleEnd, id);
        if (start) sched(), processSched();
      },
      async dump() {
        const ch = new BroadcastChannel(CHANNEL);
        const workers: Dump["workers"] = [];
        ch.onmessage = (e: unknown) => void workers.push((e as { data: Dump["workers"][number] }).data);
        ch.postMessage({ dump: true });
        await new Promise((r) => setTimeout(r, 1000));
        ch.close();
        writeFileSync(out, JSON.stringify({ main: events, contenders, workers } satisfies Dump));
        process.stderr.write(`[timeline] wrote ${out} (${workers.length} worker threads)\n`);
      },
    };
    (globalThis as { __graphreflyTimeline?: TimelineHook }).__graphreflyTimeline = hook;
    return;
  }
  // A worker: the store actor's apply and puts, and SQLite's transactions.
  const ch = new BroadcastChannel(CHANNEL);
  ch.unref();
  ch.onmessage = () => ch.postMessage({ threadId, events });
  const require = createRequire(import.meta.url);
  const Database = require("better-sqlite3") as {
    prototype: { transaction: (fn: (...a: unknown[]) => unknown) => unknown; pragma: (this: { name: string }, p: string, o?: unknown) => unknown };
  };
  const transaction = Database.prototype.transaction;
  // Measurement only: GRAPHREFLY_TIMELINE_DEFER_SYNC=1 commits at synchronous NORMAL (no fsync inside COMMIT) and
  // fdatasyncs each store's -wal written since the last answer before the actor posts answers: what one WAL sync per
  // answer, instead of one per commit, would give (design §3.55). Not a durable mode of the engine.
  // GRAPHREFLY_TIMELINE_DEFER_SYNC=2 also starts an fdatasync of the -wal on libuv's pool after each commit (overlapping
  // the actor's next work), so the sync before an answer waits only for what no finished one covered.
  const deferSync = process.env.GRAPHREFLY_TIMELINE_DEFER_SYNC === "1" || process.env.GRAPHREFLY_TIMELINE_DEFER_SYNC === "2";
  const overlapSync = process.env.GRAPHREFLY_TIMELINE_DEFER_SYNC === "2";
  /** Per store: commits so far, and the count a finished background sync covered. */
  const committed = new Map<string, number>();
  const covered = new Map<string, number>();
  const walFd = (name: string): number => {
    let fd = walFds.get(name);
    if (fd === undefined) walFds.set(name, (fd = openSync(`${name}-wal`, "r")));
    return fd;
  };
  const unsynced = new Set<string>();
  const walFds = new Map<string, number>();
  if (deferSync) {
    const pragmaOf = Database.prototype.pragma;
    Database.prototype.pragma = function (this: { name: string }, p: string, o?: unknown) {
      return pragmaOf.call(this, /^synchronous\s*=\s*(full|extra)$/i.test(p.trim()) ? "synchronous = NORMAL" : p, o);
    };
    beforeAnswer = () => {
      for (const name of unsynced) if ((covered.get(name) ?? 0) < (committed.get(name) ?? 0)) fdatasyncSync(walFd(name));
      for (const name of unsynced) covered.set(name, Math.max(covered.get(name) ?? 0, committed.get(name) ?? 0));
      unsynced.clear();
    };
  }
  // Measurement only: GRAPHREFLY_TIMELINE_AUTOCHECKPOINT=<pages> sets wal_autocheckpoint where a store turns WAL on;
  // GRAPHREFLY_TIMELINE_CHECKPOINTER=1 turns it off there and checkpoints from a thread of its own instead (below).
  const autocheckpoint = process.env.GRAPHREFLY_TIMELINE_AUTOCHECKPOINT;
  const checkpointer = process.env.GRAPHREFLY_TIMELINE_CHECKPOINTER === "1";
  if ((autocheckpoint !== undefined && autocheckpoint !== "") || checkpointer) {
    const pragma = Database.prototype.pragma;
    Database.prototype.pragma = function (this: { name: string }, p: string, o?: unknown) {
      const r = pragma.call(this, p, o);
      if (/^journal_mode\s*=\s*wal$/i.test(p.trim())) {
        // GRAPHREFLY_TIMELINE_CHECKPOINTER_AT=<frames> checkpoints from that many frames waiting and keeps the writer's
        // own autocheckpoint (1000) as the bound: the writer restarts a WAL the checkpointer emptied, so it rarely
        // reaches it.
        const at = Number(process.env.GRAPHREFLY_TIMELINE_CHECKPOINTER_AT ?? 0);
        if (!(checkpointer && at > 0)) pragma.call(this, `wal_autocheckpoint = ${checkpointer ? 0 : Number(autocheckpoint)}`);
        if (checkpointer) startCheckpointer(this.name, at > 0 ? at : 1000);
      }
      return r;
    };
  }
  const sizes = new Map<string, number>();
  const shms = new Map<string, number>();
  const walHeader = Buffer.alloc(128);
  const wal = (db: unknown, code: number): void => {
    const name = (db as { name?: unknown }).name;
    if (typeof name !== "string" || name === ":memory:") return;
    let fd = shms.get(name);
    try {
      if (fd === undefined) shms.set(name, (fd = openSync(`${name}-shm`, "r")));
      if (readSync(fd, walHeader, 0, 128, 0) === 128) rec(code, walHeader.readUInt32LE(16), walHeader.readUInt32LE(96));
    } catch {
      // no -shm yet
    }
  };
  const grown = (db: unknown): void => {
    const name = (db as { name?: unknown }).name;
    if (typeof name !== "string" || name === ":memory:") return;
    let size: number;
    try {
      size = statSync(name).size;
    } catch {
      return;
    }
    const before = sizes.get(name);
    sizes.set(name, size);
    if (before !== undefined && size > before) rec(E.checkpoint, (size - before) / 2 ** 20);
  };
  Database.prototype.transaction = function (this: unknown, fn: (...a: unknown[]) => unknown) {
    const db = this;
    const inner = transaction.call(this, function (this: unknown, ...args: unknown[]) {
      try {
        return fn.apply(this, args);
      } finally {
        rec(E.txStatementsEnd);
      }
    }) as (...a: unknown[]) => unknown;
    const timed = function (this: unknown, ...args: unknown[]) {
      rec(E.txStart);
      sched();
      wal(db, E.walAtTxStart);
      try {
        return inner.apply(this, args);
      } finally {
        rec(E.txEnd);
        sched();
        wal(db, E.walAtTxEnd);
        if (deferSync) {
          const name = (db as { name?: unknown }).name;
          if (typeof name === "string" && name !== ":memory:") {
            unsynced.add(name);
            const n = (committed.get(name) ?? 0) + 1;
            committed.set(name, n);
            if (overlapSync) fdatasync(walFd(name), () => covered.set(name, Math.max(covered.get(name) ?? 0, n)));
          }
        }
        grown(db);
      }
    };
    for (const k of ["deferred", "immediate", "exclusive"] as const) (timed as unknown as Record<string, unknown>)[k] = (inner as unknown as Record<string, unknown>)[k];
    return timed;
  };
  void import(new URL("../src/engine/actor.js", import.meta.url).href).then((mod: { StoreActor: { prototype: Record<string, unknown> } }) => {
    const p = mod.StoreActor.prototype;
    const apply = p.applyInOrder as (this: unknown, ops: unknown[]) => Promise<unknown>;
    p.applyInOrder = function (this: unknown, ops: unknown[]) {
      rec(E.applyStart, ops.length);
      try {
        return apply.call(this, ops);
      } finally {
        rec(E.applyEnd);
      }
    };
    const putEach = p.putEach as (this: unknown, op: { keys: unknown[] }, entry: unknown) => void;
    p.putEach = function (this: unknown, op: { keys: unknown[] }, entry: unknown) {
      rec(E.putEachStart, op.keys.length);
      try {
        putEach.call(this, op, entry);
      } finally {
        rec(E.putEachEnd);
      }
    };
  });
}

/**
 * Measurement only: what SQLite's autocheckpoint does (copy the WAL into the database file once 1000 frames wait),
 * from a thread and connection of its own, so it leaves the writer's commits. It reads the wal-index (-shm): mxFrame
 * at byte 16 of its header, nBackfill at byte 96; past 1000 frames not yet backfilled it runs a PASSIVE checkpoint,
 * which never blocks the writer (SQLite restarts the WAL at the writer's next commit once all of it is backfilled).
 */
function startCheckpointer(path: string, at: number): void {
  const code = `
    const { workerData } = require("node:worker_threads");
    const Database = require(workerData.sqlite);
    const fs = require("node:fs");
    const db = new Database(workerData.path);
    db.pragma("busy_timeout = 5000");
    const buf = Buffer.alloc(128);
    let fd;
    const tick = () => {
      try {
        fd ??= fs.openSync(workerData.path + "-shm", "r");
        fs.readSync(fd, buf, 0, 128, 0);
        const mx = buf.readUInt32LE(16), backfilled = buf.readUInt32LE(96);
        if (mx - backfilled >= workerData.at) db.pragma("wal_checkpoint(PASSIVE)");
      } catch {}
      setTimeout(tick, 2).unref();
    };
    tick();
    setTimeout(() => {}, 1 << 30);
  `;
  const require = createRequire(import.meta.url);
  const w = new Worker(code, { eval: true, execArgv: [], workerData: { path, at, sqlite: require.resolve("better-sqlite3") } });
  w.unref();
}

function isTyped(m: unknown, type: string): boolean {
  return typeof m === "object" && m !== null && (m as { type?: unknown }).type === type;
}

/** Puts in a packed writes batch (protocol.ts packWrites) and whether it ends with MORE. */
function writesSummary(m: unknown[]): { puts: number; more: boolean } {
  let puts = 0;
  let i = 1;
  let more = false;
  while (i < m.length) {
    const kind = m[i] as number;
    if (kind === 5) (more = true), (i += 1);
    else if (kind === 0) i += 2;
    else if (kind === 1 || kind === 3) {
      const count = m[i + 4] as number;
      puts += count;
      i += 5 + 2 * count;
    } else {
      const count = m[i + 5] as number;
      puts += count;
      i += 6 + count;
    }
  }
  return { puts, more };
}

// ---- the report ----

interface Sample {
  readonly contender: string;
  readonly ms: number;
  readonly figures: Record<string, number>;
  readonly lines: string[];
}

type Ev = { t: number; c: number; a: number; b: number };

function parse(events: Events): Ev[] {
  const out: Ev[] = [];
  for (let i = 0; i < events.length; i += 4) out.push({ t: events[i]!, c: events[i + 1]!, a: events[i + 2]!, b: events[i + 3]! });
  return out.sort((x, y) => x.t - y.t);
}

/** Total length of the union of intervals, clipped to [s, e]. */
function covered(intervals: Array<[number, number]>, s: number, e: number): number {
  const xs = intervals.map(([a, b]) => [Math.max(a, s), Math.min(b, e)] as [number, number]).filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let total = 0;
  let cur: [number, number] | undefined;
  for (const x of xs) {
    if (cur && x[0] <= cur[1]) cur[1] = Math.max(cur[1], x[1]);
    else {
      if (cur) total += cur[1] - cur[0];
      cur = [x[0], x[1]];
    }
  }
  if (cur) total += cur[1] - cur[0];
  return total;
}

function pairs(evs: Ev[], open: number, close: number): Array<[number, number, Ev]> {
  const out: Array<[number, number, Ev]> = [];
  let start: Ev | undefined;
  for (const e of evs) {
    if (e.c === open) start = e;
    else if (e.c === close && start) {
      out.push([start.t, e.t, start]);
      start = undefined;
    }
  }
  return out;
}

function analyse(dump: Dump, contenderFilter: string, verbose: boolean): void {
  const main = parse(dump.main);
  // The store actor of the contender: the worker thread with dispatches inside its samples.
  const workers = dump.workers.map((w) => ({ threadId: w.threadId, evs: parse(w.events) }));
  const samples: Sample[] = [];
  let start: Ev | undefined;
  for (const e of main) {
    if (e.c === E.sampleStart) start = e;
    if (e.c !== E.sampleEnd || !start) continue;
    const contender = dump.contenders[e.a]!;
    const s = start.t;
    const end = e.t;
    start = undefined;
    if (!contender.includes(contenderFilter)) continue;
    const m = main.filter((x) => x.t >= s && x.t <= end);
    const actor = workers
      .map((w) => ({ ...w, evs: w.evs.filter((x) => x.t >= s - 0.001 && x.t <= end + 50) }))
      .sort((a, b) => b.evs.filter((x) => x.c === E.dispatch).length - a.evs.filter((x) => x.c === E.dispatch).length)[0];
    const a = (actor?.evs ?? []).filter((x) => x.t <= end);
    const rel = (t: number): string => (t - s).toFixed(2);
    const lines: string[] = [];
    // Main thread: busy from the sample's start to each tick's end, and from each tick's start to its end.
    const tickEnds = m.filter((x) => x.c === E.tickEnd).map((x) => x.t);
    const tickStarts = [s, ...m.filter((x) => x.c === E.tickStart).map((x) => x.t)];
    const mainBusy: Array<[number, number]> = tickEnds.map((te, i) => [tickStarts[i] ?? te, te]);
    const lastTick = tickEnds[tickEnds.length - 1] ?? s;
    const flushPost = m.find((x) => x.c === E.postRequests && x.t >= lastTick);
    const answer = m.filter((x) => x.c === E.heardAnswer).pop();
    const mainGc = m.filter((x) => x.c === E.gc);
    const actorGc = a.filter((x) => x.c === E.gc);
    const posts = m.filter((x) => x.c === E.postWrites);
    const disp = a.filter((x) => x.c === E.dispatch && x.a >= 0);
    const dispatchIntervals = pairs(a, E.dispatch, E.dispatchEnd).map(([x, y]) => [x, y] as [number, number]);
    const txs = a.filter((x) => x.c === E.txStart || x.c === E.txStatementsEnd || x.c === E.txEnd);
    const txIntervals: Array<[number, number, number]> = [];
    for (let i = 0; i < txs.length; i++) {
      if (txs[i]!.c !== E.txStart) continue;
      const stmt = txs.slice(i).find((x) => x.c === E.txStatementsEnd);
      const fin = txs.slice(i).find((x) => x.c === E.txEnd);
      if (stmt && fin) txIntervals.push([txs[i]!.t, stmt.t, fin.t]);
    }
    const gcIntervals = (g: Ev[]): Array<[number, number]> => g.map((x) => [x.t, x.t + x.a]);
    const applyIntervals = pairs(a, E.applyStart, E.applyEnd).map(([x, y]) => [x, y] as [number, number]);
    const actorBusy = [...dispatchIntervals, ...applyIntervals, ...txIntervals.map(([x, , z]) => [x, z] as [number, number]), ...gcIntervals(actorGc)];
    const firstDispatch = disp[0]?.t ?? end;
    const lastTxEnd = txIntervals.length > 0 ? txIntervals[txIntervals.length - 1]![2] : end;
    const answerPost = a.filter((x) => x.c === E.postAnswer).pop();
    const queueDelays = posts.map((p, i) => (disp[i] ? disp[i]!.t - p.t : NaN));
    const actorBusyMs = covered(actorBusy, s, end);
    const mainBusyMs = covered([...mainBusy, ...gcIntervals(mainGc)], s, end);
    // Actor's idle gaps after its first message (waiting for messages or a core).
    const merged = mergeIntervals(actorBusy, s, end);
    const gaps: Array<[number, number]> = [];
    for (let i = 1; i < merged.length; i++) gaps.push([merged[i - 1]![1], merged[i]![0]]);
    const gapMs = gaps.reduce((n, [x, y]) => n + (y - x), 0);
    // Of those gaps, the part before the message that ended it was posted (the actor starved: nothing to do), and
    // the part after (the message queued: its wake-up, native deserialization, or the actor waiting for a core).
    const allDisp = a.filter((x) => x.c === E.dispatch);
    const allPosts = m.filter((x) => x.c === E.postWrites || x.c === E.postRequests);
    let starved = 0;
    let queued = 0;
    for (const [g0, g1] of gaps) {
      const k = allDisp.findIndex((x) => x.t >= g1 - 1e-6);
      const post = k >= 0 ? allPosts[k] : undefined;
      if (post === undefined || k !== allDisp.filter((x) => x.t < g1 - 1e-6).length) continue;
      const ready = Math.min(Math.max(post.t, g0), g1);
      starved += ready - g0;
      queued += g1 - ready;
    }
    const ms = m.filter((x) => x.c === E.sched);
    const as = a.filter((x) => x.c === E.sched);
    // How often the two threads were last seen on the same core, at the actor's readings (each against main's latest).
    const mainCores = m.filter((x) => x.c === E.core);
    const actorCores = a.filter((x) => x.c === E.core);
    let same = 0;
    let seen = 0;
    for (const x of actorCores) {
      const mc = mainCores.filter((y) => y.t <= x.t).pop();
      if (mc === undefined || x.t > lastTick) continue;
      seen++;
      if (mc.a === x.a) same++;
    }
    const ps = m.filter((x) => x.c === E.processSched);
    // All threads' CPU up to the flush's request (the main thread's part of the sample) and after it (the actor's backlog).
    const psAtFlush = flushPost ? ps.filter((x) => x.t <= flushPost.t + 0.05).pop() : undefined;
    // Each commit but the sample's last, while a message waited for the actor (posted before the commit ended and taken
    // after it began): the fsync the actor slept in with work queued, which another thread's commit could overlap.
    let commitQueuedMs = 0;
    for (let k = 0; k + 1 < txIntervals.length; k++) {
      const [, y, z] = txIntervals[k]!;
      let from = Infinity;
      for (let i = 0; i < posts.length; i++) if (posts[i]!.t < z && disp[i] !== undefined && disp[i]!.t > y) from = Math.min(from, Math.max(posts[i]!.t, y));
      if (from < z) commitQueuedMs += z - from;
    }
    const walStarts = a.filter((x) => x.c === E.walAtTxStart);
    const walEnds = a.filter((x) => x.c === E.walAtTxEnd);
    const bound = Number(process.env.GRAPHREFLY_TIMELINE_BOUND ?? 4000);
    const inline = walEnds.map((x, k) => (x.a >= bound ? k : -1)).filter((k) => k >= 0 && k < txIntervals.length);
    const delta = (xs: Ev[], k: "a" | "b"): number => (xs.length < 2 ? NaN : xs[xs.length - 1]![k] - xs[0]![k]);
    const figures: Record<string, number> = {
      ms: end - s,
      sameCore: seen === 0 ? NaN : same / seen,
      mainCpu: delta(ms, "a"),
      mainRunqueue: delta(ms, "b"),
      actorCpu: delta(as, "a"),
      actorRunqueue: delta(as, "b"),
      // The actor's window (first message to the flush's answer): its CPU, its wait for a core, and the rest asleep
      // (waiting for a message or for an fsync).
      actorWindow: answerPost ? answerPost.t - firstDispatch : NaN,
      actorAsleep: answerPost ? answerPost.t - firstDispatch - delta(as, "a") - delta(as, "b") : NaN,
      applyMs: applyIntervals.reduce((n, [x, y]) => n + (y - x), 0),
      mainBusy: mainBusyMs,
      lastTickEnd: lastTick - s,
      actorFirst: firstDispatch - s,
      actorBusy: actorBusyMs,
      actorGapsAfterFirst: gapMs,
      actorStarved: starved,
      actorQueued: queued,
      actorLastTxEnd: lastTxEnd - s,
      flushPost: flushPost ? flushPost.t - s : NaN,
      answerPosted: answerPost ? answerPost.t - s : NaN,
      answerHeard: answer ? answer.t - s : NaN,
      answerToEnd: answer ? end - answer.t : NaN,
      fsyncMs: txIntervals.reduce((n, [, y, z]) => n + (z - y), 0),
      insertsMs: txIntervals.reduce((n, [x, y]) => n + (y - x), 0),
      txs: txIntervals.length,
      checkpoints: a.filter((x) => x.c === E.checkpoint).length,
      // The writer's own checkpoint: SQLite runs it at a commit's end once the WAL holds wal_autocheckpoint frames
      // (the bound, 4000, while the checkpointer thread serves the store): mxFrame at the transaction's end.
      walMaxFrame: Math.max(0, ...walEnds.map((x) => x.a)),
      inlineCheckpoints: inline.length,
      inlineCommitMs: inline.reduce((n, k) => n + (txIntervals[k]![2] - txIntervals[k]![1]), 0),
      walRestarts: walEnds.filter((x, i) => walStarts[i] !== undefined && x.a < walStarts[i]!.a).length,
      // nBackfill risen between two of the writer's transactions: a checkpoint of the thread's (or the writer's).
      backfillRises: walStarts.filter((x, i) => i > 0 && walEnds[i - 1] !== undefined && x.b > walEnds[i - 1]!.b).length,
      processCpu: delta(ps, "a"),
      processRunqueue: delta(ps, "b"),
      otherCpu: delta(ps, "a") - delta(ms, "a") - delta(as, "a"),
      coresBusy: delta(ps, "a") / (end - s),
      coresBusyToFlush: psAtFlush && ps[0] ? (psAtFlush.a - ps[0].a) / (psAtFlush.t - ps[0].t) : NaN,
      coresBusyAfterFlush: psAtFlush && ps.length > 1 ? (ps[ps.length - 1]!.a - psAtFlush.a) / (ps[ps.length - 1]!.t - psAtFlush.t) : NaN,
      lastCommitMs: txIntervals.length > 0 ? txIntervals[txIntervals.length - 1]![2] - txIntervals[txIntervals.length - 1]![1] : NaN,
      commitQueuedMs,
      putEachMs: pairs(a, E.putEachStart, E.putEachEnd).reduce((n, [x, y]) => n + (y - x), 0),
      dispatchMs: dispatchIntervals.reduce((n, [x, y]) => n + (y - x), 0),
      mainGcMs: mainGc.reduce((n, x) => n + x.a, 0),
      mainGcs: mainGc.length,
      actorGcMs: actorGc.reduce((n, x) => n + x.a, 0),
      actorGcs: actorGc.length,
      posts: posts.length,
      queueDelayMax: Math.max(0, ...queueDelays.filter((x) => !Number.isNaN(x))),
      queueDelaySum: queueDelays.filter((x) => !Number.isNaN(x)).reduce((n, x) => n + x, 0),
    };
    if (verbose) {
      lines.push(
        `  main: ticks ${tickEnds.map((te, i) => `${rel(tickStarts[i] ?? te)}–${rel(te)}`).join(", ")}; flush posted ${flushPost ? rel(flushPost.t) : "?"}, answer heard ${answer ? rel(answer.t) : "?"}`,
      );
      lines.push(`  posts: ${posts.map((p, i) => `${rel(p.t)}(${p.a}${p.b ? "+" : ""}→${disp[i] ? rel(disp[i]!.t) : "?"})`).join(" ")}`);
      lines.push(`  actor txs: ${txIntervals.map(([x, y, z], k) => `${rel(x)}+${(y - x).toFixed(2)}+${(z - y).toFixed(2)}${walStarts[k] ? ` [wal ${walStarts[k]!.a}/${walStarts[k]!.b}→${walEnds[k]?.a}/${walEnds[k]?.b}]` : ""}`).join(", ")}; answer posted ${answerPost ? rel(answerPost.t) : "?"}`);
      lines.push(`  actor gaps > 0.2 ms: ${gaps.filter(([x, y]) => y - x > 0.2).map(([x, y]) => `${rel(x)}–${rel(y)}`).join(", ")}`);
      lines.push(`  cores main: ${mainCores.map((x) => `${rel(x.t)}:${x.a}`).join(" ")}`);
      lines.push(`  cores actor: ${actorCores.map((x) => `${rel(x.t)}:${x.a}`).join(" ")}`);
      lines.push(`  gc main: ${mainGc.map((x) => `${rel(x.t)}:${x.a.toFixed(2)}`).join(" ")}; actor: ${actorGc.map((x) => `${rel(x.t)}:${x.a.toFixed(2)}`).join(" ")}`);
    }
    samples.push({ contender, ms: end - s, figures, lines });
  }
  if (samples.length === 0) {
    process.stdout.write(`no samples of a contender matching "${contenderFilter}"\n`);
    return;
  }
  if (process.argv.includes("--json")) {
    process.stdout.write(`${JSON.stringify(samples.map((x) => x.figures))}\n`);
    return;
  }
  const sorted = samples.map((x) => x.ms).sort((x, y) => x - y);
  const cut = sorted[Math.floor(sorted.length / 2)]!;
  process.stdout.write(`${samples.length} samples of ${samples[0]!.contender}; ms ${sorted.map((x) => x.toFixed(1)).join(" ")}\n`);
  for (const x of samples) {
    const f = x.figures;
    process.stdout.write(
      `${x.ms.toFixed(1).padStart(6)} ms | cpu main ${f.mainCpu!.toFixed(1)} (runq ${f.mainRunqueue!.toFixed(1)}) actor ${f.actorCpu!.toFixed(1)} (runq ${f.actorRunqueue!.toFixed(1)}) same core ${f.sameCore!.toFixed(2)} asleep ${f.actorAsleep!.toFixed(1)} | main busy ${f.mainBusy!.toFixed(1)} last tick ${f.lastTickEnd!.toFixed(1)} | actor first ${f.actorFirst!.toFixed(1)} busy ${f.actorBusy!.toFixed(1)} gaps ${f.actorGapsAfterFirst!.toFixed(1)} (starved ${f.actorStarved!.toFixed(1)}, queued ${f.actorQueued!.toFixed(1)}) last tx ${f.actorLastTxEnd!.toFixed(1)} (${f.txs} txs, ${f.checkpoints} checkpointing: inserts ${f.insertsMs!.toFixed(1)} commit ${f.fsyncMs!.toFixed(1)}) putEach ${f.putEachMs!.toFixed(1)} | flush ${f.flushPost!.toFixed(1)} answered ${f.answerPosted!.toFixed(1)} heard ${f.answerHeard!.toFixed(1)} | gc main ${f.mainGcMs!.toFixed(1)}/${f.mainGcs} actor ${f.actorGcMs!.toFixed(1)}/${f.actorGcs} | queue max ${f.queueDelayMax!.toFixed(1)}\n`,
    );
    for (const l of x.lines) process.stdout.write(`${l}\n`);
  }
  const modes = [samples.filter((x) => x.ms <= cut), samples.filter((x) => x.ms > cut)];
  for (const [i, group] of modes.entries()) {
    if (group.length === 0) continue;
    const keys = Object.keys(group[0]!.figures);
    const med = keys.map((k) => `${k} ${median(group.map((x) => x.figures[k]!)).toFixed(2)}`);
    process.stdout.write(`${i === 0 ? "faster half" : "slower half"} (${group.length}), medians: ${med.join(", ")}\n`);
  }
}

function mergeIntervals(intervals: Array<[number, number]>, s: number, e: number): Array<[number, number]> {
  const xs = intervals.map(([a, b]) => [Math.max(a, s), Math.min(b, e)] as [number, number]).filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  for (const x of xs) {
    const last = out[out.length - 1];
    if (last && x[0] <= last[1]) last[1] = Math.max(last[1], x[1]);
    else out.push([x[0], x[1]]);
  }
  return out;
}

function median(xs: number[]): number {
  const v = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return v.length === 0 ? NaN : v[Math.floor(v.length / 2)]!;
}

const out = process.env.GRAPHREFLY_TIMELINE;
const asReport = process.argv[1] !== undefined && new URL(import.meta.url).pathname === process.argv[1];
if (asReport) {
  const args = process.argv.slice(2);
  const file = args.find((x) => !x.startsWith("--"));
  if (file === undefined) {
    process.stderr.write("usage: node dist/bench/sample-timeline.js <dump.json> [--contender <name part>] [--verbose] [--json]\n");
    process.exit(2);
  }
  const at = args.indexOf("--contender");
  analyse(JSON.parse(readFileSync(file, "utf8")) as Dump, at >= 0 ? args[at + 1]! : "attach + engine", args.includes("--verbose"));
} else if (out !== undefined && out !== "") install(out);
