/**
 * Delay options and Node's timer range (review r237 #2): setTimeout and setInterval run a delay above 2^31 - 1 ms
 * (~24.8 days) after 1 ms, with only a TimeoutOverflowWarning. An engine told to linger 30 days shut its stores down
 * at once, and a close deadline of days gave up after 1 ms (writes lost). Every delay option of the engine passes
 * through timerBound, so such a value means what a caller asking for it meant: never, in practice.
 */

/** Longest delay a Node timer runs as asked. */
export const MAX_TIMER_MS = 0x7fffffff;

/** `ms` unchanged, or Infinity (no timer) when it is beyond MAX_TIMER_MS. */
export function timerBound(ms: number): number {
  return ms > MAX_TIMER_MS ? Number.POSITIVE_INFINITY : ms;
}
