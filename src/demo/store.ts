/** The demo's embedded store (a SQLite file under the data dir), its tier pair, and the graph digest. */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { StorageEngine, StoreSpec } from "../engine/index.js";
import type { AttachPair, GraphCheckpointRecord } from "../persistence/storage-types.js";
import type { JsonValue, ReactiveGraph } from "../graph/types.js";
import { walFrameCodec } from "../wal/codec.js";
import type { WALFrame } from "../wal/frame.js";

export const DB_FILE = "demo.db";

export function demoStore(dataDir: string): StoreSpec & { kind: "sqlite" } {
  return { kind: "sqlite", path: join(dataDir, DB_FILE) };
}

/** Engine proxies for the graph: baselines under the graph name, WAL frames sealed in the worker. */
export function enginePair(engine: StorageEngine, store: StoreSpec): Required<AttachPair> {
  return {
    snapshot: engine.snapshot<GraphCheckpointRecord>(store),
    wal: engine.kv<WALFrame>(store, { codec: walFrameCodec }),
  };
}

/** Creates the data dir if missing and removes a previous run's demo database (only the demo's own files). */
export function resetStore(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true });
  for (const suffix of ["", "-wal", "-shm"]) rmSync(join(dataDir, DB_FILE + suffix), { force: true });
}

/** Bytes on disk: the database file plus its SQLite WAL (if present). */
export function storeSizeBytes(dataDir: string): number {
  let n = 0;
  for (const suffix of ["", "-wal"]) {
    const p = join(dataDir, DB_FILE + suffix);
    if (existsSync(p)) n += statSync(p).size;
  }
  return n;
}

/**
 * SHA-256 over the graph's state: mounts, then per node (code-point path order) its kind, status and value in
 * key-sorted JSON. Equal digests mean equal graphs up to deps, which the code that builds the graph fixes. Reads
 * nodes one by one: a full canonical snapshot costs several times more on a graph of thousands of nodes.
 */
export function graphDigest(graph: ReactiveGraph): string {
  const hash = createHash("sha256").update(sortedJson(graph.mounts()));
  for (const path of graph.paths()) {
    const value = graph.get(path);
    hash.update(`${path}\t${String(graph.kindOf(path))}\t${graph.status(path)}\t${value === undefined ? "-" : sortedJson(value)}\n`);
  }
  return hash.digest("hex");
}

/** JSON with object keys sorted (values written by the app and values decoded from storage differ in key order). */
function sortedJson(value: JsonValue): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(",")}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${sortedJson(value[k] as JsonValue)}`).join(",")}}`;
}
