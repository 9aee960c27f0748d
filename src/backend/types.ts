/**
 * Layer 1: byte key/value backends. One responsibility: bytes under string keys.
 * Methods may be sync or async; tiers keep sync backends zero-microtask where they can.
 */

export type MaybePromise<T> = T | Promise<T>;

/** One operation of an atomic batch. */
export type BatchOp =
  | { readonly op: "put"; readonly key: string; readonly value: Uint8Array }
  | { readonly op: "delete"; readonly key: string };

/** What a conditional batch (`writeBatchIf`) expects `key` to hold: these bytes exactly, or (undefined) no value. */
export interface ExpectedValue {
  readonly key: string;
  readonly value: Uint8Array | undefined;
}

/**
 * What a backend promises. The shared conformance suite gates optional cases on this manifest
 * (like abstract-level's `supports`).
 */
export interface BackendSupports {
  /** `list(prefix)` is implemented. */
  readonly list: boolean;
  /** `delete(key)` is implemented. */
  readonly delete: boolean;
  /** `writeBatch` commits all ops or none (a crash cannot leave half a batch visible). */
  readonly atomicBatch: boolean;
  /** Data survives the process (file, sqlite). */
  readonly persistent: boolean;
  /** A resolved write survives power loss / kill -9 (fsync or SQLite synchronous=FULL). */
  readonly durable: boolean;
  /** Every method returns synchronously (no Promise). */
  readonly sync: boolean;
  /**
   * `list()` shows the empty key "" when it is stored (default true). The file backend stores it as `.bin` and,
   * like both reference implementations, hides it from listings; `read("")` still finds it.
   */
  readonly listsEmptyKey?: boolean;
  /** `readPrefix(key, maxBytes)` is implemented (default false). */
  readonly readPrefix?: boolean;
  /** `writeBatchIf(expected, ops)` is implemented (default false). */
  readonly conditionalBatch?: boolean;
  /**
   * `writeBatchIf` also takes a list of expected values, every one checked in the same step as the batch (default
   * false). An array-layout append-log flushing several buckets conditions its one batch on each bucket it read.
   */
  readonly conditionalKeys?: boolean;
  /** `sizes(keys)` is implemented (default false). */
  readonly sizes?: boolean;
}

export interface StorageBackend {
  /** Diagnostic name, e.g. "memory", "file:/dir", "sqlite:/path.db". */
  readonly name: string;
  readonly supports: BackendSupports;
  /**
   * Throws StorageError("invalid-key") for a key this backend can never store (e.g. a file name over 255
   * bytes). Tiers call it when a write is accepted, so a bad key is refused alone instead of failing a flush.
   */
  checkKey?(key: string): void;
  /** `undefined` = miss. */
  read(key: string): MaybePromise<Uint8Array | undefined>;
  /**
   * The values of `keys`, in their order: each exactly what `read(key)` returns (undefined for a miss; a key may
   * repeat). For readers of many keys that sort together, such as a graph's WAL frames: one statement where the
   * backend has them (SQLite scans the keys' range once, PostgreSQL asks for them all at once). Optional: without
   * it, readers call `read` per key.
   */
  readMany?(keys: readonly string[]): MaybePromise<ReadonlyArray<Uint8Array | undefined>>;
  /**
   * The first `maxBytes` bytes of the value (all of it when shorter): exactly `read(key)`'s bytes cut to that length,
   * undefined for a miss. For readers of a value's head alone, such as a snapshot's name and seq (loadHead), which
   * then need not read a baseline of megabytes. `maxBytes` is a safe integer >= 0, else StorageError
   * "invalid-argument". Optional, declared by `supports.readPrefix`: without it, readers call `read`.
   */
  readPrefix?(key: string, maxBytes: number): MaybePromise<Uint8Array | undefined>;
  /**
   * The byte length of each key's value, in the keys' order (undefined for a miss; a key may repeat), without
   * reading the values: SQLite's length(v), PostgreSQL's octet_length(v), a file's stat. For readers of many values
   * that must bound what they hold at once (a stored graph's chunks of WAL frames: docs/design.md §3.26), which
   * learn the sizes first and then read as many values as fit. Each length is what `read(key)` would return as of
   * the call. Optional, declared by `supports.sizes`: without it, readers size their reads by the values read last.
   */
  sizes?(keys: readonly string[]): MaybePromise<ReadonlyArray<number | undefined>>;
  /**
   * `bytes` (like a batch op's `value`) may be a view into a larger, shared buffer: a backend that keeps the
   * bytes past the call copies them, and never transfers their buffer.
   */
  write(key: string, bytes: Uint8Array): MaybePromise<void>;
  delete?(key: string): MaybePromise<void>;
  /** Keys starting with `prefix` (literal), ascending by Unicode code point (= UTF-8 byte order = SQLite BINARY); no prefix = all keys. */
  list?(prefix?: string): MaybePromise<readonly string[]>;
  /** Several puts/deletes committed together (atomically where `supports.atomicBatch`). */
  writeBatch?(ops: readonly BatchOp[]): MaybePromise<void>;
  /**
   * `writeBatch(ops)` applied only while `expected.key` holds `expected.value` (the same bytes; undefined: no value):
   * true when it was applied, false when the key held something else (nothing was changed). The check and the
   * batch are one step: no write of any other handle (another tier, thread or process) lands between them (SQLite:
   * one BEGIN IMMEDIATE transaction; PostgreSQL: one transaction with the row locked; memory: one synchronous call;
   * file: one synchronous call of the store's lock holder, see fileBackend). For a writer that decided the batch
   * from a value it read (compaction's new baseline over the one it folded): a newer value written meanwhile is
   * never overwritten. As atomic as `writeBatch` otherwise. Optional, declared by `supports.conditionalBatch`.
   * `expected` may be a non-empty list where `supports.conditionalKeys`: applied only while every key holds its
   * value (a key listed twice must hold both), checked in the same one step.
   */
  writeBatchIf?(expected: ExpectedValue | readonly ExpectedValue[], ops: readonly BatchOp[]): MaybePromise<boolean>;
  /** Optional drain hook; tiers never call it implicitly. */
  flush?(): Promise<void>;
  /** Releases connections / locks. Idempotent. Later calls throw StorageError("closed"). */
  close?(): MaybePromise<void>;
  /**
   * True for a handle opened read-only: it reads a store another handle or process may be writing, and its writes
   * throw StorageError("read-only"). Tiers over it refuse writes when they are offered (never buffered to fail a
   * flush). Absent means writable.
   */
  readonly readOnly?: boolean;
  /**
   * Set once this handle can write no more, for good (a PostgreSQL writer whose lease was lost: "not-owner"): every
   * later write throws it. A tier that sees it after a failed write reports it once, refuses later writes with it
   * and stops retrying (docs/design.md §3.20). Absent or undefined: a failure may pass (memory never sets it; a
   * file or SQLite store sets it once its lock file is gone: store-moved). Once set it is always the same object:
   * the engine's actor tells the loss from any other error, one sharing its code included, by identity; so does a
   * wait for room (tier/write-verdict.ts), whatever its code.
   */
  readonly finalError?: Error | undefined;
  /**
   * Cheap change detection for pollers (followers): a number that differs from the previous call's whenever the
   * store may have changed since, by any handle or process. An equal number promises nothing changed, so a poller
   * skips its reads. Optional: without it pollers read every time.
   */
  changeCounter?(): MaybePromise<number>;
  /**
   * Read-only handles that can: runs `fn` with every read of this handle made meanwhile (its own and any other
   * caller's) at one point in time of the store, so a reader of a stored graph never sees a compaction commit
   * between its baseline and its frames (it would start over, and could starve: docs/design.md §3.16). Calls nest.
   * Where the store cannot hold a point in time, `fn`'s reads run as usual. Readers use it only when `readOnly`.
   */
  readConsistent?<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Backends whose batches become visible one key at a time (`atomicBatch: false`): resolves once every batch under
   * way at the call has finished, so keys listed again afterwards show each such batch whole (a reader that listed
   * mid-batch saw only its first keys: docs/design.md §3.16).
   */
  settleBatches?(): Promise<void>;
}

/** A backend whose every optional method is present and answers synchronously (memory, file and SQLite). */
export interface SyncStorageBackend extends StorageBackend {
  read(key: string): Uint8Array | undefined;
  readMany(keys: readonly string[]): ReadonlyArray<Uint8Array | undefined>;
  readPrefix(key: string, maxBytes: number): Uint8Array | undefined;
  sizes(keys: readonly string[]): ReadonlyArray<number | undefined>;
  write(key: string, bytes: Uint8Array): void;
  delete(key: string): void;
  list(prefix?: string): readonly string[];
  writeBatch(ops: readonly BatchOp[]): void;
  writeBatchIf(expected: ExpectedValue | readonly ExpectedValue[], ops: readonly BatchOp[]): boolean;
  close(): void;
}
