/** The graph storage tests' pair of tiers over one backend: a snapshot tier "snap" and a WAL tier "wal". */
import type { StorageBackend } from "../../src/backend/types.js";
import type { AttachPair, GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";

/** New tiers each call (a restore's, a second handle's), named as an attach of the tests writes them. */
export function namedPair(backend: StorageBackend): Required<AttachPair> {
  return {
    snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }),
    wal: kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec }),
  };
}
