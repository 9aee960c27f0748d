/**
 * The attach fault tests' subject: graph "g" with one state node `a`, attached over one pair of tiers of a store the
 * test makes fail (a memory store behind the test wrapper, a file store, an engine store), and the waves that fill
 * its WAL tier. One setup here, so that each test file shows only the fault it drives.
 */
import type { StorageBackend } from "../../src/backend/types.js";
import type { JsonValue } from "../../src/codec/types.js";
import type { StorageEngine } from "../../src/engine/engine.js";
import type { StoreSpec } from "../../src/engine/protocol.js";
import { createGraph } from "../../src/graph/graph.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { AttachPair, GraphCheckpointRecord, StorageHandle } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";

/** Retries a test can wait for: a failing store is tried again within milliseconds, not seconds. */
export const FAST_RETRY = { retry: { initialMs: 5, maxMs: 20 } };

/**
 * A WAL tier and a snapshot tier of `b`, both with FAST_RETRY. `maxPendingBytes` bounds the WAL tier (fill() then
 * fills it past 2,000); `wal: false` leaves the WAL tier out (every wave a baseline).
 */
export function backendPair(b: StorageBackend, opts: { maxPendingBytes?: number; wal?: boolean } = {}): AttachPair {
  const snapshot = (): AttachPair["snapshot"] => snapshotStorage<GraphCheckpointRecord>(b, FAST_RETRY);
  if (opts.wal === false) return { snapshot: snapshot() };
  const { maxPendingBytes } = opts;
  const wal = kvStorage<WALFrame>(b, { codec: walFrameCodec, ...FAST_RETRY, ...(maxPendingBytes === undefined ? {} : { maxPendingBytes }) });
  return { snapshot: snapshot(), wal };
}

/** The same pair over an engine store; `opts` go to both tiers (FAST_RETRY, for one). */
export function enginePair(engine: StorageEngine, spec: StoreSpec, opts: { retry?: { initialMs: number; maxMs: number } } = {}): AttachPair {
  return { snapshot: engine.snapshot<GraphCheckpointRecord>(spec, opts), wal: engine.kv<WALFrame>(spec, { codec: walFrameCodec, ...opts }) };
}

export interface GraphA {
  readonly g: ReactiveGraph;
  readonly h: StorageHandle;
  /** Sets 50 values of ~200 bytes on `a`: more than a WAL tier bounded at 2,000 bytes holds. */
  fill(): void;
}

/**
 * Graph `name` (default "g") with node `a` at `initial` (default ""), attached over `pairs` (one pair, or several: a
 * WAL group); onError ignores by default.
 */
export function attachA(
  pairs: AttachPair | readonly AttachPair[],
  opts: { name?: string; initial?: JsonValue; onError?: (err: unknown) => void } = {},
): GraphA {
  const g = createGraph(opts.name ?? "g");
  g.state("a", opts.initial ?? "");
  const h = attachSnapshotStorage(g, Array.isArray(pairs) ? [...pairs] : [pairs as AttachPair], { onError: opts.onError ?? (() => {}) });
  const fill = (): void => {
    for (let v = 1; v <= 50; v++) g.set("a", "x".repeat(200) + v);
  };
  return { g, h, fill };
}
