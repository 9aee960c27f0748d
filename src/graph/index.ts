/** Public surface of the graph model: the in-project reactive graph (no persistence; see src/persistence). */
export { createGraph } from "./graph.js";
export { MAX_GRAPH_VALUE_DEPTH } from "./json-utils.js";
export {
  SNAPSHOT_VERSION,
  type DerivedFn,
  type EffectFn,
  type Graph,
  type GraphPersistSnapshot,
  type GraphWave,
  type NodeKind,
  type NodeOptions,
  type NodeStatus,
  type ReactiveGraph,
  type SnapshotNodeSlice,
  type TopologyChange,
  type WaveSignal,
} from "./types.js";
