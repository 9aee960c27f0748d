/**
 * Commit watchers: policies that react to what a store actor commits (e.g. "compact a graph once its WAL grew
 * enough") without a round trip to the main thread. As with jobs (jobs.ts), the layer that owns a policy writes
 * the watcher against this contract and registers it in the worker entry (workers/jobs.ts); the actor only shows
 * each watcher every committed batch, hands it the configs tiers send it, and runs the jobs it asks for. The engine
 * reads neither the keys nor the configs: what it needs to know of them (which configs a new actor must be sent
 * again, whether the store may shut down) it learns from the watcher's answers (`configure`'s, `holds`).
 */
import type { BatchOp } from "../backend/types.js";
import { StorageError } from "../errors.js";
import type { ActorOptions } from "./protocol.js";

/**
 * What a job a watcher asked for came to: its result, or a failure the actor already reported to onError.
 * `retryable`: the failure was the store's (a backend error, a lost lease, a busy store), so the same job may
 * succeed later; false for what repeating cannot change (a corrupt or incomplete stored graph, a bad argument).
 */
export type WatcherJobOutcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly retryable: boolean };

/** Failures a later run of the same job may not meet: the store's, not the data's. */
const RETRYABLE_CODES: ReadonlySet<string> = new Set(["backend-error", "store-busy", "worker-unresponsive"]);

export function isRetryableJobFailure(err: unknown): boolean {
  return err instanceof StorageError && RETRYABLE_CODES.has(err.code);
}

export interface CommitWatcherContext {
  /** The options the engine opened the store's actor with (e.g. its `autoCompact`). */
  readonly options: ActorOptions;
  /**
   * Queues registered job `name` in the actor's mailbox (after the ops already there). A failure goes to the
   * engine's onError, with `subject` as the context's `tier`, and resolves `{ ok: false }`: it never rejects.
   */
  runJob(name: string, args: unknown, subject: string | undefined): Promise<WatcherJobOutcome>;
  /** Tells the engine's onError, with `subject` as the context's `tier` (a report of the watcher's own). */
  report(err: Error, subject: string | undefined): void;
}

export interface CommitWatcher<Config> {
  /**
   * Called with each batch a tier committed, in commit order (the backend ops of one flush). Synchronous and on the
   * commit path: count, and ask for jobs; do not keep or change the ops.
   */
  committed(batch: readonly BatchOp[]): void;
  /**
   * A config a tier sent under `key` (KvStorageTier.configureCommitWatcher). Returns true when the key's state is
   * now what this config alone makes from nothing (it replaces every config of the key before it): the engine, which
   * keeps the configs sent per key to replay them to a store actor that replaces a lost one, then forgets the earlier
   * ones. Anything else (e.g. a config that changes only part of what an earlier one set) keeps them all.
   */
  configure?(key: string, config: Config): boolean | void;
  /**
   * Whether configs left this watcher holding state (e.g. a rule for some key) that a new actor would not have:
   * while any watcher holds state the engine keeps the store open when its last tier closed (a store shut down and
   * opened again gets a new actor). Absent: the watcher is assumed to hold state once it was configured.
   */
  holds?(): boolean;
  /** The actor is shutting down: cancel timers (e.g. a retry waiting); no job can run any more. */
  close?(): void;
}

/** What the worker entry registers: one watcher instance per store actor. Configs cross threads by structured clone. */
export interface CommitWatcherDefinition<Config> {
  readonly name: string;
  create(ctx: CommitWatcherContext): CommitWatcher<Config>;
}

/** The watchers of one store actor, by name. */
export class CommitWatchers {
  readonly #byName = new Map<string, CommitWatcher<unknown>>();
  readonly #all: CommitWatcher<unknown>[] = [];
  /** Watchers sent a config so far: only they can hold state a config set. */
  readonly #configured = new Set<CommitWatcher<unknown>>();
  readonly #report: (err: Error) => void;

  constructor(definitions: readonly CommitWatcherDefinition<unknown>[], ctx: CommitWatcherContext, report: (err: Error) => void) {
    this.#report = report;
    for (const def of definitions) {
      const watcher = def.create(ctx);
      this.#byName.set(def.name, watcher);
      this.#all.push(watcher);
    }
  }

  /** A watcher that throws is reported; the batch stays committed and the other watchers still see it. */
  committed(batch: readonly BatchOp[]): void {
    for (const watcher of this.#all) {
      try {
        watcher.committed(batch);
      } catch (err) {
        this.#report(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  /** Tells every watcher the actor is shutting down (one that throws is reported; the others still hear it). */
  close(): void {
    for (const watcher of this.#all) {
      try {
        watcher.close?.();
      } catch (err) {
        this.#report(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  /**
   * Throws StorageError("invalid-argument") when no watcher of that name is registered in this worker entry. Returns
   * the watcher's answer: true when this config replaces every earlier one of its key (see CommitWatcher.configure).
   */
  configure(name: string, key: string, config: unknown): boolean {
    const watcher = this.#byName.get(name);
    if (watcher === undefined) {
      throw new StorageError("invalid-argument", `no commit watcher "${name}" is registered in the store actor`);
    }
    this.#configured.add(watcher);
    return watcher.configure?.(key, config) === true;
  }

  /**
   * Whether any watcher holds state configs left (the store must stay open: see CommitWatcher.holds). A watcher that
   * throws is reported and counted as holding (keeping a store open is the safe side).
   */
  holds(): boolean {
    for (const watcher of this.#configured) {
      try {
        if (watcher.holds === undefined || watcher.holds()) return true;
      } catch (err) {
        this.#report(err instanceof Error ? err : new Error(String(err)));
        return true;
      }
    }
    return false;
  }
}

/** How a config reaches an engine kv tier's store through no tier (StoreConnection.configureWatcherOfStore). */
type StoreConfigSink = (watcher: string, key: string, config: unknown) => Promise<void>;
const storeSinks = new WeakMap<object, StoreConfigSink>();

/** The engine notes each kv tier it makes with the way to its store (engine.ts). */
export function noteTierStoreSink(tier: object, sink: StoreConfigSink): void {
  storeSinks.set(tier, sink);
}

/**
 * Sends `config` to commit watcher `watcher` of the actor of engine tier `tier`'s store even when `tier` is closed
 * or closing (KvStorageTier.configureCommitWatcher throws then): for what takes back state a config set, which must
 * not be lost to a close that began first (attach's dispose releasing its fold rule, review r231 F1). Nothing once
 * the store shut down (its actor's state went with it). Resolves once taken and, with no tier of the store open,
 * once the store's idleness was decided; undefined for a tier no engine made.
 */
export function configureStoreWatcher(tier: object, watcher: string, key: string, config: unknown): Promise<void> | undefined {
  return storeSinks.get(tier)?.(watcher, key, config);
}

/**
 * configureStoreWatcher for `tier`'s store as a function that holds neither the tier nor its store's connection
 * strongly (it reaches the store while the engine keeps it open); undefined for a tier no engine made.
 */
export function storeWatcherSender(tier: object): StoreConfigSink | undefined {
  return storeSinks.get(tier);
}
