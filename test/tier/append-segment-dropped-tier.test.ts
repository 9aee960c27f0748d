/**
 * Task 310: an append-log tier (segments layout) holds its buckets' allocator entries from before it lists them
 * until the numbers it reserved are written or given up (task 297). A tier whose writes ended for good (its store's
 * lock file removed: the backend's finalError) keeps its put-back buckets and no retry writes them; dropped without
 * close() and collected, it kept those holds for as long as the allocator lived, and a reopen of the store in the
 * same process (its old handle still referenced) inherits the allocator by name: the held entries stayed outside
 * the bound on buckets nobody holds, one per bucket such a tier held, for the process's life. Now a collected tier's
 * holds are released, and a later tier of the store appends above everything stored: every acknowledged entry reads
 * back once, nothing overwritten. Real SQLite files, V8's collector (test/support/collect.ts).
 */
import { mkdtempSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runInNewContext } from "node:vm";
import { afterAll, expect, it } from "vitest";
import { sqliteLockPath } from "../../src/backend/lock.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { appendLogStorage, segmentAllocatorsForTesting } from "../../src/tier/append-log.js";
import type { SegmentAllocator } from "../../src/tier/segment-allocator.js";
import type { AppendLogStorageTier } from "../../src/tier/types.js";
import { collected } from "../support/collect.js";
import { errorOf } from "../support/wait.js";

const gc = runInNewContext("gc") as () => void; // exposed by collect.js
const root = mkdtempSync(join(tmpdir(), "append-seg-dropped-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Entry {
  s: string;
  n: number;
}

/** No timer of its own writes: the test flushes (a debounce or retry would keep a dropped tier reachable anyway). */
const open = (b: StorageBackend): AppendLogStorageTier<Entry> =>
  appendLogStorage<Entry>(b, { name: "log", layout: "segments", debounceMs: 60_000, retry: { initialMs: 60_000 }, keyOf: (e) => `log/${e.s}` });

/** Collects until the allocator holds at most `n` buckets (a collected tier's release runs in a later task). */
async function heldAfterCollecting(alloc: SegmentAllocator, n: number): Promise<number> {
  for (let i = 0; i < 100 && alloc.held > n; i++) {
    await new Promise((r) => setTimeout(r, 2));
    gc();
  }
  return alloc.held;
}

/**
 * `rounds` times: a handle of the store (opened while the previous one is still referenced, so the allocator is
 * shared by name), a tier appending one acknowledged entry to each of `buckets` buckets, then one more each whose
 * flush fails for good (the lock file removed). Returns the handle left, the allocator, what was acknowledged and what
 * may have landed (a write the store answered with the lost lock: committed or not), and weak refs to the tiers.
 */
async function endedTiers(path: string, rounds: number, buckets: number) {
  let backend = sqliteBackend(path);
  const alloc = segmentAllocatorsForTesting.of(backend);
  const acked: Entry[] = [];
  const doubtful: Entry[] = [];
  const refs: WeakRef<object>[] = [];
  let n = 0;
  for (let r = 0; r < rounds; r++) {
    const log = open(backend);
    const first = Array.from({ length: buckets }, (_, j) => ({ s: `r${r}-${j}`, n: n++ }));
    log.appendEntries(first);
    await log.flush();
    acked.push(...first);
    const more = first.map((e) => ({ s: e.s, n: n++ }));
    log.appendEntries(more);
    unlinkSync(sqliteLockPath(path));
    expect(await errorOf(() => log.flush())).toMatchObject({ code: "backend-error", details: { reason: "store-moved" } });
    expect(backend.finalError).toBeDefined(); // no retry: the buckets stay put back, their numbers held
    doubtful.push(...more);
    refs.push(new WeakRef(log));
    const next = sqliteBackend(path); // a new lock; the old handle is still referenced here: one allocator
    expect(segmentAllocatorsForTesting.of(next)).toBe(alloc);
    backend.close();
    backend = next;
  }
  return { backend, alloc, acked, doubtful, refs, next: n };
}

/** A later tier appends to every bucket and reads the log: each acknowledged entry once, nothing twice, nothing else. */
async function laterTierReadsAll(backend: StorageBackend, acked: Entry[], doubtful: Entry[], from: number): Promise<void> {
  const later = open(backend);
  const buckets = [...new Set(acked.map((e) => e.s))];
  const fresh = buckets.map((s, i) => ({ s, n: from + i }));
  later.appendEntries(fresh);
  await later.flush();
  const all = (await later.loadEntries({ keyFilter: "log" })).entries;
  const count = new Map<number, number>();
  for (const e of all) count.set(e.n, (count.get(e.n) ?? 0) + 1);
  for (const e of [...acked, ...fresh]) expect(count.get(e.n), `entry ${e.n} of ${e.s}`).toBe(1);
  const known = new Set([...acked, ...fresh, ...doubtful].map((e) => e.n));
  for (const [n, c] of count) {
    expect(known.has(n), `entry ${n} was never appended`).toBe(true);
    expect(c, `entry ${n} stored ${c} times`).toBe(1);
  }
  // Each bucket reads in append order: the later tier's entry after everything stored before it.
  for (const s of buckets) {
    const ns = all.filter((e) => e.s === s).map((e) => e.n);
    expect(ns).toEqual([...ns].sort((x, y) => x - y));
  }
  await later.close();
}

it("a tier dropped after its writes ended gives its buckets' holds up once collected; a later tier reads everything once", async () => {
  const path = join(root, "one.db");
  const { backend, alloc, acked, doubtful, refs, next } = await endedTiers(path, 1, 5);
  expect(await collected(refs[0]!)).toBe(true);
  // Before the fix: 5 held for good (the tier is gone, nothing can write or give up its numbers).
  expect(await heldAfterCollecting(alloc, 0)).toBe(0);
  alloc.limitIdle(0); // every bucket is forgotten: the later tier lists each
  await laterTierReadsAll(backend, acked, doubtful, next);
  expect(alloc.size).toBe(0);
  backend.close();
});

it("tiers dropped in a loop over one store (reopened each time) leave nothing held, the cache within its bound", async () => {
  const path = join(root, "loop.db");
  const { backend, alloc, acked, doubtful, refs, next } = await endedTiers(path, 12, 8);
  alloc.limitIdle(20);
  for (const ref of refs) expect(await collected(ref)).toBe(true);
  // Before the fix: 96 held (12 tiers x 8 buckets), kept past the bound of 20 for the allocator's life.
  expect(await heldAfterCollecting(alloc, 0)).toBe(0);
  expect(alloc.size).toBeLessThanOrEqual(20);
  await laterTierReadsAll(backend, acked, doubtful, next);
  expect(alloc.held).toBe(0);
  expect(alloc.size).toBeLessThanOrEqual(20);
  backend.close();
});
