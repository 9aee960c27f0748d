/**
 * Room under maxPendingBytes is first come, first served (src/tier/room.ts, docs/design.md §3.19). Before, a write
 * refused for its size could starve: a steady stream of small writes kept what was pending above the point where it
 * fit, and drained() waited for "the write refused last" of the whole tier, so one writer's wait was another's.
 * Real memory and SQLite backends; the slow one is a real memory backend whose writes take 20 ms.
 */
import { join } from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import type { BatchOp, StorageBackend } from "../../src/backend/types.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { backpressureOf } from "../support/save-until-refused.js";
import { kvStorage } from "../../src/tier/kv.js";
import { RESERVATION_LAPSE_MS, RoomQueue } from "../../src/tier/room.js";
import { wrapBackend } from "../support/test-backend.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const dir = mkdtempSync(join(tmpdir(), "room-fairness-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A real memory backend whose every batch takes `ms` (a slow disk). */
function slowBackend(ms: number): StorageBackend {
  const inner = memoryBackend();
  return Object.assign(Object.create(inner) as StorageBackend, {
    async writeBatch(ops: readonly BatchOp[]) {
      await sleep(ms);
      return inner.writeBatch?.(ops);
    },
    async write(key: string, bytes: Uint8Array) {
      await sleep(ms);
      return inner.write(key, bytes);
    },
  });
}

describe("room under maxPendingBytes is first come, first served", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("a write larger than the bound gets in under a steady stream of small writes (it starved before)", async () => {
    const tier = kvStorage<string>(slowBackend(20), { maxPendingBytes: 64 * 1024, debounceMs: 0 });
    let smallDone = false;
    let smallTaken = 0;
    const small = (async () => {
      for (let i = 0; i < 3000 && !smallDone; i++) {
        if (backpressureOf(() => tier.save(`s${i % 50}`, "x".repeat(200))) === undefined) smallTaken++;
        await sleep(1);
      }
      smallDone = true;
    })();
    await sleep(30); // the small writer is streaming: something is always pending
    const big = "y".repeat(100 * 1024);
    let tries = 0;
    let taken = false;
    while (!smallDone && !taken) {
      tries++;
      const err = backpressureOf(() => tier.save("big", big));
      if (err === undefined) taken = true;
      else await Promise.race([tier.drained?.(err.details?.weight as number), small]);
    }
    smallDone = true;
    await small;
    expect(taken).toBe(true);
    expect(tries).toBeLessThanOrEqual(2);
    await tier.flush();
    expect(smallTaken).toBeGreaterThan(0);
    expect(await tier.load("big")).toBe(big);
    await tier.close();
  });

  it("drained(weight) waits for the caller's own write, not the one refused last", async () => {
    const backend = wrapBackend(memoryBackend(), { async: true });
    const tier = kvStorage<string>(backend, { maxPendingBytes: 10_000, debounceMs: 60_000 });
    tier.save("a", "a".repeat(3500));
    const release = backend.holdWrites();
    const first = tier.flush(); // takes "a", held at the gate
    tier.save("b", "b".repeat(3500)); // pending, not taken
    const smallErr = backpressureOf(() => tier.save("small", "s".repeat(3000)));
    const bigErr = backpressureOf(() => tier.save("big", "B".repeat(9000)));
    expect(smallErr?.details?.weight).toBeGreaterThan(3000);
    expect(bigErr?.details?.weight).toBeGreaterThan(9000);
    release();
    await first; // "a" committed: "b" alone is pending, the small write fits beside it, the big one does not
    let state = "waiting";
    void tier.drained?.(smallErr?.details?.weight as number).then(() => (state = "drained"));
    await sleep(20);
    expect(state).toBe("drained");
    // The small write was first: its retry is taken, and a newcomer cannot take the big write's room.
    expect(backpressureOf(() => tier.save("small", "s".repeat(3000)))).toBeUndefined();
    expect(backpressureOf(() => tier.save("late", "l".repeat(500)))).toBeInstanceOf(StorageError);
    const big = tier.drained?.(bigErr?.details?.weight as number);
    await tier.flush();
    await big;
    expect(backpressureOf(() => tier.save("big", "B".repeat(9000)))).toBeUndefined();
    await tier.flush();
    expect((await tier.load("big"))?.length).toBe(9000);
    await tier.close();
  });

  it("a reservation its writer never claims lapses: the store is not held back for good", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const room = new RoomQueue(() => 1000);
    expect(room.admit(600, 800, 0)).toBe(false); // reserved
    expect(room.admit(100, 150, 0)).toBe(false); // 100 + 800 reserved + 150 > 1000
    expect(room.ready(100, 800)).toBe(true); // the first one's room is free now: its clock starts
    vi.setSystemTime(Date.now() + RESERVATION_LAPSE_MS + 1);
    expect(room.admit(100, 150, 0)).toBe(true); // the first writer never came back: its reservation lapsed
  });

  it("a retry whose estimated weight moved claims its reservation (it queued a new one each time, stalling the store)", () => {
    const room = new RoomQueue(() => 1000);
    expect(room.admit(600, 667, 0)).toBe(false);
    expect(room.admit(600, 650, 0)).toBe(false); // the same write, weighed by a store average that moved
    expect(room.ready(0, 650)).toBe(true);
    expect(room.admit(0, 650, 0)).toBe(true);
    expect(room.admit(650, 300, 0)).toBe(true); // nothing stale is left reserved
  });

  it("deletes count against the bound while they wait: un-awaited deletes behind a slow flush are refused past it", async () => {
    const backend = wrapBackend(memoryBackend(), { async: true });
    const tier = kvStorage<string>(backend, { maxPendingBytes: 4096, debounceMs: 60_000 });
    tier.save("a", "a");
    const release = backend.holdWrites();
    const flushing = tier.flush();
    const accepted: Promise<void>[] = [];
    let refused: unknown;
    for (let i = 0; i < 1000 && refused === undefined; i++) {
      const p = tier.delete(`key-${i}`);
      // A refusal is a rejected promise; an accepted delete settles only after the flush ahead of it.
      const settled = await Promise.race([p.then(() => "done", (e: unknown) => e), new Promise((r) => setImmediate(() => r("waiting")))]);
      if (settled === "waiting") accepted.push(p);
      else refused = settled;
    }
    expect(refused).toBeInstanceOf(StorageError);
    expect((refused as StorageError).code).toBe("backpressure");
    expect(accepted.length).toBeGreaterThan(10);
    expect(accepted.length).toBeLessThan(100);
    release();
    await flushing;
    await Promise.all(accepted);
    await tier.drained?.();
    expect(backpressureOf(() => tier.save("b", "b".repeat(3000)))).toBeUndefined();
    await tier.close();
  });

  it("engine: deletes count against the store's bound until the actor answered them", async () => {
    const engine = openStorageEngine({ maxPendingBytes: 4096 });
    try {
      const tier = engine.kv<string>({ kind: "sqlite", path: join(dir, "deletes.db") });
      const results = Array.from({ length: 1000 }, (_, i) => tier.delete(`key-${i}`).then(() => "done", (e: unknown) => e));
      const settled = await Promise.all(results);
      const refused = settled.filter((r) => r instanceof StorageError && r.code === "backpressure");
      expect(settled.filter((r) => r === "done").length).toBeGreaterThan(10);
      expect(refused.length).toBeGreaterThan(500); // one turn: the actor answered none of them yet
      expect((await engine.stats())[0]?.pendingBytes ?? 0).toBe(0);
      await tier.drained?.();
      await expect(tier.delete("again")).resolves.toBeUndefined();
    } finally {
      await engine.close();
    }
  });

  it("engine: a refusal carries its weight, drained(weight) says when its retry is taken", async () => {
    const engine = openStorageEngine({ maxPendingBytes: 16 * 1024 });
    try {
      const tier = engine.kv<string>({ kind: "sqlite", path: join(dir, "engine.db") }, { debounceMs: 60_000 });
      const value = "v".repeat(1000);
      let err: StorageError | undefined;
      let i = 0;
      while (err === undefined && i < 1000) err = backpressureOf(() => tier.save(`k${i++}`, value));
      expect(err).toBeInstanceOf(StorageError);
      const weight = err?.details?.weight;
      expect(typeof weight).toBe("number");
      const drained = tier.drained?.(weight as number);
      await tier.flush();
      await drained;
      expect(backpressureOf(() => tier.save(`k${i - 1}`, value))).toBeUndefined();
      await tier.flush();
      expect(await tier.load(`k${i - 1}`)).toBe(value);
    } finally {
      await engine.close();
    }
  });
});
