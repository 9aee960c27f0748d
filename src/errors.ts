/**
 * Typed errors with stable string codes. Callers branch on `code`, never on messages.
 * Layer: none (imported by every layer).
 */

export type StorageErrorCode =
  | "backend-no-list-support"
  | "codec-mismatch"
  | "backend-error"
  | "invalid-key"
  /** A graph name whose keys would collide with other records of the store (a WAL frame key's shape, say). */
  | "invalid-name"
  | "closed"
  | "worker-crashed"
  /** A store's worker made no progress within the engine's watchdogMs: it was terminated (the store reopens). */
  | "worker-unresponsive"
  /** engine.close() gave up on a store whose drain did not end within closeTimeoutMs. */
  | "close-timeout"
  | "store-locked"
  /** A writer lost its store to another (a PostgreSQL lease taken over or expired): it writes no more. */
  | "not-owner"
  | "invalid-argument"
  | "corrupt-store"
  /** A write through a handle opened read-only. */
  | "read-only"
  /**
   * A stored graph kept changing under a reader (compaction moved its baseline on every try), or an array-layout
   * append-log's bucket under its write (another handle wrote it on every try; the flush is retried).
   */
  | "store-busy"
  /** A graph's write was refused for good (details.seq): its attach pair writes nothing more until rebaseline(). */
  | "write-refused"
  /** A write was NOT accepted: the store's pending bytes exceed maxPendingBytes (await tier.drained(), then retry). */
  | "backpressure"
  /**
   * A report, not a failure: a background fold kept a graph's frames for another store the WAL's store records as
   * restoring from it, attached in no handle of this process, whose seq stayed put while many frames and a long time
   * passed (docs/design.md §3.10).
   */
  | "wal-pinned"
  /**
   * compactGraph's forgetStores named a store a live attach handle named in its shared WAL's record within the last
   * hour (details.liveStores, seenAt): a process may still write it. Nothing was changed; `forceForget` overrides.
   */
  | "store-live"
  /**
   * attachSnapshotStorage: an ended handle of the graph left its last baseline unwritten in a hand-written snapshot
   * tier of the store that has no discard(key): it may still land over the new handle's (docs/api.md).
   */
  | "predecessor-pending";

export type RestoreErrorCode =
  | "phase-failed"
  | "torn-write-mid-stream"
  | "baseline-missing"
  | "codec-mismatch"
  | "wal-tier-required"
  /** Frames are missing between the baseline and later frames: the changes they held are lost. */
  | "wal-gap"
  /**
   * A snapshot store forgotten from its shared WAL's record (compactGraph's forgetStores) restores from a baseline
   * (details.baselineSeq) below the WAL's frames at the forget (forgottenAtSeq), none above it left: compacted away.
   */
  | "wal-compacted-past-baseline"
  /**
   * The stored graph holds a derived or effect node (details.path, frame_seq) the graph lacks or built with another
   * type, deps or meta: only code builds one, so restore would silently differ (docs/design.md §3.9).
   */
  | "derived-mismatch"
  /**
   * A report, not a failure: a follower's graph lacks a code-built node the writer re-added after a removal the
   * follower applied without it (details.paths, seq); restore at that seq has it (docs/design.md §3.9).
   */
  | "follow-diverged";

/** `duplicate-key`: a JSON document holding one key twice with different values (the CLI's import refuses it). */
export type CodecErrorCode = "encode-failed" | "decode-failed" | "duplicate-key";

export type ErrorDetails = Readonly<Record<string, unknown>>;

abstract class CodedError<C extends string> extends Error {
  readonly code: C;
  readonly details: ErrorDetails;
  constructor(code: C, message: string, details: ErrorDetails = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.details = details;
  }
}

export class StorageError extends CodedError<StorageErrorCode> {
  override readonly name = "StorageError";
}

export class RestoreError extends CodedError<RestoreErrorCode> {
  override readonly name = "RestoreError";
}

export class CodecError extends CodedError<CodecErrorCode> {
  override readonly name = "CodecError";
}

/** Wraps an unknown failure from a backend (EIO, ENOSPC, SQLITE_BUSY...) without hiding typed errors. */
export function asStorageError(err: unknown, context: string, details: ErrorDetails = {}): Error {
  if (err instanceof StorageError || err instanceof CodecError || err instanceof RestoreError) return err;
  const sys = err as { code?: unknown; message?: unknown } | null;
  const osCode = typeof sys?.code === "string" ? sys.code : undefined;
  const msg = typeof sys?.message === "string" ? sys.message : textOf(err);
  return new StorageError("backend-error", `${context}: ${msg}`, { ...details, ...(osCode ? { osCode } : {}) }, err);
}

/** Structured-clone-safe form used when errors cross a MessagePort. */
export interface SerializedError {
  name: string;
  code?: string;
  message: string;
  details?: ErrorDetails;
  stack?: string;
  /** The error's own `cause` (e.g. the OS error under a backend-error), so it survives the thread boundary. */
  cause?: SerializedError;
}

/** Causes kept across a thread boundary: enough for any chain we build, bounded against cyclic ones. */
const MAX_CAUSE_DEPTH = 4;

export function serializeError(err: unknown): SerializedError {
  return serializeAt(err, 0);
}

function serializeAt(err: unknown, depth: number): SerializedError {
  if (err instanceof Error) {
    const coded = err as Error & { code?: unknown; details?: unknown };
    const cause = err.cause !== undefined && depth < MAX_CAUSE_DEPTH ? serializeAt(err.cause, depth + 1) : undefined;
    return {
      name: err.name,
      code: typeof coded.code === "string" ? coded.code : undefined,
      message: err.message,
      details: isPlainRecord(coded.details) ? safeDetails(coded.details) : undefined,
      stack: err.stack,
      ...(cause !== undefined ? { cause } : {}),
    };
  }
  return { name: "Error", message: textOf(err) };
}

/**
 * String(err), or its tag when String() throws: a null-prototype object has no toString, and a thrown one (or one
 * as an Error's cause) made serializing throw a TypeError instead of the error (a worker codec's refusal, a call).
 */
function textOf(err: unknown): string {
  try {
    return String(err);
  } catch {
    return Object.prototype.toString.call(err);
  }
}

export function deserializeError(s: SerializedError): Error {
  let err: Error;
  const details = s.details ?? {};
  switch (s.name) {
    case "StorageError":
      err = new StorageError(s.code as StorageErrorCode, s.message, details);
      break;
    case "RestoreError":
      err = new RestoreError(s.code as RestoreErrorCode, s.message, details);
      break;
    case "CodecError":
      err = new CodecError(s.code as CodecErrorCode, s.message, details);
      break;
    case "RangeError":
      err = new RangeError(s.message);
      break;
    case "TypeError":
      err = new TypeError(s.message);
      break;
    default:
      err = new Error(s.message);
      if (s.code !== undefined) (err as Error & { code: string }).code = s.code;
  }
  if (s.stack) err.stack = s.stack;
  if (s.cause !== undefined) Object.defineProperty(err, "cause", { value: deserializeError(s.cause), writable: true, configurable: true });
  return err;
}

function isPlainRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Keeps only structured-clone-safe detail values (strings, numbers, booleans, null, plain nested data). */
function safeDetails(d: Record<string, unknown>): ErrorDetails {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d)) {
    if (v === null || ["string", "number", "boolean"].includes(typeof v)) out[k] = v;
    else if (v instanceof Error) out[k] = v.message;
    else {
      try {
        out[k] = JSON.parse(JSON.stringify(v)) as unknown;
      } catch {
        out[k] = String(v);
      }
    }
  }
  return out;
}
