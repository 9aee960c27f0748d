/** What bench/turn-ring.ts's main thread and its worker share (the worker module must not load on the main thread). */

export interface TurnRingWorkerData {
  readonly ring: SharedArrayBuffer;
}

/** Envelope type of a plain (unanswered) ops message; comlink ignores types it does not know. */
export const OPS = "bench.ops";
