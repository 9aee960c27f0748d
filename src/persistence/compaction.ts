/**
 * Background compaction of one graph's WAL (docs/design.md §3.10, issue 4): read the graph with the stored-graph
 * reader, fold the frames above its baseline into a new baseline (`WalFolder`, no live graph), commit it, then
 * delete the frames it covers.
 * A pure function of the backend's contents, run by the store actor that owns the backend (the
 * `compact-graph` job) or inline on a store nobody else is writing (tools, the CLI).
 * Layer 4 (graph).
 */
import { nextTurn } from "../base/promises.js";
import { jsonCodec } from "../codec/json.js";
import type { BatchOp, ExpectedValue, StorageBackend } from "../backend/types.js";
import { StorageError, asStorageError } from "../errors.js";
import type { ActorJob, ActorJobContext } from "../engine/jobs.js";
import type { StorageEngine } from "../engine/engine.js";
import type { StoreSpec } from "../engine/protocol.js";
import { WalFolder } from "./fold.js";
import type { GraphCheckpointRecord, TornWriteHandler } from "./storage-types.js";
import {
  backendSource,
  baselineError,
  checkBaseline,
  foreignFrameError,
  listFrameKeys,
  readStoredGraph,
  sameBytes,
  type FrameKey,
  type FrameRead,
} from "./stored-graph.js";
import { SNAPSHOT_VERSION } from "../graph/types.js";
import { assertGraphName, graphWalPrefix, splitWalFrameKey } from "../wal/keys.js";
import { postgresStoreKey } from "../engine/postgres-store.js";
import { backendStoreId, specStoreId, type TierStore } from "../tier/store-identity.js";
import { adoptSharedWalFloors, adoptedSharedWalFloor, floorStoreOfBackend, ownSharedWalFloors } from "./shared-wal-floors.js";
import { attachedSharedWalStores, readSharedWalJobWatch, sharedWalFloor, watchSharedWalJob, type SharedWalJobWatch } from "./shared-wal.js";
import {
  carriedSeen,
  FORGET_LIVE_WINDOW_MS,
  lowestNeeded,
  parseSharedWalRecordAll,
  recordSeenAt,
  seenLive,
  sharedWalRecordFrame,
  sharedWalRecordKey,
  type SharedWalStores,
} from "./shared-wal-record.js";
import { walFrameCodec } from "../wal/codec.js";
import { writeLaneOf, type Supersedes } from "../tier/write-lane.js";
import { isRecord } from "../base/records.js";

export interface CompactionContext {
  readonly backend: StorageBackend;
  /**
   * Makes every buffered write of the store durable first, so no older buffered baseline or frame can land
   * after the new baseline (the actor passes its own; inline callers on a closed store pass none).
   */
  flushAll?(): Promise<void>;
  /**
   * The store's actor: lets its other work (flushes) run while the WAL is read and folded, and runs the commit as
   * a step of its own (ActorJobContext in src/engine/jobs.ts). Inline callers pass neither.
   */
  release?(): void;
  exclusive?<T>(step: () => Promise<T> | T): Promise<T>;
}

export interface CompactGraphOptions {
  /** Graph whose baseline (key `graphName`) and WAL (`<graphName>/wal/…`) are compacted. */
  graphName: string;
  /**
   * Frames at or below the new baseline that are kept (the most recent ones); default 0, `Infinity` keeps all.
   * Restore never replays frames below its baseline (and rejects a `targetSeq` below it), so retention does not
   * buy point-in-time restore: it keeps a recent audit trail for inspection (e.g. the CLI's `frames`) and lets a
   * reader tailing the WAL by key catch up across a compaction if it lags by at most `keepFrames` frames.
   */
  keepFrames?: number;
  /**
   * Frames above this seq are kept whatever the new baseline covers: the lowest baseline seq of the other snapshot
   * stores that restore from this WAL (pairs sharing a WAL tier, docs/design.md §3.10); default: none kept for that.
   * Found without it: the stores the WAL's store records (attach records every store with a lasting name: a SQLite
   * file, a file store, a PostgreSQL store) and the pairs of a live attach handle in this process. Needed only for
   * another store (a memory store of a disposed handle, a WAL written before the record existed): a frame above such
   * a store's baseline, once deleted, fails its restore with wal-gap. An integer >= 0 or Infinity.
   */
  keepAboveSeq?: number;
  /**
   * Snapshot stores to drop from the WAL store's record of stores that restore from this WAL (pairs sharing a WAL
   * tier record them there at attach, docs/design.md §3.10; ids as `CompactionResult.sharedWalPins` shows them),
   * before the compaction reads it: for a store removed for good, whose pin would otherwise keep the frames above its
   * last baseline. The record is rewritten first, whatever the compaction then does. A live attach in this process
   * that writes that store names it again at its next baseline. An id the record does not name is refused, nothing
   * changed: StorageError `invalid-argument` (details.unknownStores, knownStores). A store the record shows a live
   * handle named within the last hour (FORGET_LIVE_WINDOW_MS; a time more than FORGET_CLOCK_AHEAD_MS ahead of this
   * clock does not count) is refused too, nothing changed: StorageError `store-live` (details.liveStores, seenAt),
   * unless `forceForget`.
   */
  forgetStores?: readonly string[];
  /**
   * Forget the `forgetStores` even when the record shows a live handle named them within the last hour (its process
   * may still write them: their restore then fails wal-compacted-past-baseline once the frames above their baselines
   * are compacted away, until their next baseline). Default false.
   */
  forceForget?: boolean;
  /**
   * Overrides the torn-write policy (default: a bad tail frame is skipped and left in place, a bad frame
   * mid-stream aborts with nothing changed). Inline use only: functions do not cross to the actor.
   */
  onTornWrite?: TornWriteHandler;
}

export interface CompactionResult {
  graphName: string;
  /**
   * Seq of the stored baseline after compaction (unchanged when nothing was folded); 0 for a store holding frames of
   * a shared WAL but no baseline of the graph (only frames every pair's baseline covers were deleted).
   */
  baselineSeq: number;
  previousBaselineSeq: number;
  /** Frames folded into the new baseline; 0 means no baseline was written. */
  foldedFrames: number;
  /** Frames deleted (all at or below `baselineSeq`, and at or below `keepAboveSeq` and the shared WAL's floor). */
  deletedFrames: number;
  /** Frames at or below `baselineSeq` still stored (retention). */
  keptFrames: number;
  /**
   * Torn frames skipped by the fold. A skipped tail frame lies above `baselineSeq` and stays stored (restore
   * reports it too); one skipped mid-stream by an `onTornWrite` override is covered by the baseline and deleted.
   */
  skippedTornFrames: number;
  tornFrameSeqs: number[];
  /**
   * The WAL store's record of other snapshot stores restoring from this WAL (after `forgetStores`), each with the
   * baseline seq it still needs: no frame above the lowest was deleted. Absent when the store records none.
   */
  sharedWalPins?: Array<{ store: string; seq: number }>;
  /** Stored size of the baseline after compaction (what the background fold rule compares the WAL with). */
  baselineBytes: number;
  /** Bytes of the baseline plus every WAL frame of the graph, before and after. */
  bytesBefore: number;
  bytesAfter: number;
  /**
   * The baseline and the deletions were committed in one atomic backend batch (true when nothing was written). In
   * the store's actor more than 8,192 deletions go in several steps after the baseline: false.
   */
  atomic: boolean;
}

/**
 * Compacts `opts.graphName` on `ctx.backend`, reading it with the stored-graph reader (restore's rules, so the
 * fold is exactly what restore would rebuild). Throws RestoreError `baseline-missing` (no value baseline of this
 * graph to fold into; but with none stored under its name, frames of it stored and a floor known, `keepAboveSeq`, the
 * store's shared-WAL record or a live shared WAL's, the frames at or below that floor are deleted, folding nothing),
 * `codec-mismatch` (a baseline
 * format this build does not read: never rewritten as ours),
 * `wal-gap` (a frame missing above the baseline), `torn-write-mid-stream` (a corrupt frame mid-stream),
 * `phase-failed` (a frame the graph refuses outright, where restore fails too: WalFolder.add), all
 * before writing anything; StorageError `backend-no-list-support` for a backend that cannot list,
 * `backend-error` when a read or the commit fails (an atomic commit then changed nothing; otherwise at worst
 * the new baseline is stored and some covered frames are not yet deleted, which restore ignores), `invalid-name`
 * (a graph name shaped like another record's key, docs/design.md §3.27), `corrupt-store` (a key of the graph's WAL
 * holds another record, or its shared-WAL record key another value: nothing is deleted), `store-busy` (the baseline changed while it folded: inline, another
 * writer got in; nothing is changed); TypeError / RangeError for bad options.
 */
export function compactGraph(ctx: CompactionContext, opts: CompactGraphOptions): Promise<CompactionResult> {
  return compactGraphWatched(ctx, opts, undefined);
}

/**
 * compactGraph; `watch`: in an engine's job, the groups that registered since it was asked in the thread that asked
 * (compactGraphInEngine's `watchSharedWalJob`), which the job's own thread cannot see.
 */
async function compactGraphWatched(
  ctx: CompactionContext,
  opts: CompactGraphOptions,
  watch: SharedWalJobWatch | undefined,
): Promise<CompactionResult> {
  const { graphName, keepFrames, keepAboveSeq, forgetStores, forceForget, onTornWrite } = checkOptions(opts);
  const { backend } = ctx;
  if (typeof backend?.list !== "function") {
    throw new StorageError("backend-no-list-support", `backend "${String(backend?.name)}" cannot list keys; compaction needs it`, {
      backend: backend?.name,
    });
  }
  if (typeof backend.delete !== "function" && typeof backend.writeBatch !== "function") {
    throw new StorageError("invalid-argument", `backend "${backend.name}" cannot delete keys; compaction needs it`, {
      backend: backend.name,
    });
  }
  // Pairs of a live attach sharing this WAL (this process's): frames above their stored baselines stay (read before
  // the fold, so it is the floor at its start or lower: baselines only move up).
  const storeId = backendStoreId(backend);
  const isStore = (s: TierStore): boolean => s.id === storeId;
  refuseAttached(graphName, forgetStores, isStore);
  const shared = await sharedWalFloor(graphName, isStore);
  await ctx.flushAll?.();
  // Other stores that restore from this WAL, as the WAL's store records them (attach of pairs sharing it, in any
  // process): read once the store's writes are flushed, so a record moved on since is at most higher at the commit.
  const recorded = await readSharedWalRecord(ctx, graphName, forgetStores, forceForget, isStore, watch);
  let keepAbove = Math.min(keepAboveSeq, shared ?? Number.POSITIVE_INFINITY, lowestNeeded(recorded));
  let pins = pinsOf(recorded);
  // Read again once the frames are listed (review of task 183): an attach that registered while the fold ran (inline,
  // through another engine of this process: another connection to the store) wrote its record, then its frames,
  // after the reads above, and the fold listed those frames; deleted, the new store's restore returned its attach
  // state. Its record lands no later than its first frame (a tier commits in call order), so one read after the
  // listing names every store whose frames the fold listed; a record landing later belongs to frames it did not list.
  const afterListing = async (): Promise<void> => {
    const now = await floorAfterListing(backend, graphName, isStore);
    keepAbove = Math.min(keepAbove, now.floor);
    // In a store actor's thread: the groups of the threads whose engines use this actor (and of the thread that asked
    // for this job: its floors come with it) that pair a store no record names (a memory store), read now (task 202).
    // Each published its floor before writing any frame, so a group whose frames were listed is seen here, at the
    // lowest baseline it still needs; one disposed before this read needs none. A group of a store with a lasting id
    // is in the record read just above (saved before its first frame). Until task 207 an engine's job kept every
    // frame when any group of its graph registered in the asking thread while it ran, even one long gone: under
    // attaches per request no fold deleted a frame.
    // Only those on a WAL of this store (task 213: keyed by graph name alone, a memory group of a graph on store A held
    // every fold of that graph, or of a graph of its hash slot, on every other store).
    keepAbove = Math.min(keepAbove, adoptedSharedWalFloor(floorStoreOfBackend(backend), graphName));
    pins = pinsOf(mergedStores(recorded, now.recorded));
  };
  // In a store's actor the fold reads its frames and folds them (seconds for a large graph) beside the store's
  // flushes, which would otherwise wait for the whole fold: the mailbox is released once the baseline was read and
  // the frames listed, so a fold covers what was stored when it started. Nothing committed meanwhile is in its way:
  // new frames lie above the frames listed, and a baseline written meanwhile is caught by the reader (it starts
  // over) or before committing (`commitStep`).

  // Streamed: frames are read a chunk at a time (backendSource), then screened and folded one by one, so memory is
  // the graph's, not the backlog's.
  // Nothing is written before the last frame was read: a gap or a mid-stream corruption throws with the store
  // as it was. Frames at or below the baseline are read too, for their size (they may be deleted now).
  let baseline: GraphCheckpointRecord | undefined;
  let folder: WalFolder | undefined;
  let stored: StoredFrame[] = [];
  let torn: number[] = [];
  let absent: unknown;
  const record = (read: FrameRead): void => void stored.push({ key: read.key, seq: read.seq, bytes: read.raw?.byteLength ?? 0 });
  const view = await readStoredGraph(backendSource(backend), graphName, { onTornWrite }, {
    start(v) {
      ctx.release?.();
      baseline = v.baseline;
      folder = undefined;
      stored = [];
      torn = [];
    },
    below(read) {
      // Another record under one of the graph's frame keys (a graph named like it): deleting it would destroy it.
      if (!read.ok && read.foreign !== undefined) throw foreignFrameError(read);
      record(read);
    },
    frame(frame, read) {
      record(read);
      (folder ??= new WalFolder(baseline!, baseline!.snapshot)).add(frame);
    },
    skipped(info, read) {
      record(read);
      torn.push(info.frame_seq);
    },
  }).catch((err: unknown) => {
    if (keepAbove === Number.POSITIVE_INFINITY || !isAbsentBaseline(err)) {
      throw asStorageError(err, `compaction of graph "${graphName}": reading it failed`, { graphName });
    }
    absent = err;
    return undefined;
  });
  // A store holding a shared WAL but no pair's baseline (pairs {S1, W}, {S2, W}): nothing to fold into; what every
  // pair's stored baseline covers is dead and goes (else W grew without end and every fold failed baseline-missing).
  if (view === undefined) {
    const result = await deleteCoveredFrames(ctx, graphName, () => afterListing().then(() => keepAbove), keepFrames, absent);
    return { ...result, ...pins };
  }
  try {
    await afterListing();
  } catch (err) {
    throw asStorageError(err, `compaction of graph "${graphName}": reading the record of stores sharing its WAL failed`, { graphName });
  }
  const previousSeq = view.baseline.seq;
  // In the actor, a large graph's fold lets the store's ops in between its long steps; a small one's steps are short.
  const yieldsPay = ctx.release !== undefined && (view.baselineBytes ?? 0) >= YIELD_ABOVE_BYTES;
  const fold = folder?.result();
  const newSeq = fold && fold.seq > previousSeq ? fold.seq : previousSeq;

  const covered = stored.filter((f) => f.seq <= newSeq);
  const doomed = covered.slice(0, covered.length - Math.min(keepFrames, covered.length)).filter((f) => f.seq <= keepAbove);
  const kept = covered.length - doomed.length;
  const deletions: BatchOp[] = doomed.map((f) => ({ op: "delete", key: f.key }));
  const oldBaselineBytes = view.baselineBytes ?? 0;
  let newBaselineBytes = oldBaselineBytes;
  let put: BatchOp | undefined;
  if (fold && newSeq > previousSeq) {
    // Encoding the new baseline holds the thread (~0.3 s at 100,000 nodes): the store's ops that arrived meanwhile
    // go first.
    if (yieldsPay) await nextTurn();
    const next: GraphCheckpointRecord = {
      name: graphName,
      mode: "full",
      snapshot: fold.snapshot,
      seq: newSeq,
      timestamp_ns: Date.now() * 1_000_000,
      format_version: SNAPSHOT_VERSION,
    };
    const bytes = jsonCodec.encode(next);
    newBaselineBytes = bytes.byteLength;
    put = { op: "put", key: graphName, value: bytes };
  }
  // In the actor the deletions go a chunk per mailbox step (deleting 200,000 frames one by one takes ~0.7 s on
  // SQLite), the first with the baseline. Frames at or below a stored baseline are dead: if the job stops between
  // steps, restore ignores the rest and the next fold deletes them.
  const chunk = ctx.exclusive ? DELETE_CHUNK : Math.max(1, deletions.length);
  const first = deletions.slice(0, chunk);
  // A baseline stored while the fold ran, by the writer (attach's own with compactEvery, rebaseline; one writer,
  // seqs only grow): one at or above the fold's seq covers every frame the fold listed, so it stays and those frames
  // go; one above the fold's start and below its seq is older than the fold's, which replaces it. A baseline at or
  // below the fold's start was rewritten, not written on: nothing is changed (store-busy).
  // Inline, nobody else writes the store (its lock says so): a baseline changed meanwhile means another writer got in
  // (a second name of the store, a handle without the lock, another tier or thread of this process sharing the lock),
  // whose newer baseline the fold's must never overwrite. The commit is conditional where the backend can
  // (supports.conditionalBatch): applied only while the baseline is the one just read, in one step of the backend, so
  // a writer committing between the check and the batch is caught too (read again, decided again; store-busy past
  // COMMIT_ATTEMPTS). Without it, a sync backend's read and commit run with nothing of this thread between them.
  let supersededBy: { seq: number; bytes: number } | undefined;
  const commitStep = async (): Promise<boolean> => {
    for (let attempt = 1; ; attempt++) {
      const read = backend.read(graphName);
      const current = isThenable(read) ? await read : read;
      let ops = put ? [put, ...first] : first;
      supersededBy = undefined;
      if (view.baselineRaw === undefined || current === undefined || !sameBytes(view.baselineRaw, current)) {
        if (!ctx.release) {
          throw new StorageError(
            "store-busy",
            `compaction of graph "${graphName}": its baseline changed while the WAL was being folded (another process writes this store?); nothing was changed`,
            { graphName },
          );
        }
        const seq = baselineSeqOf(current, graphName);
        if (seq === undefined || seq <= previousSeq) {
          throw new StorageError(
            "store-busy",
            `compaction of graph "${graphName}": its baseline was rewritten while the WAL was being folded; nothing was changed`,
            { graphName },
          );
        }
        if (seq >= newSeq) {
          supersededBy = { seq, bytes: current?.byteLength ?? 0 };
          ops = first;
        }
      }
      // Baseline first: a non-atomic batch keeps order, so a reader never sees frames gone under an old baseline.
      const atomic = await commit(backend, ops, { key: graphName, value: current }, coversUpTo(graphName, newSeq));
      if (atomic !== undefined) return atomic;
      if (attempt === COMMIT_ATTEMPTS) {
        throw new StorageError(
          "store-busy",
          `compaction of graph "${graphName}": its baseline kept changing as the fold committed (${attempt} attempts); nothing was changed`,
          { graphName, attempts: attempt },
        );
      }
    }
  };
  let atomic: boolean;
  try {
    if (yieldsPay) await nextTurn();
    atomic = await inOrder(ctx, commitStep);
  } catch (err) {
    throw asStorageError(err, `compaction of graph "${graphName}": committing the new baseline failed`, { graphName });
  }
  for (let at = chunk; at < deletions.length; at += chunk) {
    const rest = deletions.slice(at, at + chunk);
    atomic = false;
    try {
      await nextTurn();
      await inOrder(ctx, () => commit(backend, rest));
    } catch (err) {
      throw asStorageError(err, `compaction of graph "${graphName}": deleting the frames it folded failed (its baseline is stored)`, {
        graphName,
      });
    }
  }
  if (supersededBy !== undefined) {
    const bytesBefore = stored.reduce((n, f) => n + f.bytes, supersededBy.bytes);
    const deletedBytes = doomed.reduce((n, f) => n + f.bytes, 0);
    return {
      graphName,
      baselineSeq: supersededBy.seq,
      previousBaselineSeq: supersededBy.seq,
      foldedFrames: 0,
      deletedFrames: doomed.length,
      keptFrames: kept,
      skippedTornFrames: torn.length,
      tornFrameSeqs: torn,
      baselineBytes: supersededBy.bytes,
      bytesBefore,
      bytesAfter: bytesBefore - deletedBytes,
      atomic,
      ...pins,
    };
  }

  const bytesBefore = stored.reduce((n, f) => n + f.bytes, oldBaselineBytes);
  const deletedBytes = doomed.reduce((n, f) => n + f.bytes, 0);
  return {
    graphName,
    baselineSeq: newSeq,
    previousBaselineSeq: previousSeq,
    foldedFrames: fold && newSeq > previousSeq ? fold.appliedFrames + fold.ignoredFrames : 0,
    deletedFrames: doomed.length,
    keptFrames: kept,
    skippedTornFrames: torn.length,
    tornFrameSeqs: torn,
    baselineBytes: newBaselineBytes,
    bytesBefore,
    bytesAfter: bytesBefore - oldBaselineBytes + newBaselineBytes - deletedBytes,
    atomic,
    ...pins,
  };
}

/**
 * The WAL store's record of the other stores restoring from this WAL (shared-wal-record.ts), after dropping
 * `forget` from it (rewritten before anything else: in the actor as a step of its own; the record stays, with the
 * forgotten stores' marks). Throws StorageError `corrupt-store` for another value under its key, `backend-error`
 * when it cannot be read or rewritten, `invalid-argument` for a store it does not name or a live handle of this
 * process attaches (checked again right before the rewrite), `store-live` for one a live handle named within
 * FORGET_LIVE_WINDOW_MS (unless `force`), `store-busy` when the record kept changing under the rewrite.
 */
async function readSharedWalRecord(
  ctx: CompactionContext,
  graphName: string,
  forget: readonly string[],
  force: boolean,
  isStore: (store: TierStore) => boolean,
  watch: SharedWalJobWatch | undefined,
): Promise<SharedWalStores | undefined> {
  const { backend } = ctx;
  const key = sharedWalRecordKey(graphName);
  for (let attempt = 1; ; attempt++) {
    let raw: Uint8Array | undefined;
    let record: ReturnType<typeof parseSharedWalRecordAll>;
    try {
      // Listed first: a read for a key most stores lack would be a read more per fold (a list is an index probe).
      const listed = await backend.list!(key);
      raw = listed.includes(key) ? await backend.read(key) : undefined;
      record = parseSharedWalRecordAll(graphName, raw);
    } catch (err) {
      throw asStorageError(err, `compaction of graph "${graphName}": reading the record of stores sharing its WAL failed`, { graphName });
    }
    const stores = record?.stores;
    // An id the record does not name (a typo, a store forgotten already) was silently ignored: refused, naming those
    // it does name, before anything is rewritten.
    const unknown = forget.filter((id) => !stores?.has(id));
    if (unknown.length > 0) throw unknownStoresError(graphName, unknown, [...(stores?.keys() ?? [])]);
    if (record === undefined || stores === undefined || forget.length === 0) return stores;
    // A store a live handle named lately may be written by another process (or one restarting): forgetting it lets
    // the frames above its baseline go while it still counts on them. Only on purpose (`forceForget`).
    const now = Date.now();
    const live = force ? [] : forget.filter((id) => seenLive(record, id, now));
    if (live.length > 0) throw liveStoresError(graphName, live, (id) => recordSeenAt(record, id));
    const kept = new Map([...stores].filter(([id]) => !forget.includes(id)));
    // The kept stores' times as read (an old record's own time for each it gave none): the rewrite's time would make
    // them look named by a live handle now, and refuse the next forget of one (review r178 of a439ce3).
    const seen = carriedSeen(record, kept.keys());
    // Each forgotten store with the highest frame seq the WAL holds now: this compaction and later ones may delete
    // frames above that store's baseline, and its restore must then fail (wal-compacted-past-baseline), not return
    // its baseline's older state. The record stays, even with no store left to keep frames for, to say so.
    const gone = new Map(record.forgotten);
    try {
      const top = Math.max(0, ...(await backend.list!(graphWalPrefix(graphName))).map((k) => splitWalFrameKey(k)?.seq ?? 0));
      for (const id of forget) gone.set(id, Math.max(top, stores.get(id) ?? 0, gone.get(id) ?? 0));
    } catch (err) {
      throw asStorageError(err, `compaction of graph "${graphName}": listing its WAL failed`, { graphName });
    }
    const op: BatchOp = { op: "put", key, value: walFrameCodec.encode(sharedWalRecordFrame(graphName, kept, gone, seen)) };
    // Rewritten only while it holds what was read (where the backend can): an attach that wrote the record meanwhile
    // (this process's, through another handle of the store) is read again, not overwritten.
    // Not told to the write lane: a record save of an attach that a failed flush put back for a retry is newer than
    // what was read here (it names that session's stores), and must still land. Told, the lane dropped it as stale,
    // and the session's frames then landed under a record that did not name its stores, until its next save (none
    // while its baselines stay put): a compaction deleted frames they need. Landing after this rewrite it loses
    // nothing of it: this forget cannot drop a store that session attaches (refused in this process, the store's
    // lock or lease keeps other processes out), and that session's record marks every store of the record it read
    // that it leaves out, the ones forgotten here with them (docs/design.md §3.10, "a forget's rewrite and a
    // put-back record save").
    const step = async (): Promise<boolean | undefined> => {
      refuseAttached(graphName, forget, isStore); // an attach of this process registered since the first check
      // In an engine's job, the same for the thread that asked for it (its groups are not this thread's): a store a
      // group attached since the job was asked is live for sure, forced or not (`force` overrides the record's
      // times, which guess at other processes, never what this process knows).
      if (watch !== undefined) refuseAttachedIds(graphName, watch.attachedForgotten());
      return commit(backend, [op], { key, value: raw }, undefined, false);
    };
    let done: boolean | undefined;
    try {
      done = await inOrder(ctx, step);
    } catch (err) {
      throw asStorageError(err, `compaction of graph "${graphName}": rewriting the record of stores sharing its WAL failed`, { graphName });
    }
    if (done !== undefined) return kept;
    if (attempt === COMMIT_ATTEMPTS) {
      throw new StorageError(
        "store-busy",
        `compaction of graph "${graphName}": the record of stores sharing its WAL kept changing (${attempt} attempts); nothing was changed`,
        { graphName, attempts: attempt },
      );
    }
  }
}

/**
 * What keeps frames once a fold listed them: the lowest seq the shared-WAL record names as stored now (a read
 * only, never a rewrite; `corrupt-store` for another value under its key) and this process's live groups on the store
 * `isStore` matches (a group registered since the fold started). See compactGraph's `afterListing`.
 */
async function floorAfterListing(
  backend: StorageBackend,
  graphName: string,
  isStore: (store: TierStore) => boolean,
): Promise<{ floor: number; recorded: SharedWalStores | undefined }> {
  const key = sharedWalRecordKey(graphName);
  const listed = await backend.list!(key); // an index probe: no read for stores without a record
  const recorded = listed.includes(key) ? parseSharedWalRecordAll(graphName, await backend.read(key))?.stores : undefined;
  const live = await sharedWalFloor(graphName, isStore);
  return { floor: Math.min(lowestNeeded(recorded), live ?? Number.POSITIVE_INFINITY), recorded };
}

/** Both records' stores, each at the lower of its seqs (what kept frames: the result's `sharedWalPins`). */
function mergedStores(a: SharedWalStores | undefined, b: SharedWalStores | undefined): SharedWalStores | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  const out = new Map(a);
  for (const [id, seq] of b) out.set(id, Math.min(seq, out.get(id) ?? seq));
  return out;
}

/** The result's `sharedWalPins` for the stores a record names (none: no field). */
function pinsOf(stores: SharedWalStores | undefined): { sharedWalPins?: Array<{ store: string; seq: number }> } {
  return stores === undefined || stores.size === 0 ? {} : { sharedWalPins: [...stores].map(([store, seq]) => ({ store, seq })) };
}

/** StorageError `store-live` for `forgetStores` ids a live handle named in the record within FORGET_LIVE_WINDOW_MS. */
function liveStoresError(graphName: string, live: readonly string[], seenAt: (id: string) => number): StorageError {
  const at = live.map((id) => new Date(seenAt(id)).toISOString());
  return new StorageError(
    "store-live",
    `compaction of graph "${graphName}": cannot forget ${live.map((id) => JSON.stringify(id)).join(", ")}: a live handle named it in the record of stores sharing its WAL at ${at.join(", ")}, within the last ${FORGET_LIVE_WINDOW_MS / 60_000} minutes (a process may still write it; forget it once none does, or force it: forceForget, CLI --force); nothing was changed`,
    { graphName, liveStores: [...live], seenAt: at },
  );
}

/**
 * Throws StorageError `invalid-argument` (details.attachedStores) when `forget` names a store a live attach handle of
 * this process pairs with a WAL on the store `isStore` matches: it restores from that WAL now, and forgetting it would
 * let the compaction delete frames above its baseline. Nothing is changed.
 */
function refuseAttached(graphName: string, forget: readonly string[], isStore: (store: TierStore) => boolean): void {
  if (forget.length === 0) return;
  const attached = attachedSharedWalStores(graphName, isStore);
  refuseAttachedIds(graphName, forget.filter((id) => attached.has(id)));
}

/** refuseAttached's error for the forgotten stores `refused` a live attach handle of this process attaches (none: no error). */
function refuseAttachedIds(graphName: string, refused: readonly string[]): void {
  if (refused.length === 0) return;
  throw new StorageError(
    "invalid-argument",
    `compaction of graph "${graphName}": cannot forget ${refused.map((id) => JSON.stringify(id)).join(", ")}: a live attach handle of this process restores from its WAL (dispose it first); nothing was changed`,
    { graphName, attachedStores: [...refused] },
  );
}

/** StorageError `invalid-argument` for `forgetStores` ids the record does not name (`known`: the ids it does). */
function unknownStoresError(graphName: string, unknown: readonly string[], known: readonly string[]): StorageError {
  const named = known.length === 0 ? "names no store" : `names ${known.map((id) => JSON.stringify(id)).join(", ")}`;
  return new StorageError(
    "invalid-argument",
    `compaction of graph "${graphName}": cannot forget ${unknown.map((id) => JSON.stringify(id)).join(", ")}: the record of stores sharing its WAL ${named}; nothing was changed`,
    { graphName, unknownStores: [...unknown], knownStores: [...known] },
  );
}

/** True for RestoreError `baseline-missing` because nothing is stored under the graph's name. */
function isAbsentBaseline(err: unknown): boolean {
  const e = err as { code?: unknown; details?: { problem?: unknown } } | null;
  return e?.code === "baseline-missing" && e.details?.problem === "missing";
}

/**
 * Compaction of a graph with no baseline in this store whose WAL other stores' baselines restore from
 * (`floor`: the lowest of them, asked once the frames are listed): deletes its frames at or below `keepAbove` but the `keepFrames` most recent of
 * those, folding nothing. No restore replays a frame at or below the baseline it starts from. A graph with no frame
 * here either is not stored here at all (a misspelt name): `absent`, the baseline-missing error, is thrown.
 */
async function deleteCoveredFrames(
  ctx: CompactionContext,
  graphName: string,
  floor: () => Promise<number>,
  keepFrames: number,
  absent: unknown,
): Promise<CompactionResult> {
  const source = backendSource(ctx.backend);
  let keys: FrameKey[];
  let sizes: ReadonlyArray<number | undefined>;
  try {
    keys = await listFrameKeys(source, graphName);
    sizes = source.frameSizes !== undefined ? await source.frameSizes(keys.map((k) => k.key)) : [];
  } catch (err) {
    throw asStorageError(err, `compaction of graph "${graphName}": listing its WAL failed`, { graphName });
  }
  if (keys.length === 0) throw absent;
  let keepAbove: number;
  try {
    keepAbove = await floor(); // once the frames are listed (compactGraph's `afterListing`)
  } catch (err) {
    throw asStorageError(err, `compaction of graph "${graphName}": reading the record of stores sharing its WAL failed`, { graphName });
  }
  const covered = keys.filter((k) => k.seq <= keepAbove);
  const doomed = covered.slice(0, covered.length - Math.min(keepFrames, covered.length));
  const deletions: BatchOp[] = doomed.map((k) => ({ op: "delete", key: k.key }));
  const chunk = ctx.exclusive ? DELETE_CHUNK : Math.max(1, deletions.length);
  let atomic = deletions.length <= chunk;
  for (let at = 0; at < deletions.length; at += chunk) {
    const step = deletions.slice(at, at + chunk);
    try {
      if (at > 0) await nextTurn();
      const done = await inOrder(ctx, () => commit(ctx.backend, step));
      atomic &&= done === true;
    } catch (err) {
      throw asStorageError(err, `compaction of graph "${graphName}": deleting frames below the shared WAL's floor failed`, {
        graphName,
      });
    }
  }
  const bytesBefore = sizes.reduce<number>((n, b) => n + (b ?? 0), 0);
  const deletedBytes = sizes.slice(0, doomed.length).reduce<number>((n, b) => n + (b ?? 0), 0);
  return {
    graphName,
    baselineSeq: 0,
    previousBaselineSeq: 0,
    foldedFrames: 0,
    deletedFrames: doomed.length,
    keptFrames: covered.length - doomed.length,
    skippedTornFrames: 0,
    tornFrameSeqs: [],
    baselineBytes: 0,
    bytesBefore,
    bytesAfter: bytesBefore - deletedBytes,
    atomic,
  };
}

/** A fold in the store's actor yields between its steps when the baseline is this large (~10,000 nodes). */
const YIELD_ABOVE_BYTES = 1 << 20;
/** Frames deleted per mailbox step by a fold in the store's actor (~30 ms on SQLite). */
const DELETE_CHUNK = 8192;
/** Conditional commits tried (each after reading the baseline again) before a fold gives up with store-busy. */
const COMMIT_ATTEMPTS = 3;

/** Name under which the worker entry registers compactGraphJob (workers/jobs.ts). */
export const COMPACT_GRAPH_JOB = "compact-graph";

/** Options of a compaction in the store's actor (compactGraphInEngine): functions do not cross threads. */
export type EngineCompactGraphOptions = Omit<CompactGraphOptions, "graphName" | "onTornWrite">;

/**
 * Compacts `graphName` of `store` in the store's actor on `engine` (the `compact-graph` job): it starts in order
 * with the store's other work, after flushing every tier of the store, reads and folds beside it, and commits in
 * order (docs/design.md §3.10). Rejects as compactGraph throws; a misspelt
 * option is a type error here and a TypeError in the job. The promise is engine.runJob's (marked handled,
 * failures reach the engine's onError).
 */
export function compactGraphInEngine(
  engine: Pick<StorageEngine, "runJob">,
  store: StoreSpec,
  graphName: string,
  opts: EngineCompactGraphOptions = {},
): Promise<CompactionResult> {
  // Pairs of a live attach in this process sharing the store's WAL (engine tiers of it): their floor goes with the job.
  const isStore = specMatcher(store);
  // From now on, groups registering in this thread on that store that attach a store the job forgets are told to it
  // (its thread sees none of them). What such groups need of the WAL goes with this thread's floors (below).
  const forget = Array.isArray(opts.forgetStores) ? opts.forgetStores.filter((id): id is string => typeof id === "string") : [];
  const watch =
    isStore === undefined || forget.length === 0 || forget.length !== (opts.forgetStores?.length ?? 0) ? undefined : watchSharedWalJob(graphName, isStore, forget);
  try {
    // Checked here, where the handles live (the job's thread has none); the job checks the option's shape.
    if (isStore !== undefined && Array.isArray(opts.forgetStores)) refuseAttached(graphName, opts.forgetStores, isStore);
  } catch (err) {
    watch?.end();
    const refused = Promise.reject(err);
    refused.catch(() => {}); // handled, as the job's promise below
    return refused;
  }
  const job = (isStore === undefined ? Promise.resolve(undefined) : sharedWalFloor(graphName, isStore)).then((floor) => {
    const keepAboveSeq = Math.min(floor ?? Number.POSITIVE_INFINITY, opts.keepAboveSeq ?? Number.POSITIVE_INFINITY);
    const args = {
      ...opts,
      graphName,
      ...(keepAboveSeq !== Number.POSITIVE_INFINITY ? { keepAboveSeq } : {}),
      ...(watch !== undefined ? { [JOB_WATCH_ARG]: watch.cell } : {}),
      // Shared, not copied: the floors of this thread's groups pairing a memory store, live as they change.
      [JOB_FLOORS_ARG]: ownSharedWalFloors(),
    };
    return engine.runJob(store, COMPACT_GRAPH_JOB, args) as Promise<CompactionResult>;
  });
  if (watch !== undefined) void job.then(watch.end, watch.end);
  job.catch(() => {}); // handled, as runJob's own promise: callers that await still see the failure
  return job;
}

/**
 * Whether a tier's store is the one `spec` opens: a file's real path; PostgreSQL's store key; a memory store's key
 * (in any engine: a match too many only keeps frames). Undefined for a spec the engine refuses (runJob says why).
 */
function specMatcher(spec: StoreSpec): ((store: TierStore) => boolean) | undefined {
  try {
    const id = specStoreId(spec);
    if (id !== undefined) return (s) => s.id === id;
    if (spec.kind === "postgres") {
      const key = postgresStoreKey({ ...spec, readOnly: false });
      return (s) => s.id === key;
    }
    if (spec.kind === "memory" && typeof spec.name === "string") return (s) => s.engineKey === `memory:${spec.name}`;
  } catch {
    // a bad spec
  }
  return undefined;
}

/** The `compact-graph` actor job (registered in workers/jobs.ts): `args` arrive structured-cloned. */
export const compactGraphJob: ActorJob = Object.assign((ctx: ActorJobContext, args: unknown): Promise<unknown> => {
  if (typeof args !== "object" || args === null) {
    return Promise.reject(new TypeError("compact-graph job: args must be an object with graphName"));
  }
  // Checked by compactGraph like inline options: an unknown key (a `keep` typo) is refused, not dropped.
  const { [JOB_WATCH_ARG]: cell, [JOB_FLOORS_ARG]: floors, ...opts } = args as CompactGraphOptions & {
    [JOB_WATCH_ARG]?: unknown;
    [JOB_FLOORS_ARG]?: unknown;
  };
  // Kept by this thread from now on, as a watcher config's: this job and every later fold here read them.
  adoptSharedWalFloors(floors);
  const forget = Array.isArray(opts.forgetStores) ? opts.forgetStores : [];
  return compactGraphWatched(ctx, opts, cell === undefined ? undefined : readSharedWalJobWatch(cell, forget));
}, { leavesState: false }); // what a fold did is in the store: a store it ran on may shut down once idle (task 223)

/**
 * The job's arg carrying compactGraphInEngine's watch of the asking thread's groups (`watchSharedWalJob`: a
 * SharedArrayBuffer, shared across the threads, not copied). Not an option of compactGraph.
 */
const JOB_WATCH_ARG = "sharedWalWatch";

/** The job's arg carrying the asking thread's floors (shared-wal-floors.ts). Not an option of compactGraph. */
const JOB_FLOORS_ARG = "sharedWalFloors";

interface StoredFrame {
  key: string;
  seq: number;
  bytes: number;
}

const OPTION_NAMES: ReadonlySet<string> = new Set(["graphName", "keepFrames", "keepAboveSeq", "forgetStores", "forceForget", "onTornWrite"] satisfies Array<
  keyof CompactGraphOptions
>);

function checkOptions(opts: CompactGraphOptions): Required<Omit<CompactGraphOptions, "onTornWrite">> & {
  onTornWrite: TornWriteHandler | undefined;
} {
  if (typeof opts !== "object" || opts === null) throw new TypeError("compactGraph: opts must be an object");
  const unknown = Object.keys(opts).filter((k) => !OPTION_NAMES.has(k));
  if (unknown.length > 0) {
    throw new TypeError(`compactGraph: unknown option ${unknown.join(", ")} (options: ${[...OPTION_NAMES].join(", ")})`);
  }
  const { graphName, keepFrames = 0, keepAboveSeq = Number.POSITIVE_INFINITY, forgetStores = [], forceForget = false, onTornWrite } = opts;
  if (typeof graphName !== "string" || graphName.length === 0) {
    throw new TypeError(`compactGraph: opts.graphName must be a non-empty string, got ${typeof graphName}`);
  }
  // A name shaped like another graph's frame key would fold that graph's frame as its baseline and delete records.
  assertGraphName(graphName, "compactGraph");
  if (keepFrames !== Number.POSITIVE_INFINITY && !(Number.isSafeInteger(keepFrames) && keepFrames >= 0)) {
    throw new RangeError(`compactGraph: opts.keepFrames must be an integer >= 0 or Infinity, got ${String(keepFrames)}`);
  }
  if (keepAboveSeq !== Number.POSITIVE_INFINITY && !(Number.isSafeInteger(keepAboveSeq) && keepAboveSeq >= 0)) {
    throw new RangeError(`compactGraph: opts.keepAboveSeq must be an integer >= 0 or Infinity, got ${String(keepAboveSeq)}`);
  }
  if (!Array.isArray(forgetStores) || !forgetStores.every((id) => typeof id === "string" && id.length > 0)) {
    throw new TypeError("compactGraph: opts.forgetStores must be an array of store ids (non-empty strings)");
  }
  if (typeof forceForget !== "boolean") throw new TypeError("compactGraph: opts.forceForget must be a boolean");
  if (onTornWrite !== undefined && typeof onTornWrite !== "function") {
    throw new TypeError("compactGraph: opts.onTornWrite must be a function");
  }
  return { graphName, keepFrames, keepAboveSeq, forgetStores, forceForget, onTornWrite };
}

/**
 * The seq of the baseline stored meanwhile, undefined when none is stored or its bytes do not decode. A record that
 * decodes but is not a usable baseline of this graph (another graph's, a spec projection, a newer format, a
 * malformed snapshot behind a well-formed head) throws restore's error for it: keeping it and deleting the folded
 * frames would leave the graph with no baseline a reader accepts, and nothing is changed.
 */
function baselineSeqOf(bytes: Uint8Array | undefined, graphName: string): number | undefined {
  if (bytes === undefined) return undefined;
  let value: unknown;
  try {
    value = jsonCodec.decode(bytes);
  } catch {
    return undefined;
  }
  const check = checkBaseline(value, graphName);
  if (!check.ok) throw baselineError(graphName, check);
  return check.record.seq;
}

/**
 * A fold's baseline at `seq` covers a held baseline of the graph at a seq up to its own (an older one, whose retry
 * would land over it after the frames between are deleted), not one above it: a held attach baseline has a seq of
 * its own and state no frame holds, and its retry must land (review r178 of a999150). Other keys: covered.
 */
function coversUpTo(graphName: string, seq: number): Supersedes {
  return (key, held) => {
    if (key !== graphName || !isRecord(held)) return true;
    const heldSeq = held["seq"];
    return typeof heldSeq !== "number" || heldSeq <= seq;
  };
}

function isThenable<T>(v: T | PromiseLike<T>): v is PromiseLike<T> {
  return typeof (v as { then?: unknown } | undefined)?.then === "function";
}

/**
 * One atomic batch when the backend offers it; otherwise the baseline first (durable), then the deletions. Resolves to
 * whether it was atomic, or undefined when `expected` no longer held (nothing was changed). The first step (the
 * batch, or the baseline alone, or the deletions when there is no baseline) is applied only while `expected` holds
 * where the backend declares supports.conditionalBatch; what follows a baseline is the deletion of frames it covers.
 * `tellsLane` false: held put-back values of the keys stay held (a forget's rewrite of the shared-WAL record).
 */
async function commit(
  backend: StorageBackend,
  ops: readonly BatchOp[],
  expected?: ExpectedValue,
  supersedes?: Supersedes,
  tellsLane = true,
): Promise<boolean | undefined> {
  if (ops.length === 0) return true;
  const conditional = expected !== undefined && backend.supports.conditionalBatch === true ? backend.writeBatchIf?.bind(backend) : undefined;
  const writeIf = conditional && ((step: readonly BatchOp[]) => conditional(expected!, step));
  // What landed is told to the tiers of the backend holding older put-back values of those keys (write-lane.ts): a
  // snapshot tier's failed baseline, retried after this fold's newer one and the deletion of the frames between,
  // would land over it and lose them (docs/design.md §3.30).
  const lane = writeLaneOf(backend);
  const landed = (step: readonly BatchOp[]): void => {
    if (tellsLane) lane.landedNow(step.map((op) => op.key), supersedes);
  };
  if (backend.writeBatch && backend.supports.atomicBatch) {
    if (writeIf) {
      if (!(await writeIf(ops))) return undefined;
    } else await backend.writeBatch(ops);
    landed(ops);
    return true;
  }
  const [first, ...rest] = ops;
  const put = first?.op === "put" ? first : undefined;
  const deletes = put ? rest : ops;
  if (writeIf) {
    if (!(await writeIf(put ? [put] : deletes))) return undefined;
    landed(put ? [put] : deletes);
    if (!put) return false;
  } else if (put) {
    await backend.write(put.key, put.value);
    landed([put]);
  }
  if (deletes.length === 0) return false;
  if (backend.writeBatch) await backend.writeBatch(deletes);
  else for (const op of deletes) await backend.delete!(op.key);
  landed(deletes);
  return false;
}

/**
 * Runs a commit step in order with the store's other writes: the actor's `exclusive` (every tier's flushes held),
 * else the backend's write lane (write-lane.ts), so an inline compaction lands after the writes of inline tiers over
 * the same backend object already under way and tells their put-back values (`commit`).
 */
function inOrder<T>(ctx: CompactionContext, step: () => Promise<T>): Promise<T> {
  return ctx.exclusive ? ctx.exclusive(step) : writeLaneOf(ctx.backend).exclusive(step);
}
