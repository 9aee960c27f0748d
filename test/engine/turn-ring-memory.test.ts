/**
 * The turn ring's memory (task 209, review r204; docs/design.md §3.35): a store holds a ring of its engine's only
 * while it writes through it. Rings are taken at a store's first paced write, given back when its last tier closes
 * or it goes idle, reused once the worker let go of them, and never more than the engine's budget. Memory is checked
 * by counts of rings (the engine's ledger), with the process's array-buffer bytes only as a coarse bound. Real worker
 * threads and SQLite files; the order across handovers is checked against the same script with the ring off.
 */
import { describe, expect, it } from "vitest";
import type { StoreSpec } from "../../src/engine/index.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { outcome } from "../support/refusals.js";
import { until } from "../support/wait.js";
import { turn } from "./fixtures/helpers.js";
import { pacedSave, readyKv, ringEngines } from "./fixtures/ring-engines.js";
import { BLOCK } from "./fixtures/probe-messages.mjs";
import { mulberry32 as random } from "../../src/base/prng.js";

const { root, open } = ringEngines("turn-ring-memory");

const MiB = 2 ** 20;

describe("the turn ring's memory", () => {
  it("stores opened, written and closed one after another keep no ring each: one or two buffers serve them all", async () => {
    const access = open(); // the default ring, 1 MiB
    const e = access.engine;
    const before = process.memoryUsage().arrayBuffers;
    const stores: StoreSpec[] = [];
    for (let i = 0; i < 20; i++) {
      const store: StoreSpec = { kind: "sqlite", path: root.fresh(`tenant${i}.db`) };
      stores.push(store);
      const kv = e.kv<{ i: number }>(store, { name: "kv" });
      await kv.flush(); // the actor is ready: the next turn's save goes through a ring
      kv.save("k", { i });
      await turn();
      await kv.flush();
      expect(access.ringCounts(store)).toMatchObject({ written: 1, read: 1 }); // it did go through a ring
      await kv.close();
    }
    const retainedMiB = (process.memoryUsage().arrayBuffers - before) / MiB;
    // Coarse (the collector may keep a buffer a while): 20 stores kept 20 MiB of rings before (review r204).
    expect(retainedMiB).toBeLessThan(5);
    expect(access.rings?.()).toMatchObject({ held: 0 });
    expect(access.rings?.()!.made).toBeLessThanOrEqual(2);
    for (const [i, store] of stores.entries()) expect(await e.kv<{ i: number }>(store, { name: "kv" }).load("k")).toEqual({ i });
  }, 120_000);

  it("an open store that stopped writing gives its ring back, and takes one again at its next paced write", async () => {
    const access = open();
    const { store, kv } = await readyKv(access.engine, root, "idle.db");
    for (let i = 0; i < 5; i++) {
      kv.save(`k${i}`, i);
      await turn();
    }
    expect(access.rings()).toMatchObject({ held: 1 });
    // The engine's own sweep (every second) gives it back: no sweep is run by hand here.
    await until(() => access.rings()!.held === 0, "the idle store's ring given back", { timeoutMs: 30_000 });
    await until(() => access.rings()!.reusable === 1, "the worker released it", { timeoutMs: 20_000 });
    kv.save("k5", 5);
    await turn();
    expect(access.rings()).toMatchObject({ held: 1, made: 1 }); // the same buffer again: the worker released it
    expect(await outcome(kv.flush())).toBe("resolved");
    expect(access.ringCounts(store)).toMatchObject({ written: 6, read: 6 });
    expect(await Promise.all(Array.from({ length: 6 }, (_, i) => kv.load(`k${i}`)))).toEqual([0, 1, 2, 3, 4, 5]);
  }, 60_000);

  it("a lost actor's ring is dropped, never handed to another store; the revived actor takes a fresh one", async () => {
    const access = open();
    const e = access.engine;
    const { store, kv } = await readyKv(e, root, "lost.db");
    await pacedSave(kv, "a", 1);
    expect(access.rings()).toMatchObject({ held: 1, kept: 1, made: 1 });
    await access.terminate(store); // its worker never marks the ring released
    await until(async () => (await e.stats()).every((s) => !s.alive), "the actor lost");
    expect(access.rings()).toMatchObject({ held: 0, kept: 0 });
    kv.save("b", 2); // goes with the revived actor's reopen (a message)
    await turn();
    expect(await outcome(kv.flush())).toBe("resolved");
    kv.save("c", 3);
    await turn();
    expect(await outcome(kv.flush())).toBe("resolved");
    expect(access.rings()).toMatchObject({ held: 1, kept: 1, made: 2 });
    expect(access.ringCounts(store)).toMatchObject({ written: 1, read: 1 });
    expect([await kv.load("a"), await kv.load("b"), await kv.load("c")]).toEqual([1, 2, 3]);
  }, 60_000);

  it("a ring handed back to an actor lost before it read the handover is dropped: it holds no place in the budget", async () => {
    const access = open();
    const e = access.engine;
    const { store, kv } = await readyKv(e, root, "lost-handover.db");
    await pacedSave(kv, "a", 1); // every record read
    await access.post(store, { type: BLOCK, ms: 60_000 }); // the worker will not read the handover
    access.sweepRings();
    access.sweepRings();
    expect(access.rings()).toMatchObject({ held: 0, kept: 1, reusable: 0 });
    await access.terminate(store);
    await until(async () => (await e.stats()).every((s) => !s.alive), "the actor lost");
    expect(access.rings()).toMatchObject({ held: 0, kept: 0 });
    expect(await kv.load("a")).toBe(1);
  }, 60_000);

  it("budget: more stores writing at once than the engine's rings allow send the rest as messages, nothing lost", async () => {
    // 32 MiB rings: the 64 MiB budget holds two.
    const access = open({ turnRingBytes: 32 * MiB });
    const e = access.engine;
    const stores = Array.from({ length: 6 }, (_, i): StoreSpec => ({ kind: "sqlite", path: root.fresh(`budget${i}.db`) }));
    const kvs = stores.map((s) => e.kv<number>(s, { name: "kv", debounceMs: 60_000 }));
    await Promise.all(kvs.map((kv) => kv.flush()));
    let most = 0;
    for (let round = 0; round < 30; round++) {
      kvs.forEach((kv, i) => kv.save(`k${round % 4}`, round * 10 + i));
      await turn();
      most = Math.max(most, access.rings()!.kept);
    }
    expect(most).toBe(2);
    expect(access.rings()!.made).toBe(2); // never more buffers than the budget
    const ringed = stores.map((s) => access.ringCounts(s)!.written);
    expect(ringed.filter((w) => w > 0).length).toBe(2); // the first two to write hold the two rings
    expect(await Promise.all(kvs.map((kv) => outcome(kv.flush())))).toEqual(Array(6).fill("resolved"));
    const held = await Promise.all(kvs.map((kv) => Promise.all(["k0", "k1", "k2", "k3"].map((k) => kv.load(k)))));
    expect(held).toEqual(kvs.map((_, i) => [28, 29, 26, 27].map((round) => round * 10 + i)));
  }, 120_000);

  it("order across handovers: rings given back and taken again between saves, deletes, flushes and loads, as with the ring off", async () => {
    const run = async (turnRingBytes: number, seed: number): Promise<{ answers: unknown[]; written: number; handovers: number }> => {
      const access = open({ turnRingBytes });
      const { store, kv } = await readyKv<unknown>(access.engine, root, `order-${turnRingBytes}.db`);
      let handovers = 0;
      const giveBack = async (): Promise<void> => {
        const counts = access.ringCounts(store);
        if (counts === undefined || access.rings()!.held === 0) return;
        await until(() => access.ringCounts(store)!.read === counts.written, "the ring's records read", { timeoutMs: 20_000 });
        access.sweepRings();
        access.sweepRings();
        if (access.rings()!.held === 0) handovers++;
      };
      const answers = await script(kv, seed, 300, giveBack);
      return { answers, written: access.ringCounts(store)?.written ?? 0, handovers };
    };
    for (const seed of [7, 8]) {
      const ringed = await run(1 << 16, seed);
      const plain = await run(0, seed);
      expect(ringed.answers).toEqual(plain.answers);
      expect(ringed.written).toBeGreaterThan(50);
      expect(ringed.handovers).toBeGreaterThan(10);
    }
  }, 120_000);
});

/**
 * Paced calls, one or two a turn: saves (through the ring), deletes, flushes and loads (messages), and now and then
 * the engine's idle sweep run twice after a quiet turn, which gives the ring back (a handover message) so the next
 * save takes one again (another). Every call's outcome and value read, in order, then what the store holds.
 */
async function script(kv: KvStorageTier<unknown>, seed: number, steps: number, giveBack: () => Promise<void>): Promise<unknown[]> {
  const next = random(seed);
  const answers: Promise<unknown>[] = [];
  for (let i = 0; i < steps; i++) {
    const r = next();
    const key = `k${Math.floor(next() * 5)}`;
    if (r < 0.55) kv.save(key, { i, s: "x".repeat(i % 30) });
    else if (r < 0.65) answers.push(outcome(kv.delete(key)));
    else if (r < 0.72) answers.push(outcome(kv.flush()));
    else if (r < 0.85) answers.push(kv.load(key).then((v) => ({ read: key, v })));
    else {
      await turn();
      await giveBack(); // once the ring's last record is read, two sweeps with no write between give it back
      if (next() < 0.5) kv.save(key, { i, after: "handover" }); // in the handover's turn
    }
    await turn();
  }
  answers.push(outcome(kv.flush()));
  const settled = await Promise.all(answers);
  const held = await Promise.all(["k0", "k1", "k2", "k3", "k4"].map((k) => kv.load(k)));
  return [...settled, held];
}
