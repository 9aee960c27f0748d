/**
 * A pair whose queued waves were replaced by one baseline (attach's outbox bound, design §3.19) meets a full WAL tier
 * when that baseline's gate opens: backpressure is not a failure (api.md "Backpressure"), so flush() and dispose()
 * wait for room and store every wave. Before the fix they rejected with StorageError("backpressure"), and dispose()
 * then dropped what was still queued: restore lacked the last waves (review s15r1 D1). The control runs the same
 * writes with no bound (no replacement). Real memory backend behind the asynchronous test wrapper (held writes and
 * two passing write errors); values, never timings.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { createGraph, restoreSnapshot } from "../../src/index.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { wrapBackend } from "../support/test-backend.js";
import { outcome } from "../support/settled.js";

const NODES = 10;
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

type Graph = ReturnType<typeof createGraph>;

function graphOf(): Graph {
  const g = createGraph("g");
  for (let k = 0; k < NODES; k++) g.state(`n${k}`, 0);
  return g;
}

async function restored(inner: StorageBackend): Promise<unknown[]> {
  const r = graphOf();
  await restoreSnapshot(r, { snapshot: snapshotStorage<GraphCheckpointRecord>(inner), wal: kvStorage<WALFrame>(inner, { codec: walFrameCodec }) });
  return Array.from({ length: NODES }, (_, k) => r.get(`n${k}`));
}

/** A graph attached over a wrapped memory backend whose writes are held, with a small WAL tier bound. */
async function stuckPair(maxQueuedBytes: number) {
  const inner = memoryBackend();
  const wrapped = wrapBackend(inner, { async: true });
  const graph = graphOf();
  const handle = attachSnapshotStorage(
    graph,
    [{ snapshot: snapshotStorage<GraphCheckpointRecord>(wrapped), wal: kvStorage<WALFrame>(wrapped, { codec: walFrameCodec, maxPendingBytes: 8 * 1024 }) }],
    { maxQueuedBytes, compactEvery: Number.POSITIVE_INFINITY, onError: () => undefined },
  );
  graph.set("n0", -1);
  await handle.flush();
  const release = wrapped.holdWrites();
  wrapped.failNext(2); // two passing write failures once the store takes writes again
  let i = 0;
  const sets = (n: number): void => {
    for (let w = 0; w < n; w++) graph.set(`n${++i % NODES}`, i);
  };
  const live = (): unknown[] => Array.from({ length: NODES }, (_, k) => graph.get(`n${k}`));
  return { inner, handle, release, sets, live };
}

describe.each([
  ["with the outbox bound (queued waves replaced)", 2048],
  ["control: no bound", Number.POSITIVE_INFINITY],
])("a stuck store %s", (_, maxQueuedBytes) => {
  it("no flush called during the spell rejects with backpressure; the store ends equal to the live graph", async () => {
    const { inner, handle, release, sets, live } = await stuckPair(maxQueuedBytes);
    const flushes: Array<Promise<string>> = [];
    for (let t = 0; t < 6; t++) {
      sets(50);
      flushes.push(outcome(handle.flush()));
      await turn();
    }
    release();
    const outcomes = await Promise.all(flushes);
    expect(outcomes.filter((o) => o.includes("backpressure"))).toEqual([]);
    // The two passing failures may reject a flush with their own error; the next flush stores everything.
    await handle.flush();
    expect(await restored(inner)).toEqual(live());
    await handle.dispose();
  });

  it("dispose() during the spell stores the last wave", async () => {
    const { inner, handle, release, sets, live } = await stuckPair(maxQueuedBytes);
    sets(300);
    const disposed = outcome(handle.dispose());
    release();
    expect(await disposed).toBe("resolved");
    expect(await restored(inner)).toEqual(live());
  });
});
