/**
 * Layer 2 public contracts. Inline tiers (this folder) and engine proxies (src/engine) implement the same
 * interfaces, so graph attach/restore take either.
 */
import type { Codec } from "../codec/types.js";
import type { SnapshotHead } from "./json-head.js";
import type { RefusalListener } from "./refusal-watchers.js";

export type { SnapshotHead } from "./json-head.js";
export type { RefusalListener } from "./refusal-watchers.js";

/** Shared surface of every tier ("one wave = one transaction": flush commits, rollback discards). */
export interface BaseStorageTier {
  readonly name: string;
  /** As passed (may be undefined). 0/undefined = sync-through. */
  readonly debounceMs: number | undefined;
  /** As passed (may be undefined = no cap). */
  readonly compactEvery: number | undefined;
  /** Name of the codec that turns values into bytes (e.g. "wal-frame-json" seals WAL frames with their checksum). */
  readonly codecName: string;
  /**
   * Resolves once everything buffered before the call is durable in the backend; rejects if that failed (data
   * stays pending), or with the refusal (e.g. CodecError) of a write accepted before it that can never be
   * stored and that no flush reported yet (docs/design.md §3.16).
   */
  flush(): Promise<void>;
  /**
   * Writes what was accepted before the call, as flush() does, but leaves refusals to the flushes that answer for
   * them: rejects only when writing failed. For a writer that must know the store holds what it accepted without
   * taking the report of another writer's refused value (graph attach checking what a crashed worker lost).
   * Optional so a hand-written tier still type-checks; every built-in tier has it.
   */
  writePending?(): Promise<void>;
  /**
   * Backpressure (docs/api.md "Overload"): resolves once a write weighing `weight` (the refusal's `details.weight`)
   * would be taken beside the writes accepted and not yet committed (this inline tier's, or the engine store's) and
   * the writes refused before it, which wait first come, first served; at once when it already would. Without a
   * weight it waits for the write refused last on the tier (or store); with none refused, until at most half of
   * `maxPendingBytes` is pending. A write refused with StorageError("backpressure") was not accepted: await this,
   * then write it again.
   */
  drained?(weight?: number): Promise<void>;
  /** Discards pending writes; a flush scheduled before the rollback writes nothing more. */
  rollback(): void;
  /** Tier-specific compaction (append-log: merge segments into one value); at least a flush. */
  compact(): Promise<void>;
  /**
   * Flushes, stops timers, releases what the tier owns. From the call on the tier takes nothing more: writes and
   * rollback throw StorageError("closed"), other calls reject with it, and a flush() before the close settled
   * joins it. Rejects if a write failed (the tier stays open, its data pending) or with an unreported refusal
   * (the tier is closed anyway). Idempotent.
   */
  close(): Promise<void>;
  /**
   * Present on an inline tier over a read-only backend that can hold a point in time (StorageBackend.readConsistent:
   * PostgreSQL, SQLite): runs `fn` with the backend's reads meanwhile at one point in time of the store. Readers of a
   * stored graph (restore, followers, the CLI) read through it when both of their tiers have it.
   */
  readConsistent?<R>(fn: () => Promise<R>): Promise<R>;
  /**
   * Present on a tier over a read-only store whose batches show one key at a time (StorageBackend.settleBatches: a
   * file store, inline or through an engine): resolves once the store's batches under way at the call (another
   * process's) have finished, at most a few seconds; later ones are not waited for. Readers of a stored graph
   * (restore, followers) call it after the last frame they listed, to see whether its wave was caught in part.
   */
  settleBatches?(): Promise<void>;
  /**
   * Hears every write this tier refuses for good whose key starts with `prefix` (key undefined: refused writes whose
   * keys are unknown, e.g. those a crashed store worker lost; every watcher hears those), whoever flushes: a
   * refusal fails the flushes that answer for it, and the first caller's flush may take that report from a writer
   * sharing the tier. Called synchronously when the tier learns of the refusal, before any flush that answers for
   * it settles; onError and the flushes still hear it as before. Returns the call that ends the watch. Optional so a
   * hand-written tier still type-checks; every built-in tier has it (graph attach watches its WAL frames with it).
   */
  watchRefusals?(prefix: string, listener: RefusalListener): () => void;
}

export interface SnapshotStorageTier<T> extends BaseStorageTier {
  /** Buffers (last write wins) unless `filter` rejects it; sync-through tiers write before returning when the backend is sync. */
  save(snapshot: T): void;
  /**
   * Drops what the tier holds of record `key` and has not started writing (pending, or kept after a failed write for
   * a retry), leaving other keys' records alone; a write already running is not undone. Throws
   * StorageError("closed") once closed. Graph attach calls it on an ended handle's tier before a new attach of the
   * graph over the same store (docs/design.md §3.7). Optional so a hand-written tier still type-checks; every
   * built-in snapshot tier has it. A hand-written tier that retries failed writes on its own should have it: without,
   * attach refuses a new handle while the ended handle's unacknowledged baseline may still land (docs/api.md).
   */
  discard?(key: string): void;
  /** Reads `key`, else the last key this tier wrote, else the tier name. Pending saves are not visible. */
  load(key?: string): Promise<T | undefined>;
  /**
   * What `load(key)` would resolve to, reduced to its top-level `name` and `seq` (undefined: nothing stored). With a
   * canonical JSON codec (json, json-bigint) they are read from the head of the stored bytes and the rest is not
   * decoded; other codecs decode the record (an engine tier: in the store's worker, unless its codec runs on the
   * main thread). Optional so a hand-written tier still type-checks; attach's reclaim uses it to prove a baseline
   * stored (docs/design.md §3.18), else `load`.
   */
  loadHead?(key?: string): Promise<SnapshotHead | undefined>;
}

export type AppendLogMode = "append" | "overwrite";

/** Forward-only pagination cursor. */
export interface AppendCursor {
  readonly position: number;
  readonly tag?: string;
}

export interface AppendLoadOptions {
  cursor?: AppendCursor;
  pageSize?: number;
  /** Literal key prefix of the buckets to read. */
  keyFilter?: string;
}

export interface AppendLoadResult<T> {
  entries: T[];
  cursor: AppendCursor | undefined;
}

export interface AppendLogStorageTier<T> extends BaseStorageTier {
  readonly mode: AppendLogMode;
  appendEntries(entries: readonly T[]): void;
  loadEntries(opts?: AppendLoadOptions): Promise<AppendLoadResult<T>>;
}

export interface KvStorageTier<T> extends BaseStorageTier {
  save(key: string, value: T): void;
  /**
   * `save` of every entry as one unit: all or none are taken (the tier closed or read-only, an invalid key, or
   * backpressure throw before any is; room is found once for the whole unit, and a unit heavier than
   * maxPendingBytes is taken alone, once nothing else is pending), and the flush they trigger (sync-through,
   * compactEvery) takes them all, so no crash or reader ever sees a part of the unit where the backend's batch is
   * atomic (SQLite, PostgreSQL, memory; through an engine, one transaction of the store's actor too). `filter`
   * runs per entry; a value the codec's rule refuses is refused alone, as `save` refuses it. Optional so a
   * hand-written tier still type-checks; every built-in kv tier has it (graph attach saves a wave's frames with it).
   */
  saveMany?(entries: ReadonlyArray<readonly [key: string, value: T]>): void;
  /** Backend value only (pending saves are not visible). */
  load(key: string): Promise<T | undefined>;
  /**
   * `load` of each key, read together where the store can (one `readMany`: a range scan on SQLite, one query on
   * PostgreSQL; an engine tier's loads of one tick are one message anyway). One promise per key, each settling as
   * that key's `load` would: a joint read that fails is retried key by key, so a failure is the key's own. Optional
   * so a hand-written tier still type-checks; every built-in kv tier has it (readers of a stored graph use it).
   */
  loadMany?(keys: readonly string[]): Array<Promise<T | undefined>>;
  /**
   * Present when the store can tell values' sizes without reading them (StorageBackend.sizes: SQLite, PostgreSQL,
   * files, memory): the stored byte length of each key's value, in the keys' order (undefined for a miss). Readers
   * of many values learn how many fit a byte budget before they load them (a stored graph's chunks of WAL frames).
   */
  sizes?(keys: readonly string[]): Promise<Array<number | undefined>>;
  /** Never debounced: removes the key from the backend, then from pending. */
  delete(key: string): Promise<void>;
  /**
   * `delete` for many keys in one backend batch (one SQLite transaction) when the backend has one. Optional so a
   * hand-written tier still type-checks; every built-in kv tier has it (attach reclaims WAL frames with it).
   */
  deleteMany?(keys: readonly string[]): Promise<void>;
  list(prefix?: string): Promise<string[]>;
  /** Lazy, sorted; throws StorageError("backend-no-list-support") on first iteration when the backend cannot list. */
  listByPrefix(prefix: string): AsyncIterable<{ key: string; value: T }>;
  /**
   * Present when the store can tell cheaply whether it changed (StorageBackend.changeCounter, e.g. SQLite's
   * data_version): resolves with a number that differs from the previous call's whenever the store may have changed
   * since, by any handle or process. Followers skip a poll when it did not move.
   */
  changeCounter?(): Promise<number>;
  /**
   * Engine tiers only: hands `config` to commit watcher `watcher` of the store's actor (a policy the engine's worker
   * entry registers, e.g. graph attach's background folding, docs/design.md §3.18) under `key`. A later config under
   * the same key replaces it; an actor restarted after a crash is given the latest again. The engine does not read
   * `config` (it crosses to the worker by structured clone). False, and nothing sent, when `sameStoreAs` is given
   * and is not an engine tier of this tier's store.
   */
  configureCommitWatcher?(watcher: string, key: string, config: unknown, sameStoreAs?: BaseStorageTier): boolean;
}

export type TierErrorHandler = (error: Error) => void;

export interface TierCommonOptions {
  name?: string;
  debounceMs?: number;
  compactEvery?: number;
  /**
   * Called when a flush that nobody awaits (timer, compactEvery, sync-through) fails (data stays pending), and
   * once for every refused write (dropped; the next flush() rejects with it too). A failing store is reported
   * once when it starts failing, not per retry; `onRecovered` hears when a flush succeeds again.
   */
  onError?: TierErrorHandler;
  /** Called once when a flush succeeds after failures that onError reported. */
  onRecovered?: () => void;
  /** Automatic retries of failed background flushes back off exponentially (with jitter) from initialMs to maxMs. */
  retry?: RetryOptions;
  /**
   * Inline tiers: bound on the bytes accepted and not yet committed (values not yet encoded are estimated from the
   * tier's average committed size); past it writes throw StorageError("backpressure"). Default 64 MiB. Engine
   * tiers take the engine's per-store option instead.
   */
  maxPendingBytes?: number;
}

export interface RetryOptions {
  /** First automatic retry after this many milliseconds (default 100). */
  initialMs?: number;
  /** The delay doubles after each failed retry up to this (default 10,000). */
  maxMs?: number;
}

export interface SnapshotStorageOptions<T> extends TierCommonOptions {
  codec?: Codec<T>;
  filter?: (snapshot: T) => boolean;
  /** Default: the record's `name` field when it is a string, else the tier name (docs/design.md §3.6). */
  keyOf?: (snapshot: T) => string;
}

export interface AppendLogStorageOptions<T> extends TierCommonOptions {
  codec?: Codec<readonly T[]>;
  keyOf?: (entry: T) => string;
  mode?: AppendLogMode;
  /**
   * "segments" (default): each flush writes only its own entries (O(batch)); "array": the reference layout,
   * one JSON array per key rewritten on every flush (O(log)). Backends without `list` always use "array".
   */
  layout?: AppendLogLayout;
}

export type AppendLogLayout = "segments" | "array";

export interface KvStorageOptions<T> extends TierCommonOptions {
  codec?: Codec<T>;
  filter?: (key: string, value: T) => boolean;
}

/** Counters a tier keeps for engine stats. */
export interface TierStats {
  pendingEntries: number;
  flushes: number;
  failedFlushes: number;
  /** Flushes tried, successful or not. */
  flushAttempts: number;
  bytesWritten: number;
  writes: number;
  lastFlushMs: number | undefined;
  lastError: string | undefined;
}
