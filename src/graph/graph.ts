/**
 * The in-project reactive graph (docs/graph-model.md §5.4): `createGraph(name)` returns the root view; `subgraph(path)`
 * returns views of mounted children. A view only translates relative paths to root-qualified ones; all state
 * and scheduling lives in the shared GraphCore.
 * Layer 4 (graph): may import src/codec (types and the value rule) and src/errors only.
 */
import { GraphCore } from "./core.js";
import { buildSnapshot, describeSlice, relativeSorted } from "./describe.js";
import { assertStorable, cloneJson } from "./json-utils.js";
import type { GNode, MountRec, NodeFn } from "./node.js";
import { checkGraphName, isInside, joinPath, localName, PATH_SEP, relativeTo, splitPath } from "./paths.js";
import type {
  DerivedFn,
  EffectFn,
  GraphPersistSnapshot,
  GraphWave,
  JsonValue,
  NodeKind,
  NodeOptions,
  NodeStatus,
  ReactiveGraph,
  SnapshotNodeSlice,
} from "./types.js";

/**
 * Internal (attach, not exported from the package): `graph[observeUnfrozen](listener)` is `observe`, except that a
 * root graph's waves reach the listener as the core built them, not frozen copies (docs/design.md §3.38). The
 * listener reads the wave during the call only: it keeps and changes no part of it.
 */
export const observeUnfrozen: unique symbol = Symbol("graphrefly.observeUnfrozen");

/**
 * Creates an empty root graph. Name: non-empty, no `::`, not `__meta__` (TypeError otherwise), and a string the
 * codec can store (CodecError otherwise: names are written into baselines, frames and keys).
 */
export function createGraph(name: string): ReactiveGraph {
  checkGraphName(name);
  assertStorable(name, "graph name");
  return new GraphView(new GraphCore(name), "");
}

class GraphView implements ReactiveGraph {
  readonly name: string;

  constructor(
    private readonly core: GraphCore,
    /** Root-qualified mount path of this view; "" for the root. */
    private readonly prefix: string,
  ) {
    this.name = prefix === "" ? core.name : localName(prefix);
  }

  // ---- path translation ----------------------------------------------------------------------------------

  /** Validated root-qualified path for an argument that names something to create or look up. */
  private abs(path: unknown, arg: string): string {
    splitPath(path, arg);
    assertStorable(path, arg); // paths are persisted (snapshot keys, frame paths) like values
    return joinPath(this.prefix, path as string);
  }

  /** Root-qualified path for queries: no validation beyond the type (invalid paths simply match nothing). */
  private key(path: unknown, op: string): string {
    if (typeof path !== "string") throw new TypeError(`${op}: path must be a string`);
    return joinPath(this.prefix, path);
  }

  private rec(op: string): MountRec {
    const rec = this.core.mountAt(this.prefix);
    if (rec === undefined) throw new TypeError(`${op}: subgraph "${this.prefix}" is no longer mounted`);
    return rec;
  }

  // ---- Graph ---------------------------------------------------------------------------------------------

  snapshot(): GraphPersistSnapshot {
    return buildSnapshot(this.core, this.name, this.rec("snapshot"));
  }

  describeNode(path: string, mode: "copy" | "shared" = "copy"): SnapshotNodeSlice | undefined {
    const node = this.core.nodes.get(this.key(path, "describeNode"));
    if (node === undefined) return undefined;
    return mode === "shared" ? sharedSlice(node, this.prefix) : describeSlice(node, this.prefix);
  }

  paths(): string[] {
    const { nodes } = this.core.subtree(this.rec("paths"));
    return relativeSorted(nodes.map((n) => n.path), this.prefix);
  }

  mounts(): string[] {
    const { mounts } = this.core.subtree(this.rec("mounts"));
    return relativeSorted(mounts.slice(1).map((m) => m.path), this.prefix);
  }

  observe(listener: (wave: GraphWave) => void): () => void {
    this.rec("observe");
    return this.core.observe(this.prefix, listener);
  }

  [observeUnfrozen](listener: (wave: GraphWave) => void): () => void {
    this.rec("observe");
    return this.core.observe(this.prefix, listener, true);
  }

  batch<T>(fn: () => T): T {
    this.rec("batch");
    return this.core.batch(fn);
  }

  inBatch(): boolean {
    return this.core.inBatch(); // views share the root's batch
  }

  kindOf(path: string): NodeKind | undefined {
    return this.core.nodes.get(this.key(path, "kindOf"))?.kind;
  }

  hasMount(path: string): boolean {
    return this.core.mounts.has(this.key(path, "hasMount"));
  }

  set(path: string, value: JsonValue): void {
    this.core.set(this.key(path, "set"), value);
  }

  invalidate(path: string): void {
    this.core.invalidate(this.key(path, "invalidate"));
  }

  addState(path: string, initial?: JsonValue, meta?: Record<string, JsonValue>): void {
    this.add("state", path, [], undefined, initial, meta);
  }

  remove(path: string): void {
    this.core.remove(this.key(path, "remove"));
  }

  replaceState(path: string, initial?: JsonValue, meta?: Record<string, JsonValue>): void {
    this.core.replaceState(this.key(path, "replaceState"), initial, meta);
  }

  mount(path: string): void {
    this.rec("mount");
    this.core.mount(this.abs(path, "mount path"));
  }

  unmount(path: string): void {
    this.core.unmount(this.key(path, "unmount"));
  }

  // ---- ReactiveGraph -------------------------------------------------------------------------------------

  state(name: string, initial?: JsonValue, opts?: NodeOptions): string {
    return this.add("state", name, [], undefined, initial, opts?.meta);
  }

  derived(name: string, deps: string[], fn: DerivedFn, opts?: NodeOptions): string {
    return this.add("derived", name, deps, fn, undefined, opts?.meta);
  }

  effect(name: string, deps: string[], fn: EffectFn, opts?: NodeOptions): string {
    return this.add("effect", name, deps, fn, undefined, opts?.meta);
  }

  get(path: string): JsonValue | undefined {
    const value = this.core.node(this.key(path, "get"), "get").value;
    return value === undefined ? undefined : cloneJson(value);
  }

  status(path: string): NodeStatus {
    return this.core.node(this.key(path, "status"), "status").status;
  }

  subgraph(path: string): ReactiveGraph {
    const abs = this.abs(path, "subgraph path");
    if (!this.core.mounts.has(abs)) throw new TypeError(`subgraph: no mount at path "${path}"`);
    return new GraphView(this.core, abs);
  }

  destroy(): void {
    if (this.prefix === "") this.core.destroy();
    else this.core.unmount(this.prefix);
  }

  private add(
    kind: NodeKind,
    path: string,
    deps: unknown,
    fn: NodeFn | undefined,
    initial: unknown,
    meta: unknown,
  ): string {
    this.rec(`add ${kind}`);
    const abs = this.abs(path, `${kind} name`);
    if (!Array.isArray(deps)) throw new TypeError(`${kind} "${path}": deps must be an array of paths`);
    const depPaths = deps.map((d: unknown) => this.abs(d, `${kind} "${path}" dep`));
    this.core.addNode(abs, kind, depPaths, fn, initial, meta);
    return path;
  }
}

/**
 * `describeSlice` without the deep copies, for `describeNode(path, "shared")`: the node's value and meta are
 * frozen private copies (toFrozenJson) that writes replace and never change, so they can be handed out as they are.
 * Same keys in the same order as `describeSlice`.
 */
function sharedSlice(node: GNode, prefix: string): SnapshotNodeSlice {
  const deps =
    prefix === ""
      ? (node.rootDeps ??= Object.freeze(node.deps.map((d) => d.path)))
      : node.deps.map((d) => (isInside(d.path, prefix) ? relativeTo(d.path, prefix) : PATH_SEP + d.path));
  // Frozen deps (root view): the caller of a shared slice changes no part of it.
  return node.value === undefined
    ? new SentinelSlice(node.kind, deps, node.status, node.meta, true)
    : new ValueSlice(node.kind, deps, node.status, node.meta, node.value);
}

/** `new` of one of the two constructors below: a plain object (Object.prototype) of a shared slice's keys. */
type SliceConstructor = new (
  type: NodeKind,
  deps: readonly string[],
  status: NodeStatus,
  meta: Readonly<Record<string, JsonValue>>,
  last: JsonValue,
) => SnapshotNodeSlice;

/**
 * A shared slice is made by `new` of a function whose `prototype` is Object.prototype, not by an object literal: the
 * same plain object (same keys in the same order, Object.prototype, all five in the object itself once V8's slack
 * tracking has seen a few), but with no allocation site. V8 counts a literal's objects that a scavenge finds alive
 * and, past 85 %, allocates that literal's objects in old space from then on (pretenuring); the mirror keeps each
 * node's slice for a round, so in some runs the slice literal was pretenured, and every dead slice in old space then
 * kept its value (young) alive through the old-to-new remembered set for two scavenges: every value was promoted
 * (design §3.54). One constructor per shape, as the literals were (§3.47: a fifth key added later went out of object).
 */
const ValueSlice = function (this: Record<string, unknown>, type: unknown, deps: unknown, status: unknown, meta: unknown, value: unknown) {
  this.type = type;
  this.deps = deps;
  this.status = status;
  this.meta = meta;
  this.value = value;
} as unknown as SliceConstructor;
const SentinelSlice = function (this: Record<string, unknown>, type: unknown, deps: unknown, status: unknown, meta: unknown, sentinel: unknown) {
  this.type = type;
  this.deps = deps;
  this.status = status;
  this.meta = meta;
  this.sentinel = sentinel;
} as unknown as SliceConstructor;
ValueSlice.prototype = Object.prototype;
SentinelSlice.prototype = Object.prototype;
