/**
 * A refused write whose retry weighs more than twice its reservation (a newer, larger value) claims none: before, it
 * queued behind its own stale reservation and waited for that to lapse (1 s after its room stood free). Now it may
 * go in front of the first reservation when that one waits alone or its room stands free, once per reservation and
 * only when heavier, so small writes still never go in front of a big one (src/tier/room.ts, docs/design.md §3.19).
 * Outcomes are asserted, never time.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { StorageError } from "../../src/errors.js";
import { kvStorage } from "../../src/tier/kv.js";
import { RESERVATION_LAPSE_MS, RoomQueue } from "../../src/tier/room.js";
import { backpressureOf } from "../support/save-until-refused.js";
import { wrapBackend } from "../support/test-backend.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { tempRoot } from "../engine/fixtures/helpers.js";
import { ActorCounters } from "../../src/engine/actor-counters.js";
import { StoreBacklog } from "../../src/engine/backlog.js";

describe("a retry heavier than its reservation", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("is taken as soon as it fits beside what is held, not after its old reservation lapses", () => {
    const room = new RoomQueue(() => 1000);
    expect(room.admit(900, 200, 0)).toBe(false); // reserved
    expect(room.ready(500, 200)).toBe(true); // its room is free: its writer is woken
    expect(room.admit(500, 600, 0)).toBe(false); // the retry, a newer value of 600: 500 + 600 > 1000
    expect(room.ready(400, 600)).toBe(true); // before: 400 + 200 (the stale reservation) + 600 > 1000, for 1 s
    expect(room.admit(400, 600, 0)).toBe(true);
  });

  it("inline kv: the retry with a larger value gets in once the flush ahead committed", async () => {
    const backend = wrapBackend(memoryBackend(), { async: true });
    // 10,000: "a" in flight (4,068; its flush, the tier's first due, weighs nothing) and "b" (4,068) leave no room for
    // 2,068.
    const tier = kvStorage<string>(backend, { maxPendingBytes: 10_000, debounceMs: 60_000 });
    tier.save("a", "a".repeat(4000));
    const release = backend.holdWrites();
    const first = tier.flush(); // takes "a", held at the gate
    tier.save("b", "b".repeat(4000));
    const err = backpressureOf(() => tier.save("x", "1".repeat(2000)));
    expect(err).toBeInstanceOf(StorageError);
    release();
    await first; // "b" alone is held: the 2000 write's room is free
    await tier.drained?.(err?.details?.weight as number);
    // The caller's value grew meanwhile: 5000 fits beside "b" alone, not beside "b" and the stale 2000 reservation.
    expect(backpressureOf(() => tier.save("x", "2".repeat(5000)))).toBeUndefined();
    await tier.flush();
    expect((await tier.load("x"))?.length).toBe(5000);
    await tier.close();
  });

  it("only once the first reservation's room is free, never lighter writes, and once per reservation", () => {
    const room = new RoomQueue(() => 1000);
    expect(room.admit(900, 300, 0)).toBe(false); // A reserves 300
    expect(room.admit(900, 700, 0)).toBe(false); // heavier, but A still waits for room: another writer's, behind A
    expect(room.admit(900, 100, 0)).toBe(false); // lighter: behind
    // A's room is free at 650 (650 + 300): a write more than twice heavier (and near no reservation) goes in front.
    expect(room.admit(650, 5000, 0)).toBe(false);
    expect(room.admit(400, 20_000, 0)).toBe(false); // that one cannot be gone in front of: to the end
    // Order: 5000, A 300, 700, 100, 20000. The 5000 write is taken alone; A right after it.
    expect(room.ready(1, 300)).toBe(false);
    expect(room.admit(0, 5000, 0)).toBe(true);
    expect(room.admit(650, 5000, 0)).toBe(false); // A was gone in front of once: to the end
    expect(room.admit(600, 100, 0)).toBe(false); // its reservation is behind A: 600 + 300 + 700 ahead
    expect(room.admit(700, 300, 0)).toBe(true); // A
  });
});

describe("a retry heavier than its reservation, through an engine store", () => {
  for (const waits of [true, false]) {
    it(`is taken once its room is free, not after its old reservation lapses (${waits ? "after drained(weight)" : "after a flush, counters not read since"})`, async () => {
      const root = tempRoot("room-retry");
      const engine = openStorageEngine({ maxPendingBytes: 16 * 1024 });
      try {
        const tier = engine.kv<string>({ kind: "sqlite", path: root.fresh("s.db") }, { debounceMs: 60_000 });
        let err: StorageError | undefined;
        let i = 0;
        while (err === undefined && i < 1000) err = backpressureOf(() => tier.save(`k${i++}`, "v".repeat(1000)));
        expect(err).toBeInstanceOf(StorageError);
        const drained = waits ? tier.drained?.(err?.details?.weight as number) : undefined;
        await tier.flush();
        await drained;
        // The caller's value grew meanwhile (3x): it fits beside what is pending, not beside its stale reservation too.
        tier.save("filler", "f".repeat(12_700));
        expect(backpressureOf(() => tier.save(`k${i - 1}`, "w".repeat(3000)))).toBeUndefined();
        await tier.flush();
        expect(await tier.load(`k${i - 1}`)).toBe("w".repeat(3000));
      } finally {
        await engine.close();
        root.remove();
      }
    });
  }
});

describe("an engine store's fast path", () => {
  it("does not hide a reservation's free room: the figure it reads may be stale (the actor settled since)", () => {
    const counters = new ActorCounters();
    const backlog = new StoreBacklog(counters, 1000, "s");
    backlog.add(900, 1);
    expect(() => backlog.assertRoom("t", 300)).toThrow(StorageError); // reserves 300
    counters.add("settledBytes", 250); // the actor committed some: 650 pending, the reservation's room is free
    // The retry, a newer value of 700: in front of its reservation, reserved there (650 + 700 > 1000).
    expect(() => backlog.assertRoom("t", 700)).toThrow(StorageError);
    counters.add("settledBytes", 400); // 250 pending
    expect(() => backlog.assertRoom("t", 700)).not.toThrow(); // before: 250 + 300 (stale) + 700 > 1000
  });
});
