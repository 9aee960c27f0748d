/**
 * Which graphs a store holds. Reading one (its baseline and frames) is the library's stored-graph reader
 * (src/persistence/stored-graph.ts), the one restore uses, so no CLI command can read a graph differently.
 */
import { sortKeys } from "../backend/keys.js";
import { parseJsonBytes } from "../codec/json.js";
import { createGraph } from "../graph/graph.js";
import type { GraphPersistSnapshot, NodeKind } from "../graph/types.js";
import { applyBaselineToGraph } from "../persistence/apply.js";
import type { WALFrame } from "../wal/frame.js";
import { graphNameProblem, graphWalPrefix, hasWalFrameKeyShape, parseWalFrameKey, splitWalFrameKey, WAL_FRAME_SEQ_PAD, WAL_KEY_SEGMENT } from "../wal/keys.js";
import { readFrame, tailWaveGrew, type FrameKey, type StoredGraphSource } from "../persistence/stored-graph.js";
import type { CliBackend } from "./store.js";
import { isRecord } from "../base/records.js";

/**
 * The default of `--scan-limit`: values other than WAL frames up to this many bytes are read whole to find
 * baselines; larger ones are not read (docs/design.md §3.36). Not their head either: SQLite's substr loads the whole
 * value into its own heap, so a prefix read would cost what a whole read does there.
 */
export const DEFAULT_SCAN_LIMIT = 64 * 1024 * 1024;

/** "/wal/" and the 20 digits of a frame key. */
const FRAME_KEY_SUFFIX = 1 + WAL_KEY_SEGMENT.length + 1 + WAL_FRAME_SEQ_PAD;

export interface DiscoverOptions {
  /** A name no graph may have (see discoverGraphs). */
  onUnusable?: (name: string, problem: string) => void;
  /** Values larger than this are never read whole (default DEFAULT_SCAN_LIMIT). */
  scanLimit?: number;
  /**
   * A value over the scan limit, under a usable graph name with no WAL frames: it is not read, so a baseline there
   * (that graph) is not listed (`--graph NAME` still reads it); `bytes` is its size. A value under a name no graph
   * may have is no graph's baseline, so it is not reported (an append-log segment over the limit, say).
   */
  onUnclassified?: (key: string, bytes: number) => void;
}

/**
 * Every graph of the store, sorted: names with WAL frames, or with a checkpoint-like record under their own name.
 * A name no graph may have (empty, shaped like another record's key: docs/design.md §3.27) is not read as a graph,
 * whose reading would be another record's; `onUnusable` hears it and why. What it holds at once is bounded by the
 * scan limit: the other values' sizes are asked first and only those within it are read whole.
 */
export async function discoverGraphs(backend: CliBackend, opts: DiscoverOptions = {}): Promise<string[]> {
  const names = new Set<string>();
  const others: string[] = [];
  for (const key of await backend.list()) {
    const frame = splitWalFrameKey(key);
    if (frame !== undefined) names.add(frame.graphName);
    // A frame key whose seq is above 2^53 − 1: no frame to any reader, but its graph is listed, so verify names it.
    else if (hasWalFrameKeyShape(key)) names.add(key.slice(0, key.length - FRAME_KEY_SUFFIX));
    else others.push(key);
  }
  const candidates = others.filter((key) => !names.has(key));
  const sizes = candidates.length > 0 ? await backend.sizes(candidates) : [];
  const limit = opts.scanLimit ?? DEFAULT_SCAN_LIMIT;
  for (const [i, key] of candidates.entries()) {
    const size = sizes[i];
    if (size === undefined) continue; // deleted since the listing
    if (size > limit) {
      // Only a usable name can be a listed graph's; another key over the limit cannot hide one.
      if (graphNameProblem(key) === undefined) opts.onUnclassified?.(key, size);
    }
    else if (await looksLikeBaseline(backend, key)) names.add(key);
  }
  const usable: string[] = [];
  for (const name of names) {
    const problem = graphNameProblem(name);
    if (problem === undefined) usable.push(name);
    else opts.onUnusable?.(name, problem);
  }
  return sortKeys(usable);
}

/** True when the store holds a baseline or WAL frames for `name` (its value is never read: it may be huge). */
export async function graphExists(backend: CliBackend, name: string): Promise<boolean> {
  const prefix = graphWalPrefix(name);
  if ((await backend.sizes([name]))[0] !== undefined) return true;
  return (await backend.list(`${prefix}/`)).some((k) => parseWalFrameKey(prefix, k) !== undefined);
}

/**
 * What the store keeps under graph name `name`: `"nothing"`; `"graph"`, WAL frames of that name or a checkpoint-like
 * record under it (a broken one too: `import` is how a broken baseline is replaced); or `"other"`, a value that is
 * no graph's record (a kv tier's value under that key, say), which a command writing a baseline there would destroy
 * (docs/design.md §3.27). Reads the value whole only when there are no frames and something is there.
 */
export async function nameHolds(backend: CliBackend, name: string): Promise<"nothing" | "graph" | "other"> {
  const prefix = graphWalPrefix(name);
  if ((await backend.list(`${prefix}/`)).some((k) => parseWalFrameKey(prefix, k) !== undefined)) return "graph";
  if ((await backend.sizes([name]))[0] === undefined) return "nothing";
  return (await looksLikeBaseline(backend, name)) ? "graph" : "other";
}

/** A checkpoint record under its own graph name (it may still fail the reader's checks: verify says why). */
async function looksLikeBaseline(backend: CliBackend, key: string): Promise<boolean> {
  const bytes = await backend.read(key);
  // Cheap pre-check: records are JSON objects; most other values (segments, kv payloads) are not worth parsing.
  if (bytes === undefined || bytes[0] !== 0x7b) return false;
  try {
    const value = parseJsonBytes(bytes);
    return isRecord(value) && value.mode === "full" && value.name === key;
  } catch {
    return false;
  }
}

/**
 * Keys of `name`'s WAL shaped like frame keys (`<name>/wal/` + 20 digits) whose seq is above 2^53 − 1: no reader of
 * ours reads them (parseWalFrameKey refuses the seq, so restore ignores them), so the CLI names them instead of
 * hiding them (docs/design.md §3.36). Sorted, which for 20 digits is numeric order.
 */
export async function outOfRangeFrameKeys(source: StoredGraphSource, name: string): Promise<string[]> {
  const prefix = graphWalPrefix(name);
  const keys = await source.list(`${prefix}/`);
  return sortKeys(keys.filter((key) => hasWalFrameKeyShape(key) && key.length === name.length + FRAME_KEY_SUFFIX && parseWalFrameKey(prefix, key) === undefined));
}

/**
 * `keys` (a listing of `name`'s frames, in seq order) without its last wave when that wave was caught in part: a file
 * store's batch renames its frames into place one by one, so a listing made meanwhile ends in a wave the writer never
 * left half-written (docs/design.md §3.36). Restore and followers settle the same way (stored-graph.ts
 * `tailWaveGrew`); only sources whose batches show one key at a time need it. `inFlight`: how many listed frames were
 * left out.
 */
export async function wholeWaves(source: StoredGraphSource, name: string, keys: readonly FrameKey[]): Promise<{ keys: FrameKey[]; inFlight: number }> {
  const last = keys[keys.length - 1];
  if (source.settle === undefined || last === undefined) return { keys: [...keys], inFlight: 0 };
  const tail = await readFrame(source, last);
  if (!tail.ok || !(await tailWaveGrew(source, name, tail.frame))) return { keys: [...keys], inFlight: 0 };
  // The wave's frames have consecutive seqs and one frame_t_ns: walk back over those listed.
  let end = keys.length - 1;
  while (end > 0 && (keys[end - 1] as FrameKey).seq === (keys[end] as FrameKey).seq - 1) {
    const before = await readFrame(source, keys[end - 1] as FrameKey);
    if (!before.ok || String(before.frame.frame_t_ns) !== String(tail.frame.frame_t_ns)) break;
    end--;
  }
  return { keys: keys.slice(0, end), inFlight: keys.length - end };
}

/** `kind` of a graph payload (`node.set`, `graph.add`…), or "?" for foreign payloads. */
export function changeKind(frame: WALFrame): string {
  const payload = frame.change.change;
  return isRecord(payload) && typeof payload.kind === "string" ? payload.kind : "?";
}

const NODE_KINDS: ReadonlySet<string> = new Set<NodeKind>(["state", "derived", "effect"]);

/**
 * Why no graph can restore `snapshot` as its baseline, whatever its code builds, or undefined. Restore applies a
 * baseline to a graph of its name (mounts parents first, then the state nodes; derived and effect nodes are the
 * code's), so a graph name createGraph refuses (`a::b`), a node path it refuses (`a::`, `__meta__`), a node under a
 * mount the snapshot does not list, or a mount where a node is fail every restore (phase-failed), and a node of a
 * type no code builds fails it too (derived-mismatch). The same application on an empty graph finds them; O(graph).
 */
export function unrestorableSnapshot(snapshot: GraphPersistSnapshot): string | undefined {
  for (const [path, slice] of Object.entries(snapshot.nodes)) {
    if (!NODE_KINDS.has(slice.type)) return `node ${JSON.stringify(path)} is of type ${JSON.stringify(slice.type)}, not state, derived or effect`;
  }
  try {
    const probe = createGraph(snapshot.name);
    try {
      probe.batch(() => applyBaselineToGraph(probe, snapshot));
    } finally {
      probe.destroy();
    }
    return undefined;
  } catch (err) {
    return `restore would fail phase-failed: ${err instanceof Error ? err.message : String(err)}`;
  }
}
