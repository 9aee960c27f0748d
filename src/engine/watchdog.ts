/**
 * One timer per engine (unref'd) that finds store actors which stopped making progress: an actor with answers
 * due whose worker's heartbeat counter (actor-counters.ts, bumped by the worker's event loop) has not moved for
 * `boundMs`. Nothing runs per op: the hot path only keeps the counters it already keeps.
 */
export interface Watched {
  /** True when answers are due and no heartbeat came for `boundMs` (see StoreConnection.stalled). */
  stalled(now: number, boundMs: number): boolean;
  /** True when answers are due and its task has not begun for `boundMs` (see StoreConnection.waitingToStart). */
  waitingToStart(now: number, boundMs: number): boolean;
}

export const DEFAULT_WATCHDOG_MS = 30_000;
export const DEFAULT_CLOSE_TIMEOUT_MS = 60_000;

/** A positive number of milliseconds, or Infinity (off). */
export function validateBound(name: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "number" || Number.isNaN(v) || v <= 0) throw new RangeError(`${name} must be a number of milliseconds > 0 (or Infinity), got ${String(v)}`);
  return v;
}

/**
 * `onStall(stalled, waiting, now)`: the watched that stalled, and the others whose task has not begun (a blocked
 * thread's queue). `onRound(now)` runs first in every round (the engine samples its threads' idle time there).
 */
export function startWatchdog<T extends Watched>(
  boundMs: number,
  watched: () => Iterable<T>,
  onStall: (stalled: T[], waiting: T[], now: number) => void,
  onRound?: (now: number) => void,
): () => void {
  if (!Number.isFinite(boundMs)) return () => undefined;
  // Checked four times per bound: a stall is seen between 1 and 1.25 bounds after the last sign of life.
  const timer = setInterval(() => {
    const now = Date.now();
    onRound?.(now);
    const stalled: T[] = [];
    const waiting: T[] = [];
    for (const w of watched()) {
      if (w.stalled(now, boundMs)) stalled.push(w);
      else if (w.waitingToStart(now, boundMs)) waiting.push(w);
    }
    if (stalled.length > 0 || waiting.length > 0) onStall(stalled, waiting, now);
  }, Math.max(10, Math.floor(boundMs / 4)));
  timer.unref();
  return () => clearInterval(timer);
}
