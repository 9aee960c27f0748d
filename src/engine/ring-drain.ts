/**
 * The worker's end of a store's turn ring (ring.ts, docs/design.md §3.35): applies the records the connection wrote
 * to the actor in issue order with the messages on the actor's port, on a 1 ms timer while records flow, asleep in
 * Atomics.waitAsync once the ring stayed empty for IDLE_POLLS polls (an idle store costs its thread no CPU).
 *
 * Order: each record carries the count of port messages the connection had posted before it (every post, comlink's
 * control calls included). `beforeMessage` runs first for every message on the port, before comlink or the actor see
 * it: it applies the records written before that message, then counts it. So a flush, a read, a rollback, a job or a
 * shutdown finds every write made before it applied, as if the writes had been messages.
 */
import type { Op } from "./protocol.js";
import { TurnRingReader } from "./ring.js";

/** Empty polls (1 ms apart) before the worker sleeps until the next record; a steady stream never sleeps. */
export const IDLE_POLLS = 20;
const POLL_MS = 1;

export interface RingDrain {
  /** Call for every message on the actor's port, before anything handles it. */
  beforeMessage(): void;
  /** Stops polling and ends a sleep (the actor closed). */
  stop(): void;
}

export function drainRing(sab: SharedArrayBuffer, apply: (ops: Op[]) => void): RingDrain {
  const reader = new TurnRingReader(sab);
  let messages = 0;
  let stopped = false;
  let idle = 0;
  let timer: NodeJS.Timeout | undefined;

  /** Applies every record that may go now (written before the `messages`-th message); how many. */
  const drain = (): number => {
    let k = 0;
    for (let r = reader.next(messages); r !== undefined; r = reader.next(messages)) {
      apply(r.ops as Op[]);
      k++;
    }
    return k;
  };

  const poll = (): void => {
    timer = undefined;
    if (stopped) return;
    reader.polled();
    if (drain() > 0) idle = 0;
    // Records waiting for a message still on its way are no idleness: their message arrives within a poll or two.
    else if (!reader.unread()) idle++;
    if (idle < IDLE_POLLS) {
      timer = setTimeout(poll, POLL_MS);
      return;
    }
    idle = 0;
    // Only on an empty ring: sleep() resolves at once while records are unread, and a loop of such would starve the
    // port's message events of the turns they need.
    void reader.sleep().then(() => {
      if (!stopped) poll();
    });
  };
  timer = setTimeout(poll, POLL_MS);

  return {
    beforeMessage: () => {
      if (!stopped) drain();
      messages++;
    },
    stop: () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      reader.wake();
    },
  };
}
