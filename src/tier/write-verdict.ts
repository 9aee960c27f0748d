/**
 * The verdict on a store whose write attempt failed (a tier's writePending or flush): whether it may take writes
 * again later, or takes none for good. A wait for room behind a full tier (attach's handle.drained(), the flush of a
 * pair waiting for another pair on its WAL tier) ends with the error only on the second kind; on the first it keeps
 * waiting, as a full disk that frees later must be waited through (docs/design.md §3.19).
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
