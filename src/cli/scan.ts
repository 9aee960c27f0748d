/**
 * Which graphs a store holds. Reading one (its baseline and frames) is the library's stored-graph reader
 * (src/persistence/stored-graph.ts), the one restore uses, so no CLI command can read a graph differently.
 */
import { sortKeys } from "../backend/keys.js";
import { parseJsonBytes } from "../codec/json.js";
import type { WALFrame } from "../wal/frame.js";
import { graphWalPrefix, parseWalFrameKey, splitWalFrameKey } from "../wal/keys.js";
import type { CliBackend } from "./store.js";
import { isRecord } from "../base/records.js";

/** Every graph of the store, sorted: names with WAL frames, or with a checkpoint-like record under their own name. */
export async function discoverGraphs(backend: CliBackend): Promise<string[]> {
  const names = new Set<string>();
  const others: string[] = [];
  for (const key of await backend.list()) {
    const frame = splitWalFrameKey(key);
    if (frame !== undefined) names.add(frame.graphName);
    else others.push(key);
  }
  for (const key of others) if (!names.has(key) && (await looksLikeBaseline(backend, key))) names.add(key);
  return sortKeys(names);
}

/** True when the store holds a baseline or WAL frames for `name`. */
export async function graphExists(backend: CliBackend, name: string): Promise<boolean> {
  const prefix = graphWalPrefix(name);
  if ((await backend.read(name)) !== undefined) return true;
  return (await backend.list(`${prefix}/`)).some((k) => parseWalFrameKey(prefix, k) !== undefined);
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

/** `kind` of a graph payload (`node.set`, `graph.add`…), or "?" for foreign payloads. */
export function changeKind(frame: WALFrame): string {
  const payload = frame.change.change;
  return isRecord(payload) && typeof payload.kind === "string" ? payload.kind : "?";
}
