/**
 * comlink over a Node MessagePort, for the actor's control calls (ready, setEventSink, runJob, shutdown; batches of
 * ops travel outside comlink, protocol.ts):
 * an Endpoint of our own (Node's MessagePort is an EventTarget, so no adapter module is needed) and a "throw"
 * transfer handler that carries our typed errors, so a call rejects with StorageError/RestoreError/CodecError and
 * their code and details instead of a plain Error. Both ends of a port must have called useTypedErrors(). Also the
 * worker's answer to a batch of requests, which travels outside comlink (protocol.ts).
 */
import type { MessagePort } from "node:worker_threads";
import { transferHandlers, type Endpoint, type TransferHandler } from "comlink";
import { CodecError, deserializeError, serializeError, type SerializedError } from "../errors.js";
import { RESULTS_MESSAGE, type ApplyResult, type Op, type ResultsMessage } from "./protocol.js";

let registered = false;

/** Replaces comlink's "throw" handler (process-wide, idempotent): thrown values travel as SerializedError. */
export function useTypedErrors(): void {
  if (registered) return;
  registered = true;
  const builtin = transferHandlers.get("throw");
  if (builtin === undefined) throw new Error("comlink has no \"throw\" transfer handler to replace");
  const typed: TransferHandler<{ value: unknown }, SerializedError> = {
    // comlink marks a thrown value with a private symbol: its own check recognises it.
    canHandle: (v): v is { value: unknown } => builtin.canHandle(v),
    serialize: ({ value }) => [serializeError(value), []],
    deserialize: (s) => {
      throw deserializeError(s);
    },
  };
  transferHandlers.set("throw", typed as TransferHandler<unknown, unknown>);
}

/** comlink's view of a port (a value structured clone cannot carry rejects the call with DataCloneError). */
export function portEndpoint(port: MessagePort): Endpoint {
  return {
    postMessage: (message: unknown, transfer?: unknown[]) => port.postMessage(message, transfer as Parameters<MessagePort["postMessage"]>[1]),
    addEventListener: port.addEventListener.bind(port) as Endpoint["addEventListener"],
    removeEventListener: port.removeEventListener.bind(port) as Endpoint["removeEventListener"],
    start: () => port.start(),
  };
}

/** Posts a batch's results; every request is answered, whatever happened to the batch. */
export function answer(port: MessagePort, ops: Op[], applied: Promise<ApplyResult>): void {
  void applied
    .catch((err: unknown): ApplyResult => ({ results: requestIds(ops).map((id) => ({ id, ok: false, error: serializeError(err) })), errors: [] }))
    .then((r) => {
      try {
        port.postMessage({ type: RESULTS_MESSAGE, ...r } satisfies ResultsMessage);
      } catch {
        // A value read back that structured clone cannot carry (a worker codec's decode result) fails its request alone.
        port.postMessage({ type: RESULTS_MESSAGE, results: r.results.map(cloneable), errors: r.errors } satisfies ResultsMessage);
      }
    });
}

function requestIds(ops: Op[]): number[] {
  return ops.flatMap((op) => ("id" in op ? [op.id] : []));
}

function cloneable(r: ApplyResult["results"][number]): ApplyResult["results"][number] {
  try {
    structuredClone(r);
    return r;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { id: r.id, ok: false, error: serializeError(new CodecError("decode-failed", `a value read could not be sent to the main thread: ${why}`)) };
  }
}
