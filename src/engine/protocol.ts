/**
 * The wire contract between main-thread tier proxies and the store actor in a worker. Everything here is
 * structured-clone data: functions never cross threads (filter/keyOf run in the proxy).
 */
import type { CheckpointerLink } from "./checkpoint-link.js";
import type { SerializedError } from "../errors.js";
import type { AppendLoadOptions, AppendLogLayout, AppendLogMode, RetryOptions } from "../tier/types.js";
import type { PostgresBackendOptions } from "../backend/postgres.js";

/** Which store an actor owns. */
export type StoreSpec =
  /** `readOnly`: a separate actor that reads the store without its lock (another process may write it); writes refused. */
  | { readonly kind: "sqlite"; readonly path: string; readonly readOnly?: boolean }
  | { readonly kind: "file"; readonly dir: string; readonly readOnly?: boolean }
  | { readonly kind: "memory"; readonly name: string }
  | PostgresStoreSpec;

/**
 * A store in a PostgreSQL database (docs/postgres.md): `store` names it inside the database. The connection lives
 * in the store's actor. The engine reports this spec (stats, onError) with the URL's password removed.
 */
/** The backend's options a store spec carries (one definition: the backend's), plus a required `url`. */
export interface PostgresStoreSpec
  extends Pick<
    PostgresBackendOptions,
    "store" | "schema" | "table" | "readOnly" | "lease" | "statementTimeoutMs" | "connectTimeoutMs"
  > {
  readonly kind: "postgres";
  /** `postgres://user:password@host:port/database` */
  readonly url: string;
}

/** How a tier's values become bytes: in the worker (built-in or module codec) or on the main thread ("main"). */
export type CodecSpec =
  | { readonly kind: "builtin"; readonly name: string }
  | { readonly kind: "module"; readonly specifier: string; readonly exportName: string }
  | { readonly kind: "main" };

export interface TierSpec {
  readonly kind: "snapshot" | "append-log" | "kv";
  readonly name: string | undefined;
  readonly debounceMs: number | undefined;
  readonly compactEvery: number | undefined;
  readonly codec: CodecSpec;
  readonly mode?: AppendLogMode;
  readonly layout?: AppendLogLayout;
  readonly retry?: RetryOptions;
}

/** Background graph compaction once enough WAL has accumulated since the last one. */
export interface AutoCompactOptions {
  /** Compact a graph after this many frames were committed since its last compaction. */
  readonly everyFrames?: number;
  /** ... or after this many frame bytes. */
  readonly everyBytes?: number;
  /** Frames at or below the new baseline that are kept (a recent audit trail); passed to the compaction job. */
  readonly keepFrames?: number;
}

export interface ActorOptions {
  readonly store: StoreSpec;
  /** The engine's option, passed on to the commit watchers (the persistence layer's implements it). */
  readonly autoCompact?: AutoCompactOptions;
  readonly synchronous: "FULL" | "NORMAL" | "OFF" | "EXTRA";
  /** The counters shared with the main thread (actor-counters.ts); set by the connection. */
  readonly counters?: SharedArrayBuffer;
  /** The gate the watchdog claims before terminating the actor's thread (native-gate.ts); set by the engine. */
  readonly nativeGate?: SharedArrayBuffer;
  /**
   * The hold of the store by the actor this one replaces, as that actor's ready() answered it (backend/reopen.ts
   * carryTenure): its tenure `id` (backend/tenure.ts) and, for a SQLite store, the identity of the lock's
   * directory at its open, so the reopen tells a directory made again from the store's files moved aside (review
   * r298 F1). Set by the connection, which keeps the text as it came; the actor takes it apart (carriedTenure). An
   * open whose hold does not follow the id (another writer held the store in between) fails with not-owner,
   * `held-meanwhile`.
   */
  readonly tenureAfter?: string;
  /** The engine's checkpointer thread, for a SQLite store this actor writes (design §3.50); set by the engine. */
  readonly checkpointer?: CheckpointerLink;
}

/**
 * A write op's weight for backpressure: `w` bytes (exact when encoded on the main thread, else estimated) of `n`
 * writes. The actor acknowledges both once the writes are committed or dropped.
 */
interface Weighed {
  w: number;
  n: number;
  /**
   * Set on a write op a unit of writes (KvStorageTier.saveMany) continues past: the actor's group commit commits
   * nothing between it and the next op, so the unit lands in one transaction.
   */
  open?: true;
}

/** Ops a proxy queues; one coalesced `apply` message carries every op of a tick, applied in order. */
export type Op =
  | { t: "open"; tier: number; spec: TierSpec; id: number }
  | ({ t: "put"; tier: number; key: string; value?: unknown; bytes?: Uint8Array } & Partial<Weighed>)
  /** Consecutive puts of one tier in one tick, as two columns (cheaper to clone than one object per put). */
  | ({ t: "puts"; tier: number; keys: string[]; values: unknown[] } & Weighed)
  /** Consecutive puts of one tier in one tick, the values in the columns of its codec's transport (never read here). */
  | ({ t: "columns"; tier: number; keys: string[]; cols: unknown } & Weighed)
  | ({ t: "append"; tier: number; bucket: string; entries?: unknown[]; bytes?: Uint8Array; count: number } & Partial<Weighed>)
  /**
   * One appendEntries call whose keyOf spread it over several buckets: applied all or nothing, as inline (a bucket
   * the backend refuses refuses the call). Bucket i takes counts[i] entries: entries[i] (the worker's codec encodes)
   * or, encoded on the main thread as one segment per bucket, bytes[ends[i - 1] ?? 0, ends[i]) (back to back in one
   * buffer, so it is transferred, not copied).
   */
  | ({ t: "append"; tier: number; buckets: string[]; counts: number[]; entries?: unknown[][]; bytes?: Uint8Array; ends?: number[] } & Weighed)
  | { t: "rollback"; tier: number }
  /** SnapshotStorageTier.discard: the snapshot tier drops what it holds of `key` unwritten. */
  | { t: "discard"; tier: number; key: string }
  /** A write the main thread refused (its value can never be stored): the tier's next flush rejects with it. */
  | { t: "refuse"; tier: number; error: SerializedError; w?: number; n?: number }
  /**
   * A config for the actor's commit watcher `watcher` (commit-watchers.ts) under `key`, which replaces the one
   * before it of that key. The engine does not read `config`: the watcher's owner types both ends. `seq`: the
   * connection's number for it, which the actor's "configured" event names (the configs a new actor needs).
   */
  | { t: "configure-watcher"; tier: number; watcher: string; key: string; config: unknown; seq?: number }
  /** `pending`: the tier's writePending (writes what was accepted, takes no refusal's report). */
  | { t: "flush"; tier: number; id: number; pending?: true }
  | { t: "compact"; tier: number; id: number }
  | { t: "close"; tier: number; id: number }
  /** `head`: a snapshot tier's loadHead (name and seq only, read in the worker). */
  | { t: "load"; tier: number; id: number; key?: string; head?: true }
  | { t: "loadEntries"; tier: number; id: number; opts?: AppendLoadOptions }
  | { t: "delete"; tier: number; id: number; key: string }
  | { t: "deleteMany"; tier: number; id: number; keys: string[] }
  | { t: "list"; tier: number; id: number; prefix?: string }
  /** The backend's change counter (StorageBackend.changeCounter): followers skip a poll when it did not move. */
  | { t: "changes"; tier: number; id: number }
  /** The stored byte length of each key's value (StorageBackend.sizes): readers bound their loads by it. */
  | { t: "sizes"; tier: number; id: number; keys: string[] }
  /**
   * A read-only store's point in time (consistent-reads.ts): without `token` a begin, answered with the token its
   * end hands back; with one the end, answered true when this actor held it.
   */
  | { t: "consistent"; tier: number; id: number; token?: string }
  /** A read-only file store's settleBatches: answered once another process's batches under way have finished. */
  | { t: "settle"; tier: number; id: number }
  | { t: "scan"; tier: number; id: number; prefix: string; after?: string; limit: number };

/**
 * A batch of writes (no op carries an `id`) posted without waiting for an answer, on the actor's comlink port:
 * comlink never sees it (rpc.ts's portEndpoint hides array messages from comlink; a REQUESTS_MESSAGE object it
 * sees has no comlink type and is dropped by it), and the worker entry hands the batch to the actor in arrival
 * order with comlink's calls (docs/design.md §3.22).
 */
export const WRITES_MESSAGE = "graphrefly.writes";

/**
 * A writes batch travels packed in ONE flat array, `[WRITES_MESSAGE, ...records]`: structured clone writes each
 * object's property names and pays per container, so a paced turn's one frame crossed ~2 µs slower as
 * `{ type, ops: [{ t, tier, keys: [...], cols, w, n }] }` (docs/design.md §3.25). Records: puts and columnar puts
 * inline (`PUTS, tier, w, n, count, ...keys, ...values` / `COLUMNS, tier, w, n, cols, count, ...keys`, `count` the
 * keys: `n` is the weight's entry count, which a resent op zeroes), any other op as itself (`OP, op`).
 */
export type WritesMessage = readonly unknown[];

const OP = 0;
const PUTS = 1;
const COLUMNS = 2;
/** The same records for an op a unit of writes continues past (`open`). */
const PUTS_OPEN = 3;
const COLUMNS_OPEN = 4;
/**
 * A trailing record: the batch is a part of a turn's writes posted before the turn ended (connection.ts
 * `postEarly`), and more of that turn follows. The actor's group commit commits nothing at its end (`messageTaken`).
 */
const MORE = 5;

/** Ops `unpackWrites` returns: `more` when the batch ended with a MORE record. */
export type UnpackedWrites = Op[] & { more?: true };

export function packWrites(ops: readonly Op[], more = false): WritesMessage {
  const out: unknown[] = [WRITES_MESSAGE];
  // Loops, not spreads: a burst's op may hold more keys than a call takes arguments.
  for (const op of ops) {
    if (op.t === "puts") {
      // The unpacking side finds the values by the keys' count: a mismatch would misalign every record after it.
      if (op.values.length !== op.keys.length) throw new Error(`puts op of ${op.keys.length} keys carries ${op.values.length} values`);
      out.push(op.open ? PUTS_OPEN : PUTS, op.tier, op.w, op.n, op.keys.length);
      for (const key of op.keys) out.push(key);
      for (const value of op.values) out.push(value);
    } else if (op.t === "columns") {
      out.push(op.open ? COLUMNS_OPEN : COLUMNS, op.tier, op.w, op.n, op.cols, op.keys.length);
      for (const key of op.keys) out.push(key);
    } else out.push(OP, op);
  }
  if (more) out.push(MORE);
  return out;
}

export function isWritesMessage(m: unknown): m is WritesMessage {
  return Array.isArray(m) && m[0] === WRITES_MESSAGE;
}

/** The ops `packWrites` packed (the message came from our own connection: its shape is trusted). */
export function unpackWrites(m: WritesMessage): UnpackedWrites {
  const ops: UnpackedWrites = [];
  let i = 1;
  while (i < m.length) {
    const kind = m[i] as number;
    if (kind === MORE) {
      ops.more = true;
      i += 1;
      continue;
    }
    if (kind === OP) {
      ops.push(m[i + 1] as Op);
      i += 2;
      continue;
    }
    const tier = m[i + 1] as number;
    const w = m[i + 2] as number;
    const n = m[i + 3] as number;
    if (kind === PUTS || kind === PUTS_OPEN) {
      const count = m[i + 4] as number;
      const keys = m.slice(i + 5, i + 5 + count) as string[];
      const values = m.slice(i + 5 + count, i + 5 + 2 * count);
      ops.push({ t: "puts", tier, keys, values, w, n, ...(kind === PUTS_OPEN ? { open: true as const } : {}) });
      i += 5 + 2 * count;
    } else if (kind === COLUMNS || kind === COLUMNS_OPEN) {
      const count = m[i + 5] as number;
      const keys = m.slice(i + 6, i + 6 + count) as string[];
      ops.push({ t: "columns", tier, keys, cols: m[i + 4], w, n, ...(kind === COLUMNS_OPEN ? { open: true as const } : {}) });
      i += 6 + count;
    } else throw new Error(`writes message: unknown record kind ${String(kind)} at ${i}`);
  }
  return ops;
}

/**
 * A batch carrying requests (ops with an `id`) posted the same way, outside comlink: the worker entry answers it
 * with one ResultsMessage listing each request's outcome by op id. One framing per message, not comlink's request
 * id around our op ids (an answered batch costs ~20-60 us less main-thread time this way: README Architecture notes).
 */
export const REQUESTS_MESSAGE = "graphrefly.requests";
export const RESULTS_MESSAGE = "graphrefly.results";

export interface RequestsMessage {
  readonly type: typeof REQUESTS_MESSAGE;
  readonly ops: Op[];
}

export interface ResultsMessage extends ApplyResult {
  readonly type: typeof RESULTS_MESSAGE;
}

export function isRequestsMessage(m: unknown): m is RequestsMessage {
  return hasType(m, REQUESTS_MESSAGE);
}

export function isResultsMessage(m: unknown): m is ResultsMessage {
  return hasType(m, RESULTS_MESSAGE);
}

/**
 * A write the actor refused for good, by key (undefined: unknown keys), posted on the store's port when the actor's
 * tier refuses it: ahead of the answer of any flush that answers for it, so the main thread's refusal watchers
 * (BaseStorageTier.watchRefusals) hear it before that flush settles.
 */
export const REFUSED_MESSAGE = "graphrefly.refused";

export interface RefusedMessage {
  readonly type: typeof REFUSED_MESSAGE;
  readonly tier: number;
  readonly key: string | undefined;
  readonly error: SerializedError;
}

export function isRefusedMessage(m: unknown): m is RefusedMessage {
  return hasType(m, REFUSED_MESSAGE);
}

/** The key of a write op refused whole (a put's; an append's one bucket), for refusal watchers; else undefined. */
export function refusedKeyOf(op: Op): string | undefined {
  if (op.t === "put") return op.key;
  if (op.t === "append" && "bucket" in op) return op.bucket;
  return undefined;
}

function hasType(m: unknown, type: string): boolean {
  return typeof m === "object" && m !== null && (m as { type?: unknown }).type === type;
}

/** Outcome of an op that carries an `id`. `value` is decoded in the worker, `bytes` when the codec is main-thread. */
export type OpResult =
  | { id: number; ok: true; value?: unknown; bytes?: Uint8Array | Uint8Array[] }
  /** `refusal`: the flush (or close) rejects to report a refusal; its other writes were written (refusal-watchers.ts). */
  | { id: number; ok: false; error: SerializedError; refusal?: true };

export interface ApplyResult {
  results: OpResult[];
  /** Errors of ops without an id (e.g. a put after close): reported to onError by the engine. */
  errors: SerializedError[];
}

export interface ScanPage {
  entries: Array<{ key: string; value?: unknown; bytes?: Uint8Array }>;
  /** Last key of the page when more may follow. */
  next: string | undefined;
}

export interface ActorStats {
  pendingEntries: number;
  pendingBytes: number;
  flushes: number;
  failedFlushes: number;
  /** Flush attempts, successful or not (retries of a failing store back off, so this grows slowly). */
  flushAttempts: number;
  /** Tiers of the store whose flushes are failing now (0: healthy). */
  failing: number;
  flushLatencyP50Ms: number | undefined;
  flushLatencyP99Ms: number | undefined;
  bytesWritten: number;
  writes: number;
  lastError: string | undefined;
}

/** Events the actor pushes to the main thread (background flush failures). */
export type ActorEvent =
  /** `final`: the backend's final error (StorageBackend.finalError): the store takes no more writes. */
  | { type: "error"; error: SerializedError; tier: string | undefined; final?: true }
  /** A tier's flush succeeded after failures (the error was reported once, when they began). */
  | { type: "recovered"; tier: string | undefined }
  /**
   * The watcher said config `seq` (of `watcher` and `key`) replaces every earlier config of the key: the engine no
   * longer keeps those to replay to a new actor (commit-watchers.ts, CommitWatcher.configure). `refused`: the watcher
   * threw instead (an invalid config, which changed nothing): the engine drops that config alone (review r237 #1).
   */
  | { type: "configured"; watcher: string; key: string; seq: number; refused?: true };

export interface ActorApi {
  /**
   * Resolves once the backend is open, or rejects with why it could not be (store-locked, backend-error...). Calls
   * reject with our typed errors: both ends use rpc.ts's comlink transfer handler.
   */
  ready(): Promise<{ threadId: number; tenure?: string }>;
  setEventSink(sink: (e: ActorEvent) => void): void;
  /** Runs a job registered by the worker entry (e.g. graph compaction) in mailbox order, on the actor's backend. */
  runJob(name: string, args: unknown): Promise<unknown>;
  /**
   * Answered in mailbox order (after the ops before it): whether the actor holds state a new actor would not have,
   * so the store must stay open with no tier: a commit watcher's (CommitWatcher.holds) or a job's that ran here
   * (ActorJob.leavesState). The engine asks before it shuts an idle store down.
   */
  holdsState(): Promise<boolean>;
  shutdown(): Promise<void>;
}

/**
 * What the hosting piscina task returns once its actor shut down: why the drain failed, if it did. The answer to
 * shutdown() says the same on the store's port, but the task's end (piscina's port) may reach the main thread first.
 */
export interface HostActorResult {
  readonly closed: true;
  readonly drainError?: SerializedError;
  /**
   * Each tier's own final drain failure (by tier id), when the drain failed: a tier's flush or close that joined the
   * store's drain settles with its own outcome. Absent: the failure was the store's (its backend's close).
   */
  readonly tierErrors?: ReadonlyArray<readonly [number, SerializedError, boolean?]>;
}

/**
 * A tier's close that closed it and reports a refusal (its writes are settled, one could never be stored): the
 * actor answers with this instead of failing, so the main thread knows the tier is closed and rejects with `refused`.
 */
export interface ClosedWithRefusal {
  readonly closedWithRefusal: SerializedError;
  /** The error is the backend's final one (a lost lease): the tier closed, dropping writes that were never stored. */
  readonly final?: true;
}

export function isClosedWithRefusal(v: unknown): v is ClosedWithRefusal {
  return typeof v === "object" && v !== null && "closedWithRefusal" in v;
}

export function isHostActorResult(v: unknown): v is HostActorResult {
  return typeof v === "object" && v !== null && (v as { closed?: unknown }).closed === true;
}
