/**
 * Main-thread cost meter. Node 20 has no per-thread CPU clock (`process.threadCpuUsage` is Node 23.9+) and
 * `process.cpuUsage()` sums every thread of the process (engine workers, lmdb's writer thread, libuv's pool),
 * so a window is read three ways:
 * - `mainCpuMs`: on-CPU time of the main thread alone, from Linux's per-thread schedstat (the main thread's
 *   tid is the pid); undefined on other systems. The kernel refreshes that counter at context switches and
 *   ticks, so both ends of a window first sleep briefly: the reading right after waking is exact to a few µs.
 * - `eluActiveMs`: event-loop active time (`performance.eventLoopUtilization`): all the main thread did outside
 *   its poll wait, including time blocked in a synchronous syscall (an inline fsync) or descheduled.
 * - `processCpuMs`: user + system CPU of every thread: the total price, not the main thread's share.
 */
import type { Bench } from "tinybench";
import { readdirSync, readFileSync } from "node:fs";
import { BroadcastChannel } from "node:worker_threads";
import { performance, type EventLoopUtilization } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";

const SCHEDSTAT = `/proc/${process.pid}/task/${process.pid}/schedstat`;
const SETTLE_MS = 2;

export interface MeterReading {
  readonly wallMs: number;
  readonly mainCpuMs: number | undefined;
  readonly eluActiveMs: number;
  readonly processCpuMs: number;
  /**
   * On-CPU ms of the other threads (Linux schedstat per thread; undefined elsewhere): the busiest one (a store
   * actor's worker, when one runs) and the rest together (V8's helper threads: parallel scavenges, concurrent
   * marking and compiling for every isolate; libuv's pool). Suite 2's "all-threads minus main" is not the actor's
   * work alone (docs/design.md §3.40).
   */
  readonly otherThreadsCpuMs?: { readonly busiest: number; readonly rest: number; readonly byKind?: ThreadKindsMs };
  /**
   * Minor page faults of the whole process (getrusage): first touches of fresh memory. One costs ~13–19 µs on the
   * bench's current VM against well under 1 µs on bare hardware, and their count per window swings between runs
   * (design §3.58), so a row's wall time is read with it.
   */
  readonly minorFaults?: number;
}

/**
 * The other threads' CPU ms by kind, with GRAPHREFLY_THREAD_SPLIT set (measurement only, design §3.53): `actor`, the
 * busiest worker thread; `workers`, the other worker threads (piscina's idle ones); `checkpointer`, the engine's
 * checkpointer thread (it posts its tid when the switch is set); `libuv`, the pool's threads; `platform`, the threads
 * Node starts before any script (V8's platform workers, its delayed-task thread, the inspector's signal thread);
 * every thread that appeared later and is not the checkpointer counts as a worker (Node starts no other then).
 */
export interface ThreadKindsMs {
  readonly actor: number;
  readonly workers: number;
  readonly checkpointer: number;
  readonly libuv: number;
  readonly platform: number;
}

interface ThreadKinds {
  readonly platform: ReadonlySet<string>;
  readonly libuv: ReadonlySet<string>;
  readonly checkpointer: Set<string>;
}

/**
 * Which of the threads alive when this module loads are Node's platform and which libuv's pool: an ES module program
 * started the pool while loading (the loader reads files through it), after the platform's threads, and a process
 * numbers its threads in creation order, so the pool's are the last UV_THREADPOOL_SIZE (4) of them. Every later
 * thread is a worker's (the checkpointer names itself).
 */
function threadKinds(): ThreadKinds | undefined {
  if (!process.env["GRAPHREFLY_THREAD_SPLIT"]) return undefined;
  const startup = [...otherThreadsCpuNs().keys()].sort((a, b) => Number(a) - Number(b));
  if (startup.length === 0) return undefined;
  const pool = Math.min(Number(process.env["UV_THREADPOOL_SIZE"]) || 4, Math.max(0, startup.length - 1));
  const kinds: ThreadKinds = {
    platform: new Set(startup.slice(0, startup.length - pool)),
    libuv: new Set(startup.slice(startup.length - pool)),
    checkpointer: new Set(),
  };
  const channel = new BroadcastChannel("graphrefly-thread-tids");
  channel.unref();
  channel.onmessage = (e) => {
    const m = (e as { data: { kind?: unknown; tid?: unknown } }).data;
    if (m.kind === "checkpointer" && typeof m.tid === "string") kinds.checkpointer.add(m.tid);
  };
  return kinds;
}
const KINDS = threadKinds();

/** Where the kinds came from, for a run's log: each startup thread with the futex it waits on (a pool's share one). */
export function threadKindsNote(): string | undefined {
  if (KINDS === undefined) return undefined;
  const waits = (tid: string): string => {
    try {
      const [nr, addr] = readFileSync(`/proc/${process.pid}/task/${tid}/syscall`, "latin1").split(" ");
      return nr === "202" ? `futex ${addr}` : `syscall ${nr}`;
    } catch {
      return "gone";
    }
  };
  const list = (s: ReadonlySet<string>): string => [...s].map((t) => `${t} (${waits(t)})`).join(", ");
  return `platform ${list(KINDS.platform)}; libuv ${list(KINDS.libuv)}; checkpointer ${[...KINDS.checkpointer].join(", ") || "none"}`;
}

/** Which source `mainCpuMs` comes from, for the report. */
export const MAIN_CPU_SOURCE: string | undefined = readMainThreadCpuNs() === undefined ? undefined : "linux-schedstat";

function readMainThreadCpuNs(): number | undefined {
  try {
    const ns = Number(readFileSync(SCHEDSTAT, "latin1").split(" ", 1)[0]);
    return Number.isFinite(ns) && ns > 0 ? ns : undefined;
  } catch {
    return undefined;
  }
}

interface Mark {
  readonly wall: number;
  readonly cpuNs: number | undefined;
  readonly elu: EventLoopUtilization;
  readonly cpu: NodeJS.CpuUsage;
  readonly faults: number;
  /** On-CPU ns of every other thread by tid (empty where /proc is not Linux's). */
  readonly threads: Map<string, number>;
}

/** On-CPU ns of every thread of this process except the main one, by tid (a thread that ended meanwhile is left out). */
function otherThreadsCpuNs(): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${process.pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    if (tid === String(process.pid)) continue;
    try {
      out.set(tid, Number(readFileSync(`/proc/${process.pid}/task/${tid}/schedstat`, "latin1").split(" ", 1)[0]));
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

/**
 * `threads` is read by the caller, outside the window: reading every other thread's schedstat costs the main thread
 * ~0.5 ms (~1.7 ms the first time in a process), which counted in a paced window of 2,000 writes added 0.2–0.8 µs to
 * each of suite 1's paced rows, an empty turn included (task 244).
 */
function mark(threads: Map<string, number>): Mark {
  return {
    wall: performance.now(),
    cpuNs: readMainThreadCpuNs(),
    elu: performance.eventLoopUtilization(),
    cpu: process.cpuUsage(),
    faults: process.resourceUsage().minorPageFault,
    threads,
  };
}

/** The busiest other thread's and the rest's CPU ms between two marks; undefined without per-thread counters. */
function otherThreadsSplit(start: Mark, end: Mark): MeterReading["otherThreadsCpuMs"] {
  if (end.threads.size === 0) return undefined;
  const byTid = [...end.threads].map(([tid, ns]) => [tid, (ns - (start.threads.get(tid) ?? 0)) / 1e6] as const);
  const deltas = byTid.map(([, ms]) => ms).sort((a, b) => b - a);
  const split = { busiest: deltas[0] ?? 0, rest: deltas.slice(1).reduce((a, b) => a + b, 0) };
  return KINDS === undefined ? split : { ...split, byKind: byKind(byTid, KINDS) };
}

function byKind(byTid: readonly (readonly [string, number])[], kinds: ThreadKinds): ThreadKindsMs {
  let checkpointer = 0;
  let libuv = 0;
  let platform = 0;
  const workers: number[] = [];
  for (const [tid, ms] of byTid) {
    if (kinds.checkpointer.has(tid)) checkpointer += ms;
    else if (kinds.libuv.has(tid)) libuv += ms;
    else if (kinds.platform.has(tid)) platform += ms;
    else workers.push(ms);
  }
  workers.sort((a, b) => b - a);
  return { actor: workers[0] ?? 0, workers: workers.slice(1).reduce((a, b) => a + b, 0), checkpointer, libuv, platform };
}

/** Call from the main thread only (the schedstat file is the main thread's). */
export class MainThreadMeter {
  private constructor(private readonly start: Mark) {}

  static async start(): Promise<MainThreadMeter> {
    // Before the settle sleep: the main thread's counter read after waking starts the window (see `mark`).
    const threads = otherThreadsCpuNs();
    await sleep(SETTLE_MS);
    return new MainThreadMeter(mark(threads));
  }

  async stop(): Promise<MeterReading> {
    const wallEnd = performance.now();
    await sleep(SETTLE_MS);
    const end = mark(new Map());
    // After the main thread's counter was read: outside the window.
    for (const [tid, ns] of otherThreadsCpuNs()) end.threads.set(tid, ns);
    const elu = performance.eventLoopUtilization(end.elu, this.start.elu);
    const cpu = { user: end.cpu.user - this.start.cpu.user, system: end.cpu.system - this.start.cpu.system };
    return {
      wallMs: wallEnd - this.start.wall,
      mainCpuMs:
        end.cpuNs === undefined || this.start.cpuNs === undefined ? undefined : (end.cpuNs - this.start.cpuNs) / 1e6,
      // The settle sleep before `end` is idle loop time, so it adds nothing here.
      eluActiveMs: elu.active,
      processCpuMs: (cpu.user + cpu.system) / 1000,
      otherThreadsCpuMs: otherThreadsSplit(this.start, end),
      minorFaults: end.faults - this.start.faults,
    };
  }
}

/** Per-op microseconds of a meter figure (undefined stays undefined). */
export function usPerOp(ms: number | undefined, ops: number): number | undefined {
  return ms === undefined || ops <= 0 ? undefined : (ms * 1000) / ops;
}

/** What a metered stream task measured: main-thread CPU over the measured run and the frames it streamed. */
export interface StreamReading {
  reading?: MeterReading;
  frames: number;
}

/**
 * Adds one tinybench task per contender that streams `frames` frames per sample, metering the main thread over the
 * measured run only (not warm-up); `readings` receives each contender's figures under its name.
 */
export function addMeteredStreams(
  bench: Bench,
  contenders: readonly { readonly name: string; stream(frames: number): Promise<unknown> }[],
  frames: number,
  readings: Map<string, StreamReading>,
): void {
  for (const c of contenders) {
    const m: StreamReading = { frames: 0 };
    readings.set(c.name, m);
    let meter: MainThreadMeter | undefined;
    bench.add(
      c.name,
      async () => {
        await c.stream(frames);
        if (meter) m.frames += frames;
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
}
