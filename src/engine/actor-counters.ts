/**
 * Counters one store actor shares with the main thread through a SharedArrayBuffer (one buffer per actor): the
 * main thread reads them without a message, so they answer even while the actor is busy or hung. The actor is
 * the only writer. Add a slot by naming it in COUNTER and raising COUNTER_SLOTS.
 */
export const COUNTER = {
  /** Bumped by the worker's event loop while it turns (see workers/store-actor.ts); wraps around. */
  heartbeat: 0,
} as const;

export const COUNTER_SLOTS = 8;

export type CounterName = keyof typeof COUNTER;

export class ActorCounters {
  private readonly cells: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(COUNTER_SLOTS * Int32Array.BYTES_PER_ELEMENT)) {
    this.cells = new Int32Array(buffer);
  }

  get(name: CounterName): number {
    return Atomics.load(this.cells, COUNTER[name]);
  }

  set(name: CounterName, value: number): void {
    Atomics.store(this.cells, COUNTER[name], value);
  }

  add(name: CounterName, delta: number): void {
    Atomics.add(this.cells, COUNTER[name], delta);
  }
}
