/** Review of dead-frame reclaim: a WAL refusal after frames were reclaimed finds the gap above them, not at a reclaimed seq. */
import { expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { CodecError } from "../../src/errors.js";
import { attachSnapshotStorage } from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { buildGraph, inlinePair, restoredSnapshot, storedBaseline, storedFrameSeqs } from "../graph-compaction/fixtures.js";

it("a WAL refusal after a reclaim: what survives, and which seq is reported", async () => {
  const backend = memoryBackend();
  let refuseAt = -1;
  const codec = { ...walFrameCodec, name: "wal-refusing", encode(f: WALFrame) {
    if (f.frame_seq === refuseAt) throw new CodecError("encode-failed", `frame ${f.frame_seq} refused`);
    return walFrameCodec.encode(f);
  } };
  const snapshot = snapshotStorage<GraphCheckpointRecord>(backend);
  const wal = kvStorage<WALFrame>(backend, { codec: codec as never });
  const graph = buildGraph();
  const handle = attachSnapshotStorage(graph, [{ snapshot, wal }], { onError: () => {} });
  await handle.flush(); // the last flush(): everything after is paced by drained() only
  const valueAt = new Map<number, string>();
  for (let i = 0; i < 400; i++) {
    const v = `${"payload ".repeat(75)}${i}`;
    graph.set("c", v);
    await Promise.resolve();
    valueAt.set(handle.seq, v);
    if (i % 50 === 49) await handle.drained();
  }
  await new Promise((r) => setTimeout(r, 100)); // periodic baselines written, reclaim ran
  const baselineSeq = (await storedBaseline(backend)).seq;
  refuseAt = handle.seq + 20;
  for (let i = 0; i < 40; i++) {
    const v = `after ${i}`;
    graph.set("c", v);
    await Promise.resolve();
    valueAt.set(handle.seq, v);
  }
  const err = await handle.flush().then(() => undefined, (e: unknown) => e as { code: string; details?: { seq?: number } });
  const restored = (await restoredSnapshot(inlinePair(backend))) as { nodes: Record<string, { value?: unknown }> };
  const restoredValue = restored.nodes["c"]?.value;
  const restoredSeq = [...valueAt].find(([, v]) => v === restoredValue)?.[0];
  expect(restoredSeq).toBe(refuseAt - 1);
});
