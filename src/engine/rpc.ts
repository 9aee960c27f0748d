/**
 * comlink over a Node MessagePort, for the actor's control calls (ready, setEventSink, runJob, shutdown; batches of
 * ops travel outside comlink, protocol.ts):
 * an Endpoint of our own (Node's MessagePort is an EventTarget, so no adapter module is needed) and a "throw"
 * transfer handler that carries our typed errors, so a call rejects with StorageError/RestoreError/CodecError and
 * their code and details instead of a plain Error. Both ends of a port must have called useTypedErrors(). Also the
 * worker's answer to a batch of requests, which travels outside comlink (protocol.ts).
 */
import { MessageChannel, type MessagePort } from "node:worker_threads";
import { expose, transferHandlers, type Endpoint, type TransferHandler } from "comlink";
import { CodecError, deserializeError, serializeError, type SerializedError } from "../errors.js";
import { RESULTS_MESSAGE, type ApplyResult, type Op, type ResultsMessage } from "./protocol.js";

const replaced = new Set<string>();

/** Replaces comlink's `name` transfer handler (process-wide, once) by what `make` builds from the built-in one. */
function replaceHandler(name: string, make: (builtin: TransferHandler<unknown, unknown>) => TransferHandler<unknown, unknown>): void {
  if (replaced.has(name)) return;
  replaced.add(name);
  const builtin = transferHandlers.get(name);
  if (builtin === undefined) throw new Error(`comlink has no "${name}" transfer handler to replace`);
  transferHandlers.set(name, make(builtin));
}

/**
 * This copy of the package: its root (the folder holding src/ or dist/src/), the same for the sources and their
 * build, so a test thread on src/ and its worker on dist/ are one copy; two installed copies differ.
 */
const COPY = new URL(".", import.meta.url).href.replace(/\/(?:dist\/)?src\/engine\/$/, "/");

/** Marks a "throw" handler of this package (any copy) with its copy: an earlier copy's is found through it. */
const TYPED_THROW = Symbol.for("graphrefly-storage.typed-throw");

type TypedThrowHandler = TransferHandler<{ value: unknown }, SerializedError & { copy?: string }> & { [TYPED_THROW]?: string };

/**
 * Replaces comlink's "throw" handler (process-wide, idempotent): thrown values travel as SerializedError, tagged with
 * the sending copy. comlink's handlers are one map per thread, shared by every copy of this package loaded there (a
 * user's two versions in node_modules with one comlink): the last copy's handler answered every copy's calls, so an
 * error from the first copy's engine was the last copy's StorageError, failing `instanceof` against the first's class.
 * Each copy's handler wraps the one it replaced: an error from another copy goes to that copy's handler down the
 * chain, and one no handler there claims (an older copy without tags) is made with this copy's classes.
 */
export function useTypedErrors(): void {
  replaceHandler("throw", (builtin) => {
    const earlier = (builtin as TypedThrowHandler)[TYPED_THROW] !== undefined ? builtin : undefined;
    const typed: TypedThrowHandler = {
      // comlink marks a thrown value with a private symbol: its own check recognises it.
      canHandle: (v): v is { value: unknown } => builtin.canHandle(v),
      serialize: ({ value }) => [{ ...serializeError(value), copy: COPY }, []],
      deserialize: (s) => {
        if (earlier !== undefined && typeof s.copy === "string" && s.copy !== COPY) return earlier.deserialize(s) as { value: unknown }; // it throws, as this one does
        throw deserializeError(s);
      },
      [TYPED_THROW]: COPY,
    };
    return typed as TransferHandler<unknown, unknown>;
  });
}

/** The port each value passed as a comlink proxy is served on in this thread (see useClosableProxies). */
const servedOn = new WeakMap<object, MessagePort>();

/**
 * Replaces comlink's "proxy" handler (process-wide, idempotent) by one that serves a proxied value as it does, on a
 * port of its own, and remembers that port, so `closeServed` can close it. comlink closes it only when the other
 * thread releases its proxy or the port there closes: an actor whose open failed leaves its task while its worker
 * lives on (a pool thread), and the port that served the connection its events stayed open (and ref'd) until that
 * worker happened to collect the proxy, one port per failed open (test/engine/failed-open-ports).
 */
export function useClosableProxies(): void {
  replaceHandler("proxy", (builtin) => {
    const served: TransferHandler<object, MessagePort> = {
      canHandle: (v): v is object => builtin.canHandle(v),
      serialize: (value) => {
        const { port1, port2 } = new MessageChannel();
        expose(value, port1 as unknown as Endpoint);
        servedOn.set(value, port1);
        return [port2, [port2]] as unknown as ReturnType<TransferHandler<object, MessagePort>["serialize"]>;
      },
      deserialize: (port) => builtin.deserialize(port) as object,
    };
    return served as TransferHandler<unknown, unknown>;
  });
}

/** Closes the port `value` was served on as a comlink proxy (useClosableProxies); the other thread's proxy goes dead. */
export function closeServed(value: object): void {
  servedOn.get(value)?.close();
  servedOn.delete(value);
}

type Listener = (ev: MessageEvent) => void;

/**
 * comlink's view of a port (a value structured clone cannot carry rejects the call with DataCloneError). comlink
 * never sees an array message: the writes batch is one flat array (protocol.ts), and comlink's `expose` copies
 * every message's own properties into a fresh object before looking at it, which for an array is every element
 * (a 50,000-put burst's batch took the worker twice as long). Its own messages are always objects. `posted`: called
 * after each message comlink posted (the connection counts every post for its turn ring's order, ring-drain.ts).
 */
export function portEndpoint(port: MessagePort, posted?: () => void): Endpoint {
  // By type and listener, as an EventTarget keeps them: adding one twice adds it once.
  const wrappers = new Map<string, Map<Listener, Listener>>();
  return {
    postMessage: (message: unknown, transfer?: unknown[]) => {
      port.postMessage(message, transfer as Parameters<MessagePort["postMessage"]>[1]);
      posted?.(); // only once posted: a message structured clone refused never reaches the other end
    },
    addEventListener: (type: string, listener: Listener, options?: object) => {
      const ofType = wrappers.get(type) ?? new Map<Listener, Listener>();
      wrappers.set(type, ofType);
      if (ofType.has(listener)) return;
      const wrapper: Listener = (ev) => {
        if (!Array.isArray(ev.data)) listener(ev);
      };
      ofType.set(listener, wrapper);
      port.addEventListener(type, wrapper as Parameters<MessagePort["addEventListener"]>[1], options);
    },
    removeEventListener: (type: string, listener: Listener, options?: object) => {
      const wrapper = wrappers.get(type)?.get(listener);
      if (wrapper === undefined) return;
      wrappers.get(type)?.delete(listener);
      port.removeEventListener(type, wrapper as Parameters<MessagePort["removeEventListener"]>[1], options);
    },
    start: () => port.start(),
  } as Endpoint;
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
