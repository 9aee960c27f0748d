/**
 * The turn ring (src/engine/ring.ts, ring-drain.ts; docs/design.md §3.35): a paced turn's writes reach the store's
 * worker through shared memory instead of a message. Real worker threads throughout; the reference for what a
 * script must produce is the same engine with the ring off (`turnRingBytes: 0`, every turn a message).
 */
import { describe, expect, it } from "vitest";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { openStorageEngineForTests } from "../../src/engine/engine.js";
import { sqliteKv } from "../../src/tier/index.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { outcome } from "../support/refusals.js";
import { sleep, until } from "../support/wait.js";
import { turn } from "./fixtures/helpers.js";
import { readyKv, RING_WORKER, ringEngines } from "./fixtures/ring-engines.js";
import { BLOCK } from "./fixtures/probe-messages.mjs";
import { mulberry32 as random } from "../../src/base/prng.js";

const REFUSING = new URL("./fixtures/refusing-records.mjs", import.meta.url).href;
/** The ring's size in these tests (the engine's default is 1 MiB). */
const RING = 1 << 18;
const { root, open, track } = ringEngines("turn-ring", { turnRingBytes: RING });

/**
 * One write or call per turn (now and then two in a turn): saves the ring takes, saves it refuses (a value larger than
 * the ring; a lone surrogate, which UTF-8 has no form for) so they go as messages between ring records, deletes, rollbacks,
 * flushes and loads (messages the worker must not handle before the records written ahead of them). Every call's
 * outcome and every value read, in order, then what the store holds.
 */
async function script(kv: KvStorageTier<unknown>, seed: number, steps: number): Promise<unknown[]> {
  const next = random(seed);
  const answers: Promise<unknown>[] = [];
  for (let i = 0; i < steps; i++) {
    const per = next() < 0.2 ? 2 : 1;
    for (let j = 0; j < per; j++) {
      const key = `k${Math.floor(next() * 6)}`;
      const r = next();
      if (r < 0.5) kv.save(key, { i, s: "x".repeat(i % 40), nested: [i, { t: i % 2 === 0 }] });
      else if (r < 0.56) kv.save(key, { big: "y".repeat((1 << 18) + i) }); // no room in the ring: a message
      else if (r < 0.6) kv.save(key, `\ud800 lone ${i}`); // no form in UTF-8: a message (the JSON codec refuses it)
      else if (r < 0.68) answers.push(outcome(kv.delete(key)));
      else if (r < 0.74) kv.rollback();
      else if (r < 0.82) answers.push(outcome(kv.flush()));
      else answers.push(kv.load(key).then((v) => ({ read: key, v })));
    }
    await turn();
  }
  answers.push(outcome(kv.flush()));
  const settled = await Promise.all(answers);
  const held = await Promise.all(["k0", "k1", "k2", "k3", "k4", "k5"].map((k) => kv.load(k)));
  return [...settled, held];
}

describe("the turn ring", () => {
  it("issue order: ring records between saves the ring refuses, deletes, rollbacks, flushes and loads; as without the ring", async () => {
    for (const seed of [1, 2, 3]) {
      const ringed = open();
      const plain = open({ turnRingBytes: 0 });
      const storeA: StoreSpec = { kind: "sqlite", path: root.fresh(`ring-${seed}.db`) };
      const storeB: StoreSpec = { kind: "sqlite", path: root.fresh(`plain-${seed}.db`) };
      const a = ringed.engine.kv<unknown>(storeA, { name: "kv", debounceMs: 60_000 });
      const b = plain.engine.kv<unknown>(storeB, { name: "kv", debounceMs: 60_000 });
      await Promise.all([a.flush(), b.flush()]);
      const [withRing, without] = await Promise.all([script(a, seed, 300), script(b, seed, 300)]);
      expect(withRing).toEqual(without);
      const counts = ringed.ringCounts(storeA)!;
      expect(counts.written).toBeGreaterThan(100); // most saves went through the ring
      expect(counts.read).toBe(counts.written);
      expect(plain.ringCounts(storeB)).toBeUndefined();
      await Promise.all([ringed.engine.close(), plain.engine.close()]);
    }
  }, 120_000);

  it("a job (a comlink control call) runs after every ring record written before its call", async () => {
    const access = open();
    const { store, kv } = await readyKv<unknown>(access.engine, root, "job.db");
    const before = access.ringCounts(store)!.written;
    const seen: unknown[] = [];
    for (let i = 0; i < 40; i++) {
      kv.save("k", { i });
      await turn(); // the save went alone, through the ring
      seen.push(await access.engine.runJob(store, "flush-read", { key: "k" }));
    }
    expect(seen).toEqual(Array.from({ length: 40 }, (_, i) => JSON.stringify({ i })));
    expect(access.ringCounts(store)!.written - before).toBe(40);
  }, 60_000);

  it("a flush resolves once the ring's records before it are committed: they survive the worker's loss after it", async () => {
    const access = open();
    const e = access.engine;
    const { store, kv } = await readyKv(e, root, "acked.db");
    for (let i = 0; i < 50; i++) {
      kv.save(`k${i}`, i);
      await turn();
    }
    await kv.flush();
    expect(access.ringCounts(store)!.written).toBeGreaterThanOrEqual(50);
    await access.terminate(store);
    await until(async () => (await e.stats()).every((s) => !s.alive), "the actor lost");
    const back = await Promise.all(Array.from({ length: 50 }, (_, i) => kv.load(`k${i}`)));
    expect(back).toEqual(Array.from({ length: 50 }, (_, i) => i));
  }, 60_000);

  it("a refused write between ring-borne writes fails its tier's flush once (CodecError), as without the ring", async () => {
    const results: string[][] = [];
    for (const turnRingBytes of [RING, 0]) {
      const access = open({ turnRingBytes });
      const { store, kv } = await readyKv<unknown>(access.engine, root, "refused.db");
      const seen: string[] = [];
      kv.save("a", { n: 1 });
      await turn();
      kv.save("b", { n: Number.NaN }); // JSON has no NaN: refused (a refusal op, a message between the ring's records)
      await turn();
      kv.save("c", { n: 3 });
      await turn();
      seen.push(await outcome(kv.flush()));
      seen.push(await outcome(kv.flush()));
      seen.push(JSON.stringify(await Promise.all([kv.load("a"), kv.load("b"), kv.load("c")])));
      if (turnRingBytes > 0) expect(access.ringCounts(store)!.written).toBeGreaterThanOrEqual(2);
      results.push(seen);
    }
    expect(results[0]).toEqual(["rejected encode-failed", "resolved", JSON.stringify([{ n: 1 }, null, { n: 3 }])]);
    expect(results[0]).toEqual(results[1]);
  }, 60_000);

  it("a tier whose codec is a module (user code in the worker) sends its writes as messages: the ring keeps only what JSON keeps", async () => {
    const access = open();
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("module.db") };
    const kv = access.engine.kv<unknown>(store, { name: "kv", debounceMs: 60_000, codec: { module: REFUSING, export: "codec" } });
    await kv.flush();
    const before = access.ringCounts(store)!.written;
    const shared = { s: 1 };
    kv.save("a", { x: shared, y: shared });
    await turn();
    kv.save("b", "bad");
    await turn();
    expect(await outcome(kv.flush())).toBe("rejected encode-failed");
    expect(await kv.load("a")).toEqual({ x: { s: 1 }, y: { s: 1 } });
    expect(access.ringCounts(store)!.written).toBe(before);
  }, 60_000);

  it("records a lost actor never read are reported lost as its messages are; the revived actor starts on a fresh ring", async () => {
    const access = open();
    const e = access.engine;
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("lost.db") };
    const kv = e.kv<number>(store, { name: "kv", debounceMs: 60_000 });
    kv.save("kept", 1);
    await kv.flush();
    const start = access.ringCounts(store)!;
    await access.post(store, { type: BLOCK, ms: 60_000 }); // the worker's thread blocks: nothing drains the ring
    for (let i = 0; i < 20; i++) {
      kv.save(`lost${i}`, i);
      await turn();
    }
    const blocked = access.ringCounts(store)!;
    expect(blocked.written - start.written).toBe(20);
    expect(blocked.read).toBe(start.read);
    expect((await e.stats())[0]).toMatchObject({ pendingEntries: 20 });
    await access.terminate(store);
    await until(async () => (await e.stats()).every((s) => !s.alive), "the actor lost");
    expect(await outcome(kv.flush())).toBe("rejected worker-crashed");
    expect(await kv.load("kept")).toBe(1);
    expect(await Promise.all(Array.from({ length: 20 }, (_, i) => kv.load(`lost${i}`)))).toEqual(Array(20).fill(undefined));
    expect((await e.stats())[0]).toMatchObject({ pendingEntries: 0, pendingBytes: 0 });
    // The revived actor: a ring of its own, every record read once.
    for (let i = 0; i < 10; i++) {
      kv.save(`new${i}`, i);
      await turn();
    }
    expect(await outcome(kv.flush())).toBe("resolved");
    expect(access.ringCounts(store)).toMatchObject({ written: 10, read: 10 });
    expect(await Promise.all(Array.from({ length: 10 }, (_, i) => kv.load(`new${i}`)))).toEqual(Array.from({ length: 10 }, (_, i) => i));
  }, 90_000);

  it("bounded: a full ring sends the rest as messages, all applied in issue order once the worker runs again", async () => {
    const access = open({ turnRingBytes: 1024 });
    const { store, kv } = await readyKv<unknown>(access.engine, root, "full.db");
    await access.post(store, { type: BLOCK, ms: 1500 });
    const saves = 300;
    for (let i = 0; i < saves; i++) {
      kv.save(`k${i % 7}`, { i, pad: "p".repeat(i % 50) });
      await turn();
    }
    await kv.flush();
    const counts = access.ringCounts(store)!;
    expect(counts.written).toBeGreaterThan(0);
    expect(counts.written).toBeLessThan(saves); // the rest went as messages
    expect(counts.read).toBe(counts.written);
    const last = (k: number): number => saves - 1 - ((saves - 1 - k) % 7);
    const held = await Promise.all(Array.from({ length: 7 }, (_, k) => kv.load(`k${k}`)));
    expect(held).toEqual(Array.from({ length: 7 }, (_, k) => ({ i: last(k), pad: "p".repeat(last(k) % 50) })));
  }, 60_000);

  it("idle: the worker stops polling an empty ring (asleep until the next record) and wakes for one", async () => {
    const access = open();
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("idle.db") };
    const kv = access.engine.kv<number>(store, { name: "kv", debounceMs: 60_000 });
    for (let i = 0; i < 5; i++) {
      kv.save("k", i);
      await turn();
    }
    await kv.flush();
    await until(() => access.ringCounts(store)!.sleeping, "the worker asleep on the ring", { timeoutMs: 20_000 });
    const asleep = access.ringCounts(store)!;
    await sleep(200);
    const later = access.ringCounts(store)!;
    expect(later.sleeping).toBe(true);
    expect(later.polls).toBe(asleep.polls); // not one poll while asleep
    expect(later.sleeps).toBe(asleep.sleeps);
    kv.save("k", 99);
    await turn();
    await until(() => access.ringCounts(store)!.read === asleep.written + 1, "the record read after the wake-up", { timeoutMs: 20_000 });
    expect(access.ringCounts(store)!.polls).toBeGreaterThan(asleep.polls);
    await kv.flush();
    expect(await kv.load("k")).toBe(99);
  }, 60_000);

  it("close drains the ring: paced writes never flushed are durable after engine.close()", async () => {
    const e = openStorageEngine({ threads: 1, turnRingBytes: RING });
    const path = root.fresh("close.db");
    const kv = e.kv<number>({ kind: "sqlite", path }, { name: "kv", debounceMs: 60_000 });
    for (let i = 0; i < 100; i++) {
      kv.save(`k${i}`, i);
      await turn();
    }
    await e.close();
    const inline = sqliteKv<number>(path, { name: "kv" });
    try {
      expect(await Promise.all(Array.from({ length: 100 }, (_, i) => inline.load(`k${i}`)))).toEqual(Array.from({ length: 100 }, (_, i) => i));
    } finally {
      await inline.close();
    }
  }, 60_000);

  it("the ring is on by default: a paced turn's write goes through it", async () => {
    const access = openStorageEngineForTests({ threads: 1 }, RING_WORKER);
    track(access.engine);
    // The actor is ready (readyKv flushed once): the next turn's write is posted, not held for `ready`.
    const { store, kv } = await readyKv(access.engine, root, "default.db");
    kv.save("k", 1);
    await turn();
    await kv.flush();
    expect(await kv.load("k")).toBe(1);
    expect(access.ringCounts(store)).toMatchObject({ written: 1, read: 1 });
  });

  it("turnRingBytes: 0 turns the ring off; anything but 0 or a power of two from 1 KiB to 1 GiB is refused", async () => {
    for (const bad of [-1, 1000, 512, 3 * 1024, 2 ** 31, Number.NaN, "1024"]) {
      expect(() => openStorageEngine({ turnRingBytes: bad as number })).toThrow(RangeError);
    }
    const access = open({ turnRingBytes: 0 });
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("off.db") };
    const kv = access.engine.kv<number>(store, { name: "kv", debounceMs: 60_000 });
    kv.save("k", 1);
    await turn();
    await kv.flush();
    expect(await kv.load("k")).toBe(1);
    expect(access.ringCounts(store)).toBeUndefined();
  });
});
