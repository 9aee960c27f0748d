/**
 * attachSnapshotStorage (docs/protocol.md §7.5, docs/design.md §3.7–§3.8, §3.14–§3.15): a full baseline at attach, then one
 * diff per settled wave, computed on the wave's paths only against a mirror of the last persisted state, written
 * as WAL frames (or as a baseline every `compactEvery` persisted waves). The main thread builds frame objects and
 * hands them to the tiers; encoding, checksums (for sealing codecs) and I/O happen where the tier runs.
 * Layer 4 (graph).
 */
import { CodecError, StorageError } from "../errors.js";
import type { KvStorageTier, SnapshotStorageTier } from "../tier/types.js";
import { walFrameCodec } from "../wal/codec.js";
import type { WALFrame } from "../wal/frame.js";
import { graphWalPrefix, parseWalFrameKey, walFrameKey } from "../wal/keys.js";
import { diffFrames } from "./decompose.js";
import { SnapshotMirror, type DiffBuilder } from "./diff.js";
import { parentPath } from "./paths.js";
import type {
  AttachOptions,
  AttachPair,
  GraphCheckpointRecord,
  GraphSnapshotDiff,
  GraphWALFrame,
  StorageHandle,
} from "./storage-types.js";
import { SNAPSHOT_VERSION, type Graph, type GraphPersistSnapshot, type GraphWave } from "./types.js";

const DEFAULT_COMPACT_EVERY = 10;
const noop = (): void => {};

/** Wall clock in ns (integer), as the references write it. */
const nowNs = (): number => Date.now() * 1_000_000;

type Item =
  | { kind: "baseline"; snapshot: GraphPersistSnapshot; timestampNs: number }
  | { kind: "frames"; diff: GraphSnapshotDiff; timestampNs: number; frames: GraphWALFrame[] | undefined; next: number };

/** Per-pair cursor and outbox. Items wait here until the seq bootstrap is done and leave once saved. */
class PairState {
  /** Last seq handed to a tier. */
  seq = 0;
  /** Highest seq known durable in both tiers. */
  durable = 0;
  ready = false;
  poisoned: Error | undefined;
  /** The save that failed last (the outbox is stuck until it succeeds). */
  blocked: Error | undefined;
  sinceBaseline = 0;
  /** FIFO outbox: `queue[head]` is next (an index, not shift(): waves queued during the bootstrap can be many). */
  queue: Array<Item | undefined> = [];
  head = 0;
  /** False when the WAL tier's codec seals frames itself (checksum computed where it encodes: docs/design.md §3.14). */
  readonly seal: boolean;
  readonly prefix: string;
  bootstrap!: Promise<void>;

  constructor(
    readonly snapshot: SnapshotStorageTier<GraphCheckpointRecord>,
    readonly wal: KvStorageTier<WALFrame> | undefined,
    readonly compactEvery: number,
    graphName: string,
  ) {
    this.seal = wal?.codecName !== walFrameCodec.name;
    this.prefix = graphWalPrefix(graphName);
  }
}

/**
 * Persists `graph` into every pair. Restore first, then attach: restoring into an attached graph writes the
 * replayed changes back as new frames. Throws TypeError / RangeError for bad arguments; storage failures go to
 * `onError` and reject `flush()`, never into the graph.
 */
export function attachSnapshotStorage(graph: Graph, pairs: readonly AttachPair[], opts: AttachOptions = {}): StorageHandle {
  checkGraph(graph);
  const { paths, filter, onError } = checkOptions(opts);
  if (!Array.isArray(pairs) || pairs.length === 0) {
    throw new TypeError("attachSnapshotStorage: pairs must be a non-empty array of { snapshot, wal? }");
  }
  const states = pairs.map((p, i) => {
    checkPair(p, i);
    const every = opts.compactEvery ?? p.snapshot.compactEvery ?? DEFAULT_COMPACT_EVERY;
    return new PairState(p.snapshot, p.wal, every, graph.name);
  });

  const report = (err: unknown, pair: PairState): void => {
    const e = err instanceof Error ? err : new Error(String(err));
    try {
      onError?.(e, pair.snapshot);
    } catch {
      // a throwing handler must not break persistence
    }
  };

  /** Saves one item (throws what the tier throws); seqs advance only with what was saved. */
  const save = (pair: PairState, item: Item): void => {
    if (item.kind === "baseline") {
      pair.snapshot.save({
        name: graph.name,
        mode: "full",
        snapshot: item.snapshot,
        seq: pair.seq + 1,
        timestamp_ns: item.timestampNs,
        format_version: SNAPSHOT_VERSION,
      });
      pair.seq += 1;
      return;
    }
    const wal = pair.wal as KvStorageTier<WALFrame>;
    // Numbered on first attempt and kept, so a retry re-saves the same seqs under the same keys.
    const frames = (item.frames ??= diffFrames(item.diff, item.timestampNs, pair.seq, pair.seal));
    for (; item.next < frames.length; item.next++) {
      const f = frames[item.next] as GraphWALFrame;
      wal.save(walFrameKey(pair.prefix, f.frame_seq), f);
    }
    if (frames.length > 0) pair.seq = (frames[frames.length - 1] as GraphWALFrame).frame_seq;
  };

  /** Records a failed save: the outbox is stuck until a retry succeeds, or for good when no retry can. */
  const fail = (pair: PairState, err: unknown): void => {
    // A write that can never succeed stops this pair rather than leave a hole in its WAL.
    if (isPermanent(err)) pair.poisoned = err;
    else pair.blocked = err instanceof Error ? err : new Error(String(err));
    report(err, pair);
  };

  /** Saves queued items in order until one fails. */
  const drain = (pair: PairState): void => {
    if (!pair.ready || pair.poisoned !== undefined) return;
    while (pair.head < pair.queue.length) {
      try {
        save(pair, pair.queue[pair.head] as Item);
      } catch (err) {
        fail(pair, err);
        return;
      }
      pair.queue[pair.head++] = undefined; // released for GC
      pair.blocked = undefined;
    }
    if (pair.queue.length !== 0) pair.queue.length = 0;
    pair.head = 0;
  };

  /** Saves `item` now when nothing waits ahead of it (the steady state), else queues it behind the rest. */
  const submit = (pair: PairState, item: Item): void => {
    if (!pair.ready || pair.poisoned !== undefined || pair.head !== pair.queue.length) {
      pair.queue.push(item);
      drain(pair);
      return;
    }
    try {
      save(pair, item);
      pair.blocked = undefined;
    } catch (err) {
      pair.queue.push(item);
      fail(pair, err);
    }
  };

  // ---- attach baseline and seq bootstrap -------------------------------------------------------------------
  const initial = graph.snapshot();
  const mirror = new SnapshotMirror(initial);
  const attachedAt = nowNs();
  for (const pair of states) {
    pair.queue.push({ kind: "baseline", snapshot: initial, timestampNs: attachedAt });
    pair.bootstrap = bootstrapSeq(pair, graph.name).then(
      (seq) => {
        pair.seq = seq;
        pair.durable = seq;
        pair.ready = true;
        drain(pair);
      },
      (err: unknown) => {
        // Never write at seqs that may already be taken: the pair stays silent.
        pair.poisoned = err instanceof Error ? err : new Error(String(err));
        report(err, pair);
      },
    );
  }

  // ---- per-wave persistence (hot path) ---------------------------------------------------------------------
  let disposed = false;
  const pendingNodes = new Set<string>();
  const pendingMounts = new Set<string>();
  const gated = paths !== undefined || filter !== undefined;
  const triggers = (path: string, removed: boolean): boolean => {
    if (paths !== undefined && !underPaths(path, paths)) return false;
    if (filter === undefined) return true;
    try {
      return filter(path, removed ? undefined : graph.describeNode(path)) !== false;
    } catch (err) {
      report(err, states[0] as PairState);
      return true;
    }
  };

  const onWave = (wave: GraphWave): void => {
    if (wave.cause === "destroy" || disposed) return;
    try {
      const signals = wave.signals;
      if (!gated && wave.topology.length === 0 && pendingNodes.size === 0 && pendingMounts.size === 0) {
        // Hot path: an ungated wave without topology and nothing carried over; its signals are the touched set.
        if (signals.length > 0) persist(mirror.updateSignals(graph, signals));
        return;
      }
      // O(size of the wave): touched paths accumulate until a wave passes the trigger gate.
      let fire = false;
      for (const s of signals) {
        pendingNodes.add(s.path);
        if (!fire && s.signal !== "teardown") fire = !gated || triggers(s.path, false);
      }
      for (const t of wave.topology) {
        if (t.op === "add" || t.op === "remove") pendingNodes.add(t.path);
        else pendingMounts.add(t.path);
        if (!fire) fire = !gated || triggers(t.path, t.op === "remove" || t.op === "unmount");
      }
      if (!fire) return;
      // O(touched paths): the mirror compares only them (describeNode is O(node)); no snapshot(), no full scan.
      const diff = mirror.update(graph, pendingNodes, pendingMounts);
      pendingNodes.clear();
      pendingMounts.clear();
      persist(diff);
    } catch (err) {
      report(err, states[0] as PairState);
    }
  };

  /** Saves the wave's frames (and a baseline at each boundary) in every pair, or queues what cannot go yet. */
  const persist = (diff: DiffBuilder): void => {
    if (diff.empty) return;
    const timestampNs = nowNs();
    // `diff` is the mirror's scratch: an item that outlives this call before being numbered gets its own copy.
    let kept: GraphSnapshotDiff | undefined;
    let baseline: GraphPersistSnapshot | undefined;
    for (const pair of states) {
      if (pair.poisoned !== undefined) continue;
      if (pair.wal === undefined) {
        // Without a WAL every persisted wave is a full baseline: O(graph) by the caller's choice.
        baseline ??= graph.snapshot();
        submit(pair, { kind: "baseline", snapshot: baseline, timestampNs });
        continue;
      }
      const item: Item = { kind: "frames", diff, timestampNs, frames: undefined, next: 0 };
      submit(pair, item);
      if (item.frames === undefined) item.diff = kept ??= diff.copy();
      // The wave's frames are written too, so the WAL alone stays gap-free whichever tier lands first.
      if (++pair.sinceBaseline >= pair.compactEvery) {
        pair.sinceBaseline = 0;
        baseline ??= graph.snapshot();
        submit(pair, { kind: "baseline", snapshot: baseline, timestampNs });
      }
    }
    // A full snapshot was taken anyway (amortized over compactEvery waves): re-seed the mirror from it.
    if (baseline !== undefined) mirror.reset(baseline);
  };

  const unsubscribe = graph.observe(onWave);

  const flushPair = async (pair: PairState): Promise<number> => {
    await pair.bootstrap;
    if (pair.poisoned !== undefined) throw pair.poisoned;
    drain(pair);
    if (pair.blocked !== undefined) throw pair.blocked;
    const target = pair.seq;
    try {
      if (pair.wal !== undefined) await pair.wal.flush(); // frames first: a baseline never lands before them
      await pair.snapshot.flush();
    } catch (err) {
      report(err, pair);
      throw err;
    }
    if (target > pair.durable) pair.durable = target;
    return pair.durable;
  };

  const flush = (): Promise<number> =>
    quiet(
      Promise.allSettled(states.map(flushPair)).then((results) => {
        let seq = Number.POSITIVE_INFINITY;
        for (const r of results) {
          if (r.status === "rejected") throw r.reason;
          seq = Math.min(seq, r.value);
        }
        return seq;
      }),
    );

  let disposing: Promise<void> | undefined;
  return {
    flush,
    dispose(): Promise<void> {
      if (disposing === undefined) {
        disposed = true;
        unsubscribe();
        disposing = quiet(flush().then(noop));
      }
      return disposing;
    },
    get seq(): number {
      let seq = Number.POSITIVE_INFINITY;
      for (const p of states) if (p.poisoned === undefined) seq = Math.min(seq, p.seq);
      return seq === Number.POSITIVE_INFINITY ? 0 : seq;
    },
  };
}

/**
 * Highest seq already used in the pair's store: the WAL's highest frame key (exactly `<name>/wal/<20 digits>`)
 * and the stored baseline's seq, so a re-attach never reuses a seq (docs/graph-model.md §6 item 15).
 */
async function bootstrapSeq(pair: PairState, graphName: string): Promise<number> {
  let seq = 0;
  if (pair.wal !== undefined) {
    for (const key of await pair.wal.list(`${pair.prefix}/`)) {
      const s = parseWalFrameKey(pair.prefix, key);
      if (s !== undefined && s > seq) seq = s;
    }
  }
  const record: unknown = await pair.snapshot.load(graphName);
  if (typeof record === "object" && record !== null) {
    const s = (record as { seq?: unknown }).seq;
    if (typeof s === "number" && Number.isSafeInteger(s) && s > seq) seq = s;
  }
  return seq;
}

/** Failures no retry can fix: an unencodable value, a key the store refuses, a closed tier. */
function isPermanent(err: unknown): err is Error {
  return err instanceof CodecError || (err instanceof StorageError && (err.code === "invalid-key" || err.code === "closed"));
}

/** True when `path` or one of its ancestor mounts is listed. O(depth). */
function underPaths(path: string, paths: ReadonlySet<string>): boolean {
  for (let p = path; p !== ""; p = parentPath(p)) if (paths.has(p)) return true;
  return false;
}

/** Marks a promise handled so an ignored rejection is never unhandled; callers that await still see it. */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(noop);
  return p;
}

function checkGraph(graph: Graph): void {
  const g = graph as Partial<Graph> | null;
  if (
    typeof g !== "object" ||
    g === null ||
    typeof g.name !== "string" ||
    typeof g.observe !== "function" ||
    typeof g.snapshot !== "function" ||
    typeof g.describeNode !== "function" ||
    typeof g.hasMount !== "function"
  ) {
    throw new TypeError(
      "attachSnapshotStorage: graph must implement Graph (name, observe, snapshot, describeNode, hasMount)",
    );
  }
}

function checkPair(pair: AttachPair, i: number): void {
  const s = pair?.snapshot as Partial<SnapshotStorageTier<GraphCheckpointRecord>> | undefined;
  if (typeof s?.save !== "function" || typeof s.load !== "function" || typeof s.flush !== "function") {
    throw new TypeError(`attachSnapshotStorage: pairs[${i}].snapshot must be a snapshot tier (save, load, flush)`);
  }
  if (pair.wal === undefined) return;
  const w = pair.wal as Partial<KvStorageTier<WALFrame>> | null;
  if (typeof w?.save !== "function" || typeof w.list !== "function" || typeof w.flush !== "function") {
    throw new TypeError(
      `attachSnapshotStorage: pairs[${i}].wal must be a kv tier exposing save(key, value), list and flush ` +
        "(use kvStorage(...))",
    );
  }
}

function checkOptions(opts: AttachOptions): {
  paths: ReadonlySet<string> | undefined;
  filter: AttachOptions["filter"];
  onError: AttachOptions["onError"];
} {
  if (typeof opts !== "object" || opts === null) throw new TypeError("attachSnapshotStorage: opts must be an object");
  const { paths, filter, onError, compactEvery } = opts;
  if (paths !== undefined && (!Array.isArray(paths) || !paths.every((p) => typeof p === "string"))) {
    throw new TypeError("attachSnapshotStorage: opts.paths must be an array of path strings");
  }
  if (filter !== undefined && typeof filter !== "function") {
    throw new TypeError("attachSnapshotStorage: opts.filter must be a function");
  }
  if (onError !== undefined && typeof onError !== "function") {
    throw new TypeError("attachSnapshotStorage: opts.onError must be a function");
  }
  const everyOk =
    compactEvery === Number.POSITIVE_INFINITY || (Number.isSafeInteger(compactEvery) && (compactEvery as number) >= 1);
  if (compactEvery !== undefined && !everyOk) {
    throw new RangeError(
      `attachSnapshotStorage: opts.compactEvery must be an integer >= 1 or Infinity, got ${String(compactEvery)}`,
    );
  }
  return { paths: paths === undefined ? undefined : new Set(paths), filter, onError };
}
