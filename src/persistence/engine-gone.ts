/**
 * How an attach pair words its stop when its engine closed under it (tasks 307 and 317): the tier's `closed` answer
 * after engine.close()'s drain failed (connection.ts flushedByDrain: details.reason "drain-failed", `cause` the
 * drain's failure), or a write met by an engine already closing or closed (proxies.ts assertUsable, connection.ts
 * closingError: details.reason "engine-closed"). Neither is a refusal (a value or key the store will never take), and
 * handle.rebaseline() cannot run on a closed engine. Nor does either say what the store holds: a drain that failed on
 * one tier may have stored another tier's writes, a failed commit may have landed, and a drain that resolved stored
 * the frames that a save met after it could not follow. So the pair's error says its writes are not acknowledged and
 * may be stored, never "not stored" (review r314 F3, F4).
 */
import { StorageError } from "../errors.js";

/** Why a tier's `closed` answer came from its engine's close, or undefined when it did not. */
export function engineGone(err: unknown): "drain-failed" | "engine-closed" | undefined {
  if (!(err instanceof StorageError) || err.code !== "closed") return undefined;
  const reason = err.details.reason;
  return reason === "drain-failed" || reason === "engine-closed" ? reason : undefined;
}

/** An error as a report names it: name, code, message. */
export function saidError(e: Error): string {
  const code = (e as { code?: unknown }).code;
  return `${e.name}${typeof code === "string" ? ` ${code}` : ""}: ${e.message}`;
}

/**
 * What flush() rejects with once a pair stopped at `seq` because its engine closed (`cause`: the tier's `closed`
 * answer, engineGone says why). `baseline`: the seq of the pair's unacknowledged baseline when the snapshot tier
 * answered, named as the write in question; otherwise the write at `seq` (the first one not acknowledged) is.
 */
export function engineGoneError(graphName: string, seq: number, cause: StorageError, baseline?: number): StorageError {
  const reason = engineGone(cause) ?? "engine-closed";
  const what = baseline !== undefined ? `the baseline at seq ${baseline}` : `the write at seq ${seq}`;
  const tier = baseline !== undefined ? "the snapshot tier's store" : "the store";
  const why =
    reason === "drain-failed"
      ? `the storage engine closed and its final drain of ${tier} failed (${cause.cause instanceof Error ? saidError(cause.cause) : cause.message})`
      : `the storage engine closed (${saidError(cause)})`;
  return new StorageError(
    "write-refused",
    `graph "${graphName}": ${what} is not acknowledged (it may be stored): ${why}; nothing from seq ${seq} on is ` +
      "acknowledged, and this engine writes no more (an engine opened again and a new attach write the graph's state)",
    { graph: graphName, seq, reason, ...(baseline !== undefined ? { baseline } : {}) },
    cause,
  );
}
