/**
 * Commit watchers: policies that react to what a store actor commits (e.g. "compact a graph once its WAL grew
 * enough") without a round trip to the main thread. As with jobs (jobs.ts), the layer that owns a policy writes
 * the watcher against this contract and registers it in the worker entry (workers/jobs.ts); the actor only shows
 * each watcher every committed batch, hands it the configs tiers send it, and runs the jobs it asks for. The engine
 * reads neither the keys nor the configs.
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
  /** A config a tier sent under `key` (KvStorageTier.configureCommitWatcher); a later one of the same key replaces it. */
  configure?(key: string, config: Config): void;
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

  /** Throws StorageError("invalid-argument") when no watcher of that name is registered in this worker entry. */
  configure(name: string, key: string, config: unknown): void {
    const watcher = this.#byName.get(name);
    if (watcher === undefined) {
      throw new StorageError("invalid-argument", `no commit watcher "${name}" is registered in the store actor`);
    }
    watcher.configure?.(key, config);
  }
}
