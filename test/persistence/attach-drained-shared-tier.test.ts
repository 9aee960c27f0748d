/**
 * handle.drained() of many graphs attached over ONE pair of tiers whose store is full or failing (review r279 F4):
 * each pair's wait for room had a write-attempt loop of its own, so the one WAL tier was asked for a write 50 times a
 * round for 50 graphs. The attempt loop is now one per tier (src/tier/write-verdict.ts sharedWriteAttempt), and every
 * waiter still hears its own verdict: drained once the store took the writes (the data is then in the store: each
 * graph restores its last value), the store's final error when it takes none for good, closed once its handle was
 * disposed, and waiting on (not settling) while a failure may pass (a full disk).
 * A real memory store behind the async test wrapper (test/support/test-backend.ts), real tiers and graphs.
 */
import { expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { StorageError } from "../../src/errors.js";
import { createGraph } from "../../src/graph/graph.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { endableBackend } from "../support/endable-backend.js";
import { attachA, backendPair } from "../support/graph-a-pair.js";
import { track, turns } from "../support/settled.js";
import { wrapBackend, type TestBackend } from "../support/test-backend.js";
import { countWritePending } from "../support/write-pending-calls.js";

const GRAPHS = 50;
/** A wave of ~200 bytes: 50 of them are more than the WAL tier's maxPendingBytes (4,000). */
const BIG = "x".repeat(200);

/** GRAPHS graphs over one WAL tier and one snapshot tier of `b`, flushed; fill() sets BIG in each: the tier is full. */
async function attachMany(b: TestBackend) {
  const pair = backendPair(b, { maxPendingBytes: 4_000 });
  const graphs = Array.from({ length: GRAPHS }, (_, i) => attachA(pair, { name: `g${i}` }));
  for (const { h } of graphs) await h.flush();
  // The real tier's writePending, counted (every call goes through).
  const calls = countWritePending(pair.wal!);
  const fill = (): void => {
    for (const { g } of graphs) g.set("a", BIG);
  };
  return { graphs, fill, calls };
}

/** What graph `name`'s node `a` restores to from `b`. */
async function restoredA(b: TestBackend, name: string): Promise<unknown> {
  const r = createGraph(name);
  r.state("a", "");
  await restoreSnapshot(r, { snapshot: snapshotStorage<GraphCheckpointRecord>(b), wal: kvStorage<WALFrame>(b, { codec: walFrameCodec }) });
  return r.get("a");
}

it("50 graphs over one failing full WAL tier: the tier is asked about as often as for one; all wait, then drain, and the data is stored", async () => {
  const b = wrapBackend(memoryBackend(), { async: true });
  const { graphs, fill, calls } = await attachMany(b);
  b.failAll(); // a full disk: a failure that may pass
  fill();
  const waiters = graphs.map(({ h }) => track(h.drained()));
  await turns(3);
  // Before the fix: 50 (each pair's loop asked the tier on its first turn).
  expect(calls()).toBeGreaterThanOrEqual(1);
  expect(calls()).toBeLessThan(5);
  // A few more attempts of the shared loop, all failed: every waiter still waits (a full disk may free).
  const seen = calls();
  while (calls() < seen + 2) await turns(1);
  expect(waiters.filter((w) => w.state !== "pending")).toEqual([]);
  b.heal();
  while (waiters.some((w) => w.state === "pending")) await turns(1);
  expect(waiters.map((w) => w.state)).toEqual(waiters.map(() => "resolved"));
  // drained() resolved: what each graph changed is in the store.
  for (const [i, { h }] of graphs.entries()) {
    await h.dispose();
    expect(await restoredA(b, `g${i}`)).toBe(BIG);
  }
}, 60_000);

it("50 graphs over one full WAL tier whose store ends for good: every drained() rejects with the store's final error", async () => {
  const { b, end } = endableBackend();
  const { graphs, fill, calls } = await attachMany(b);
  const final = new StorageError("backend-error", "this store takes no writes for good (test)");
  fill();
  end(final);
  const verdicts = await Promise.all(graphs.map(({ h }) => h.drained().then(() => "resolved", (e: unknown) => e)));
  // The graphs whose wave the tier took before it filled have room (drained() is a wait for room, not for
  // durability); every graph held back by the full tier hears the store's end.
  expect(verdicts.filter((v) => v === final).length).toBeGreaterThan(GRAPHS / 2);
  expect(verdicts.filter((v) => v !== final && v !== "resolved")).toEqual([]);
  expect(calls()).toBeLessThan(5);
  // The next change of those meets the store's end too: every graph's drained() rejects with it now.
  for (const { g } of graphs) g.set("a", "after the end");
  for (const { h } of graphs) expect(await h.drained().then(() => "resolved", (e: unknown) => e)).toBe(final);
  for (const { h } of graphs) await h.dispose().catch(() => {});
}, 60_000);

it("50 graphs over one failing full WAL tier, half of them disposed: those reject closed, the others drain once it heals", async () => {
  const b = wrapBackend(memoryBackend(), { async: true });
  const { graphs, fill } = await attachMany(b);
  b.failAll();
  fill();
  const waiters = graphs.map(({ h }) => track(h.drained()));
  await turns(3);
  const gone = graphs.filter((_, i) => i % 2 === 0);
  for (const { h } of gone) await h.dispose().catch(() => {});
  await turns(1);
  for (const [i, w] of waiters.entries()) {
    if (i % 2 === 0) expect(w.state).toMatchObject({ code: "closed" });
    else expect(w.state).toBe("pending");
  }
  // The waiters left share the tier's loop still: it goes on without the disposed ones.
  b.heal();
  while (waiters.some((w) => w.state === "pending")) await turns(1);
  for (const [i, w] of waiters.entries()) if (i % 2 === 1) expect(w.state).toBe("resolved");
  for (const [i, { h }] of graphs.entries()) {
    if (i % 2 === 0) continue;
    await h.dispose();
    expect(await restoredA(b, `g${i}`)).toBe(BIG);
  }
}, 60_000);
