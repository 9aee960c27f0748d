/**
 * Group commit's hold is bounded (src/engine/group-commit.ts MAX_HELD_PUTS): a backlog the port hands over in one turn
 * commits every MAX_HELD_PUTS puts, not as one transaction of the whole backlog. Proven by counting flushes, never by
 * timing.
 */
import { afterAll, describe, expect, it } from "vitest";
import { StoreActor } from "../../src/engine/actor.js";
import { ActorCounters } from "../../src/engine/actor-counters.js";
import { MAX_HELD_PUTS } from "../../src/engine/group-commit.js";
import type { Op, TierSpec } from "../../src/engine/protocol.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("group-bound");
afterAll(() => root.remove());

const kvSpec: TierSpec = { kind: "kv", name: "a", debounceMs: undefined, compactEvery: undefined, codec: { kind: "builtin", name: "json" } };
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));
const saves = (from: number, n: number): Op => ({
  t: "puts",
  tier: 1,
  keys: Array.from({ length: n }, (_, i) => `k${from + i}`),
  values: Array.from({ length: n }, (_, i) => from + i),
  w: n,
  n,
});

describe("group commit bound", () => {
  it("a backlog of 2.5 × MAX_HELD_PUTS puts in one turn commits in three transactions, all acknowledged", async () => {
    const counters = new ActorCounters();
    const actor = new StoreActor({ store: { kind: "sqlite", path: root.fresh("bound.db") }, synchronous: "FULL", counters: counters.buffer });
    try {
      await actor.ready();
      const opened = await actor.apply([{ t: "open", tier: 1, spec: kvSpec, id: 1 }]);
      expect(opened.results.every((r) => r.ok)).toBe(true);
      await nextTurn();
      const flushes = (): number => counters.get("flushes");
      const before = flushes();
      const half = MAX_HELD_PUTS / 2;
      // Five messages delivered back to back, as the port hands over a backlog while the actor was busy.
      const applied = [0, 1, 2, 3, 4].map((m) => actor.apply([saves(m * half, half)]));
      await Promise.all(applied);
      expect(flushes() - before, "committed at 2 and 4 halves").toBe(2);
      await nextTurn();
      expect(flushes() - before, "the last half at the turn's end").toBe(3);
      expect(counters.get("writes")).toBe(5 * half);
      expect(counters.get("settledEntries"), "every write acknowledged to the main thread").toBe(5 * half);
      const listed = await actor.apply([{ t: "list", tier: 1, id: 2, prefix: "k" }]);
      expect((listed.results[0] as { value: string[] }).value).toHaveLength(5 * half);
    } finally {
      await actor.shutdown();
    }
  });

  // A review found the bound counted only puts/columns ops: a backlog of single put ops (a main-thread codec's saves)
  // or of append ops committed as one transaction however long (0 commits during the turn).
  const logSpec: TierSpec = { kind: "append-log", name: "log", debounceMs: undefined, compactEvery: undefined, codec: { kind: "builtin", name: "json" } };
  const mainCodecSpec: TierSpec = { kind: "kv", name: "a", debounceMs: undefined, compactEvery: undefined, codec: { kind: "main" } };
  const bytesOf = (n: number): Uint8Array => new TextEncoder().encode(String(n));
  const BACKLOGS: Array<[string, TierSpec, (from: number, n: number) => Op[]]> = [
    ["single put ops (a main-thread codec)", mainCodecSpec, (from, n) => Array.from({ length: n }, (_, i) => ({ t: "put", tier: 1, key: `k${from + i}`, bytes: bytesOf(from + i), w: 1, n: 1 }))],
    ["append ops of one entry", logSpec, (from, n) => Array.from({ length: n }, (_, i) => ({ t: "append", tier: 1, bucket: "b", entries: [from + i], count: 1, w: 1, n: 1 }))],
    ["append ops over several buckets", logSpec, (from, n) => Array.from({ length: n / 2 }, (_, i) => ({ t: "append", tier: 1, buckets: ["b", "c"], counts: [1, 1], entries: [[from + 2 * i], [from + 2 * i + 1]], w: 2, n: 2 }))],
  ];

  it.each(BACKLOGS)("a backlog of 2.5 × MAX_HELD_PUTS writes as %s commits in three transactions", async (_what, spec, message) => {
    const counters = new ActorCounters();
    const actor = new StoreActor({ store: { kind: "sqlite", path: root.fresh("ops.db") }, synchronous: "FULL", counters: counters.buffer });
    try {
      await actor.ready();
      await actor.apply([{ t: "open", tier: 1, spec, id: 1 }]);
      await nextTurn();
      const before = counters.get("flushes");
      const half = MAX_HELD_PUTS / 2;
      await Promise.all([0, 1, 2, 3, 4].map((m) => actor.apply(message(m * half, half))));
      expect(counters.get("flushes") - before, "committed at 2 and 4 halves").toBe(2);
      await nextTurn();
      expect(counters.get("flushes") - before, "the last half at the turn's end").toBe(3);
      expect(counters.get("settledEntries"), "every write acknowledged to the main thread").toBe(5 * half);
    } finally {
      await actor.shutdown();
    }
  });

  it("one op above the bound is still one transaction", async () => {
    const counters = new ActorCounters();
    const actor = new StoreActor({ store: { kind: "sqlite", path: root.fresh("one.db") }, synchronous: "FULL", counters: counters.buffer });
    try {
      await actor.ready();
      await actor.apply([{ t: "open", tier: 1, spec: kvSpec, id: 1 }]);
      await nextTurn();
      const before = counters.get("flushes");
      await actor.apply([saves(0, 3 * MAX_HELD_PUTS)]);
      await nextTurn();
      expect(counters.get("flushes") - before).toBe(1);
      expect(counters.get("settledEntries")).toBe(3 * MAX_HELD_PUTS);
    } finally {
      await actor.shutdown();
    }
  });
});
