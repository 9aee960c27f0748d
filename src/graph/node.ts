/**
 * Internal node and mount records of the reactive graph (not exported from the package).
 * Layer 4 (graph).
 */
import type { JsonValue } from "../codec/types.js";
import type { DerivedFn, EffectFn, NodeKind, NodeStatus } from "./types.js";

export type NodeFn = DerivedFn | EffectFn;

/** A mount: the root ("" path) or a mounted subgraph. Its records stay intact when it is unmounted (undo). */
export class MountRec {
  readonly nodes = new Set<GNode>();
  readonly children = new Map<string, MountRec>();
  constructor(
    readonly path: string,
    readonly parent: MountRec | null,
  ) {}
}

/** One node. A class (not object literals) so every node has the same hidden shape. */
export class GNode {
  value: JsonValue | undefined = undefined;
  status: NodeStatus = "sentinel";
  alive = true;
  readonly dependents = new Set<GNode>();

  // Per-wave scratch. Epoch fields tie the others to one wave, so nothing is cleared between waves.
  /** Wave in which the node was first touched (written, invalidated or created). */
  touchEpoch = 0;
  /** Value when first touched in the wave (undefined for a node created in the wave). */
  waveStart: JsonValue | undefined = undefined;
  created = false;
  /** Global write counter at the last direct write; compared with a dependent's `createdStamp`. */
  writeStamp = 0;
  createdStamp = 0;
  visitEpoch = 0;
  inDeg = 0;
  dirty = false;
  sigEpoch = 0;
  sigIdx = 0;
  /**
   * The dep paths a root view's shared slice lists (frozen), made on first use: deps never change paths (a
   * replacement takes its predecessor's path), so every persisted wave need not map them again.
   */
  rootDeps: readonly string[] | undefined = undefined;

  constructor(
    /** Creation order; breaks ties in the topological drain so its order never depends on Set history. */
    readonly id: number,
    readonly path: string,
    readonly kind: NodeKind,
    readonly mount: MountRec,
    readonly deps: readonly GNode[],
    readonly fn: NodeFn | undefined,
    readonly meta: Readonly<Record<string, JsonValue>>,
  ) {}
}
