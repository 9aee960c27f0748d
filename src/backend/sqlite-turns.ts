/**
 * Writer turns: the SQLite handles of one store in one process (tiers on handles of their own, an engine actor in a
 * worker thread beside an inline tier, two engines) take turns to write, instead of meeting SQLite's busy. SQLite
 * makes a second writer poll for its lock for the busy timeout, 50 ms (a foreign program may hold it for good, and the
 * wait blocks the thread: design §3.12), so a flush of one handle failed store-busy whenever another handle's
 * transaction outlasted that (8 of 581 flushes in a review's run). A handle waits here instead, for the turn of
 * another handle of this process, which is always one transaction long.
 *
 * The turns are words in one SharedArrayBuffer per process: the first thread to load this module (the main thread,
 * which loads the package before it starts the engine's workers) makes it and hands it to every worker started after
 * (worker_threads environment data, shared, not copied). A worker started before has a table of its own: its handles
 * meet SQLite's busy as before. Stores are told apart by a hash of their real path; two stores sharing a slot only take
 * turns they did not need. Correctness never rests on a turn: SQLite still arbitrates every write.
 *
 * A wait is bounded as SQLite's busy wait is (WRITER_TURN_WAIT_MS), and a dead thread's turns are freed where its
 * death is seen (releaseThreadTurns: the engine, at its workers' exit). A thread terminated elsewhere while in its turn
 * (its `finally` does not run) costs the next writer one bounded wait, which then takes the turn over.
 * Layer 1.
 */
import { getEnvironmentData, setEnvironmentData, threadId } from "node:worker_threads";
import { SQLITE_BUSY_TIMEOUT_MS } from "./sqlite-errors.js";

const TABLE_KEY = "graphrefly-storage/sqlite-writer-turns";
const SLOTS = 256;
/**
 * The longest a handle waits for a turn, on any thread: the wait blocks the thread as SQLite's busy wait does, whose
 * 50 ms bound keeps a main thread's event loop off the disk and an engine worker answering its watchdog (059aeff;
 * 5 s froze the event loop behind a turn a terminated thread left held, and the watchdog killed the waiting worker).
 * Past it the waiter takes the turn over and meets SQLite's busy timeout as before dba3fb1: a transaction of another
 * handle of this process fails it only past both bounds, about 100 ms, not past 50 ms.
 */
export const WRITER_TURN_WAIT_MS = SQLITE_BUSY_TIMEOUT_MS;

/** [0, SLOTS): the holder of each slot's turn (0: free, else threadId + 1); [SLOTS, 2 × SLOTS): threads waiting. */
function sharedTable(): Int32Array {
  const found = getEnvironmentData(TABLE_KEY);
  if (found instanceof SharedArrayBuffer) return new Int32Array(found);
  const made = new SharedArrayBuffer(2 * SLOTS * Int32Array.BYTES_PER_ELEMENT);
  setEnvironmentData(TABLE_KEY, made);
  return new Int32Array(made);
}

const table = sharedTable();
const me = threadId + 1;

/** The turn slot of the store at `realPath` (FNV-1a of its UTF-16 units). */
export function writerSlot(realPath: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < realPath.length; i++) h = Math.imul(h ^ realPath.charCodeAt(i), 0x01000193);
  return (h >>> 0) % SLOTS;
}

/** The thread (threadId) holding `slot`'s turn now, undefined when it is free (tests read what a thread left). */
export function writerTurnHolder(slot: number): number | undefined {
  const holder = Atomics.load(table, slot);
  return holder === 0 ? undefined : holder - 1;
}

/**
 * Frees the turns `thread` (a threadId) holds: call it once that thread has exited (a Worker's 'exit'), which ends
 * its turn without its `finally` when it was terminated or exited inside one. Thread ids are never reused in a
 * process, so no living thread's turn is touched. Returns how many turns were freed.
 */
export function releaseThreadTurns(thread: number): number {
  const dead = thread + 1;
  let freed = 0;
  for (let slot = 0; slot < SLOTS; slot++) {
    if (Atomics.compareExchange(table, slot, dead, 0) !== dead) continue;
    freed++;
    Atomics.notify(table, slot, 1);
  }
  return freed;
}

/** Threads of this process waiting for `slot`'s turn now (tests watch a waiter arrive). */
export function writerTurnWaiters(slot: number): number {
  return Atomics.load(table, SLOTS + slot);
}

/**
 * Runs `fn` (one synchronous transaction) in `slot`'s turn, waiting (blocking the thread, as SQLite's busy wait does)
 * while another thread of this process has it, at most WRITER_TURN_WAIT_MS. Re-entrant within a thread.
 */
export function inWriterTurn<T>(slot: number, fn: () => T): T {
  const taken = takeTurn(slot);
  try {
    return fn();
  } finally {
    // Not ours any more when a waiter took it over: the compare leaves its turn alone.
    if (taken && Atomics.compareExchange(table, slot, me, 0) === me && Atomics.load(table, SLOTS + slot) > 0) {
      Atomics.notify(table, slot, 1);
    }
  }
}

/** True when this call took the turn (false: this thread had it already). */
function takeTurn(slot: number): boolean {
  let holder = Atomics.compareExchange(table, slot, 0, me);
  if (holder === 0) return true;
  if (holder === me) return false;
  Atomics.add(table, SLOTS + slot, 1);
  try {
    const deadline = Date.now() + WRITER_TURN_WAIT_MS;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) {
        Atomics.store(table, slot, me); // the holder kept it too long: go on, SQLite arbitrates
        return true;
      }
      Atomics.wait(table, slot, holder, left);
      holder = Atomics.compareExchange(table, slot, 0, me);
      if (holder === 0) return true;
    }
  } finally {
    Atomics.sub(table, SLOTS + slot, 1);
  }
}
