/**
 * Compaction policy run inside a store actor (a commit watcher, src/engine/commit-watchers.ts): it counts each
 * graph's WAL growth from the batches the actor commits and runs the compact-graph job when a graph is due, by
 * either rule:
 * - the engine's `autoCompact` option: frames / frame bytes committed since the graph's last auto-compaction;
 * - a background fold rule attach configured (docs/design.md §3.18): frame bytes committed since the graph's last
 *   baseline against that baseline's stored size.
 * Registered in workers/jobs.ts; attach configures it through `foldInBackground`.
 */
import type { BatchOp } from "../backend/types.js";
import { StorageError } from "../errors.js";
import { jsonCodec } from "../codec/json.js";
import type { CommitWatcherContext, CommitWatcherDefinition } from "../engine/commit-watchers.js";
import type { BaseStorageTier, KvStorageTier } from "../tier/types.js";
import { walFrameCodec } from "../wal/codec.js";
import { splitWalFrameKey } from "../wal/keys.js";
import { COMPACT_GRAPH_JOB, type CompactionResult, type EngineCompactGraphOptions } from "./compaction.js";

/** Name under which the worker entry registers the watcher (the config messages attach sends name it). */
export const WAL_GROWTH_WATCHER = "wal-growth";

/** Attach's size rule for one graph: fold once WAL bytes > ratio × max(baseline bytes, minBytes). */
export interface BackgroundFoldRule {
  readonly ratio: number;
  readonly minBytes: number;
}

/**
 * Hands graph `graphName`'s size rule to the actor of `wal`'s store, which from then on folds the graph's WAL into
 * a new baseline in the background. Only when `wal` is an engine tier whose store also holds `snapshot` and both
 * use the built-in JSON codecs (the compact-graph job reads frames and writes the baseline as JSON); false
 * otherwise (the caller writes baselines itself).
 */
export function foldInBackground(
  wal: KvStorageTier<unknown>,
  snapshot: BaseStorageTier,
  graphName: string,
  rule: BackgroundFoldRule,
): boolean {
  checkFoldRule(rule);
  if (snapshot.codecName !== jsonCodec.name) return false;
  if (wal.codecName !== walFrameCodec.name && wal.codecName !== jsonCodec.name) return false;
  return wal.configureCommitWatcher?.(WAL_GROWTH_WATCHER, graphName, rule, snapshot) === true;
}

/**
 * Throws StorageError("invalid-argument") unless `rule` is a fold rule: a ratio > 0 and minBytes >= 0, finite
 * numbers. Otherwise the rule's test is NaN or never true, and the graph it names would never fold.
 */
export function checkFoldRule(rule: unknown): BackgroundFoldRule {
  const r = (typeof rule === "object" && rule !== null ? rule : {}) as Partial<Record<keyof BackgroundFoldRule, unknown>>;
  const { ratio, minBytes } = r;
  if (typeof ratio !== "number" || !Number.isFinite(ratio) || ratio <= 0 || typeof minBytes !== "number" || !Number.isFinite(minBytes) || minBytes < 0) {
    throw new StorageError(
      "invalid-argument",
      `a background fold rule needs a finite ratio > 0 and a finite minBytes >= 0, got ratio ${String(ratio)}, minBytes ${String(minBytes)}`,
    );
  }
  return { ratio, minBytes };
}

interface FoldState extends BackgroundFoldRule {
  baselineBytes: number;
  walBytes: number;
}

export const walGrowthWatcher: CommitWatcherDefinition<BackgroundFoldRule> = {
  name: WAL_GROWTH_WATCHER,
  create: (ctx) => new WalGrowth(ctx),
};

class WalGrowth {
  readonly #ctx: CommitWatcherContext;
  /** Frames and bytes committed per graph since its last (auto) compaction. */
  readonly #growth = new Map<string, { frames: number; bytes: number }>();
  /** Graphs folded by size, by name. */
  readonly #folds = new Map<string, FoldState>();
  readonly #compacting = new Set<string>();

  constructor(ctx: CommitWatcherContext) {
    this.#ctx = ctx;
  }

  /** An invalid rule throws (the actor reports it to onError) and leaves the graph's rule in force unchanged. */
  configure(graphName: string, config: unknown): void {
    const rule = checkFoldRule(config); // it crossed by structured clone: any value may arrive
    this.#folds.set(graphName, { ratio: rule.ratio, minBytes: rule.minBytes, baselineBytes: 0, walBytes: 0 });
  }

  committed(batch: readonly BatchOp[]): void {
    const auto = this.#ctx.options.autoCompact;
    if (auto === undefined && this.#folds.size === 0) return;
    for (const op of batch) {
      if (op.op !== "put") continue;
      const bytes = op.value.byteLength;
      const folded = this.#folds.get(op.key);
      if (folded !== undefined) {
        // A baseline of a graph folded by size was written (attach's own): the WAL before it no longer counts.
        folded.baselineBytes = bytes;
        folded.walBytes = 0;
        continue;
      }
      const graph = splitWalFrameKey(op.key)?.graphName;
      if (graph === undefined) continue;
      let due = false;
      if (auto !== undefined) {
        let g = this.#growth.get(graph);
        if (!g) this.#growth.set(graph, (g = { frames: 0, bytes: 0 }));
        g.frames++;
        g.bytes += bytes;
        due =
          (auto.everyFrames !== undefined && g.frames >= auto.everyFrames) ||
          (auto.everyBytes !== undefined && g.bytes >= auto.everyBytes);
      }
      const fold = this.#folds.get(graph);
      if (fold !== undefined) {
        fold.walBytes += bytes;
        due ||= fold.walBytes > fold.ratio * Math.max(fold.baselineBytes, fold.minBytes);
      }
      if (due && !this.#compacting.has(graph)) this.#compact(graph);
    }
  }

  #compact(graphName: string): void {
    this.#compacting.add(graphName);
    this.#growth.set(graphName, { frames: 0, bytes: 0 });
    const fold = this.#folds.get(graphName);
    if (fold !== undefined) fold.walBytes = 0;
    const keep = this.#ctx.options.autoCompact?.keepFrames;
    const args: EngineCompactGraphOptions & { graphName: string } = { graphName, ...(keep !== undefined ? { keepFrames: keep } : {}) };
    // A failure reached onError (the graph name as its context); the next growth tries again.
    void this.#ctx.runJob(COMPACT_GRAPH_JOB, args, graphName).then((outcome) => {
      this.#compacting.delete(graphName);
      if (outcome.ok && fold !== undefined) fold.baselineBytes = (outcome.value as CompactionResult).baselineBytes;
    });
  }
}
