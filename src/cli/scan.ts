/**
 * Reading a store the way restore does, but without trusting it: graph discovery, the baseline record, and
 * every WAL frame as stored (decoded when possible, checksum checked). Nothing here writes.
 */
import { sortKeys } from "../backend/keys.js";
import { parseJsonBytes } from "../codec/json.js";
import { isSlice } from "../graph/apply.js";
import type { GraphCheckpointRecord } from "../graph/storage-types.js";
import { SNAPSHOT_VERSION } from "../graph/types.js";
import { WAL_FRAME_SEQ_PAD, graphWalPrefix, parseWalFrameKey } from "../wal/keys.js";
import { walFrameCodec } from "../wal/codec.js";
import { verifyWalFrameChecksum } from "../wal/checksum.js";
import type { WALFrame } from "../wal/frame.js";
import type { CliBackend } from "./store.js";

/** `<name>/wal/<20 digits>`: the graph name is everything before the last `/wal/`. */
const WAL_KEY = /^([\s\S]*)\/wal\/\d{20}$/;

export type BaselineRead =
  | { readonly state: "missing" }
  | { readonly state: "invalid"; readonly reason: string; readonly bytes: number }
  | { readonly state: "ok"; readonly record: GraphCheckpointRecord; readonly bytes: number };

export type FrameRead =
  | {
      readonly ok: true;
      readonly key: string;
      /** frame_seq encoded in the key. */
      readonly seq: number;
      readonly bytes: number;
      readonly frame: WALFrame;
      readonly checksumOk: boolean;
    }
  | { readonly ok: false; readonly key: string; readonly seq: number; readonly bytes: number; readonly error: string; readonly raw: Uint8Array };

export interface GraphKeys {
  readonly name: string;
  /** WAL frame keys in ascending seq order. */
  readonly frameKeys: readonly string[];
}

/** Every graph of the store: names with a baseline record under their own name, or with WAL frames. */
export function discoverGraphs(backend: CliBackend): GraphKeys[] {
  const frames = new Map<string, string[]>();
  const others = new Set<string>();
  for (const key of backend.list()) {
    const m = WAL_KEY.exec(key);
    const name = m?.[1];
    if (name !== undefined && parseWalFrameKey(graphWalPrefix(name), key) !== undefined) {
      const list = frames.get(name) ?? [];
      list.push(key);
      frames.set(name, list);
    } else {
      others.add(key);
    }
  }
  const names = new Set(frames.keys());
  for (const key of others) if (looksLikeBaseline(backend, key)) names.add(key);
  return sortKeys(names).map((name) => ({ name, frameKeys: frames.get(name) ?? [] }));
}

/** The seq of a frame key from `GraphKeys.frameKeys` (already checked: exactly 20 trailing digits, a safe integer). */
export function frameKeySeq(key: string): number {
  return Number(key.slice(-WAL_FRAME_SEQ_PAD));
}

/** One graph's keys; undefined when the store holds nothing for it. */
export function graphKeys(backend: CliBackend, name: string): GraphKeys | undefined {
  const prefix = graphWalPrefix(name);
  const frameKeys = backend.list(prefix + "/").filter((k) => parseWalFrameKey(prefix, k) !== undefined);
  return frameKeys.length === 0 && backend.read(name) === undefined ? undefined : { name, frameKeys };
}

/** A checkpoint record under its own graph name (it may still fail restore's checks: verify says why). */
function looksLikeBaseline(backend: CliBackend, key: string): boolean {
  const bytes = backend.read(key);
  // Cheap pre-check: records are JSON objects; most other values (segments, kv payloads) are not worth parsing.
  if (bytes === undefined || bytes[0] !== 0x7b) return false;
  try {
    const value = parseJsonBytes(bytes);
    return isRecord(value) && value.mode === "full" && value.name === key;
  } catch {
    return false;
  }
}

/** The baseline record stored under the graph name (docs/design.md §3.6), checked the way restore checks it. */
export function readBaseline(backend: CliBackend, name: string): BaselineRead {
  const bytes = backend.read(name);
  if (bytes === undefined || bytes.byteLength === 0) return { state: "missing" };
  let value: unknown;
  try {
    value = parseJsonBytes(bytes);
  } catch (err) {
    return { state: "invalid", reason: (err as Error).message, bytes: bytes.byteLength };
  }
  const reason = baselineProblem(value, name);
  return reason === undefined
    ? { state: "ok", record: value as GraphCheckpointRecord, bytes: bytes.byteLength }
    : { state: "invalid", reason, bytes: bytes.byteLength };
}

/** The checks restore applies to a baseline (docs/protocol.md §7.6.2 phase 1), as a reason instead of a throw. */
function baselineProblem(value: unknown, name: string): string | undefined {
  if (!isRecord(value)) return "not a JSON object";
  if (value.mode !== "full") return `mode must be "full", got ${JSON.stringify(value.mode) ?? "nothing"}`;
  if (value.name !== name) return `it belongs to graph ${JSON.stringify(value.name) ?? "nothing"}`;
  if (!Number.isSafeInteger(value.seq) || (value.seq as number) < 0) return "seq must be a non-negative integer";
  const snap = value.snapshot;
  if (!isRecord(snap) || !isRecord(snap.nodes) || !Array.isArray(snap.subgraphs)) return "its snapshot is malformed";
  if (value.format_version !== SNAPSHOT_VERSION || snap.version !== SNAPSHOT_VERSION) {
    return `format_version ${String(value.format_version)} / snapshot version ${String(snap.version)}; this build reads ${SNAPSHOT_VERSION}`;
  }
  if (!snap.subgraphs.every((m) => typeof m === "string") || !Object.values(snap.nodes).every(isSlice)) {
    return "its snapshot has malformed nodes or subgraphs";
  }
  return undefined;
}

/** Reads, decodes and checksums the frames under `keys`, one at a time (a store's WAL may not fit in memory). */
export function* readFrames(backend: CliBackend, graph: string, keys: readonly string[]): Generator<FrameRead> {
  const prefix = graphWalPrefix(graph);
  for (const key of keys) {
    const seq = parseWalFrameKey(prefix, key);
    if (seq === undefined) continue;
    const raw = backend.read(key);
    if (raw === undefined) continue; // deleted since listing (only possible without the lock)
    try {
      const frame = walFrameCodec.decode(raw);
      yield { ok: true, key, seq, bytes: raw.byteLength, frame, checksumOk: verifyWalFrameChecksum(frame) };
    } catch (err) {
      yield { ok: false, key, seq, bytes: raw.byteLength, error: (err as Error).message, raw };
    }
  }
}

/** `kind` of a graph payload (`node.set`, `graph.add`…), or "?" for foreign payloads. */
export function changeKind(frame: WALFrame): string {
  const payload = frame.change.change;
  return isRecord(payload) && typeof payload.kind === "string" ? payload.kind : "?";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
