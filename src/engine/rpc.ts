/**
 * comlink over a Node MessagePort, for the actor's control calls (ready, setEventSink, runJob, shutdown; batches of
 * ops travel outside comlink, protocol.ts):
 * an Endpoint of our own (Node's MessagePort is an EventTarget, so no adapter module is needed) and a "throw"
 * transfer handler that carries our typed errors, so a call rejects with StorageError/RestoreError/CodecError and
 * their code and details instead of a plain Error. Both ends of a port must have called useTypedErrors().
 */
import type { MessagePort } from "node:worker_threads";
import { transferHandlers, type Endpoint, type TransferHandler } from "comlink";
import { deserializeError, serializeError, type SerializedError } from "../errors.js";

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
