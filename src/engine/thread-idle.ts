/**
 * The watchdog's view of worker threads hosting no open store, whose actors' heartbeats say nothing about them:
 * a thread's event-loop idle time (Worker.performance.eventLoopUtilization, read from the main thread without a
 * message) grows while its loop waits for events and stands still while something blocks the thread (a
 * synchronous loop, Atomics.wait). A thread with nothing to run idles; one whose idle time stood still for a bound
 * is blocked (design §3.30).
 */
import type { Worker } from "node:worker_threads";

interface Seen {
  idle: number;
  /** When `idle` last moved (or was first read). */
  movedAt: number;
}

export class ThreadIdleWatch {
  private readonly seen = new Map<number, Seen>();

  /** Reads each thread's idle time; threads gone from `workers` are forgotten (the map stays as small as the pool). */
  sample(workers: readonly Worker[], now: number): void {
    const live = new Set<number>();
    for (const w of workers) {
      const { idle, active } = w.performance.eventLoopUtilization();
      // Both 0: its loop has not started yet, or the thread is gone (nothing known either way).
      if (idle === 0 && active === 0) continue;
      live.add(w.threadId);
      const s = this.seen.get(w.threadId);
      if (s === undefined || s.idle !== idle) this.seen.set(w.threadId, { idle, movedAt: now });
    }
    for (const id of this.seen.keys()) if (!live.has(id)) this.seen.delete(id);
  }

  /** The thread's loop was seen and has not idled for `boundMs`. */
  blocked(threadId: number, now: number, boundMs: number): boolean {
    const s = this.seen.get(threadId);
    return s !== undefined && now - s.movedAt >= boundMs;
  }
}
