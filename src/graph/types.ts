/**
 * Public graph contract used by the storage integration (attach / restore) and implemented by the in-project
 * reactive graph (`createGraph`). Shapes follow docs/graph-model.md §1.1 (flat TS snapshot) and §5.2–§5.3.
 * Layer 4 (graph).
 */
import type { JsonValue } from "../codec/types.js";

export type { JsonValue };

export const SNAPSHOT_VERSION = 1 as const;

export type NodeKind = "state" | "derived" | "effect";

/**
 * Node status. Our graph keeps it a function of the node's state, so a snapshot round trip reproduces it:
 * - state: "settled" with a value, "sentinel" without;
 * - derived: "errored" if its last computation threw (it keeps its last value, possibly none), otherwise
 *   "settled" with a value, "sentinel" without;
 * - effect (never has a value): "sentinel" until its deps all have values, "settled" after a successful run,
 *   "errored" after a throwing run.
 * An equal write is a transient `resolved` *signal*; our graph never leaves a node in status "resolved". The
 * member exists because snapshots written by the TS reference can carry it.
 */
export type NodeStatus = "sentinel" | "settled" | "resolved" | "errored";

/**
 * One node of a snapshot. `value` is absent exactly when `sentinel: true` is present (never `value: undefined`
 * as an own key); `null` is a real value. Note that a derived node that threw before ever producing a value is
 * `status: "errored"` with `sentinel: true`, and effects always carry `sentinel: true`.
 */
export interface SnapshotNodeSlice {
  type: NodeKind;
  /** Dep paths in declaration order, qualified relative to the snapshotting graph (see `Graph.snapshot`). */
  deps: string[];
  status: NodeStatus;
  /** Static metadata given at creation; persisted, never diffed into frames. `{}` when none. */
  meta: Record<string, JsonValue>;
  value?: JsonValue;
  sentinel?: true;
}

/**
 * Flat persisted snapshot (docs/graph-model.md §1.1). `nodes` keys are qualified `::` paths and are *inserted* in
 * code-point order, but JS objects iterate integer-like keys ("2", "10") first whatever the insertion order:
 * consumers that need an order must sort the keys explicitly (`compareCodePoints` from `src/base/code-points.ts`).
 */
export interface GraphPersistSnapshot {
  name: string;
  nodes: Record<string, SnapshotNodeSlice>;
  /** dep -> dependent, sorted by (from, to) in code-point order; only edges whose two ends are in `nodes`. */
  edges: Array<{ from: string; to: string }>;
  /** Qualified paths of every mount in the tree, sorted. */
  subgraphs: string[];
  version: typeof SNAPSHOT_VERSION;
}

/**
 * Per-node signal of one wave. data / resolved (tier 3), invalidate (tier 4), error (tier 5) are persistence
 * triggers; teardown (tier 6: remove, destroy) never is.
 */
export type WaveSignal = "data" | "resolved" | "invalidate" | "error" | "teardown";

/**
 * A topology change, path qualified relative to the observed graph. An `unmount` stands for its whole subtree:
 * no `remove` or `unmount` is reported for the nodes and nested mounts under it.
 */
export interface TopologyChange {
  op: "add" | "remove" | "mount" | "unmount";
  path: string;
}

/**
 * One settled outermost wave (a write outside a batch, or an outermost batch close). Emitted only when it carries
 * at least one signal or topology change. Each path appears at most once in `signals` except that a `teardown`
 * may precede a later signal for a node re-added under the same path. Order: teardowns and directly written
 * nodes in the order they were first touched, then recomputed nodes in topological order; consumers should not
 * rely on more than that. Every node whose `describeNode` slice changed in the wave has a signal or is covered by
 * a topology change.
 */
export interface GraphWave {
  /** Monotonic per root graph; a subgraph view sees the root's numbers (with gaps). */
  readonly seq: number;
  readonly signals: ReadonlyArray<{ readonly path: string; readonly signal: WaveSignal }>;
  readonly topology: ReadonlyArray<Readonly<TopologyChange>>;
  /** "destroy" waves (teardown of everything) must not be persisted. */
  readonly cause: "user" | "destroy";
}

/**
 * What the storage layer needs from a graph. Paths are relative to this graph, `::`-qualified into mounts.
 * Queries (`kindOf`, `hasMount`, `describeNode`) never throw for a string; mutators throw TypeError on bad
 * input (unknown path, wrong kind, non-JSON value, name clash) before changing anything, and StorageError
 * `closed` after `destroy()`.
 */
export interface Graph {
  readonly name: string;
  /**
   * Fresh, deep-copied, JSON-safe snapshot. Between waves it is fully propagated; called inside a batch it shows
   * the written sources but not yet the recomputed derived nodes. Deps that point outside a subgraph view are
   * listed as `"::" + <root-qualified path>` (never a valid relative path) and produce no edge.
   */
  snapshot(): GraphPersistSnapshot;
  /**
   * One node's slice, equal to `snapshot().nodes[path]`. With `mode` "copy" (the default) it is a deep copy the
   * caller owns and costs O(size of that node). With "shared" its `value` and `meta` may be the graph's own data,
   * immutable (frozen, and replaced rather than changed by later writes), so the slice costs O(deps) whatever
   * the size of the value; the caller must not mutate them. A graph may answer "shared" with a copy.
   */
  describeNode(path: string, mode?: "copy" | "shared"): SnapshotNodeSlice | undefined;
  /** All node paths, sorted (code-point order). */
  paths(): string[];
  /** All mount paths (nested ones qualified), sorted. */
  mounts(): string[];
  /**
   * Called once per settled wave. A listener may write: the write applies at once, and its wave is delivered
   * after every listener has seen the current one (queued, never nested). If listeners throw, delivery still
   * completes and the first error is rethrown from the mutating call that started the delivery (its changes
   * stay applied). Returns an idempotent unsubscribe.
   */
  observe(listener: (wave: GraphWave) => void): () => void;
  /**
   * Runs `fn` as one wave. Nests (inner batches join the outer wave). If `fn` throws, every change made inside
   * it (values, statuses, topology) is undone, nothing is emitted for it, and the error is rethrown; an outer
   * batch that catches the error keeps its own earlier and later changes (savepoint). `fn` must be synchronous.
   * Subgraph views share the root's batch.
   */
  batch<T>(fn: () => T): T;
  /**
   * True while a batch runs (its `snapshot()` then holds changes a rollback may undo). Optional: where a graph has
   * it, attach refuses to start inside a batch.
   */
  inBatch?(): boolean;
  kindOf(path: string): NodeKind | undefined;
  hasMount(path: string): boolean;
  /** Writes a state node (TypeError for any other kind). A deep-equal write is a `resolved` signal. */
  set(path: string, value: JsonValue): void;
  /** Clears a state or derived node to sentinel; dependents become sentinel in the same wave. */
  invalidate(path: string): void;
  /** Adds a state node (its parent mount must exist). With an initial value the wave also carries `data`. */
  addState(path: string, initial?: JsonValue, meta?: Record<string, JsonValue>): void;
  /** Removes a node that has no dependents (else TypeError). Signals `teardown`, topology `remove`. */
  remove(path: string): void;
  /**
   * Makes the existing node at `path` a new state node with this value and meta, in place: its dependents stay
   * wired to it and recompute (a derived or effect node drops its own deps). What `remove` + `addState` would do
   * if the dependents could wait: signals `teardown` then as `addState`, topology `remove` + `add`. TypeError for
   * an unknown path. Optional: where a graph has it, restore replaces a node that has dependents (a state node
   * given other meta while its dependents stayed); without it, restore keeps such a node as it was.
   */
  replaceState?(path: string, initial?: JsonValue, meta?: Record<string, JsonValue>): void;
  /** Mounts an empty subgraph; parent mounts must exist and the name must be free. */
  mount(path: string): void;
  /** Removes a mount with everything under it; TypeError if a node outside depends on a node inside. */
  unmount(path: string): void;
}

export interface NodeOptions {
  meta?: Record<string, JsonValue>;
}

/** Receives dep values in dep order. The values are frozen graph-owned copies: do not mutate them. */
export type DerivedFn = (...values: JsonValue[]) => JsonValue;
export type EffectFn = (...values: JsonValue[]) => void;

/**
 * Authoring API of the in-project graph. Creation methods return the path they registered (relative to this
 * graph). User functions may read the graph but not write it (a write throws, which errors the node).
 */
export interface ReactiveGraph extends Graph {
  inBatch(): boolean;
  replaceState(path: string, initial?: JsonValue, meta?: Record<string, JsonValue>): void;
  state(name: string, initial?: JsonValue, opts?: NodeOptions): string;
  /**
   * Eager: computed at creation when every dep has a value, then once per wave in which a dep changed. A dep
   * without a value makes the node sentinel; a throwing `fn` (or a non-JSON result) makes it `errored` and keeps
   * its last value. Deps must exist, must not be effects and must be distinct; they may be qualified paths.
   */
  derived(name: string, deps: string[], fn: DerivedFn, opts?: NodeOptions): string;
  /** Runs `fn` at the close of every wave in which a dep changed (never on rolled-back state). */
  effect(name: string, deps: string[], fn: EffectFn, opts?: NodeOptions): string;
  /** Deep copy of the node's value, `undefined` when sentinel. TypeError for an unknown path. */
  get(path: string): JsonValue | undefined;
  /** TypeError for an unknown path. */
  status(path: string): NodeStatus;
  /** View of a mounted child with paths relative to it, sharing the root's scheduler, batches and waves. */
  subgraph(path: string): ReactiveGraph;
  /**
   * Root: emits one `cause: "destroy"` wave (a `teardown` per node), drops listeners, and makes later mutations
   * throw StorageError `closed` (reads keep working). Idempotent; TypeError inside a batch.
   * Subgraph view: unmounts the view's subtree (a normal user wave).
   */
  destroy(): void;
}
