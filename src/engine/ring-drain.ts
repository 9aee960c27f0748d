/**
 * The worker's end of a store's turn ring (ring.ts, docs/design.md §3.35): applies the records the connection wrote
 * to the actor in issue order with the messages on the actor's port, on a 1 ms timer while records flow, asleep in
 * Atomics.waitAsync once the ring stayed empty for IDLE_POLLS polls (an idle store costs its thread no CPU).
 *
 * Order: each record carries the count of port messages the connection had posted before it (every post, comlink's
 * control calls included). `beforeMessage` runs first for every message on the port, before comlink or the actor see
 * it: it applies the records written before that message, then counts it. So a flush, a read, a rollback, a job or a
 * shutdown finds every write made before it applied, as if the writes had been messages.
 *
 * Handover (task 209): a store has a ring only while it writes through one. The connection hands a ring over, and
 * takes it back, by a message on the port (RingMessage): like any message it first applies the records of the ring
 * before it; the old ring is then stopped and marked released (the engine may reuse the buffer), and the new one's
 * records, all written after the message was posted, count from the messages up to and including it. One count of
 * messages spans the rings (`hostRings`), as one count of posts does on the connection's side.
 */
import type { Op } from "./protocol.js";
import { TurnRingReader } from "./ring.js";

/** Empty polls (1 ms apart) before the worker sleeps until the next record; a steady stream never sleeps. */
export const IDLE_POLLS = 20;
const POLL_MS = 1;

/** A ring's handover on the actor's port: `ring` from now on (none: the store's turns go as messages again). */
export interface RingMessage {
  readonly type: typeof RING_MESSAGE;
  readonly ring?: SharedArrayBuffer;
}

export const RING_MESSAGE = "graphrefly.turn-ring";

export function isRingMessage(m: unknown): m is RingMessage {
  return typeof m === "object" && m !== null && (m as { type?: unknown }).type === RING_MESSAGE;
}

/** The rings of one actor, one after another (the connection hands them over by RingMessage). */
export interface RingHost {
  /** Call for every message on the actor's port, before anything handles it: true when it was a handover (done). */
  onMessage(m: unknown): boolean;
  /** Stops the current ring's drain (the actor closed). */
  stop(): void;
}

export function hostRings(apply: (ops: Op[]) => void, first?: SharedArrayBuffer): RingHost {
  let messages = 0;
  const applied = (): number => messages;
  let current = first !== undefined ? drainRing(first, apply, applied) : undefined;
  return {
    onMessage: (m) => {
      current?.drain();
      messages++;
      if (!isRingMessage(m)) return false;
      current?.stop();
      current = m.ring !== undefined ? drainRing(m.ring, apply, applied) : undefined;
      return true;
    },
    stop: () => {
      current?.stop();
      current = undefined;
    },
  };
}

export interface RingDrain {
  /** Applies every record written before the messages applied so far (call before counting the next one). */
  drain(): void;
  /** Stops polling, ends a sleep and marks the ring released (the actor closed, or the ring was taken back). */
  stop(): void;
}

/** Drains one ring; `messagesApplied`: the port's messages counted so far (a record waits for those before it). */
export function drainRing(sab: SharedArrayBuffer, apply: (ops: Op[]) => void, messagesApplied: () => number): RingDrain {
  const reader = new TurnRingReader(sab);
  let stopped = false;
  let idle = 0;
  let timer: NodeJS.Timeout | undefined;

  /** Applies every record that may go now (written before the `messages`-th message); how many. */
  const drain = (): number => {
    let k = 0;
    const messages = messagesApplied();
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
    drain: () => {
      if (!stopped) drain();
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      reader.wake();
      reader.release(); // last: nothing of this thread touches the buffer after it
    },
  };
}
