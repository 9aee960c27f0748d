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
import { configureStoreWatcher, storeWatcherSender, type CommitWatcherContext, type CommitWatcherDefinition, type WatcherJobOutcome } from "../engine/commit-watchers.js";
import type { BaseStorageTier, KvStorageTier, RetryOptions } from "../tier/types.js";
import { walFrameCodec } from "../wal/codec.js";
import { splitWalFrameKey } from "../wal/keys.js";
import { COMPACT_GRAPH_JOB, type CompactionResult, type EngineCompactGraphOptions } from "./compaction.js";
import { adoptSharedWalFloors, ownSharedWalFloors } from "./shared-wal-floors.js";

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
  // With the floors of this thread's groups that no record names: the folds the rule starts keep what they need.
  const config: BackgroundFoldRule & { floors: SharedArrayBuffer } = { ratio: rule.ratio, minBytes: rule.minBytes, floors: ownSharedWalFloors() };
  return wal.configureCommitWatcher?.(WAL_GROWTH_WATCHER, graphName, config, snapshot) === true;
}

/**
 * Takes back the fold rule `foldInBackground` handed to the actor of `wal`'s store for `graphName` (attach's
 * dispose, task 223): the actor folds the graph no more, and once nothing else holds its store (another graph's
 * rule, a pin) the store shuts down with its last tier. A fold the rule already started ends as it would have (the
 * actor's shutdown waits for it). A pin of the graph (KeepAboveConfig) is left as it is: it is not a fold rule.
 * No-op for an inline tier. A closed or closing engine tier sends it through its store all the same (the rule kept
 * that store open with no tier: review r231 F1): resolves then once the store took it, and with no tier of it open,
 * once the store shut down or was kept; at once otherwise.
 */
export function stopFoldingInBackground(wal: KvStorageTier<unknown>, graphName: string): Promise<void> {
  const config: FoldRuleRelease = { foldRule: "release" };
  try {
    wal.configureCommitWatcher?.(WAL_GROWTH_WATCHER, graphName, config);
    return Promise.resolve();
  } catch {
    // A closed tier (or one closing): its store's actor may outlive it, and the rule with it.
    return (configureStoreWatcher(wal, WAL_GROWTH_WATCHER, graphName, config) ?? Promise.resolve()).catch(() => undefined);
  }
}

/**
 * stopFoldingInBackground(wal, graphName) to run later, holding neither `wal` nor its store strongly: attach's claim
 * registry keeps it for a graph dropped undisposed, and a tier held there would keep its connection, the tier
 * records' watchers and so that graph alive. Once `wal` is collected it goes to the store while that is open.
 */
export function foldRuleReleaser(wal: KvStorageTier<unknown>, graphName: string): () => void {
  const tier = new WeakRef(wal);
  const store = storeWatcherSender(wal);
  return () => {
    const w = tier.deref();
    if (w !== undefined) void stopFoldingInBackground(w, graphName);
    else void store?.(WAL_GROWTH_WATCHER, graphName, { foldRule: "release" } satisfies FoldRuleRelease).catch(() => undefined);
  };
}

/** What stopFoldingInBackground sends: the graph's fold rule ends (a pin is left as it is). */
interface FoldRuleRelease {
  readonly foldRule: "release";
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

/**
 * A pin graph attach sends for pairs sharing a WAL tier (shared-wal.ts): the graph's compactions delete no frame
 * above `keepAboveSeq` (other stores' baselines need them) and it is not folded by size; Infinity lifts the pin.
 * Given under the graph's name, a pin replaces a fold rule, as a fold rule replaces it.
 */
export interface KeepAboveConfig {
  readonly keepAboveSeq: number;
  /**
   * The record ids of the stores whose pairs the sending handle has attached (empty once it ended; absent: left as
   * they were): never reported as stale pins, whatever their baselines' pace.
   */
  readonly attached?: readonly string[];
  /**
   * The sending thread's floors of its groups no record names (shared-wal-floors.ts), which the folds this watcher
   * starts read once their frames are listed. A fold rule's config carries it too.
   */
  readonly floors?: SharedArrayBuffer;
}

/**
 * A pin of the shared-WAL record counts as stale (StorageError `wal-pinned`) only when it stayed put while the
 * graph's baseline in the WAL's store moved on by at least this many frames, and by this factor times the largest
 * step that store's pin was seen to take (its own baselines' pace)...
 */
const STALE_PIN_FRAMES = 10_000;
const STALE_PIN_STEPS = 10;
/** ...and for at least this long: a store's baselines follow its own rule (a size ratio may take many frames). */
const STALE_PIN_MS = 60 * 60 * 1000;

/** What the watcher knows of one store's pin of a graph (see #checkPins). */
interface PinWatch {
  seq: number;
  /** The WAL store's baseline seq and the time when the pin was first seen at `seq`. */
  sinceBaseline: number;
  sinceMs: number;
  /** Largest move of the pin seen. */
  step: number;
  /** Frames held back and the time at the last report of this pin at `seq`. */
  reported: { held: number; at: number } | undefined;
}

interface FoldState extends BackgroundFoldRule {
  baselineBytes: number;
  walBytes: number;
}

/**
 * Frames of one graph that one batch committed while the graph's compaction was running. The job reads the WAL
 * when the actor's mailbox reaches it, not when it was asked for, and a batch queued behind it commits before its
 * outcome arrives here: whether it covered them is known only from the seq it folded to.
 */
interface CommittedWhileCompacting {
  readonly batch: number;
  lastSeq: number;
  frames: number;
  bytes: number;
}

/** A running compaction of one graph: what was committed to it meanwhile, and the counts it zeroed. */
interface Compacting {
  readonly during: CommittedWhileCompacting[];
  /** The autoCompact counts and the fold's WAL bytes when it was asked for: counted again if it fails. */
  readonly growth: { readonly frames: number; readonly bytes: number };
  walBytes: number;
}

/**
 * Retries of a failed fold while the graph is still due. Slower than a tier's flush retries (DEFAULT_RETRY, 100 ms
 * to 10 s): a fold reads the graph's whole WAL, and the actor reports every failed job to onError (a tier reports
 * once per failing spell), so one report a minute at most once the store keeps failing.
 */
const FOLD_RETRY: Required<RetryOptions> = { initialMs: 1_000, maxMs: 60_000 };

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
  /** Graphs whose frames above a seq other stores need (KeepAboveConfig), by name. */
  readonly #pins = new Map<string, number>();
  /** Graphs whose fold rule was taken back while a fold of it ran: the rule goes once no fold of it runs (#settle). */
  readonly #releasing = new Set<string>();
  /** Graphs whose compaction is running, with what was committed to them since it was asked for (by batch). */
  readonly #compacting = new Map<string, Compacting>();
  /**
   * Graphs whose last compaction failed while they are still due: the backoff delay last used, and the timer of
   * the retry when one is waiting (none while the retry runs). Dropped once a compaction succeeds or none is owed.
   */
  readonly #retries = new Map<string, { delay: number; timer: ReturnType<typeof setTimeout> | undefined }>();
  /** Per graph, the pins of the WAL store's record (shared-wal-record.ts) at its last fold, by store id. */
  readonly #holding = new Map<string, Map<string, PinWatch>>();
  /** Per graph, the record ids of stores attached in a live handle (KeepAboveConfig.attached). */
  readonly #attached = new Map<string, ReadonlySet<string>>();
  /** The actor is shutting down: folds its jobs' outcomes make due still run (it waits for them), retries do not. */
  #closed = false;
  /** Number of the batch being counted, so one batch's frames of a compacting graph make one record. */
  #batch = 0;

  constructor(ctx: CommitWatcherContext) {
    this.#ctx = ctx;
  }

  /**
   * An invalid rule throws (the actor reports it to onError) and leaves the graph's rule in force unchanged.
   * Returns true when the graph's state here is now what this config alone makes (CommitWatcher.configure: the
   * engine then replays only it and later ones to a new actor): a fold rule and a pin replace whatever was set; a
   * lift or a release does only when no rule is left (a lift keeps a fold rule, a release keeps a pin).
   */
  configure(graphName: string, config: unknown): boolean {
    // First, whatever the rest says: the groups of the sending thread are seen by the folds started from now on
    // (its attaches send a config before any frame of theirs, in order with their writes).
    adoptSharedWalFloors((config as { floors?: unknown } | null)?.floors);
    if ((config as Partial<FoldRuleRelease> | null)?.foldRule === "release") {
      // A fold running now ends as it would have, with the fold its outcome makes due (the WAL is left within the
      // rule, as at a clean close); the rule goes once no fold of it runs (#settle).
      if (this.#compacting.has(graphName) && this.#folds.has(graphName)) this.#releasing.add(graphName);
      else this.#folds.delete(graphName);
      return this.#unset(graphName);
    }
    const pin = (config as Partial<KeepAboveConfig> | null)?.keepAboveSeq;
    if (pin !== undefined) {
      if (typeof pin !== "number" || !(pin === Number.POSITIVE_INFINITY || (Number.isSafeInteger(pin) && pin >= 0))) {
        throw new StorageError("invalid-argument", `keepAboveSeq must be an integer >= 0 or Infinity, got ${String(pin)}`);
      }
      const attached: unknown = (config as Partial<KeepAboveConfig>).attached;
      if (attached !== undefined && !(Array.isArray(attached) && attached.every((id) => typeof id === "string"))) {
        throw new StorageError("invalid-argument", "attached must be an array of store ids");
      }
      if (pin === Number.POSITIVE_INFINITY) {
        this.#pins.delete(graphName);
        this.#attached.delete(graphName);
        return this.#unset(graphName);
      }
      // A pin with `attached` absent keeps the ids an earlier pin gave: it replaces all before only with its own. An
      // empty list (the handle ended, shared-wal.ts detach) is no entry: kept, it made every later rule and release
      // of the graph answer "does not replace", and the engine's replay list grew by each (review r231 F2).
      if (attached !== undefined) {
        if ((attached as string[]).length > 0) this.#attached.set(graphName, new Set(attached as string[]));
        else this.#attached.delete(graphName);
      }
      this.#folds.delete(graphName); // a fold deletes what it folds: pairs sharing the WAL write their own baselines
      this.#releasing.delete(graphName);
      this.#pins.set(graphName, pin);
      return attached !== undefined || !this.#attached.has(graphName);
    }
    const rule = checkFoldRule(config); // it crossed by structured clone: any value may arrive
    this.#pins.delete(graphName);
    this.#releasing.delete(graphName);
    this.#folds.set(graphName, { ratio: rule.ratio, minBytes: rule.minBytes, baselineBytes: 0, walBytes: 0 });
    return !this.#attached.has(graphName); // ids an earlier pin gave stay (a lift drops them)
  }

  /** Nothing configs set is left for `graphName` (a config that leaves this replaces all before it). */
  #unset(graphName: string): boolean {
    const folds = this.#folds.has(graphName) && !this.#releasing.has(graphName);
    return !folds && !this.#pins.has(graphName) && !this.#attached.has(graphName);
  }

  /**
   * A fold rule or a pin of some graph: the store stays open with no tier (a new actor would not know them). The
   * autoCompact counts are not held: they start over in a new actor (the engine's option, sent with every actor).
   */
  holds(): boolean {
    // A rule taken back whose last fold still runs holds nothing: the actor's shutdown waits for that fold anyway.
    return this.#folds.size > this.#releasing.size || this.#pins.size > 0;
  }

  committed(batch: readonly BatchOp[]): void {
    const auto = this.#ctx.options.autoCompact;
    if (auto === undefined && this.#folds.size === 0) return;
    const batchNo = ++this.#batch;
    for (const op of batch) {
      if (op.op !== "put") continue;
      const bytes = op.value.byteLength;
      const folded = this.#folds.get(op.key);
      if (folded !== undefined) {
        // A baseline of a graph folded by size was written (attach's own): the WAL before it no longer counts.
        folded.baselineBytes = bytes;
        folded.walBytes = 0;
        const running = this.#compacting.get(op.key);
        if (running !== undefined) {
          running.during.length = 0;
          running.walBytes = 0; // should that fold fail, this baseline still reset the WAL it counts
        }
        continue;
      }
      const frame = splitWalFrameKey(op.key);
      if (frame === undefined) continue;
      const graph = frame.graphName;
      const during = this.#compacting.get(graph)?.during;
      if (during !== undefined) {
        // Counted when the compaction ends, against the seq it folded to: see #settle.
        const last = during[during.length - 1];
        if (last !== undefined && last.batch === batchNo) {
          last.lastSeq = Math.max(last.lastSeq, frame.seq);
          last.frames++;
          last.bytes += bytes;
        } else during.push({ batch: batchNo, lastSeq: frame.seq, frames: 1, bytes });
        continue;
      }
      this.#count(graph, 1, bytes);
      // A retry waiting on its timer runs the fold: growth meanwhile neither starts a second one nor skips the backoff.
      if (this.#due(graph) && this.#retries.get(graph)?.timer === undefined) this.#compact(graph);
    }
  }

  /** Adds frames committed to `graphName` to what its rules compare (the autoCompact counts, the fold's WAL bytes). */
  #count(graphName: string, frames: number, bytes: number): void {
    if (this.#ctx.options.autoCompact !== undefined) {
      let g = this.#growth.get(graphName);
      if (!g) this.#growth.set(graphName, (g = { frames: 0, bytes: 0 }));
      g.frames += frames;
      g.bytes += bytes;
    }
    const fold = this.#folds.get(graphName);
    if (fold !== undefined) fold.walBytes += bytes;
  }

  #due(graphName: string): boolean {
    const auto = this.#ctx.options.autoCompact;
    const g = this.#growth.get(graphName);
    if (auto !== undefined && g !== undefined) {
      if (auto.everyFrames !== undefined && g.frames >= auto.everyFrames) return true;
      if (auto.everyBytes !== undefined && g.bytes >= auto.everyBytes) return true;
    }
    const fold = this.#folds.get(graphName);
    return fold !== undefined && fold.walBytes > fold.ratio * Math.max(fold.baselineBytes, fold.minBytes);
  }

  #compact(graphName: string): void {
    const fold = this.#folds.get(graphName);
    const growth = this.#growth.get(graphName) ?? { frames: 0, bytes: 0 };
    this.#compacting.set(graphName, { during: [], growth, walBytes: fold?.walBytes ?? 0 });
    this.#growth.set(graphName, { frames: 0, bytes: 0 });
    if (fold !== undefined) fold.walBytes = 0;
    const keep = this.#ctx.options.autoCompact?.keepFrames;
    const pin = this.#pins.get(graphName);
    const args: EngineCompactGraphOptions & { graphName: string } = {
      graphName,
      ...(keep !== undefined ? { keepFrames: keep } : {}),
      ...(pin !== undefined ? { keepAboveSeq: pin } : {}),
    };
    // A failure reached onError (the graph name as its context).
    void this.#ctx.runJob(COMPACT_GRAPH_JOB, args, graphName).then((outcome) => this.#settle(graphName, outcome));
  }

  /**
   * A compaction of `graphName` ended. Batches committed while it ran were not counted then (the job may or may not
   * have read them): those above the seq it folded to are still WAL above the baseline, and count now. With no
   * further commit to come (the burst was over), nothing else would start the fold they may make due, and the WAL
   * would stay past the bound while idle; so the rule is checked here too.
   * A failed compaction (a transient backend failure, a full disk) folded nothing: the growth it zeroed counts again,
   * and while the graph is due it is retried after a backoff, not only once new growth arrives: an idle store would
   * otherwise keep its WAL past the bound, and restore read all of it.
   */
  #settle(graphName: string, outcome: WatcherJobOutcome): void {
    const running = this.#compacting.get(graphName);
    this.#compacting.delete(graphName);
    const during = running?.during ?? [];
    const fold = this.#folds.get(graphName);
    let covered = Number.NEGATIVE_INFINITY;
    if (outcome.ok) {
      const result = outcome.value as CompactionResult;
      covered = result.baselineSeq;
      this.#checkPins(graphName, result);
      if (fold !== undefined) fold.baselineBytes = result.baselineBytes;
      this.#retries.delete(graphName); // the backoff starts over at the next failure
    } else if (running !== undefined && outcome.retryable) {
      const g = this.#growth.get(graphName);
      if (g !== undefined) {
        g.frames += running.growth.frames;
        g.bytes += running.growth.bytes;
      }
      if (fold !== undefined) fold.walBytes += running.walBytes;
    }
    let frames = 0;
    let bytes = 0;
    for (const b of during) {
      // A batch partly covered (a backend whose batches are not atomic, a torn tail frame) counts whole: counting
      // too much only brings the next fold sooner, too little would let the WAL pass the bound.
      if (b.lastSeq <= covered) continue;
      frames += b.frames;
      bytes += b.bytes;
    }
    this.#count(graphName, frames, bytes);
    if (!this.#due(graphName)) this.#retries.delete(graphName); // nothing owed (attach wrote a baseline meanwhile)
    else if (outcome.ok) this.#compact(graphName);
    else if (outcome.retryable) this.#retryLater(graphName);
    // A failure repeating cannot fix (a corrupt or incomplete stored graph): its growth was dropped, so it is tried
    // again only once the graph grew past its threshold anew, never in a loop reporting the same error.
    if (this.#releasing.has(graphName) && !this.#compacting.has(graphName)) {
      // The rule taken back while this fold ran: its last fold ended (a retry waiting finds the graph not due by
      // the rule any more, and runs only for autoCompact).
      this.#releasing.delete(graphName);
      this.#folds.delete(graphName);
    }
  }

  /**
   * Reports a store of the WAL store's record whose pin holds the graph's frames back (below the fold's baseline)
   * and has not moved while the graph's baseline here moved on by STALE_PIN_FRAMES frames (and STALE_PIN_STEPS times
   * the largest step the pin took) over at least STALE_PIN_MS: a store removed for good keeps its pin until
   * forgotten, and the WAL grows. Measured in the WAL's frames and time, not in folds: the folds follow this store's
   * rule (autoCompact), not the pinned store's baselines, so a healthy store between two of its baselines was taken
   * for a stale one. A store attached in a live handle of this process is never reported. Reported again when still
   * put once the frames it holds back doubled and STALE_PIN_MS passed since.
   */
  #checkPins(graphName: string, result: CompactionResult): void {
    const before = this.#holding.get(graphName);
    const attached = this.#attached.get(graphName);
    const now = new Map<string, PinWatch>();
    const at = Date.now();
    for (const { store, seq } of result.sharedWalPins ?? []) {
      const seen = before?.get(store);
      const moved = seen === undefined || seen.seq !== seq;
      const w: PinWatch = moved
        ? { seq, sinceBaseline: result.baselineSeq, sinceMs: at, step: Math.max(seen?.step ?? 0, seq - (seen?.seq ?? seq)), reported: undefined }
        : seen;
      now.set(store, w);
      const held = result.baselineSeq - seq;
      if (held <= 0 || attached?.has(store) === true) continue; // holds nothing back, or restores from the WAL now
      const grew = result.baselineSeq - w.sinceBaseline;
      if (grew < Math.max(STALE_PIN_FRAMES, STALE_PIN_STEPS * w.step) || at - w.sinceMs < STALE_PIN_MS) continue;
      if (w.reported !== undefined && (held < 2 * w.reported.held || at - w.reported.at < STALE_PIN_MS)) continue;
      w.reported = { held, at };
      this.#ctx.report(stalePinError(graphName, store, seq, result.baselineSeq, at - w.sinceMs), graphName);
    }
    if (now.size > 0) this.#holding.set(graphName, now);
    else this.#holding.delete(graphName);
  }

  /** The actor is shutting down: no retry may start a job it cannot run. */
  close(): void {
    this.#closed = true;
    for (const retry of this.#retries.values()) if (retry.timer !== undefined) clearTimeout(retry.timer);
    this.#retries.clear();
  }

  /** Exponential backoff with jitter (half to full delay, as a tier's flush retries), capped at FOLD_RETRY.maxMs. */
  #retryLater(graphName: string): void {
    if (this.#closed) return;
    const retry = this.#retries.get(graphName) ?? { delay: 0, timer: undefined };
    if (retry.timer !== undefined) return;
    retry.delay = retry.delay === 0 ? FOLD_RETRY.initialMs : Math.min(FOLD_RETRY.maxMs, retry.delay * 2);
    // Unref'd: a waiting retry never keeps the worker alive; close() clears it when the actor shuts down.
    retry.timer = setTimeout(() => {
      retry.timer = undefined;
      if (this.#compacting.has(graphName)) return; // defensive: one fold per graph at a time
      if (this.#due(graphName)) this.#compact(graphName);
      else this.#retries.delete(graphName);
    }, retry.delay * (0.5 + Math.random() / 2));
    retry.timer.unref();
    this.#retries.set(graphName, retry);
  }
}

/** What onError hears of a store of the shared-WAL record whose pin stayed put (see #checkPins). */
function stalePinError(graphName: string, store: string, seq: number, baselineSeq: number, forMs: number): StorageError {
  const minutes = Math.floor(forMs / 60_000);
  return new StorageError(
    "wal-pinned",
    `graph "${graphName}": its WAL keeps the frames above seq ${seq} (baseline here at ${baselineSeq}) for store ${store}, which the WAL's store records as restoring from it; that store's baseline has not moved for ${baselineSeq - seq} frames and ${minutes} minutes, and no handle of this process attaches it. Check that store: if a process still writes it, its baselines are not landing. Only once no process restores from it ever again may it be forgotten (compactGraph's forgetStores, the CLI's compact --forget-store): forgetting a store in use loses its changes above seq ${seq}`,
    { graphName, store, seq, baselineSeq, stalledMs: forMs },
  );
}
