/**
 * How an attach pair words its stop when a tier closed under it, which is no refusal (a value or key the store will
 * never take) and which handle.rebaseline() cannot get past:
 * - its engine's close (tasks 307 and 317): the tier's `closed` answer after engine.close()'s drain failed
 *   (connection.ts flushedByDrain: details.reason "drain-failed", `cause` the drain's failure), or a write met by an
 *   engine already closing or closed (proxies.ts assertUsable, connection.ts closingError: details.reason
 *   "engine-closed"). Neither says what the store holds: a drain that failed on one tier may have stored another
 *   tier's writes, a failed commit may have landed, and a drain that resolved stored the frames that a save met
 *   after it could not follow. So the pair's error says its writes are not acknowledged and may be stored, never
 *   "not stored" (review r314 F3, F4).
 * - its owner's close (task 321): any other `closed` answer (the tier's own close(), its backend's): the pair stops
 *   with code `closed`, details.reason "tier-closed", saying what to do (dispose, attach again over open tiers).
 * Either names the write in question: the baseline at its seq when it is one, else the write at the seq.
 */
import { StorageError } from "../errors.js";

/** Why a tier's `closed` answer came from its engine's close, or undefined when it did not. */
export function engineGone(err: unknown): "drain-failed" | "engine-closed" | undefined {
  if (!(err instanceof StorageError) || err.code !== "closed") return undefined;
  const reason = err.details.reason;
  return reason === "drain-failed" || reason === "engine-closed" ? reason : undefined;
}

/** A tier's `closed` answer that its engine's close did not cause: its owner closed it (or its backend). */
export function closedByOwner(err: unknown): err is StorageError {
  return err instanceof StorageError && err.code === "closed" && engineGone(err) === undefined;
}

/** An error as a report names it: name, code, message. */
export function saidError(e: Error): string {
  const code = (e as { code?: unknown }).code;
  return `${e.name}${typeof code === "string" ? ` ${code}` : ""}: ${e.message}`;
}

/** The write a stop's error names: the baseline at `baseline` when it is one, else the write at `seq`. */
export function writeAt(seq: number, baseline: number | undefined): string {
  return baseline !== undefined ? `the baseline at seq ${baseline}` : `the write at seq ${seq}`;
}

/**
 * What flush() rejects with once a pair stopped at `seq` because its engine closed (`cause`: the tier's `closed`
 * answer, engineGone says why). `baseline`: the seq of the pair's unacknowledged baseline when it is the write in
 * question (the snapshot tier answered, or a baseline's save met the closed tier); otherwise the write at `seq`
 * (the first one not acknowledged) is.
 */
export function engineGoneError(graphName: string, seq: number, cause: StorageError, baseline?: number): StorageError {
  const reason = engineGone(cause) ?? "engine-closed";
  const tier = baseline !== undefined ? "the snapshot tier's store" : "the store";
  const why =
    reason === "drain-failed"
      ? `the storage engine closed and its final drain of ${tier} failed (${cause.cause instanceof Error ? saidError(cause.cause) : cause.message})`
      : `the storage engine closed (${saidError(cause)})`;
  return new StorageError(
    "write-refused",
    `graph "${graphName}": ${writeAt(seq, baseline)} is not acknowledged (it may be stored): ${why}; nothing from seq ${seq} on is ` +
      "acknowledged, and this engine writes no more (an engine opened again and a new attach write the graph's state)",
    { graph: graphName, seq, reason, ...(baseline !== undefined ? { baseline } : {}) },
    cause,
  );
}

/**
 * What flush() rejects with once a pair stopped at `seq` because a tier of its was closed by its owner (`cause`:
 * closedByOwner). Not a refusal: rebaseline() cannot write through a closed tier, so the error says what can.
 * `refusal`: the store refused that write as the tier closed (its close wrote the frames before it), and the close
 * left nothing past it to list or delete: both are said, the close deciding what to do (task 334).
 */
export function tierClosedError(graphName: string, seq: number, cause: StorageError, baseline?: number, refusal?: Error): StorageError {
  const tier = typeof cause.details.tier === "string" ? cause.details.tier : undefined;
  const named = tier !== undefined ? `storage tier ${JSON.stringify(tier)}` : "a storage tier of the pair";
  const what = refusal !== undefined ? `was refused (${saidError(refusal)}) and` : "is not acknowledged:";
  return new StorageError(
    "closed",
    `graph "${graphName}": ${writeAt(seq, baseline)} ${what} ${named} was closed by its owner (${saidError(cause)}), ` +
      `so nothing from seq ${seq} on is acknowledged and this handle writes no more through it; handle.rebaseline() ` +
      "cannot write through a closed tier: dispose this handle and attach the graph again over open tiers",
    { graph: graphName, seq, reason: "tier-closed", ...(tier !== undefined ? { tier } : {}), ...(baseline !== undefined ? { baseline } : {}) },
    cause,
  );
}
