/**
 * The root graph's shared state: the path registry (nodes and mounts keyed by root-qualified path), batches
 * with an undo log, wave settlement and listener delivery. Subgraph views (graph.ts) translate their relative
 * paths and call in here, so every view shares one scheduler.
 * Layer 4 (graph).
 */
import type { JsonValue } from "../codec/types.js";
import { StorageError } from "../errors.js";
import { toFrozenJson } from "./json-utils.js";
import { GNode, MountRec, type NodeFn } from "./node.js";
import { compareCodePoints } from "../base/code-points.js";
import { isInside, localName, parentPath, relativeTo } from "./paths.js";
import { propagate, recompute, SignalList, sourceSignal, type SignalEntry } from "./propagate.js";
import type { GraphWave, NodeKind, TopologyChange } from "./types.js";

interface Listener {
  readonly prefix: string;
  readonly fn: (wave: GraphWave) => void;
  active: boolean;
  /** Takes the wave as the core built it (not frozen, not copied): see `observe`. */
  readonly unfrozen: boolean;
}

const EMPTY_META: Readonly<Record<string, JsonValue>> = Object.freeze({});

export class GraphCore {
  readonly nodes = new Map<string, GNode>();
  /** Every mount except the root, by root-qualified path. */
  readonly mounts = new Map<string, MountRec>();
  readonly root = new MountRec("", null);
  destroyed = false;

  /** Copy-on-write, so delivery can iterate while listeners (un)subscribe. */
  private listeners: readonly Listener[] = [];
  private depth = 0;
  /** True while settling a wave or running a user function: writes are refused. */
  private busy = false;
  private epoch = 0;
  private stamp = 0;
  private seq = 0;
  private nodeIds = 0;
  private undo: Array<() => void> = [];
  /** Nodes touched in the current wave, or teardown paths, in first-touch order. */
  private touched: Array<GNode | string> = [];
  private topology: TopologyChange[] = [];
  /** Nodes put in place by replaceState this wave: their dependents recompute at the close (seeds). */
  private reseeded: GNode[] = [];
  /**
   * A commit's seeds and forced recomputes: kept across waves (emptied at each commit's end) rather than two fresh
   * arrays a wave. A commit never nests: user functions run with writes refused.
   */
  private readonly seeds: GNode[] = [];
  private readonly forced: GNode[] = [];
  private pending: GraphWave[] = [];
  private delivering = false;

  constructor(readonly name: string) {}

  // ---- lookups -------------------------------------------------------------------------------------------

  node(path: string, op: string): GNode {
    const n = this.nodes.get(path);
    if (n !== undefined) return n;
    if (this.mounts.has(path)) throw new TypeError(`${op}: "${path}" is a mount, not a node`);
    throw new TypeError(`${op}: no node at path "${path}" in graph "${this.name}"`);
  }

  mountAt(path: string): MountRec | undefined {
    return path === "" ? this.root : this.mounts.get(path);
  }

  /** Mounts (pre-order, starting with `rec`) and nodes of a subtree. */
  subtree(rec: MountRec): { mounts: MountRec[]; nodes: GNode[] } {
    const mounts: MountRec[] = [rec];
    const nodes: GNode[] = [];
    for (let i = 0; i < mounts.length; i++) {
      const m = mounts[i] as MountRec;
      for (const n of m.nodes) nodes.push(n);
      for (const c of m.children.values()) mounts.push(c);
    }
    return { mounts, nodes };
  }

  // ---- value writes --------------------------------------------------------------------------------------

  set(path: string, value: unknown): void {
    this.assertWritable("set");
    const node = this.node(path, "set");
    if (node.kind !== "state") {
      throw new TypeError(`set: "${path}" is a ${node.kind} node; only state nodes can be set`);
    }
    const next = toFrozenJson(value, "set", path);
    this.write(node, next);
  }

  invalidate(path: string): void {
    this.assertWritable("invalidate");
    const node = this.node(path, "invalidate");
    if (node.kind === "effect") throw new TypeError(`invalidate: "${path}" is an effect node and has no value`);
    this.write(node, undefined);
  }

  /**
   * A value write: inside a batch it joins it (with an undo entry for a rollback); otherwise it is a wave of its
   * own, which nothing can roll back (the write cannot throw), so it logs no undo and needs no closure: the common
   * `set` costs no allocation here beyond what the wave itself delivers.
   */
  private write(node: GNode, next: JsonValue | undefined): void {
    const outer = this.depth === 0;
    if (outer) this.epoch++;
    this.touch(node, false);
    const { value, status, writeStamp } = node;
    node.value = next;
    node.status = next === undefined ? "sentinel" : "settled";
    node.writeStamp = ++this.stamp;
    if (outer) {
      this.commit();
      return;
    }
    this.undo.push(() => {
      node.value = value;
      node.status = status;
      node.writeStamp = writeStamp;
    });
  }

  private touch(node: GNode, created: boolean): void {
    if (node.touchEpoch === this.epoch) return;
    node.touchEpoch = this.epoch;
    node.waveStart = node.value;
    node.created = created;
    this.touched.push(node);
  }

  // ---- topology ------------------------------------------------------------------------------------------

  /** `path` and `depPaths` are root-qualified and already segment-validated by the caller. */
  addNode(
    path: string,
    kind: NodeKind,
    depPaths: readonly string[],
    fn: NodeFn | undefined,
    initial: unknown,
    meta: unknown,
  ): void {
    const op = `add ${kind}`;
    this.assertWritable(op);
    const mount = this.freeSlot(path, op);
    const deps = depPaths.map((p) => {
      const d = this.node(p, `${op} "${path}" dep`);
      if (d.kind === "effect") throw new TypeError(`${op} "${path}": dep "${p}" is an effect node and has no value`);
      return d;
    });
    if (new Set(deps).size !== deps.length) throw new TypeError(`${op} "${path}": deps must be distinct`);
    if (kind !== "state" && typeof fn !== "function") throw new TypeError(`${op} "${path}": fn must be a function`);
    const value = initial === undefined ? undefined : toFrozenJson(initial, `${op} "${path}" initial value`);
    const node = new GNode(++this.nodeIds, path, kind, mount, deps, fn, this.checkMeta(meta, `${op} "${path}" meta`));
    this.run(() => {
      this.register(node);
      this.undo.push(() => this.unregister(node));
      this.topology.push({ op: "add", path });
      this.touch(node, true);
      node.createdStamp = ++this.stamp;
      if (value !== undefined) {
        node.value = value;
        node.status = "settled";
        node.writeStamp = node.createdStamp;
      } else if (kind === "derived") {
        this.callUser(() => recompute(node, null));
      }
      // Effects run at the wave close only, so they never see state that a batch may still roll back.
    });
  }

  remove(path: string): void {
    this.assertWritable("remove");
    const node = this.node(path, "remove");
    if (node.dependents.size > 0) {
      const names = [...node.dependents].map((d) => `"${d.path}"`).slice(0, 5).join(", ");
      throw new TypeError(`remove: "${path}" still has dependents (${names}); remove them first`);
    }
    this.run(() => {
      this.unregister(node);
      this.undo.push(() => this.register(node));
      this.touched.push(path);
      this.topology.push({ op: "remove", path });
    });
  }

  /**
   * `remove` + `addState` at `path` with the dependents kept: a new state node takes the old node's place in
   * the registry and in each dependent's deps (same id, so recompute order does not change), and the dependents
   * recompute from its value at the wave close. Undo puts the old node and the old deps back.
   */
  replaceState(path: string, initial: unknown, meta: unknown): void {
    const op = "replaceState";
    this.assertWritable(op);
    const old = this.node(path, op);
    const value = initial === undefined ? undefined : toFrozenJson(initial, `${op} "${path}" initial value`);
    const node = new GNode(old.id, path, "state", old.mount, [], undefined, this.checkMeta(meta, `${op} "${path}" meta`));
    const dependents = [...old.dependents];
    this.run(() => {
      this.unregister(old);
      this.register(node);
      for (const d of dependents) swapDep(d, old, node);
      this.undo.push(() => {
        for (const d of dependents) swapDep(d, node, old);
        this.unregister(node);
        this.register(old);
      });
      this.touched.push(path);
      this.topology.push({ op: "remove", path }, { op: "add", path });
      this.touch(node, true);
      node.createdStamp = ++this.stamp;
      if (value !== undefined) {
        node.value = value;
        node.status = "settled";
        node.writeStamp = node.createdStamp;
      }
      if (dependents.length > 0) this.reseeded.push(node);
    });
  }

  mount(path: string): void {
    this.assertWritable("mount");
    const parent = this.freeSlot(path, "mount");
    const rec = new MountRec(path, parent);
    const local = localName(path);
    this.run(() => {
      this.mounts.set(path, rec);
      parent.children.set(local, rec);
      this.undo.push(() => {
        this.mounts.delete(path);
        parent.children.delete(local);
      });
      this.topology.push({ op: "mount", path });
    });
  }

  unmount(path: string): void {
    this.assertWritable("unmount");
    const rec = this.mounts.get(path);
    if (rec === undefined) {
      if (this.nodes.has(path)) throw new TypeError(`unmount: "${path}" is a node; use remove`);
      throw new TypeError(`unmount: no mount at path "${path}" in graph "${this.name}"`);
    }
    const { mounts, nodes } = this.subtree(rec);
    for (const n of nodes) {
      for (const d of n.dependents) {
        if (!isInside(d.path, path)) {
          throw new TypeError(`unmount: "${d.path}" (outside "${path}") depends on "${n.path}"; remove it first`);
        }
      }
    }
    const parent = rec.parent as MountRec;
    const local = localName(path);
    this.run(() => {
      // The subtree's own records stay intact, so undo only has to re-link it.
      for (const n of nodes) this.unlink(n);
      for (const m of mounts) this.mounts.delete(m.path);
      parent.children.delete(local);
      this.undo.push(() => {
        parent.children.set(local, rec);
        for (const m of mounts) this.mounts.set(m.path, m);
        for (const n of nodes) this.link(n);
      });
      this.topology.push({ op: "unmount", path });
    });
  }

  /** Checks that `path` is free and its parent mount exists; returns the parent. */
  private freeSlot(path: string, op: string): MountRec {
    if (this.nodes.has(path)) throw new TypeError(`${op}: a node already exists at "${path}"`);
    if (this.mounts.has(path)) throw new TypeError(`${op}: a mount already exists at "${path}"`);
    const parent = this.mountAt(parentPath(path));
    if (parent === undefined) throw new TypeError(`${op}: parent mount "${parentPath(path)}" of "${path}" does not exist`);
    return parent;
  }

  private checkMeta(meta: unknown, what: string): Readonly<Record<string, JsonValue>> {
    if (meta === undefined) return EMPTY_META;
    const m = toFrozenJson(meta, what);
    if (typeof m !== "object" || m === null || Array.isArray(m)) throw new TypeError(`${what} must be a plain object`);
    return m;
  }

  private register(node: GNode): void {
    node.mount.nodes.add(node);
    this.link(node);
  }

  private unregister(node: GNode): void {
    node.mount.nodes.delete(node);
    this.unlink(node);
  }

  private link(node: GNode): void {
    this.nodes.set(node.path, node);
    node.alive = true;
    for (const d of node.deps) d.dependents.add(node);
  }

  private unlink(node: GNode): void {
    this.nodes.delete(node.path);
    node.alive = false;
    for (const d of node.deps) d.dependents.delete(node);
  }

  // ---- batches and waves ---------------------------------------------------------------------------------

  batch<T>(fn: () => T): T {
    this.assertWritable("batch");
    if (typeof fn !== "function") throw new TypeError("batch: fn must be a function");
    const outer = this.depth === 0;
    if (outer) this.epoch++;
    const undoMark = this.undo.length;
    const touchedMark = this.touched.length;
    const topologyMark = this.topology.length;
    this.depth++;
    let result: T;
    try {
      result = fn();
    } catch (err) {
      this.depth--;
      this.rollback(undoMark, touchedMark, topologyMark);
      throw err;
    }
    this.depth--;
    if (outer) this.commit();
    return result;
  }

  inBatch(): boolean {
    return this.depth > 0;
  }

  /** Runs one mutation: inside a batch it joins the batch, otherwise it is its own wave. */
  private run(fn: () => void): void {
    if (this.depth > 0) fn();
    else this.batch(fn);
  }

  private rollback(undoMark: number, touchedMark: number, topologyMark: number): void {
    while (this.undo.length > undoMark) (this.undo.pop() as () => void)();
    for (let i = this.touched.length - 1; i >= touchedMark; i--) {
      const t = this.touched[i];
      if (typeof t !== "string" && t !== undefined) t.touchEpoch = 0;
    }
    this.touched.length = touchedMark;
    this.topology.length = topologyMark;
  }

  private commit(): void {
    const epoch = this.epoch;
    const signals = new SignalList(epoch);
    const { seeds, forced } = this;
    this.busy = true;
    try {
      for (const t of this.touched) {
        if (typeof t === "string") {
          signals.teardown(t);
          continue;
        }
        if (!t.alive) continue;
        const sig = sourceSignal(t);
        const hadValue = t.waveStart !== undefined;
        t.waveStart = undefined; // do not keep old values alive between waves
        if (sig !== undefined) signals.add(t, sig);
        if (t.created) {
          // Created mid-wave from then-current dep values: recompute if a dep was written afterwards.
          if (t.kind === "effect" || (t.kind === "derived" && t.deps.some((d) => d.writeStamp > t.createdStamp))) {
            forced.push(t);
          }
        } else if (sig === "data" || (sig === "invalidate" && hadValue)) {
          seeds.push(t);
        }
      }
      // A rolled-back replacement is no longer alive (undo unregistered it).
      for (const n of this.reseeded) if (n.alive) seeds.push(n);
      propagate(seeds, forced, signals, epoch);
    } finally {
      this.busy = false;
      empty(this.reseeded);
      empty(this.touched);
      empty(this.undo);
      empty(seeds);
      empty(forced);
    }
    // Most waves change no topology: the shared empty array stands for it, and the core's array is kept.
    const topology = this.topology.length === 0 ? NO_TOPOLOGY : this.topology;
    if (topology !== NO_TOPOLOGY) this.topology = [];
    if (signals.entries.length === 0 && topology.length === 0) return;
    this.seq++;
    // The wave as built: each listener gets a frozen copy (`makeWave`) or, if it asked, this (see `observe`).
    if (this.listeners.length > 0) this.deliver({ seq: this.seq, signals: signals.entries, topology, cause: "user" });
  }

  /** Calls user code (derived/effect functions) with writes refused. */
  private callUser<T>(fn: () => T): T {
    const was = this.busy;
    this.busy = true;
    try {
      return fn();
    } finally {
      this.busy = was;
    }
  }

  private assertWritable(op: string): void {
    if (this.destroyed) throw new StorageError("closed", `${op}: graph "${this.name}" is destroyed`, { graph: this.name });
    if (this.busy) throw new TypeError(`${op}: the graph cannot be changed from inside a derived or effect function`);
  }

  // ---- observation and destroy ---------------------------------------------------------------------------

  /**
   * `unfrozen`: the listener gets the root's waves as the core built them, neither copied nor frozen (a public
   * listener's frozen copy costs ~0.1 µs per wave, most of it `Object.freeze`: docs/design.md §3.38). Internal
   * listeners only (attach), which read the wave during the call and neither keep nor change any part of it.
   * A listener under a mount prefix gets the scoped, frozen copy either way.
   */
  observe(prefix: string, fn: (wave: GraphWave) => void, unfrozen = false): () => void {
    if (typeof fn !== "function") throw new TypeError("observe: listener must be a function");
    if (this.destroyed) return () => {};
    const listener: Listener = { prefix, fn, active: true, unfrozen };
    this.listeners = [...this.listeners, listener];
    return () => {
      if (!listener.active) return;
      listener.active = false;
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  destroy(): void {
    if (this.destroyed) return;
    if (this.depth > 0 || this.busy) throw new TypeError("destroy: cannot destroy a graph inside a batch or a user function");
    this.destroyed = true;
    const paths = [...this.nodes.keys()].sort(compareCodePoints);
    this.seq++;
    const signals = paths.map((path): SignalEntry => ({ path, signal: "teardown" }));
    this.deliver({ seq: this.seq, signals, topology: NO_TOPOLOGY, cause: "destroy" });
  }

  /**
   * Queues a wave as the core built it; the outermost caller delivers the queue, so listener writes never nest.
   * The frozen copy public listeners get is made once per wave, and only when one of them is listening.
   */
  private deliver(wave: GraphWave): void {
    this.pending.push(wave);
    if (this.delivering) return;
    this.delivering = true;
    let failed = false;
    let error: unknown;
    try {
      for (let i = 0; i < this.pending.length; i++) {
        const w = this.pending[i] as GraphWave;
        let frozen: GraphWave | undefined;
        for (const l of this.listeners) {
          if (!l.active) continue;
          const view =
            l.prefix !== "" ? scopeWave(w, l.prefix)
            : l.unfrozen ? w
            : (frozen ??= makeWave(w.seq, w.signals, w.topology, w.cause));
          if (view === undefined) continue;
          try {
            l.fn(view);
          } catch (err) {
            if (!failed) {
              failed = true;
              error = err;
            }
          }
        }
      }
    } finally {
      empty(this.pending);
      this.delivering = false;
      if (this.destroyed) {
        for (const l of this.listeners) l.active = false;
        this.listeners = [];
      }
    }
    if (failed) throw error;
  }
}

/**
 * Empties `items`. Assigning `length` is a runtime call even on an empty array (~25 ns); popping the one or few
 * items a wave leaves is inlined, and every wave empties up to four of these arrays (docs/design.md §3.38).
 */
function empty(items: unknown[]): void {
  if (items.length > 8) items.length = 0;
  else while (items.length !== 0) items.pop();
}

/** The topology of a wave that changed none (most waves): one frozen array, not a fresh one per wave. */
const NO_TOPOLOGY: readonly TopologyChange[] = Object.freeze([]);

function makeWave(
  seq: number,
  signals: readonly SignalEntry[],
  topology: readonly TopologyChange[],
  cause: GraphWave["cause"],
): GraphWave {
  return Object.freeze({
    seq,
    signals: Object.freeze(signals.map((s) => Object.freeze({ path: s.path, signal: s.signal }))),
    topology: topology.length === 0 ? NO_TOPOLOGY : Object.freeze(topology.map((t) => Object.freeze({ op: t.op, path: t.path }))),
    cause,
  });
}

/** The part of a wave inside mount `prefix`, paths made relative; undefined when nothing is left. */
function scopeWave(wave: GraphWave, prefix: string): GraphWave | undefined {
  const signals: SignalEntry[] = [];
  for (const s of wave.signals) if (isInside(s.path, prefix)) signals.push({ path: relativeTo(s.path, prefix), signal: s.signal });
  const topology: TopologyChange[] = [];
  for (const t of wave.topology) if (isInside(t.path, prefix)) topology.push({ op: t.op, path: relativeTo(t.path, prefix) });
  if (signals.length === 0 && topology.length === 0 && wave.cause === "user") return undefined;
  return makeWave(wave.seq, signals, topology, wave.cause);
}

/** Points `dependent`'s dep `from` at `to` (the deps array is the node's own; its length never changes). */
function swapDep(dependent: GNode, from: GNode, to: GNode): void {
  const deps = dependent.deps as GNode[];
  for (let i = 0; i < deps.length; i++) if (deps[i] === from) deps[i] = to;
  from.dependents.delete(dependent);
  to.dependents.add(dependent);
}
