/**
 * restoreSnapshot (docs/protocol.md §7.6.2 with docs/design.md §3.9): baseline → collect the frames above it → verify → one
 * batch for the baseline, then one per lifecycle in REPLAY_ORDER. All I/O and verification happen before the
 * graph is touched, so a missing baseline or a torn frame mid-stream leaves the graph as it was.
 * Layer 4 (graph).
 */
import { RestoreError, StorageError } from "../errors.js";
import type { KvStorageTier, SnapshotStorageTier } from "../tier/types.js";
import { isLifecycle, parseWalFrame, REPLAY_ORDER, type Lifecycle, type WALFrame } from "../wal/frame.js";
import { graphWalPrefix, parseWalFrameKey } from "../wal/keys.js";
import {
  applyBaselineToGraph,
  applyChangeToGraph,
  graphChangeOf,
  isSlice,
  lastSpecSeqByPath,
  nodePathOf,
  screenFrames,
  type CollectedFrame,
} from "./apply.js";
import type { GraphCheckpointRecord, RestoreOptions, RestorePhase, RestoreResult } from "./storage-types.js";
import { SNAPSHOT_VERSION, type Graph, type GraphPersistSnapshot } from "./types.js";

/** Frames loaded concurrently (engine proxies coalesce the loads of one tick into one message). */
const LOAD_CHUNK = 512;

/**
 * Restores `graph` (built by the same code as the one persisted) to the stored state: the baseline, then every
 * frame above it up to `targetSeq`. Errors: RestoreError `wal-tier-required`, `baseline-missing`,
 * `codec-mismatch` (unknown snapshot format), `phase-failed` (empty lifecycle filter, target below the baseline,
 * WAL listing failed, a phase threw: its batch is rolled back, earlier phases stay), `torn-write-mid-stream`;
 * TypeError / RangeError for bad arguments.
 */
export async function restoreSnapshot(graph: Graph, opts: RestoreOptions): Promise<RestoreResult> {
  const { snapshot, wal, lifecycles, targetSeq, onTornWrite } = checkOptions(graph, opts);
  const record = await loadBaseline(snapshot, graph.name);
  if (targetSeq < record.seq) {
    throw new RestoreError(
      "phase-failed",
      `targetSeq ${targetSeq} is below the stored baseline's seq ${record.seq}: that point in time is no longer stored`,
      { targetSeq, baselineSeq: record.seq },
    );
  }
  const { entries, tailSeq } = await collect(wal, graph.name, record.seq, targetSeq);
  const { frames, skipped } = screenFrames(entries, tailSeq, true, onTornWrite);

  try {
    graph.batch(() => applyBaselineToGraph(graph, record.snapshot));
  } catch (err) {
    throw new RestoreError("phase-failed", `baseline (seq ${record.seq}) could not be applied: ${messageOf(err)}`, {
      phase: "baseline",
      lifecycle: "spec",
      frame_seq: record.seq,
      cause: messageOf(err),
    }, err);
  }

  const chosen = frames.filter((f) => lifecycles.has(f.lifecycle));
  const lastSpec = lastSpecSeqByPath(chosen);
  const phases: RestorePhase[] = [];
  let applied = 0;
  let replayed = 0;
  let finalSeq = record.seq;
  for (const lifecycle of REPLAY_ORDER) {
    const group = chosen.filter((f) => f.lifecycle === lifecycle);
    if (group.length > 0) {
      applied += runPhase(graph, lifecycle, group, lastSpec);
      replayed += group.length;
      finalSeq = Math.max(finalSeq, (group[group.length - 1] as WALFrame).frame_seq);
    }
    phases.push({ lifecycle, frames: group.length });
  }
  return {
    replayedFrames: replayed,
    skippedFrames: skipped,
    finalSeq,
    phases,
    appliedFrames: applied,
    ignoredFrames: replayed - applied,
  };
}

/** One lifecycle's frames in one batch; returns how many changed the graph. A throw rolls the batch back. */
function runPhase(
  graph: Graph,
  lifecycle: Lifecycle,
  frames: readonly WALFrame[],
  lastSpec: ReadonlyMap<string, number>,
): number {
  let applied = 0;
  let at = 0;
  try {
    graph.batch(() => {
      for (const f of frames) {
        at = f.frame_seq;
        const change = graphChangeOf(f);
        if (change === undefined) continue;
        if (lifecycle === "data") {
          const path = nodePathOf(change);
          // Later frame wins: a spec frame after this data frame already carries the node's state.
          if (path !== undefined && (lastSpec.get(path) ?? -1) > f.frame_seq) continue;
        }
        if (applyChangeToGraph(graph, change)) applied++;
      }
    });
  } catch (err) {
    throw new RestoreError(
      "phase-failed",
      `lifecycle "${lifecycle}" replay phase failed at frame_seq=${at}: ${messageOf(err)}`,
      { lifecycle, frame_seq: at, cause: messageOf(err) },
      err,
    );
  }
  return applied;
}

/** The stored value baseline for `name`, validated (RestoreError `baseline-missing` / `codec-mismatch`). */
async function loadBaseline(
  tier: SnapshotStorageTier<GraphCheckpointRecord>,
  name: string,
): Promise<GraphCheckpointRecord & { snapshot: GraphPersistSnapshot }> {
  const missing = (why: string, cause?: unknown): RestoreError =>
    new RestoreError("baseline-missing", `no usable baseline for graph "${name}" in tier "${tier.name}": ${why}`, {
      graph: name,
      tier: tier.name,
      ...(cause === undefined ? {} : { cause: messageOf(cause) }),
    }, cause);
  let value: unknown;
  try {
    value = await tier.load(name);
  } catch (err) {
    throw missing("loading it failed", err);
  }
  if (value === undefined || value === null) throw missing("nothing is stored under the graph name");
  if (typeof value !== "object" || Array.isArray(value)) throw missing("the stored value is not a checkpoint record");
  const r = value as Partial<GraphCheckpointRecord>;
  if (r.mode !== "full") throw missing(`mode is ${JSON.stringify(r.mode)}, not "full"`);
  if (r.lifecycle === "spec") throw missing("it is a spec projection, not a value baseline");
  if (r.name !== name) throw missing(`it belongs to graph ${JSON.stringify(r.name)}`);
  if (!Number.isSafeInteger(r.seq) || (r.seq as number) < 0) throw missing("its seq is not a non-negative integer");
  const s = r.snapshot as Partial<GraphPersistSnapshot> | undefined;
  if (!isRecord(s) || !isRecord(s.nodes) || !Array.isArray(s.subgraphs)) throw missing("its snapshot is malformed");
  if (r.format_version !== SNAPSHOT_VERSION || s.version !== SNAPSHOT_VERSION) {
    throw new RestoreError(
      "codec-mismatch",
      `baseline of graph "${name}" has format_version ${String(r.format_version)} / snapshot version ` +
        `${String(s.version)}; this build reads ${SNAPSHOT_VERSION}`,
      { graph: name, expected: SNAPSHOT_VERSION, found: r.format_version ?? null },
    );
  }
  if (!s.subgraphs.every((m) => typeof m === "string") || !Object.values(s.nodes).every(isSlice)) {
    throw missing("its snapshot is malformed");
  }
  return r as GraphCheckpointRecord;
}

/**
 * Lists the graph's WAL (`<name>/wal/` + exactly 20 digits: no sibling graph's frames) and loads the frames with
 * `baselineSeq < seq <= targetSeq`. `tailSeq` is the highest seq above the baseline before the target filter, so
 * a bad frame just below a `targetSeq` is mid-stream, not a tail (docs/graph-model.md §6 item 20).
 */
async function collect(
  wal: KvStorageTier<WALFrame>,
  name: string,
  baselineSeq: number,
  targetSeq: number,
): Promise<{ entries: CollectedFrame[]; tailSeq: number }> {
  const prefix = graphWalPrefix(name);
  let keys: string[];
  try {
    keys = await wal.list(`${prefix}/`);
  } catch (err) {
    const noList = err instanceof StorageError && err.code === "backend-no-list-support";
    throw new RestoreError(
      noList ? "wal-tier-required" : "phase-failed",
      `WAL tier "${wal.name}" could not list the frames of graph "${name}": ${messageOf(err)}`,
      { tier: wal.name, cause: messageOf(err) },
      err,
    );
  }
  const above: Array<{ key: string; seq: number }> = [];
  for (const key of keys) {
    const seq = parseWalFrameKey(prefix, key);
    if (seq !== undefined && seq > baselineSeq) above.push({ key, seq });
  }
  above.sort((a, b) => a.seq - b.seq);
  const tailSeq = above.length > 0 ? (above[above.length - 1] as { seq: number }).seq : -1;
  const wanted = above.filter((e) => e.seq <= targetSeq);
  const entries: CollectedFrame[] = [];
  for (let i = 0; i < wanted.length; i += LOAD_CHUNK) {
    entries.push(...(await Promise.all(wanted.slice(i, i + LOAD_CHUNK).map((e) => loadFrame(wal, e.key, e.seq)))));
  }
  return { entries, tailSeq };
}

/** Loads and checks one frame; an unreadable one is reported as a problem (a torn-write candidate), not thrown. */
async function loadFrame(wal: KvStorageTier<WALFrame>, key: string, seq: number): Promise<CollectedFrame> {
  let value: unknown;
  try {
    value = await wal.load(key);
  } catch (err) {
    return { key, seq, problem: { reason: "decode-failed", detail: messageOf(err) } };
  }
  if (value === undefined) {
    return { key, seq, problem: { reason: "decode-failed", detail: "the frame vanished while being read" } };
  }
  try {
    // Tiers with a plain JSON codec hand back the raw object; the frame codec has already parsed it (idempotent).
    return { key, seq, frame: parseWalFrame(value) };
  } catch (err) {
    return { key, seq, problem: { reason: "decode-failed", detail: messageOf(err) } };
  }
}

function checkOptions(
  graph: Graph,
  opts: RestoreOptions,
): {
  snapshot: SnapshotStorageTier<GraphCheckpointRecord>;
  wal: KvStorageTier<WALFrame>;
  lifecycles: ReadonlySet<Lifecycle>;
  targetSeq: number;
  onTornWrite: RestoreOptions["onTornWrite"];
} {
  const g = graph as Partial<Graph> | null;
  if (typeof g !== "object" || g === null || typeof g.name !== "string" || typeof g.batch !== "function") {
    throw new TypeError("restoreSnapshot: graph must implement Graph");
  }
  if (typeof opts !== "object" || opts === null) throw new TypeError("restoreSnapshot: opts must be an object");
  const { snapshot, wal, lifecycle, targetSeq, onTornWrite } = opts;
  if (typeof snapshot?.load !== "function") {
    throw new TypeError("restoreSnapshot: opts.snapshot must be a snapshot tier (load)");
  }
  const w = wal as Partial<KvStorageTier<WALFrame>> | undefined | null;
  if (w === undefined || w === null) {
    throw new RestoreError("wal-tier-required", "restoreSnapshot: opts.wal (the WAL kv tier) is required", {});
  }
  if (typeof w.list !== "function" || typeof w.load !== "function") {
    throw new RestoreError("wal-tier-required", "restoreSnapshot: opts.wal must be a kv tier with list and load", {});
  }
  let lifecycles: ReadonlySet<Lifecycle> = new Set(REPLAY_ORDER);
  if (lifecycle !== undefined) {
    if (!Array.isArray(lifecycle)) throw new TypeError("restoreSnapshot: opts.lifecycle must be an array of lifecycles");
    if (lifecycle.length === 0) {
      throw new RestoreError("phase-failed", "restoreSnapshot: opts.lifecycle is empty; nothing would be replayed", {});
    }
    for (const l of lifecycle) {
      if (!isLifecycle(l)) {
        throw new TypeError(`restoreSnapshot: opts.lifecycle has ${JSON.stringify(l)}; use "spec", "data", "ownership"`);
      }
    }
    lifecycles = new Set(lifecycle);
  }
  const target = targetSeq ?? Number.POSITIVE_INFINITY;
  if (target !== Number.POSITIVE_INFINITY && !(Number.isSafeInteger(target) && target >= 0)) {
    throw new RangeError(`restoreSnapshot: opts.targetSeq must be a non-negative integer, got ${String(targetSeq)}`);
  }
  if (onTornWrite !== undefined && typeof onTornWrite !== "function") {
    throw new TypeError("restoreSnapshot: opts.onTornWrite must be a function");
  }
  return { snapshot, wal: wal as KvStorageTier<WALFrame>, lifecycles, targetSeq: target, onTornWrite };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
