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

/** True when `err`, a failed write attempt's error, says the store takes no writes for good (ENDED_CODES). */
export function writesEndedBy(err: unknown): err is StorageError {
  return err instanceof StorageError && ENDED_CODES.has(err.code);
}
