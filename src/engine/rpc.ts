/**
 * comlink over a Node MessagePort, for the actor's control calls (ready, setEventSink, runJob, shutdown; batches of
 * ops travel outside comlink, protocol.ts):
 * an Endpoint of our own (Node's MessagePort is an EventTarget, so no adapter module is needed) and a "throw"
 * transfer handler that carries our typed errors, so a call rejects with StorageError/RestoreError/CodecError and
 * their code and details instead of a plain Error. Both ends of a port must have called useTypedErrors(); a user's
 * own comlink calls in the same thread keep what comlink (or their own handler) makes of them (useTypedErrors).
 * Also the worker's answer to a batch of requests, which travels outside comlink (protocol.ts).
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

/**
 * The "throw" handlers of this package (any copy from this wire shape on) in this thread, by identity: each builds
 * every copy's typed errors (BUILDERS). A property on the handler would not do: a user's handler written
 * `{ ...transferHandlers.get("throw"), deserialize }` (or Object.assign) copies it, and was then taken for ours
 * and never laid under ours again (the engine's calls rejected with what the user's deserialize built). The set is
 * the thread's global, shared by the copies as BUILDERS is.
 */
const HANDLERS = Symbol.for("graphrefly-storage.typed-throw-handlers");

/**
 * Each copy of the package loaded in this thread, by its COPY, and how it builds a typed error with its own classes:
 * whichever copy's handler is on top of comlink's map, an error another copy's worker sent is made with that copy's
 * classes (the thread's global: the copies share nothing else, and comlink's map is per thread too).
 */
const BUILDERS = Symbol.for("graphrefly-storage.typed-error-builders");

/**
 * Each wire value a handler of ours sent lately and the value thrown (the thread's global, shared by the copies):
 * the engine's own ports (portEndpoint) add our field for any thrown value, read here as comlink posts the message.
 */
const THROWN = Symbol.for("graphrefly-storage.thrown-by-wire");

/** The field of ours on the wire, beside comlink's own `{ isError, value }`: our typed error and the copy sending it. */
const FIELD = "graphreflyError";

type TypedError = SerializedError & { copy: string };
type ThrowHandler = TransferHandler<unknown, unknown>;
type Shared = { [BUILDERS]?: Map<string, (s: SerializedError) => Error>; [HANDLERS]?: WeakSet<object>; [THROWN]?: WeakMap<object, unknown> };

function builders(): Map<string, (s: SerializedError) => Error> {
  return ((globalThis as Shared)[BUILDERS] ??= new Map());
}

function ours(): WeakSet<object> {
  return ((globalThis as Shared)[HANDLERS] ??= new WeakSet());
}

function thrownBy(): WeakMap<object, unknown> {
  return ((globalThis as Shared)[THROWN] ??= new WeakMap());
}

/** Our field of a wire value, if it carries one. */
function typedOf(wire: unknown): TypedError | undefined {
  if (typeof wire !== "object" || wire === null) return undefined;
  const t = (wire as { [FIELD]?: unknown })[FIELD];
  if (typeof t !== "object" || t === null) return undefined;
  const { name, message, copy } = t as Partial<TypedError>;
  return typeof name === "string" && typeof message === "string" && typeof copy === "string" ? (t as TypedError) : undefined;
}

const CLASSES = new Set(["StorageError", "RestoreError", "CodecError"]);

/**
 * An error of this package's own classes, of any copy (their shape, src/errors.ts: the class's name and a string
 * code; `instanceof` would know this copy's alone). Only these travel with our field on a port that is not the
 * engine's: a user's own call whose ends both loaded the package (a user worker importing it for anything) got
 * every thrown value rebuilt as an Error (a thrown "oops" as Error("oops"), an object as "[object Object]", a
 * subclass named "Error"), not what comlink or the user's handler gives.
 */
function isPackageError(v: unknown): v is Error {
  return v instanceof Error && CLASSES.has(v.name) && typeof (v as { code?: unknown }).code === "string";
}

/** `wire` with our field for `thrown` beside comlink's own; as it was if no such field can be made. */
function withField(wire: object, thrown: unknown): object {
  try {
    return { ...wire, [FIELD]: { ...serializeError(thrown), copy: COPY } satisfies TypedError };
  } catch {
    return wire; // a thrown value whose fields throw as they are read: as the handler underneath sends it
  }
}

function isPlainWire(wire: unknown): wire is object {
  return typeof wire === "object" && wire !== null && !Array.isArray(wire);
}

/**
 * Our "throw" handler over `under`, the one it replaces (comlink's built-in, a user's own, or another copy's).
 * `under` keeps every call that is not ours as it was: its check (comlink's private throw marker), its wire value
 * (for comlink's built-in `{ isError, value }`, so a user's worker that never loads this package, running the
 * built-in deserialize, gets what it would have got) and its deserialize for a wire value without our field (what a
 * user's worker sends). We add our field beside its wire value for an error of this package's classes (any port),
 * or for anything thrown on an engine port (portEndpoint), and build our typed error from that field alone.
 */
function typedThrow(under: ThrowHandler): ThrowHandler {
  const handler: ThrowHandler = {
    canHandle: (v): v is unknown => under.canHandle(v),
    serialize: (thrown) => {
      const [wire, transfer] = under.serialize(thrown);
      // Under another copy's handler its field is there already when due (any copy builds it: BUILDERS). A wire value
      // that is not a plain object (a user's handler's own) cannot carry a field beside it: sent as it is.
      if (ours().has(under) || !isPlainWire(wire)) return [wire, transfer];
      const value = (thrown as { value: unknown }).value;
      const sent = isPackageError(value) ? withField(wire, value) : wire;
      thrownBy().set(sent, value);
      return [sent, transfer];
    },
    deserialize: (wire) => {
      const typed = typedOf(wire);
      if (typed === undefined) return under.deserialize(wire); // not ours: as the handler we replaced makes it (it throws)
      const { copy, ...error } = typed;
      throw (builders().get(copy) ?? deserializeError)(error);
    },
  };
  ours().add(handler);
  return handler;
}

/** useTypedErrors() was called in this module (this copy, this thread): ours is to stay on top (keepTypedErrors). */
let typedErrors = false;

/**
 * Replaces comlink's "throw" handler (process-wide, idempotent) by ours over it (typedThrow): an error thrown across
 * one of the engine's ports (portEndpoint, both ends having called this) travels as our typed error
 * (StorageError/RestoreError/CodecError with code and details, TypeError, RangeError), made with the classes of the
 * copy of the package that sent it. comlink's handlers are one map per thread, shared by every copy of this package
 * loaded there (a user's two versions in node_modules with one comlink) and by the user's own comlink calls, which
 * keep what the handler we replaced makes of them (but for this package's own errors, which arrive typed).
 */
export function useTypedErrors(): void {
  if (transferHandlers.get("throw") === undefined) throw new Error('comlink has no "throw" transfer handler to replace');
  builders().set(COPY, deserializeError);
  typedErrors = true;
  keepTypedErrors();
}

/**
 * Puts ours back over the "throw" handler in comlink's map unless a handler of this package (any copy) is there: a
 * user's own, installed after ours, replaced it for the whole thread, and the engine's calls then rejected with
 * whatever it built (plain errors: `instanceof` and `code` checks, the engine's own included, failed). Called as each
 * message reaches comlink on one of our ports, before comlink deserializes it; the user's handler stays under ours
 * and keeps its calls.
 */
function keepTypedErrors(): void {
  if (!typedErrors) return;
  const current = transferHandlers.get("throw");
  if (current === undefined || ours().has(current)) return; // none: comlink itself fails that message
  transferHandlers.set("throw", typedThrow(current));
}

/**
 * A message comlink posts on one of the engine's ports, with our field added to a thrown value's wire value (a
 * handler of ours sent it, THROWN) that lacks it: the engine's calls carry every error typed, TypeError included.
 */
function engineMessage(message: unknown): unknown {
  if (!isPlainWire(message)) return message;
  const m = message as { type?: unknown; name?: unknown; value?: unknown };
  if (m.type !== "HANDLER" || m.name !== "throw" || !isPlainWire(m.value) || typedOf(m.value) !== undefined) return message;
  const sent = thrownBy();
  if (!sent.has(m.value)) return message;
  const thrown = sent.get(m.value);
  sent.delete(m.value);
  return { ...message, value: withField(m.value, thrown) };
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
      port.postMessage(engineMessage(message), transfer as Parameters<MessagePort["postMessage"]>[1]);
      posted?.(); // only once posted: a message structured clone refused never reaches the other end
    },
    addEventListener: (type: string, listener: Listener, options?: object) => {
      const ofType = wrappers.get(type) ?? new Map<Listener, Listener>();
      wrappers.set(type, ofType);
      if (ofType.has(listener)) return;
      const wrapper: Listener = (ev) => {
        if (Array.isArray(ev.data)) return;
        keepTypedErrors(); // ours on top before comlink reads a thrown value off the message
        listener(ev);
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
