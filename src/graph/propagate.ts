/**
 * Wave settlement: per-node signal bookkeeping, (re)computation of derived/effect nodes, and the topological
 * drain over only the part of the graph reachable from what changed (Kahn over dependents), so a write costs
 * O(affected nodes), never O(graph).
 * Layer 4 (graph).
 */
import type { JsonValue } from "../codec/types.js";
import { jsonEqual, toFrozenJson } from "./json-utils.js";
import type { GNode } from "./node.js";
import type { DerivedFn, EffectFn, WaveSignal } from "./types.js";

export interface SignalEntry {
  path: string;
  signal: WaveSignal;
}

/** The entries of a wave with no signal yet: never pushed to (`SignalList.push` replaces it first). */
const NO_ENTRIES: SignalEntry[] = [];
Object.freeze(NO_ENTRIES);

/** Signals of one wave, at most one entry per live node (teardowns are separate: the path may be re-added). */
export class SignalList {
  /**
   * Read once the wave is settled. Started by a one-item literal: most waves carry one signal, and a push into
   * an empty array reserves 17 slots (~130 bytes a wave more).
   */
  entries: SignalEntry[] = NO_ENTRIES;
  constructor(private readonly epoch: number) {}

  teardown(path: string): void {
    this.push({ path, signal: "teardown" });
  }

  private push(entry: SignalEntry): void {
    if (this.entries === NO_ENTRIES) this.entries = [entry];
    else this.entries.push(entry);
  }

  /** Later signals replace earlier ones, except that `resolved` never hides a real change. */
  add(node: GNode, signal: WaveSignal): void {
    if (node.sigEpoch === this.epoch) {
      const entry = this.entries[node.sigIdx];
      if (entry !== undefined && (signal !== "resolved" || entry.signal === "resolved")) entry.signal = signal;
      return;
    }
    node.sigEpoch = this.epoch;
    node.sigIdx = this.entries.length;
    this.push({ path: node.path, signal });
  }
}

/**
 * Signal of a node written, invalidated or created during the wave, from its state at wave start and now.
 * A node created without a value reports nothing (its topology `add` says it all).
 */
export function sourceSignal(node: GNode): WaveSignal | undefined {
  const now = node.value;
  if (node.created) {
    if (now !== undefined) return "data";
    return node.status === "errored" ? "error" : undefined;
  }
  if (now === undefined) return "invalidate";
  if (node.waveStart === undefined) return "data";
  return jsonEqual(node.waveStart, now) ? "resolved" : "data";
}

/**
 * Recomputes a derived or effect node from its deps. Returns true when its value changed (dependents must be
 * recomputed). `signals` is null for the eager computation at creation, whose signal comes from `sourceSignal`.
 * The caller marks the graph busy so user functions cannot write.
 */
export function recompute(node: GNode, signals: SignalList | null): boolean {
  const args = depValues(node);
  if (args === undefined) {
    if (node.value === undefined && node.status === "sentinel") return false;
    const had = node.value !== undefined;
    node.value = undefined;
    node.status = "sentinel";
    signals?.add(node, "invalidate");
    return had;
  }
  if (node.kind === "effect") {
    try {
      (node.fn as EffectFn)(...args);
      node.status = "settled";
      signals?.add(node, "resolved");
    } catch {
      node.status = "errored";
      signals?.add(node, "error");
    }
    return false;
  }
  let next: JsonValue;
  try {
    next = toFrozenJson((node.fn as DerivedFn)(...args), `result of derived "${node.path}"`);
  } catch {
    // Errors live in `status` only (docs/graph-model.md §5.4); the last value is kept. A result storage could
    // not store (toFrozenJson applies the codec's rule) errors the node the same way: it never reaches a tier.
    node.status = "errored";
    signals?.add(node, "error");
    return false;
  }
  node.status = "settled";
  if (node.value !== undefined && jsonEqual(node.value, next)) {
    signals?.add(node, "resolved");
    return false;
  }
  node.value = next;
  signals?.add(node, "data");
  return true;
}

function depValues(node: GNode): JsonValue[] | undefined {
  const deps = node.deps;
  const out = new Array<JsonValue>(deps.length);
  for (let i = 0; i < deps.length; i++) {
    const v = (deps[i] as GNode).value;
    if (v === undefined) return undefined;
    out[i] = v;
  }
  return out;
}

/**
 * Settles a wave: `seeds` changed value (their dependents are dirty), `forced` must be recomputed themselves.
 * Every node reachable from them is ordered topologically; each dirty one is recomputed exactly once.
 */
export function propagate(seeds: readonly GNode[], forced: readonly GNode[], signals: SignalList, epoch: number): void {
  if (forced.length !== 0 || !noDependents(seeds)) settle(seeds, forced, signals, epoch);
}

/** `propagate`'s walk, apart so a wave with nothing to recompute does not allocate its closure's context. */
function settle(seeds: readonly GNode[], forced: readonly GNode[], signals: SignalList, epoch: number): void {
  const order: GNode[] = [];
  const visit = (n: GNode): void => {
    if (n.visitEpoch === epoch) return;
    n.visitEpoch = epoch;
    n.inDeg = 0;
    n.dirty = false;
    order.push(n);
  };
  for (const s of seeds) {
    for (const d of s.dependents) {
      visit(d);
      d.dirty = true;
    }
  }
  for (const f of forced) {
    visit(f);
    f.dirty = true;
  }
  // `order` grows while scanned: a breadth-first closure over dependents.
  for (let i = 0; i < order.length; i++) for (const d of (order[i] as GNode).dependents) visit(d);
  if (order.length === 0) return;

  for (const n of order) for (const d of n.dependents) d.inDeg++;
  const ready = new ReadyHeap();
  for (const n of order) if (n.inDeg === 0) ready.push(n);
  for (let n = ready.pop(); n !== undefined; n = ready.pop()) {
    if (n.dirty) {
      n.dirty = false;
      if (recompute(n, signals)) for (const d of n.dependents) d.dirty = true;
    }
    for (const d of n.dependents) if (--d.inDeg === 0) ready.push(d);
  }
}

/** True when no seed has a dependent: most waves write leaves, and walking an empty Set still makes an iterator. */
function noDependents(seeds: readonly GNode[]): boolean {
  for (let i = 0; i < seeds.length; i++) if ((seeds[i] as GNode).dependents.size !== 0) return false;
  return true;
}

/**
 * Min-heap of ready nodes by creation id. Dependents live in Sets whose iteration order changes when a batch
 * rollback re-inserts an edge; picking the oldest ready node keeps recompute (and signal) order a function of
 * the graph alone.
 */
class ReadyHeap {
  private readonly items: GNode[] = [];

  push(node: GNode): void {
    const a = this.items;
    let i = a.push(node) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = a[parent] as GNode;
      if (p.id <= node.id) break;
      a[i] = p;
      i = parent;
    }
    a[i] = node;
  }

  pop(): GNode | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (top === undefined || last === undefined || a.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= a.length) break;
      const r = l + 1;
      const child = r < a.length && (a[r] as GNode).id < (a[l] as GNode).id ? r : l;
      if ((a[child] as GNode).id >= last.id) break;
      a[i] = a[child] as GNode;
      i = child;
    }
    a[i] = last;
    return top;
  }
}
