/**
 * A snapshot tier shared by several keys (review r264 F5/F4, task 270): it keeps one unwritten record per key, so a
 * save of another key never drops a record a failed write put back, and a flush resolves only once every record
 * saved before it was stored (or replaced by a newer record of its own key). Before, the tier had one pending slot:
 * two graphs attached through one tier (design §3.7 allows it) lost one graph's baseline while the store failed, and
 * that graph's flush() resolved all the same. Real inline tiers over a memory store behind a failing wrapper, real
 * graphs; the tier conformance suite (snapshot, write failures) runs the same rule over every backend, inline and
 * through the engine.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import type { Codec } from "../../src/codec/types.js";
import { CodecError } from "../../src/errors.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { wrapBackend } from "../support/test-backend.js";

/** Long retry bounds: nothing is retried unless the test flushes. */
const retry = { initialMs: 60_000, maxMs: 60_000 };

const outcome = (p: Promise<unknown>): Promise<string> => p.then(() => "ok", (e: unknown) => (e as { code?: string }).code ?? "rejected");

describe("snapshot tier shared by several keys", () => {
  it("two graphs attached through one tier: a baseline put back while the store failed is written, not replaced by the other graph's", async () => {
    const inner = memoryBackend();
    const failing = wrapBackend(inner);
    const snapshot = snapshotStorage<GraphCheckpointRecord>(failing, { retry });
    const wal = kvStorage<WALFrame>(failing, { codec: walFrameCodec, retry });
    const g = createGraph("g");
    g.state("a", 0);
    const hg = attachSnapshotStorage(g, [{ snapshot, wal }], { onError: () => {}, compactEvery: 1 });
    await hg.flush();
    failing.failAll();
    const h = createGraph("h");
    h.state("b", 7);
    const hh = attachSnapshotStorage(h, [{ snapshot, wal }], { onError: () => {} }); // its baseline fails, put back
    const failed = await outcome(hh.flush());
    g.set("a", 1); // g's baseline (compactEvery 1): another key of the same tier
    failing.heal();
    const flushed = await outcome(hh.flush());
    await hg.flush();
    const r = createGraph("h");
    r.state("b", -1);
    await restoreSnapshot(r, { snapshot: snapshotStorage<GraphCheckpointRecord>(inner), wal: kvStorage<WALFrame>(inner, { codec: walFrameCodec }) });
    await hh.dispose();
    await hg.dispose();
    expect({ failed, flushed, restored: r.get("b") }).toEqual({ failed: "backend-error", flushed: "ok", restored: 7 });
  });

  it("a user's record saved before an ended handle's baselines in the same tier is written, not lost with them", async () => {
    const inner = memoryBackend();
    const failing = wrapBackend(inner);
    const snapshot = snapshotStorage<GraphCheckpointRecord>(failing, { retry });
    const wal = kvStorage<WALFrame>(failing, { codec: walFrameCodec, retry });
    const userRecord = { name: "user-notes", seq: 7, note: "mine" } as unknown as GraphCheckpointRecord;
    const g0 = createGraph("g");
    g0.state("a", 0);
    const h0 = attachSnapshotStorage(g0, [{ snapshot, wal }], { onError: () => {}, compactEvery: 1 });
    await h0.flush();
    failing.failAll();
    snapshot.save(userRecord); // its write fails: kept for a retry
    const first = outcome(snapshot.flush());
    for (let v = 1; v <= 3; v++) g0.set("a", v); // the handle's baselines, another key of the tier
    await h0.dispose().catch(() => {});
    failing.heal();
    const g = createGraph("g");
    g.state("a", 0);
    // A new attach of the graph discards the ended handle's baseline in the shared tier (design §3.7), not the user's.
    const h = attachSnapshotStorage(g, [{ snapshot: snapshotStorage<GraphCheckpointRecord>(failing), wal: kvStorage<WALFrame>(failing, { codec: walFrameCodec }) }], {
      onError: () => {},
    });
    await h.flush();
    await h.dispose();
    const later = await outcome(snapshot.flush());
    const mine = await snapshotStorage<GraphCheckpointRecord>(inner).load("user-notes");
    expect({ first: await first, later, mine }).toEqual({ first: "backend-error", later: "ok", mine: userRecord });
  });

  it("a record its codec refuses fails the flush; the record of another key in the same batch is written", async () => {
    const inner = memoryBackend();
    // Refuses one record when the flush encodes it (a user codec's throw: CodecError, never retried).
    const picky: Codec<{ name: string; v: number }> = {
      name: "picky",
      version: 1,
      encode: (r) => {
        if (r.name === "bad") throw new Error("not this one");
        return new TextEncoder().encode(JSON.stringify(r));
      },
      decode: (b) => JSON.parse(new TextDecoder().decode(b)) as { name: string; v: number },
    };
    const tier = snapshotStorage(wrapBackend(inner), { codec: picky, debounceMs: 60_000, onError: () => {} });
    tier.save({ name: "good", v: 1 });
    tier.save({ name: "bad", v: 2 });
    const err = await tier.flush().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CodecError);
    expect({ good: await snapshotStorage(inner, { codec: picky }).load("good"), bad: await inner.read("bad") }).toEqual({
      good: { name: "good", v: 1 },
      bad: undefined,
    });
    await tier.close();
  });
});
