/**
 * Task 297: the segments layout's allocator (next segment number per bucket, shared by the tiers of a store in a
 * thread) kept one entry per bucket ever appended, for as long as the store was used: a server with a bucket per
 * session grew it for good. Now it keeps for sure only the buckets some tier holds (reserved numbers unwritten,
 * put-back buckets of a failed flush included) and at most IDLE_SEGMENT_BUCKETS others; an evicted bucket lists its
 * segments on its next append. The property: several tiers of one store, random appends, flushes (some at once),
 * failures, heals, rollbacks, tiers reopened and buckets evicted at every chance: every segment key is written once,
 * nothing acknowledged is lost or stored twice, and each tier's entries read back in its append order.
 * Real memory backend (its puts unconditional through the wrapper, so a reused number would overwrite).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import type { BatchOp, StorageBackend } from "../../src/backend/types.js";
import { StorageError } from "../../src/errors.js";
import { appendLogStorage, segmentAllocatorsForTesting } from "../../src/tier/append-log.js";
import type { AppendLogStorageTier } from "../../src/tier/types.js";
import { wrapBackend, type TestBackend } from "../support/test-backend.js";
import { errorOf } from "../support/wait.js";

/** The bound the allocator documents (segment-allocator.ts IDLE_SEGMENT_BUCKETS), written out: the test predates it. */
const IDLE_BOUND = 4096;

interface Entry {
  tier: number;
  b: string;
  n: number;
}

/** How many times each key was put (successful writes reaching the real backend). */
function countPuts(inner: StorageBackend): Map<string, number> {
  const puts = new Map<string, number>();
  const record = (ops: readonly BatchOp[]): void => {
    for (const op of ops) if (op.op === "put") puts.set(op.key, (puts.get(op.key) ?? 0) + 1);
  };
  const write = inner.write.bind(inner);
  const writeBatch = inner.writeBatch?.bind(inner);
  inner.write = (key, value) => {
    const r = write(key, value);
    record([{ op: "put", key, value }]);
    return r;
  };
  if (writeBatch) {
    inner.writeBatch = (ops) => {
      const r = writeBatch(ops);
      record(ops);
      return r;
    };
  }
  return puts;
}

describe("segment allocator: bounded, numbers never reused", () => {
  it(`5,000 buckets appended and flushed leave at most ${IDLE_BOUND} allocator entries`, async () => {
    const b = memoryBackend();
    const log = appendLogStorage<{ s: string; v: number }>(b, { name: "log", layout: "segments", keyOf: (e) => `log/${e.s}` });
    for (let i = 0; i < 5000; i++) {
      log.appendEntries([{ s: `session-${i}`, v: i }]);
      await log.flush();
    }
    // Before the fix: 5,000, and 5,000 after close too.
    expect(segmentAllocatorsForTesting.of(b).size).toBeLessThanOrEqual(IDLE_BOUND);
    await log.close();
    expect(segmentAllocatorsForTesting.of(b).size).toBeLessThanOrEqual(IDLE_BOUND);
    // Every session's entry is stored.
    const again = appendLogStorage<{ s: string; v: number }>(b, { name: "log", layout: "segments", keyOf: (e) => `log/${e.s}` });
    expect((await again.loadEntries({ keyFilter: "log" })).entries).toHaveLength(5000);
    await again.close();
  });

  it("a put-back bucket keeps its entry through evictions; another tier numbers above its reserved segments", async () => {
    const inner = memoryBackend();
    const puts = countPuts(inner);
    const probe = wrapBackend(inner);
    const alloc = segmentAllocatorsForTesting.of(probe);
    alloc.limitIdle(0); // every bucket nobody holds is forgotten at once
    const open = (name: string): AppendLogStorageTier<string> =>
      appendLogStorage<string>(probe, { name, layout: "segments", debounceMs: 60_000, retry: { initialMs: 60_000 }, keyOf: () => "log/x" });
    const a = open("a");
    const b = open("b");
    a.appendEntries(["a1"]);
    await a.flush(); // segment 1, then forgotten
    expect(alloc.size).toBe(0);
    a.appendEntries(["a2"]);
    probe.failAll();
    expect(await errorOf(() => a.flush())).toBeInstanceOf(StorageError); // reserved segment 2, put back
    probe.heal();
    expect(alloc.held).toBe(1);
    b.appendEntries(["b1"]);
    await b.flush(); // must not take 2
    a.appendEntries(["a3"]);
    await a.flush();
    expect(alloc.size).toBe(0);
    expect([...puts.values()].every((n) => n === 1)).toBe(true);
    expect((await a.loadEntries({ keyFilter: "log" })).entries).toEqual(["a1", "a2", "b1", "a3"]);
    // A rolled-back put-back bucket gives its hold up.
    a.appendEntries(["a4"]);
    probe.failAll();
    await errorOf(() => a.flush());
    probe.heal();
    expect(alloc.held).toBe(1);
    a.rollback();
    expect(alloc.size).toBe(0);
    await a.close();
    await b.close();
  });

  it("a bucket the allocator remembers is listed once, not per append; an evicted one once more", async () => {
    const probe = wrapBackend(memoryBackend());
    const log = appendLogStorage<string>(probe, { name: "log", layout: "segments", keyOf: (e) => `log/${e[0]}` });
    for (let i = 0; i < 20; i++) {
      log.appendEntries([`a${i}`]);
      await log.flush();
    }
    expect(probe.counts.lists).toBe(1);
    segmentAllocatorsForTesting.of(probe).limitIdle(0);
    log.appendEntries(["a20"]);
    await log.flush();
    expect(probe.counts.lists).toBe(2);
    expect((await log.loadEntries({ keyFilter: "log" })).entries).toEqual(Array.from({ length: 21 }, (_, i) => `a${i}`));
    await log.close();
  });

  type Cmd =
    | { t: "append"; tier: number; bucket: number; count: number }
    | { t: "flush"; tier: number }
    | { t: "flushAll" }
    | { t: "failedFlush"; tier: number }
    | { t: "rollback"; tier: number }
    | { t: "reopen"; tier: number }
    | { t: "limit"; n: number };

  const TIERS = 3;
  const tier = fc.integer({ min: 0, max: TIERS - 1 });
  const cmd: fc.Arbitrary<Cmd> = fc.oneof(
    { arbitrary: fc.record({ t: fc.constant("append" as const), tier, bucket: fc.integer({ min: 0, max: 3 }), count: fc.integer({ min: 1, max: 3 }) }), weight: 6 },
    { arbitrary: fc.record({ t: fc.constant("flush" as const), tier }), weight: 3 },
    { arbitrary: fc.constant({ t: "flushAll" as const }), weight: 2 },
    { arbitrary: fc.record({ t: fc.constant("failedFlush" as const), tier }), weight: 3 },
    { arbitrary: fc.record({ t: fc.constant("rollback" as const), tier }), weight: 1 },
    { arbitrary: fc.record({ t: fc.constant("reopen" as const), tier }), weight: 1 },
    { arbitrary: fc.record({ t: fc.constant("limit" as const), n: fc.integer({ min: 0, max: 2 }) }), weight: 1 },
  );

  async function run(commands: readonly Cmd[], useAsync: boolean, idle: number): Promise<void> {
    const inner = memoryBackend();
    const puts = countPuts(inner);
    const probe: TestBackend = wrapBackend(inner, { async: useAsync });
    const alloc = segmentAllocatorsForTesting.of(probe);
    alloc.limitIdle(idle);
    const buckets = ["log/a", "log/b", "log/c", "log/d"];
    const open = (i: number): AppendLogStorageTier<Entry> =>
      appendLogStorage<Entry>(probe, {
        name: `t${i}`,
        layout: "segments",
        debounceMs: 60_000,
        retry: { initialMs: 60_000 }, // no retry of its own: the commands flush
        keyOf: (e) => e.b,
      });
    const tiers = Array.from({ length: TIERS }, (_, i) => open(i));
    // Per tier: entries appended and not yet stored or dropped; everything acknowledged stored.
    const pending: Entry[][] = tiers.map(() => []);
    const stored: Entry[] = [];
    let next = 0;
    const flushed = (i: number): void => {
      stored.push(...pending[i]!);
      pending[i] = [];
    };
    try {
      for (const [step, c] of commands.entries()) {
        const when = `step ${step}: ${JSON.stringify(c)}`;
        switch (c.t) {
          case "append": {
            const b = buckets[c.bucket]!;
            const entries = Array.from({ length: c.count }, () => ({ tier: c.tier, b, n: next++ }));
            tiers[c.tier]!.appendEntries(entries);
            pending[c.tier]!.push(...entries);
            break;
          }
          case "flush":
            await tiers[c.tier]!.flush();
            flushed(c.tier);
            break;
          case "flushAll":
            await Promise.all(tiers.map((t) => t.flush()));
            for (let i = 0; i < TIERS; i++) flushed(i);
            break;
          case "failedFlush": {
            probe.failAll();
            const err = await errorOf(() => tiers[c.tier]!.flush());
            probe.heal();
            if (pending[c.tier]!.length > 0) expect(err, when).toBeInstanceOf(StorageError);
            else expect(err, when).toBeUndefined();
            break;
          }
          case "rollback":
            tiers[c.tier]!.rollback();
            pending[c.tier] = [];
            break;
          case "reopen":
            await tiers[c.tier]!.close(); // flushes
            flushed(c.tier);
            tiers[c.tier] = open(c.tier);
            break;
          case "limit":
            alloc.limitIdle(c.n);
            break;
        }
        for (const [key, n] of puts) expect(n, `${when}: ${key} put ${n} times`).toBe(1);
      }
      await Promise.all(tiers.map((t) => t.flush()));
      for (let i = 0; i < TIERS; i++) flushed(i);
      for (const [key, n] of puts) expect(n, `final: ${key} put ${n} times`).toBe(1);
      const all = (await tiers[0]!.loadEntries({ keyFilter: "log" })).entries;
      // Nothing lost, nothing twice.
      expect([...all].sort((x, y) => x.n - y.n)).toEqual([...stored].sort((x, y) => x.n - y.n));
      // Each tier's entries of a bucket in its append order (tiers interleave in flush order).
      for (const b of buckets) {
        for (let i = 0; i < TIERS; i++) {
          const got = all.filter((e) => e.b === b && e.tier === i).map((e) => e.n);
          expect(got).toEqual([...got].sort((x, y) => x - y));
        }
      }
      // Nothing is held once every tier stored what it took; what is cached stays within the bound.
      expect(alloc.held).toBe(0);
    } finally {
      for (const t of tiers) await t.close().catch(() => undefined);
    }
  }

  it("several tiers of one store: every segment written once, the log reads back in order (fast-check)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { minLength: 5, maxLength: 40 }), fc.boolean(), fc.integer({ min: 0, max: 2 }), run),
      { numRuns: 150 },
    );
  });
});
