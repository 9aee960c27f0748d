/** What bench/turn-ring.ts's main thread and its worker share (the worker module must not load on the main thread). */

export interface TurnRingWorkerData {
  readonly ring: SharedArrayBuffer;
}

/** A turn's writes the ring could not take, sent as the engine's writes message with the ring position at its send. */
export const OPS = "bench.ops";
/** A message setting how the worker drains the ring: `idlePolls` empty polls 1 ms apart before it sleeps (0: at once). */
export const MODE = "bench.mode";
/** Answered with SYNCED once everything before it (ring records up to `position`, earlier messages) is applied. */
export const SYNC = "bench.sync";
export const SYNCED = "bench.synced";

export interface SyncedMessage {
  readonly type: typeof SYNCED;
  /** Writes applied so far (puts and frames), and a checksum of their keys and values as the worker decoded them. */
  readonly applied: number;
  readonly checksum: number;
  /** Ring records and writes messages applied so far, and times the worker went to sleep on the ring. */
  readonly records: number;
  readonly messages: number;
  readonly sleeps: number;
}
