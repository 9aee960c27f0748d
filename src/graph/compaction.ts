/**
 * Background compaction of one graph's WAL (docs/design.md §3.10, issue 4): fold the frames above the stored baseline
 * into a new baseline with the pure `foldWal` (no live graph), commit it, then delete the frames it covers.
 * A pure function of the backend's contents, run by the store actor that owns the backend (the
 * `compact-graph` job) or inline on a store nobody else is writing (tools, the CLI).
 * Layer 4 (graph).
 */
import { jsonCodec } from "../codec/json.js";
import type { BatchOp, StorageBackend } from "../backend/types.js";
import { RestoreError, StorageError, asStorageError } from "../errors.js";
import type { ActorJob } from "../engine/actor.js";
import { walFrameCodec } from "../wal/codec.js";
import { graphWalPrefix, parseWalFrameKey } from "../wal/keys.js";
import { screenFrame, tornWritePolicy, type CollectedFrame } from "./apply.js";
import { WalFolder } from "./fold.js";
import type { GraphCheckpointRecord, TornWriteHandler } from "./storage-types.js";
import { SNAPSHOT_VERSION } from "./types.js";

export interface CompactionContext {
  readonly backend: StorageBackend;
  /**
   * Makes every buffered write of the store durable first, so no older buffered baseline or frame can land
   * after the new baseline (the actor passes its own; inline callers on a closed store pass none).
   */
  flushAll?(): Promise<void>;
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
   * Overrides the torn-write policy (default: a bad tail frame is skipped and left in place, a bad frame
   * mid-stream aborts with nothing changed). Inline use only: functions do not cross to the actor.
   */
  onTornWrite?: TornWriteHandler;
}

export interface CompactionResult {
  graphName: string;
  /** Seq of the stored baseline after compaction (unchanged when nothing was folded). */
  baselineSeq: number;
  previousBaselineSeq: number;
  /** Frames folded into the new baseline; 0 means no baseline was written. */
  foldedFrames: number;
  /** Frames deleted (all at or below `baselineSeq`). */
  deletedFrames: number;
  /** Frames at or below `baselineSeq` still stored (retention). */
  keptFrames: number;
  /**
   * Torn frames skipped by the fold. A skipped tail frame lies above `baselineSeq` and stays stored (restore
   * reports it too); one skipped mid-stream by an `onTornWrite` override is covered by the baseline and deleted.
   */
  skippedTornFrames: number;
  tornFrameSeqs: number[];
  /** Bytes of the baseline plus every WAL frame of the graph, before and after. */
  bytesBefore: number;
  bytesAfter: number;
  /** The baseline and the deletions were committed in one atomic backend batch (true when nothing was written). */
  atomic: boolean;
}

/**
 * Compacts `opts.graphName` on `ctx.backend`. Throws RestoreError `baseline-missing` when there is no value
 * baseline to fold into, RestoreError `torn-write-mid-stream` for a corrupt frame mid-stream (before writing
 * anything), StorageError `backend-no-list-support` for a backend that cannot list, StorageError `backend-error`
 * when a read or the commit fails (an atomic commit then changed nothing; otherwise at worst the new baseline is
 * stored and some covered frames are not yet deleted, which restore ignores), TypeError/RangeError for bad options.
 */
export async function compactGraph(ctx: CompactionContext, opts: CompactGraphOptions): Promise<CompactionResult> {
  const { graphName, keepFrames, onTornWrite } = checkOptions(opts);
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
  await ctx.flushAll?.();
  const io = <T>(what: string, run: () => T | Promise<T>): Promise<T> =>
    Promise.resolve()
      .then(run)
      .catch((err: unknown) => {
        throw asStorageError(err, `compaction of graph "${graphName}": ${what} failed`, { graphName });
      });

  const baselineBytes = await io("reading the baseline", () => backend.read(graphName));
  const baseline = decodeBaseline(graphName, baselineBytes);
  const prefix = graphWalPrefix(graphName);
  const stored: StoredFrame[] = [];
  for (const key of await io("listing the WAL", () => backend.list!(`${prefix}/`))) {
    const seq = parseWalFrameKey(prefix, key);
    if (seq !== undefined) stored.push({ key, seq, bytes: 0 });
  }
  stored.sort((a, b) => a.seq - b.seq); // list order is key order, which is seq order; made explicit

  const tailSeq = stored.length > 0 && stored[stored.length - 1]!.seq > baseline.seq ? stored[stored.length - 1]!.seq : -1;
  // Same torn-write screen as restore; recording which frames the (possibly overridden) policy skipped.
  const torn: number[] = [];
  const policy: TornWriteHandler = (info) => {
    const decided = tornWritePolicy(info, onTornWrite);
    if (decided === "skip") torn.push(info.frame_seq);
    return decided;
  };
  // Streamed: one frame is read, screened and folded at a time, so memory is the graph's, not the backlog's.
  // Nothing is written before the last frame was read: a mid-stream corruption throws with the store as it was.
  let folder: WalFolder | undefined;
  let bytesBefore = baselineBytes?.byteLength ?? 0;
  for (const f of stored) {
    const bytes = await io(`reading WAL frame ${f.seq}`, () => backend.read(f.key));
    f.bytes = bytes?.byteLength ?? 0;
    bytesBefore += f.bytes;
    if (f.seq <= baseline.seq) continue;
    const frame = screenFrame(collect(f, bytes), tailSeq, true, policy);
    if (frame !== undefined) (folder ??= new WalFolder(baseline)).add(frame);
  }
  const fold = folder?.result();
  const newSeq = fold && fold.seq > baseline.seq ? fold.seq : baseline.seq;

  const covered = stored.filter((f) => f.seq <= newSeq);
  const keep = Math.min(keepFrames, covered.length);
  const doomed = covered.slice(0, covered.length - keep);
  const ops: BatchOp[] = doomed.map((f) => ({ op: "delete", key: f.key }));
  let newBaselineBytes = baselineBytes?.byteLength ?? 0;
  if (fold && newSeq > baseline.seq) {
    const record: GraphCheckpointRecord = {
      name: graphName,
      mode: "full",
      snapshot: fold.snapshot,
      seq: newSeq,
      timestamp_ns: Date.now() * 1_000_000,
      format_version: SNAPSHOT_VERSION,
    };
    const bytes = jsonCodec.encode(record);
    newBaselineBytes = bytes.byteLength;
    ops.unshift({ op: "put", key: graphName, value: bytes }); // baseline first: a non-atomic batch keeps order
  }
  const atomic = await io("committing the new baseline", () => commit(backend, ops));

  const deletedBytes = doomed.reduce((n, f) => n + f.bytes, 0);
  return {
    graphName,
    baselineSeq: newSeq,
    previousBaselineSeq: baseline.seq,
    foldedFrames: fold && newSeq > baseline.seq ? fold.appliedFrames + fold.ignoredFrames : 0,
    deletedFrames: doomed.length,
    keptFrames: keep,
    skippedTornFrames: torn.length,
    tornFrameSeqs: torn,
    bytesBefore,
    bytesAfter: bytesBefore - (baselineBytes?.byteLength ?? 0) + newBaselineBytes - deletedBytes,
    atomic,
  };
}

/** The `compact-graph` actor job (registered in workers/jobs.ts): `args` arrive structured-cloned. */
export const compactGraphJob: ActorJob = (ctx, args) => {
  if (typeof args !== "object" || args === null) {
    return Promise.reject(new TypeError("compact-graph job: args must be an object with graphName"));
  }
  const { graphName, keepFrames } = args as { graphName?: unknown; keepFrames?: unknown };
  return compactGraph(ctx, { graphName, keepFrames } as CompactGraphOptions);
};

interface StoredFrame {
  key: string;
  seq: number;
  bytes: number;
}

function collect(f: StoredFrame, bytes: Uint8Array | undefined): CollectedFrame {
  if (bytes === undefined) return { key: f.key, seq: f.seq, problem: { reason: "decode-failed", detail: "listed but missing" } };
  try {
    return { key: f.key, seq: f.seq, frame: walFrameCodec.decode(bytes) };
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    return { key: f.key, seq: f.seq, problem: { reason: "decode-failed", detail } };
  }
}

function checkOptions(opts: CompactGraphOptions): Required<Omit<CompactGraphOptions, "onTornWrite">> & {
  onTornWrite: TornWriteHandler | undefined;
} {
  if (typeof opts !== "object" || opts === null) throw new TypeError("compactGraph: opts must be an object");
  const { graphName, keepFrames = 0, onTornWrite } = opts;
  if (typeof graphName !== "string" || graphName.length === 0) {
    throw new TypeError(`compactGraph: opts.graphName must be a non-empty string, got ${typeof graphName}`);
  }
  if (keepFrames !== Number.POSITIVE_INFINITY && !(Number.isSafeInteger(keepFrames) && keepFrames >= 0)) {
    throw new RangeError(`compactGraph: opts.keepFrames must be an integer >= 0 or Infinity, got ${String(keepFrames)}`);
  }
  if (onTornWrite !== undefined && typeof onTornWrite !== "function") {
    throw new TypeError("compactGraph: opts.onTornWrite must be a function");
  }
  return { graphName, keepFrames, onTornWrite };
}

/** A stored value baseline, or RestoreError `baseline-missing` (frames cannot be folded into nothing). */
function decodeBaseline(graphName: string, bytes: Uint8Array | undefined): GraphCheckpointRecord {
  const missing = (why: string, cause?: unknown): RestoreError =>
    new RestoreError("baseline-missing", `compaction of graph "${graphName}": ${why}`, { graphName }, cause);
  if (bytes === undefined || bytes.byteLength === 0) throw missing("no baseline is stored under the graph name");
  let value: unknown;
  try {
    value = jsonCodec.decode(bytes);
  } catch (err) {
    throw missing("the stored baseline cannot be decoded", err);
  }
  const r = value as Partial<GraphCheckpointRecord> | null;
  if (typeof r !== "object" || r === null || Array.isArray(r) || r.mode !== "full") {
    throw missing('the stored baseline is not a mode "full" record');
  }
  if (r.lifecycle === "spec") throw missing("the stored baseline is a spec projection, not a value baseline");
  if (!Number.isSafeInteger(r.seq) || (r.seq as number) < 0) throw missing("the stored baseline has no valid seq");
  if (typeof r.snapshot !== "object" || r.snapshot === null) throw missing("the stored baseline has no snapshot");
  return r as GraphCheckpointRecord;
}

/** One atomic batch when the backend offers it; otherwise the baseline first (durable), then the deletions. */
async function commit(backend: StorageBackend, ops: readonly BatchOp[]): Promise<boolean> {
  if (ops.length === 0) return true;
  if (backend.writeBatch && backend.supports.atomicBatch) {
    await backend.writeBatch(ops);
    return true;
  }
  const [first, ...rest] = ops;
  const deletes = first?.op === "put" ? rest : ops;
  if (first?.op === "put") await backend.write(first.key, first.value);
  if (deletes.length === 0) return false;
  if (backend.writeBatch) await backend.writeBatch(deletes);
  else for (const op of deletes) await backend.delete!(op.key);
  return false;
}
