/**
 * A paced turn's lone write op goes to the turn ring by the connection's short path (connection.ts sendLone, design
 * §3.35, task 244), and the puts op the ring took is emptied and reused for the next turn's save. Guards for that
 * path: issue order with what a turn queues around a save, an op reused across turns (joined by a second save, sent
 * as a message when the ring cannot take its value) never carrying a value of an earlier turn, a value whose getter
 * throws on the ring's read refused as before, and the wake rule: a lone save with nothing after it (no flush, no
 * later write, no message) becomes durable while the worker slept on the ring. Real worker threads; the reference
 * is the same engine with the ring off (every turn a message).
 */
import { describe, expect, it } from "vitest";
import type { StoreSpec } from "../../src/engine/index.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { outcome } from "../support/refusals.js";
import { until } from "../support/wait.js";
import { turn } from "./fixtures/helpers.js";
import { readyKv, ringEngines } from "./fixtures/ring-engines.js";

const RING = 1 << 16;
const { root, open } = ringEngines("turn-ring-lone-op", { turnRingBytes: RING });

/** Runs `script` on a kv tier of an engine with the ring and of one without; both must read back alike. */
async function withAndWithout<T>(name: string, script: (kv: KvStorageTier<unknown>) => Promise<T>): Promise<[T, T, number]> {
  const ringed = open();
  const plain = open({ turnRingBytes: 0 });
  const a = await readyKv<unknown>(ringed.engine, root, `${name}-ring.db`);
  const b = await readyKv<unknown>(plain.engine, root, `${name}-plain.db`);
  const [withRing, without] = await Promise.all([script(a.kv), script(b.kv)]);
  return [withRing, without, ringed.ringCounts(a.store)!.written];
}

describe("a paced turn's lone write op through the ring", () => {
  it("keeps issue order with the ops its turn queues before and after a save", async () => {
    const [withRing, without, written] = await withAndWithout("order", async (kv) => {
      kv.save("a", 1);
      await turn();
      void kv.delete("a"); // queued first: the save after it lands after it
      kv.save("a", 2);
      await turn();
      kv.save("c", 3);
      void kv.delete("c"); // after the save: deletes it
      await turn();
      kv.save("e", 5);
      const first = outcome(kv.flush()); // answers for e = 5
      kv.save("e", 6);
      await turn();
      const flushed = [await first, await outcome(kv.flush())];
      return [flushed, await Promise.all(["a", "c", "e"].map((k) => kv.load(k)))];
    });
    expect(withRing).toEqual([["resolved", "resolved"], [2, undefined, 6]]);
    expect(withRing).toEqual(without);
    expect(written).toBeGreaterThan(0);
  });

  it("an op reused across turns carries only its own turn's writes: joined by a second save, or sent as a message", async () => {
    const big = "z".repeat(RING); // no room in the ring: the turn's op goes as the writes message
    const [withRing, without, written] = await withAndWithout("reuse", async (kv) => {
      const script: Array<() => void> = [
        () => kv.save("k1", { n: 1 }), // through the ring: its op is kept for the next save
        () => void kv.delete("k1"), // a request: the kept op stays kept
        () => kv.save("k2", 2), // the kept op (were k1's write left in it, k1 would be back)
        () => {
          kv.save("k3", 3); // the kept op, joined by the next save: two writes in it (not kept after)
          kv.save("k4", 4);
        },
        () => kv.save("k5", { big }), // a message
        () => kv.save("k6", [6]),
      ];
      for (const step of script) {
        step();
        await turn();
      }
      const flushed = await outcome(kv.flush());
      const keys = ["k1", "k2", "k3", "k4", "k5", "k6"];
      const held = await Promise.all(keys.map((k) => kv.load(k)));
      return [flushed, held.map((v) => (typeof v === "object" && v !== null && "big" in v ? "big" : v))];
    });
    expect(withRing).toEqual(["resolved", [undefined, 2, 3, 4, "big", [6]]]);
    expect(withRing).toEqual(without);
    expect(written).toBeGreaterThanOrEqual(4);
  });

  it("a value whose getter throws when the ring reads it fails the tier's flush once (CodecError), as with the ring off", async () => {
    const [withRing, without] = await withAndWithout("getter", async (kv) => {
      let reads = 0;
      // The save's value check reads it once; the hand-off's read (the ring's, or structured clone's) throws.
      const hostile = {
        get x(): number {
          if (++reads === 2) throw new Error("second read");
          return 1;
        },
      };
      kv.save("before", 1);
      await turn();
      kv.save("bad", hostile);
      await turn();
      kv.save("after", 2);
      await turn();
      return [await outcome(kv.flush()), await outcome(kv.flush()), await Promise.all(["before", "bad", "after"].map((k) => kv.load(k)))];
    });
    expect(withRing).toEqual(["rejected encode-failed", "resolved", [1, undefined, 2]]);
    expect(withRing).toEqual(without);
  });

  it("a lone save with nothing after it becomes durable without a flush, also when the worker slept on the ring", async () => {
    const access = open();
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("lone.db") };
    const kv = access.engine.kv<number>(store, { name: "kv", debounceMs: 0 });
    kv.save("k", 0);
    await kv.flush();
    // Asleep in Atomics.waitAsync after its empty polls (ring-drain.ts IDLE_POLLS): only the record's notify wakes it.
    await until(() => access.ringCounts(store)!.sleeping, "the worker asleep on the ring", { timeoutMs: 20_000 });
    const asleep = access.ringCounts(store)!;
    kv.save("k", 1);
    await turn();
    expect(access.ringCounts(store)!.written).toBe(asleep.written + 1);
    // No flush, no later write, no message: the actor took and committed it on its own (the shared counters say so).
    await until(async () => (await access.engine.stats())[0]!.pendingEntries === 0, "the lone save committed", { timeoutMs: 20_000 });
    expect(access.ringCounts(store)!.read).toBe(asleep.written + 1);
    await kv.flush();
    expect(await kv.load("k")).toBe(1);
  });
});
