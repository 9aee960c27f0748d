/**
 * restoreSnapshot (docs/protocol.md §7.6.2 with docs/design.md §3.9): the stored graph as the one reader reads it
 * (stored-graph.ts: baseline checks, frames in order without a hole, the torn-write policy, one point in time),
 * then one batch for the baseline and one per lifecycle in REPLAY_ORDER. All I/O and verification happen before
 * the graph is touched, so a missing baseline, a gap or a torn frame mid-stream leaves the graph as it was.
 * Layer 4 (graph).
 */
import { refuseUnknownKeys } from "../base/options.js";
import { RestoreError } from "../errors.js";
import type { KvStorageTier, SnapshotStorageTier } from "../tier/types.js";
import { isLifecycle, REPLAY_ORDER, type Lifecycle, type WALFrame } from "../wal/frame.js";
import {
  applyBaselineToGraph,
  applyChangeToGraph,
  codeBuiltMismatch,
  codeBuiltMismatches,
  codeBuiltDropped,
  graphChangeOf,
  isSlice,
  lastSpecSeqByPath,
  nodePathOf,
  storedCodeBuilt,
  type CodeBuiltMismatch,
} from "./apply.js";
import { WalFolder } from "./fold.js";
import { isInside, parentPath } from "../graph/paths.js";
import type {
  CodeChangesPolicy,
  GraphChange,
  GraphCheckpointRecord,
  NodeSpec,
  RestoreCodeChange,
  RestoreOptions,
  RestorePhase,
  RestoreResult,
} from "./storage-types.js";
import { readStoredGraph, tierSource } from "./stored-graph.js";
import { refuseForgottenPast } from "./shared-wal-record.js";
import type { Graph, GraphPersistSnapshot, NodeKind, SnapshotNodeSlice } from "../graph/types.js";
import { compareCodePoints } from "../base/code-points.js";
import { jsonEqual, setOwn } from "../graph/json-utils.js";
import { handled } from "../base/promises.js";
import { assertGraphName } from "../wal/keys.js";

/**
 * Restores `graph` (built by the same code as the one persisted) to the stored state: the baseline, then every
 * frame above it up to `targetSeq`. Errors: RestoreError `wal-tier-required`, `baseline-missing`,
 * `codec-mismatch` (a baseline format this build does not read), `wal-gap` (a frame missing mid-stream),
 * `torn-write-mid-stream`, `phase-failed` (empty lifecycle filter, target below the baseline, a phase threw: its
 * batch is rolled back, earlier phases stay), `derived-mismatch` (the stored graph holds a derived or effect node
 * the graph lacks or built otherwise: checked before the graph is touched; `codeChanges: "accept"` keeps the code's
 * nodes instead and lists the differences in the result's codeChanges); StorageError `backend-no-list-support`
 * (the WAL cannot be listed),
 * `backend-error`, `store-busy`, `invalid-name` (a graph name shaped like another record's key, docs/design.md
 * §3.27), `corrupt-store` (a frame key holding another record); RestoreError `wal-compacted-past-baseline` (a store
 * forgotten from its shared WAL's record, the frames above its baseline gone: §3.10); TypeError / RangeError for bad arguments.
 */
export function restoreSnapshot(graph: Graph, opts: RestoreOptions): Promise<RestoreResult> {
  return handled(restore(graph, opts)); // ignored by its caller, a failure never crashes the host (base/promises.ts)
}

async function restore(graph: Graph, opts: RestoreOptions): Promise<RestoreResult> {
  const { snapshot, wal, lifecycles, targetSeq, onTornWrite, codeChanges } = checkOptions(graph, opts);
  let frames: WALFrame[] = [];
  let skipped = 0;
  const { baseline: record } = await readStoredGraph(tierSource(snapshot, wal), graph.name, { targetSeq, onTornWrite }, {
    start() {
      frames = [];
      skipped = 0;
    },
    frame: (f) => void frames.push(f),
    skipped: () => void skipped++,
  });
  // A store forgotten from its shared WAL's record may have lost the frames above its baseline (§3.10).
  if (targetSeq > record.seq) await refuseForgottenPast(snapshot, wal, graph.name, record.seq, frames.length + skipped);
  const above = lifecycles.has("spec") ? frames : [];
  if (codeChanges === "refuse") {
    // Replay cannot build a derived or effect node, so each one stored must be the code's as it is (§3.9).
    refuseCodeChanges(graph, record, above);
    applyBaseline(graph, record, above);
    const replay = replayFrames(graph, record.seq, frames, lifecycles);
    return { ...replay, skippedFrames: skipped };
  }
  // A new version of the code: its derived and effect nodes stand, every difference is listed (never silent).
  const changed = codeBuiltMismatches(graph, storedCodeBuilt(record.snapshot, record.seq, above), true).map(
    (m): RestoreCodeChange => ({ path: m.path, frame_seq: m.frameSeq, stored: specOf(m.stored), built: m.built && specOf(m.built) }),
  );
  const dropped = codeBuiltDropped(graph, record.snapshot, above);
  applyBaseline(graph, record, above, "accept");
  const replay = replayFrames(graph, record.seq, frames, lifecycles, "accept");
  // Built after replay: undefined when an unmount of the stored graph took the code's node with its mount.
  const added = [...dropped].map(
    (p): RestoreCodeChange => ({ path: p, frame_seq: undefined, stored: undefined, built: specOf(graph.describeNode(p)) }),
  );
  const kept = keptStateNodes(graph, record.snapshot, above);
  const codeChangesList = [...changed, ...added, ...kept].sort((a, b) => compareCodePoints(a.path, b.path));
  return { ...replay, skippedFrames: skipped, codeChanges: codeChangesList };
}

/**
 * RestoreError `derived-mismatch` (nothing changed) when the stored graph (`record`, then the spec frames `above`)
 * holds a derived or effect node the graph lacks, holds as state, or built with another type, deps or meta.
 * restoreSnapshot and a follower's initial load check this before touching the graph (§3.9).
 */
export function refuseCodeChanges(graph: Graph, record: GraphCheckpointRecord, above: readonly WALFrame[]): void {
  const mismatch = codeBuiltMismatch(graph, storedCodeBuilt(record.snapshot, record.seq, above), true);
  if (mismatch !== undefined) throw mismatchError(graph.name, mismatch);
}

/**
 * State nodes of the restored graph the stored graph lacks (the writer removed them), each with the code-built
 * nodes still depending on it: the baseline's removal skips a node with dependents, so the code's nodes bring it
 * back with its last stored value (§3.9).
 */
function keptStateNodes(graph: Graph, snapshot: GraphPersistSnapshot, frames: readonly WALFrame[]): RestoreCodeChange[] {
  const stored = new Set(Object.keys(snapshot.nodes));
  for (const f of frames) {
    const c = f.lifecycle === "spec" ? graphChangeOf(f) : undefined;
    if (c?.kind === "graph.add" && c.slice !== undefined) stored.add(c.nodeId);
    else if (c?.kind === "graph.remove") stored.delete(c.nodeId);
    else if (c?.kind === "graph.unmount") for (const p of [...stored]) if (isInside(p, c.path)) stored.delete(p);
  }
  return keptFor(graph, stored);
}

/** keptStateNodes for the stored graph's node paths `stored`. */
function keptFor(graph: Graph, stored: ReadonlySet<string> | ReadonlyMap<string, unknown>): RestoreCodeChange[] {
  const dependents = new Map<string, string[]>();
  for (const p of graph.paths()) {
    for (const d of graph.describeNode(p, "shared")?.deps ?? []) dependents.set(d, [...(dependents.get(d) ?? []), p]);
  }
  return graph
    .paths()
    .filter((p) => graph.kindOf(p) === "state" && !stored.has(p))
    .map((p) => ({
      path: p,
      frame_seq: undefined,
      stored: undefined,
      built: specOf(graph.describeNode(p)),
      keptFor: [...(dependents.get(p) ?? [])].sort(compareCodePoints),
    }));
}

/** Every node a stored graph holds (state ones too), each with the seq that stored it: its baseline's or frame's. */
export type StoredNodes = Map<string, { slice: SnapshotNodeSlice; seq: number }>;

/** The nodes of baseline `record`, then those `frames` leave (the rules storedCodeBuilt and keptStateNodes follow). */
export function storedNodesOf(record: GraphCheckpointRecord, frames: readonly WALFrame[]): StoredNodes {
  const out: StoredNodes = new Map();
  for (const [p, slice] of Object.entries(record.snapshot.nodes)) if (isSlice(slice)) out.set(p, { slice, seq: record.seq });
  return advanceStoredNodes(out, frames);
}

/** `stored` (changed in place) as the spec frames of `frames` leave it: an add with a slice, a remove, an unmount. */
export function advanceStoredNodes(stored: StoredNodes, frames: readonly WALFrame[]): StoredNodes {
  for (const f of frames) {
    const c = f.lifecycle === "spec" ? graphChangeOf(f) : undefined;
    if (c?.kind === "graph.add" && c.slice !== undefined) stored.set(c.nodeId, { slice: c.slice, seq: f.frame_seq });
    else if (c?.kind === "graph.remove") stored.delete(c.nodeId);
    else if (c?.kind === "graph.unmount") for (const p of [...stored.keys()]) if (isInside(p, c.path)) stored.delete(p);
  }
  return stored;
}

/** A graph's nodes as its code built them, read before any restore touched it (what restore compares with). */
export interface CodeBuilt {
  kindOf(path: string): NodeKind | undefined;
  describeNode(path: string, mode?: "copy" | "shared"): SnapshotNodeSlice | undefined;
  /** Its derived and effect nodes' paths. */
  readonly builtPaths: readonly string[];
}

export function codeBuiltOf(graph: Graph): CodeBuilt {
  const slices = new Map(graph.paths().map((p) => [p, graph.describeNode(p) as SnapshotNodeSlice] as const));
  return {
    kindOf: (p) => slices.get(p)?.type,
    describeNode: (p, mode) => {
      const s = slices.get(p);
      return s === undefined || mode === "shared" ? s : structuredClone(s);
    },
    builtPaths: [...slices].filter(([, s]) => s.type !== "state").map(([p]) => p),
  };
}

/**
 * What restoreSnapshot with `codeChanges: "accept"` lists (RestoreResult.codeChanges) for the stored graph's nodes
 * `stored`, the code's nodes `code` (before restore) and `graph` as restored: stored derived and effect nodes the
 * code builds otherwise or lacks, the code's ones the stored graph ends without, state nodes kept for the code's.
 */
export function codeChangesOf(code: CodeBuilt, stored: StoredNodes, graph: Graph): RestoreCodeChange[] {
  const built = new Map([...stored].filter(([, n]) => n.slice.type !== "state"));
  const changed = codeBuiltMismatches(code, built, true).map(
    (m): RestoreCodeChange => ({ path: m.path, frame_seq: m.frameSeq, stored: specOf(m.stored), built: m.built && specOf(m.built) }),
  );
  const added = code.builtPaths
    .filter((p) => !stored.has(p))
    .map((p): RestoreCodeChange => ({ path: p, frame_seq: undefined, stored: undefined, built: specOf(graph.describeNode(p)) }));
  return [...changed, ...added, ...keptFor(graph, stored)].sort((a, b) => compareCodePoints(a.path, b.path));
}

/** A slice's type, deps and meta (copies). */
function specOf(s: SnapshotNodeSlice): NodeSpec;
function specOf(s: SnapshotNodeSlice | undefined): NodeSpec | undefined;
function specOf(s: SnapshotNodeSlice | undefined): NodeSpec | undefined {
  return s === undefined ? undefined : { type: s.type, deps: [...s.deps], meta: structuredClone(s.meta) };
}

/**
 * Makes the live graph match a baseline, in one batch (nothing changes when it throws). RestoreError
 * `phase-failed` when the graph refuses it. A code-built node the baseline lacks and a spec frame of `above` (the
 * frames replayed after it) adds again as the code built it stays, with its mounts: the baseline folded its
 * removal, replay cannot build it, and restore from before the fold (removal and re-add in one phase) keeps it.
 * RestoreError `derived-mismatch` (nothing changed) when a code-built node of the graph differs from the one the
 * baseline and `above` hold at its path: kept, it would silently stand for another node. With `codeChanges`
 * "accept" the code's node stands instead, and so does a code-built node the baseline and `above` end without.
 */
export function applyBaseline(
  graph: Graph,
  record: GraphCheckpointRecord,
  above: readonly WALFrame[] = [],
  codeChanges: CodeChangesPolicy = "refuse",
): void {
  const kept = reAddedAbove(graph, record.snapshot, above, codeChanges === "refuse");
  let snapshot = record.snapshot;
  if (codeChanges === "refuse") {
    const mismatch = codeBuiltMismatch(graph, storedCodeBuilt(record.snapshot, record.seq, above), false);
    if (mismatch !== undefined) throw mismatchError(graph.name, mismatch);
    snapshot = withoutOthers(graph, record, kept);
  } else {
    for (const p of codeBuiltDropped(graph, record.snapshot, above)) kept.set(p, -1);
  }
  try {
    graph.batch(() => applyBaselineToGraph(graph, keepingReAdded(graph, snapshot, kept)));
  } catch (err) {
    throw new RestoreError("phase-failed", `baseline (seq ${record.seq}) could not be applied: ${messageOf(err)}`, {
      phase: "baseline",
      lifecycle: "spec",
      frame_seq: record.seq,
      cause: messageOf(err),
    }, err);
  }
}

/**
 * Code-built nodes of `graph` (derived, effect) that `snapshot` lacks, holds as a state node or holds as another
 * code-built node (other type, deps or meta), and a spec frame of `frames` adds again as code-built (not as a state
 * node, which replay puts there itself), each with the index of the first such frame. A baseline's state node
 * replaces the code's node as a missing one removes it, and replay cannot build it back either (the writer made c a
 * state node, a compaction ran, then c derived again); another code-built node is removed (withoutOthers). With
 * `matching` (restore's "refuse") only a re-add as the code builds it counts: one on other deps is removed or
 * replaced by a later frame (else the check refused it), and the code's node kept for it would keep the state nodes
 * it depends on that the writer did not have (b removed, a compaction, c re-added on [a] and removed). O(frames).
 */
export function reAddedAbove(graph: Graph, snapshot: GraphPersistSnapshot, frames: readonly WALFrame[], matching = false): Map<string, number> {
  const out = new Map<string, number>();
  frames.forEach((f, i) => {
    const change = graphChangeOf(f);
    // An add without a slice (the protocol allows it, §6.5) is ignored by replay (storedCodeBuilt): it re-adds nothing.
    if (change?.kind !== "graph.add" || change.slice === undefined || change.slice.type === "state" || out.has(change.nodeId)) return;
    if (matching && !sameSpec(change.slice, graph.describeNode(change.nodeId, "shared"))) return;
    const held = Object.prototype.hasOwnProperty.call(snapshot.nodes, change.nodeId) ? snapshot.nodes[change.nodeId] : undefined;
    if (held !== undefined && held.type !== "state" && sameSpec(held, graph.describeNode(change.nodeId, "shared"))) return;
    const kind = graph.kindOf(change.nodeId);
    if (kind !== undefined && kind !== "state") out.set(change.nodeId, i);
  });
  return out;
}

/** True when both slices are nodes of one type on the same deps with the same meta. */
function sameSpec(a: SnapshotNodeSlice, b: SnapshotNodeSlice | undefined): boolean {
  return b !== undefined && a.type === b.type && jsonEqual(a.deps, b.deps) && jsonEqual(a.meta, b.meta);
}

/**
 * The baseline of `record` without its code-built nodes the graph built otherwise, but for those in `kept`. Only
 * with "refuse", after the check that the frames replayed above leave no such node: they remove or replace each
 * one, so the code's node at its path stands for nothing stored and goes with the baseline, dependents first. Kept,
 * it would keep the state nodes it depends on that the baseline lacks: the writer removed c, re-added it on [a],
 * removed b, a compaction ran, then the writer removed c; restore kept the code's c (on [a, b]) through the
 * baseline, so b's removal was skipped, and the replayed removal of c left b behind.
 */
function withoutOthers(graph: Graph, record: GraphCheckpointRecord, kept: ReadonlyMap<string, number>): GraphPersistSnapshot {
  const others = codeBuiltMismatches(graph, storedCodeBuilt(record.snapshot, record.seq, []), false).filter((m) => !kept.has(m.path));
  if (others.length === 0) return record.snapshot;
  const nodes = { ...record.snapshot.nodes };
  for (const m of others) delete nodes[m.path];
  return { ...record.snapshot, nodes };
}

/** `snapshot` with the graph's slices of `kept` and the mounts they are under. */
function keepingReAdded(graph: Graph, snapshot: GraphPersistSnapshot, kept: ReadonlyMap<string, number>): GraphPersistSnapshot {
  if (kept.size === 0) return snapshot;
  const nodes = { ...snapshot.nodes };
  const subgraphs = new Set(snapshot.subgraphs);
  for (const path of kept.keys()) {
    const slice = graph.describeNode(path, "shared");
    if (slice === undefined) continue;
    setOwn(nodes, path, slice); // a node may be named "__proto__": plain assignment would set the prototype
    for (let m = parentPath(path); m !== ""; m = parentPath(m)) subgraphs.add(m);
  }
  return { ...snapshot, nodes, subgraphs: [...subgraphs].sort(compareCodePoints) };
}

const ALL_LIFECYCLES: ReadonlySet<Lifecycle> = new Set(REPLAY_ORDER);

/**
 * Replays frames that continue the graph's state at `fromSeq` (ascending seq, as the stored-graph reader hands them
 * over): one batch per lifecycle in REPLAY_ORDER, a data frame superseded by a later spec frame of its node skipped
 * (docs/design.md §3.9). A phase that throws is rolled back (RestoreError `phase-failed`); earlier phases stay unless
 * the caller's own batch rolls them back too. RestoreError `derived-mismatch` (nothing changed) when the frames
 * leave a derived or effect node at a path where the graph has a code-built node of another type, deps or meta;
 * with `codeChanges` "accept" the graph's node stands.
 */
export function replayFrames(
  graph: Graph,
  fromSeq: number,
  frames: readonly WALFrame[],
  lifecycles: ReadonlySet<Lifecycle> = ALL_LIFECYCLES,
  codeChanges: CodeChangesPolicy = "refuse",
): Omit<RestoreResult, "skippedFrames"> {
  const chosen = frames.filter((f) => lifecycles.has(f.lifecycle));
  const mismatch = codeChanges === "refuse" ? codeBuiltMismatch(graph, storedCodeBuilt(undefined, fromSeq, chosen), false) : undefined;
  if (mismatch !== undefined) throw mismatchError(graph.name, mismatch);
  // "accept": a code-built node the frames end without stays (its removals are not applied): the code's.
  const keep = codeChanges === "accept" ? codeBuiltDropped(graph, undefined, chosen) : new Set<string>();
  const lastSpec = lastSpecSeqByPath(chosen);
  const phases: RestorePhase[] = [];
  let applied = 0;
  let replayed = 0;
  let finalSeq = fromSeq;
  for (const lifecycle of REPLAY_ORDER) {
    const group = chosen.filter((f) => f.lifecycle === lifecycle);
    if (group.length > 0) {
      applied += runPhase(graph, lifecycle, group, lastSpec, keep);
      replayed += group.length;
      finalSeq = Math.max(finalSeq, (group[group.length - 1] as WALFrame).frame_seq);
    }
    phases.push({ lifecycle, frames: group.length });
  }
  return { replayedFrames: replayed, finalSeq, phases, appliedFrames: applied, ignoredFrames: replayed - applied };
}

/**
 * One lifecycle's frames in one batch; returns how many changed the graph. A throw rolls the batch back.
 * A spec phase is replayed frame by frame unless that cannot give the live graph, in which case the graph is
 * reconciled with the phase's net result (reconcileSpec): when a removal's path is added or mounted again later
 * in the phase, or when the graph refuses a removal (frames in an order that does not replay). Either way only
 * when no other change of the phase is one the graph refuses (onlyOrderRefused).
 */
function runPhase(
  graph: Graph,
  lifecycle: Lifecycle,
  frames: readonly WALFrame[],
  lastSpec: ReadonlyMap<string, number>,
  keep: ReadonlySet<string>,
): number {
  const changes = frames.map((f) => {
    const c = graphChangeOf(f);
    return c?.kind === "graph.remove" && keep.has(c.nodeId) ? undefined : c; // a kept node's removal: ignored
  });
  // A phase with a change the graph refuses outright replays one by one, to fail at that frame.
  if (lifecycle === "spec" && reAdds(changes) && onlyOrderRefused(graph, changes)) {
    return phase(graph, lifecycle, frames, () => reconcileSpec(graph, frames, keep));
  }
  let current: GraphChange | undefined;
  const oneByOne = (at: (seq: number) => void): number => {
    let applied = 0;
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i] as WALFrame;
      at(f.frame_seq);
      const change = (current = changes[i]);
      if (change === undefined) continue;
      if (lifecycle === "data") {
        const path = nodePathOf(change);
        // Later frame wins: a spec frame after this data frame already carries the node's state.
        if (path !== undefined && (lastSpec.get(path) ?? -1) > f.frame_seq) continue;
      }
      if (applyChangeToGraph(graph, change)) applied++;
    }
    return applied;
  };
  if (lifecycle !== "spec") return phase(graph, lifecycle, frames, oneByOne);
  try {
    return phase(graph, lifecycle, frames, oneByOne);
  } catch (err) {
    // The graph refused a removal (a remove or unmount only throws while something depends on what goes): frames
    // an older version wrote in an order that does not replay (dependents first was not always kept). Their net
    // result may still apply. Any other refusal, or a net result that does not apply either, is reported as is.
    const removal = current?.kind === "graph.remove" || current?.kind === "graph.unmount";
    if (!removal || !(err instanceof RestoreError && err.cause instanceof TypeError) || !onlyOrderRefused(graph, changes)) {
      throw err;
    }
    try {
      return phase(graph, lifecycle, frames, () => reconcileSpec(graph, frames, keep));
    } catch {
      throw err;
    }
  }
}

/** Runs `apply` in one batch; a throw is rolled back and reported as RestoreError `phase-failed` (with its frame). */
function phase(graph: Graph, lifecycle: Lifecycle, frames: readonly WALFrame[], apply: (at: (seq: number) => void) => number): number {
  let at = frames.length > 0 ? (frames[0] as WALFrame).frame_seq : 0;
  try {
    return graph.batch(() => apply((seq) => (at = seq)));
  } catch (err) {
    throw new RestoreError(
      "phase-failed",
      `lifecycle "${lifecycle}" replay phase failed at frame_seq=${at}: ${messageOf(err)}`,
      { lifecycle, frame_seq: at, cause: messageOf(err) },
      err,
    );
  }
}

/**
 * True when a removed node's or mount's path is added or mounted again later among `changes`: replayed one by
 * one, the removal would drop what the code built there (a derived node, a mount's derived nodes) or cut
 * dependents that stayed (a state node re-added with other meta), which the re-add cannot bring back.
 */
function reAdds(changes: ReadonlyArray<GraphChange | undefined>): boolean {
  const removed = new Set<string>();
  for (const c of changes) {
    if (c === undefined) continue;
    if (c.kind === "graph.remove") removed.add(c.nodeId);
    else if (c.kind === "graph.unmount") removed.add(c.path);
    else if ((c.kind === "graph.add" && removed.has(c.nodeId)) || (c.kind === "graph.mount" && removed.has(c.path))) {
      return true;
    }
  }
  return false;
}

/**
 * True when the graph would take every change of a spec phase but for removals refused for their dependents: the
 * paths alone are followed (nodes and mounts, as the live graph has them), and an add or a mount the graph refuses
 * (its parent mount missing, the path taken by the other kind) makes it false. Such a phase is badly ordered, not
 * bad. O(graph + changes × mounts).
 */
function onlyOrderRefused(graph: Graph, changes: ReadonlyArray<GraphChange | undefined>): boolean {
  const nodes = new Set(graph.paths());
  const mounts = new Set(graph.mounts());
  const parentOk = (p: string): boolean => parentPath(p) === "" || mounts.has(parentPath(p));
  for (const c of changes) {
    if (c === undefined) continue;
    switch (c.kind) {
      case "graph.add":
        if (c.slice?.type !== "state") break; // replay skips it
        if (mounts.has(c.nodeId) || !parentOk(c.nodeId)) return false;
        nodes.add(c.nodeId);
        break;
      case "graph.mount":
        if (mounts.has(c.path)) break;
        if (nodes.has(c.path) || !parentOk(c.path)) return false;
        mounts.add(c.path);
        break;
      case "graph.remove":
        nodes.delete(c.nodeId);
        break;
      case "graph.unmount":
        if (!mounts.delete(c.path)) break;
        for (const m of mounts) if (isInside(m, c.path)) mounts.delete(m);
        for (const n of nodes) if (isInside(n, c.path)) nodes.delete(n);
        break;
      default:
        break;
    }
  }
  return true;
}

/**
 * A spec phase as its net result: the graph's snapshot folded with the frames (the fold compaction runs, so the
 * result is the one a compacted store restores), then applied as a baseline is (applyBaselineToGraph): nodes and
 * mounts it lacks removed dependents first, state nodes put in place (replaced in place where the graph can, so
 * their dependents stay), computed nodes left to the code. O(graph); returns the frames the fold applied.
 */
function reconcileSpec(graph: Graph, frames: readonly WALFrame[], keep: ReadonlySet<string>): number {
  const snapshot = graph.snapshot();
  const base: GraphCheckpointRecord = { name: snapshot.name, mode: "full", snapshot, seq: 0, timestamp_ns: 0, format_version: 1 };
  const folder = new WalFolder(base, snapshot);
  for (const f of frames) folder.add(f);
  const net = folder.result();
  applyBaselineToGraph(graph, keepingReAdded(graph, net.snapshot, new Map([...keep].map((p) => [p, -1]))));
  return net.appliedFrames;
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
  codeChanges: CodeChangesPolicy;
} {
  const g = graph as Partial<Graph> | null;
  if (typeof g !== "object" || g === null || typeof g.name !== "string" || typeof g.batch !== "function") {
    throw new TypeError("restoreSnapshot: graph must implement Graph");
  }
  assertGraphName(g.name, "restoreSnapshot");
  if (typeof opts !== "object" || opts === null) throw new TypeError("restoreSnapshot: opts must be an object");
  refuseUnknownKeys(opts, ["snapshot", "wal", "lifecycle", "targetSeq", "onTornWrite", "codeChanges"], "restoreSnapshot");
  const { snapshot, wal, lifecycle, targetSeq, onTornWrite } = opts;
  const codeChanges = checkCodeChanges(opts.codeChanges, "restoreSnapshot");
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
  let lifecycles = ALL_LIFECYCLES;
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
  return { snapshot, wal: wal as KvStorageTier<WALFrame>, lifecycles, targetSeq: target, onTornWrite, codeChanges };
}

/** The `codeChanges` option: "refuse" (the default) or "accept"; TypeError for anything else. */
export function checkCodeChanges(value: unknown, where: string): CodeChangesPolicy {
  if (value === undefined) return "refuse";
  if (value === "refuse" || value === "accept") return value;
  throw new TypeError(`${where}: opts.codeChanges must be "refuse" or "accept", got ${JSON.stringify(value) ?? String(value)}`);
}

/** RestoreError `derived-mismatch`: the stored node's spec and the graph's, with the seq that stored it. */
function mismatchError(name: string, m: CodeBuiltMismatch): RestoreError {
  const spec = (s: { type: string; deps: readonly string[]; meta: unknown }) => ({ type: s.type, deps: [...s.deps], meta: s.meta });
  const stored = spec(m.stored);
  const built = m.built === undefined ? undefined : spec(m.built);
  const show = (s: typeof stored | undefined): string =>
    s === undefined ? "no node" : `${s.type} ${JSON.stringify(s.deps)} meta ${JSON.stringify(s.meta)}`;
  return new RestoreError(
    "derived-mismatch",
    `graph "${name}": the stored ${m.stored.type} node "${m.path}" (frame_seq ${m.frameSeq}: ${show(stored)}) is not the ` +
      `graph's (${show(built)}); only the code builds such a node, so the stored graph cannot be restored with this code ` +
      `(for a new version of the code, restore with codeChanges: "accept" to keep the code's nodes)`,
    { path: m.path, frame_seq: m.frameSeq, stored, built },
  );
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
