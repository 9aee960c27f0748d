/**
 * A snapshot tier's discard(key) keeps no per-key state once nothing of the key is taken and unsettled (review r287
 * F3): it kept one landing number per key ever discarded, so callers discarding one key per session grew the tier's
 * memory for good. The guarantees it serves stay: a record taken before the discard (waiting on the lane, or failing
 * in flight) never lands, a save made after it does. Real inline SnapshotCore over a memory store (sync, or an async
 * wrapper whose writes settle on a later macrotask); the engine's actor runs the same class.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import type { StorageBackend } from "../../src/backend/types.js";
import type { Codec } from "../../src/codec/types.js";
import { inlineCore } from "../../src/tier/inline-surface.js";
import { SnapshotCore, snapshotStorage } from "../../src/tier/snapshot.js";
import { wrapBackend } from "../support/test-backend.js";

interface Rec {
  name: string;
  v: number;
}

/** Long retry bounds: nothing is retried unless the test flushes. */
const retry = { initialMs: 60_000, maxMs: 60_000 };

function snapshotCore(backend: StorageBackend): SnapshotCore<Rec> {
  const opts = { retry, onError: () => {} };
  return inlineCore(backend, "snapshot", opts, (c: Codec<Rec>) => new SnapshotCore<Rec>(backend, c, opts)).core;
}

/** The per-key state a discard may leave (private fields, read for the test alone). */
function discardState(core: SnapshotCore<Rec>): { discarded: number; taken: number } {
  const inner = core as unknown as { discarded?: Map<string, number>; outstandingKeys?: Map<string, number> };
  return { discarded: inner.discarded?.size ?? 0, taken: inner.outstandingKeys?.size ?? 0 };
}

async function stored(inner: StorageBackend, keys: readonly string[]): Promise<string[]> {
  const reader = snapshotStorage<Rec>(inner);
  const found: string[] = [];
  for (const k of keys) if ((await reader.load(k)) !== undefined) found.push(k);
  return found;
}

describe("snapshot tier discard(key) state", () => {
  it("keys saved, flushed and then discarded leave no entry behind", async () => {
    const core = snapshotCore(memoryBackend());
    for (let i = 0; i < 2000; i++) {
      core.put(`session-${i}`, { name: `session-${i}`, v: i });
      await core.flush();
      core.discard(`session-${i}`); // nothing of the key pending or taken: nothing to drop
    }
    const state = discardState(core);
    await core.close();
    expect(state).toEqual({ discarded: 0, taken: 0 });
  });

  it("keys discarded while their batches fail on the lane: none lands, and the entries go once the batches settled", async () => {
    const inner = memoryBackend();
    const backend = wrapBackend(inner, { async: true });
    const core = snapshotCore(backend);
    backend.failAll();
    const release = backend.holdWrites();
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    // The first batch is in flight (held); each later save's flush takes its own batch, waiting on the lane.
    for (const [i, k] of keys.entries()) core.put(k, { name: k, v: i });
    const odd = keys.filter((_, i) => i % 2 === 1);
    for (const k of odd) core.discard(k);
    const whileTaken = discardState(core).discarded;
    release();
    await core.flush().catch(() => {}); // the first fails; the batches behind it fail with it, put back or dropped
    const afterFail = discardState(core);
    backend.heal();
    await core.flush();
    const afterHeal = { ...discardState(core), pending: core.stats.pendingEntries };
    await core.close();
    expect({ whileTaken, afterFail, afterHeal, stored: await stored(inner, keys) }).toEqual({
      whileTaken: odd.length, // needed then: each key's record was taken before its discard
      afterFail: { discarded: 0, taken: 0 },
      afterHeal: { discarded: 0, taken: 0, pending: 0 },
      stored: keys.filter((_, i) => i % 2 === 0),
    });
  });

  it("a save of the key after the discard, taken while the older record fails in flight, lands alone", async () => {
    const inner = memoryBackend();
    const backend = wrapBackend(inner, { async: true });
    const core = snapshotCore(backend);
    backend.failAll();
    const release = backend.holdWrites();
    core.put("g", { name: "g", v: 1 }); // in flight, will fail
    core.discard("g");
    core.put("g", { name: "g", v: 2 }); // after the discard: taken behind it on the lane
    release();
    await core.flush().catch(() => {});
    const afterFail = discardState(core);
    backend.heal();
    await core.flush();
    const after = discardState(core);
    await core.close();
    expect({ afterFail, after, g: await snapshotStorage<Rec>(inner).load("g") }).toEqual({
      afterFail: { discarded: 0, taken: 0 },
      after: { discarded: 0, taken: 0 },
      g: { name: "g", v: 2 },
    });
  });

  it("batches a rollback left on the lane hold no entry (they never reach their write)", async () => {
    const inner = memoryBackend();
    const backend = wrapBackend(inner, { async: true });
    const core = snapshotCore(backend);
    const release = backend.holdWrites();
    core.put("a", { name: "a", v: 1 }); // in flight: its backend call has started
    core.put("b", { name: "b", v: 1 }); // taken, waiting on the lane
    core.rollback();
    core.discard("a");
    core.discard("b");
    release();
    await core.flush();
    const state = discardState(core);
    await core.close();
    expect({ state, b: await snapshotStorage<Rec>(inner).load("b") }).toEqual({
      state: { discarded: 0, taken: 0 },
      b: undefined,
    });
  });
});
