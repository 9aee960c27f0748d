/**
 * The verdict on a store whose write attempt failed (a tier's writePending or flush): whether it may take writes
 * again later, or takes none for good. A wait for room behind a full tier (attach's handle.drained(), the flush of a
 * pair waiting for another pair on its WAL tier) ends with the error only on the second kind; on the first it keeps
 * waiting, as a full disk that frees later must be waited through (docs/design.md §3.19). Such an unbounded wait
 * asks the tier for write attempts through one paced loop per tier (sharedWriteAttempt), however many wait on it.
 * Layer 3 (tier).
 */
import { StorageError } from "../errors.js";

/**
 * Codes of a store that takes no writes for good: its handle or tier closed (an engine closed, a backend closed
 * under its tiers), the writer lost it (not-owner: a PostgreSQL lease taken over; also a backend's `finalError`),
 * it is read-only, or it is not a store this program can write (corrupt-store). Everything else may pass: a full
 * disk (ENOSPC, SQLITE_FULL, a quota: backend-error), an I/O error spell, a busy store, a lost or unresponsive
 * engine worker (the store reopens on a fresh thread at its next operation), backpressure.
 */
const ENDED_CODES: ReadonlySet<string> = new Set(["closed", "not-owner", "read-only", "corrupt-store"]);

/**
 * Backends' final errors (StorageBackend.finalError) a tier met: the very objects, whatever their code (a custom
 * backend's may carry any, or be a plain Error). A backend keeps returning the same object once set (task 261), so
 * identity says the store ended where a code would not. Weak: an ended store's error goes with it.
 */
const FINAL_ERRORS = new WeakSet<object>();

/** Records `err`, a backend's finalError a tier met, as one that ends that store's writes for good (writesEndedBy). */
export function noteFinalError(err: Error): void {
  FINAL_ERRORS.add(err);
}

/** True when `err` is a backend's finalError a tier met (noteFinalError), whatever its code: its store ended. */
export function isFinalError(err: unknown): err is Error {
  return typeof err === "object" && err !== null && FINAL_ERRORS.has(err);
}

/**
 * True when `err`, a failed write attempt's error, says the store takes no writes for good: one of ENDED_CODES, or
 * a backend's finalError itself (by identity: noteFinalError).
 */
export function writesEndedBy(err: unknown): err is Error {
  if (isFinalError(err)) return true;
  return err instanceof StorageError && ENDED_CODES.has(err.code);
}

/** A tier that can be asked to write what it holds (KvStorageTier / SnapshotStorageTier writePending). */
export interface PendingWriter {
  writePending(): Promise<void>;
}

/** What one write attempt of a tier came to: written, or the error it failed with (writesEndedBy judges it). */
export type WriteAttempt = { readonly written: true } | { readonly written: false; readonly error: unknown };

/** The pacing of a tier's shared attempts: the pause after the k-th attempt is `pauseMs << min(k, maxSteps)`. */
export interface AttemptPace {
  readonly pauseMs: number;
  readonly maxSteps: number;
}

/** One tier's shared attempt loop: the attempt waited for (paused or running), its pace, when the next may start. */
interface AttemptLoop {
  next: Promise<WriteAttempt> | undefined;
  steps: number;
  notBefore: number;
}

/** Per tier object: weak, a closed tier's loop goes with it. */
const LOOPS = new WeakMap<PendingWriter, AttemptLoop>();

const WRITTEN: WriteAttempt = Object.freeze({ written: true });

/**
 * The outcome of `tier`'s next write attempt, for a wait for room that never gives up (attach's handle.drained()):
 * one attempt at a time per tier, shared by every wait on it whichever graph or pair waits, and paced per tier (each
 * attempt lengthens the pause before the next: `pace`). So a store behind many waiting pairs (50 graphs attached
 * over one WAL tier) is asked as often as behind one, where each pair's loop asked it (review r279 F4). The pause
 * runs on an unref'd timer (it never holds the process); a caller races it with its own room and dispose signals,
 * and one arriving after the pause ran out unasked (a new spell) starts an attempt at once, the pace reset.
 */
export function sharedWriteAttempt(tier: PendingWriter, pace: AttemptPace): Promise<WriteAttempt> {
  let loop = LOOPS.get(tier);
  if (loop === undefined) LOOPS.set(tier, (loop = { next: undefined, steps: 0, notBefore: 0 }));
  if (loop.next !== undefined) return loop.next;
  const l = loop;
  const attempt = (): Promise<WriteAttempt> => {
    let running: Promise<void>;
    try {
      running = tier.writePending();
    } catch (err) {
      running = Promise.reject(err);
    }
    return running.then(
      () => WRITTEN,
      (error: unknown): WriteAttempt => ({ written: false, error }),
    );
  };
  const wait = l.notBefore - performance.now();
  if (wait <= 0) l.steps = 0; // nobody asked through the last pause: a new spell
  const next = (wait <= 0 ? attempt() : unrefPause(wait).then(attempt)).then((outcome) => {
    // A failed attempt doubles the pause (a sick store is not asked in a loop); a written one is the store taking
    // writes again: the next waits the shortest pause (a tier holding nothing answers at once: no spin).
    l.steps = outcome.written ? 0 : Math.min(l.steps + 1, pace.maxSteps);
    l.notBefore = performance.now() + (pace.pauseMs << l.steps);
    l.next = undefined;
    return outcome;
  });
  l.next = next;
  return next;
}

function unrefPause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
