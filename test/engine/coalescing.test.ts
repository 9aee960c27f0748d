/**
 * Calls made in one tick travel in one message and are applied under one hold of the tier's cadence, and the
 * messages a busy actor finds waiting are committed together (group commit): proven by counting flushes
 * (engine.stats / the actor's shared counters), never by timing.
 */
import { existsSync, readdirSync } from "node:fs";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { encodeKeyToFileName } from "../../src/backend/file-names.js";
import { StoreActor } from "../../src/engine/actor.js";
import { ActorCounters } from "../../src/engine/actor-counters.js";
import type { Op, TierSpec } from "../../src/engine/protocol.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("coalesce");
afterAll(() => root.remove());
let engine: StorageEngine;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
});

async function flushesOf(e: StorageEngine): Promise<number> {
  const [s] = await e.stats();
  return s!.flushes;
}

describe("coalescing", () => {
  it.each<[string, () => StoreSpec]>([
    ["sqlite", () => ({ kind: "sqlite", path: root.fresh("c.db") })],
    ["memory", () => ({ kind: "memory", name: root.fresh("c") })],
  ])("%s: 10k saves in one tick to a sync-through kv tier commit in ONE flush", async (_k, spec) => {
    engine = openStorageEngine({ threads: 1 });
    const store = spec();
    const kv = engine.kv<number>(store, { debounceMs: 0 });
    kv.save("warm-up", 0);
    await kv.flush();
    const before = await flushesOf(engine);

    for (let i = 0; i < 10_000; i++) kv.save(`k${i}`, i);
    // Ordered after the saves (next tick, next message): by then the sync-through flush has run.
    await kv.list("k");
    expect((await flushesOf(engine)) - before).toBe(1);
    expect(await kv.list("k")).toHaveLength(10_000);
    expect(await kv.load("k9999")).toBe(9999);
  });

  // Interleaved, the two tiers' writes are taken at each switch between them (call order across the tiers of a
  // store, docs/design.md §3.30), but still commit in one transaction: counted in the actor's case below.
  it("sync-through appends and snapshot saves of one tick interleaved: stored in call order, every entry once", async () => {
    engine = openStorageEngine({ threads: 1 });
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("c2.db") };
    const log = engine.appendLog<number>(store, { name: "log" });
    const snap = engine.snapshot<{ name: string; v: number }>(store, { name: "snap" });
    await Promise.all([log.flush(), snap.flush()]);
    const before = await flushesOf(engine);
    for (let i = 0; i < 1000; i++) {
      log.appendEntries([i]);
      snap.save({ name: "g", v: i });
    }
    await log.loadEntries();
    expect((await flushesOf(engine)) - before, "a batch per switch between the tiers").toBe(2000);
    expect((await log.loadEntries()).entries).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(await snap.load("g")).toEqual({ name: "g", v: 999 }); // last write wins, one write
  });

  it("ticks are separate messages: saves spread over N ticks flush N times", async () => {
    engine = openStorageEngine({ threads: 1 });
    const kv = engine.kv<number>({ kind: "memory", name: root.fresh("ticks") }, { debounceMs: 0 });
    kv.save("warm-up", 0);
    await kv.flush();
    const before = await flushesOf(engine);
    for (let t = 0; t < 5; t++) {
      for (let i = 0; i < 100; i++) kv.save(`t${t}-${i}`, i);
      await kv.load("warm-up"); // a round trip separates the ticks' messages
    }
    expect((await flushesOf(engine)) - before).toBe(5);
  });

  it("save() returns before anything is written: the store is untouched until a later tick", async () => {
    engine = openStorageEngine({ threads: 1 });
    const dir = root.fresh("files");
    const store: StoreSpec = { kind: "file", dir };
    const kv = engine.kv<string>(store, { debounceMs: 0 });
    kv.save("warm-up", "x");
    await kv.flush();
    expect(existsSync(`${dir}/${encodeKeyToFileName("warm-up")}`)).toBe(true);
    const filesBefore = readdirSync(dir).filter((f) => !f.startsWith("."));

    for (let i = 0; i < 100; i++) kv.save(`new-${i}`, "v");
    // Synchronously after 100 sync-through saves: nothing has even left this thread.
    expect(readdirSync(dir).filter((f) => !f.startsWith("."))).toEqual(filesBefore);

    await kv.flush();
    expect(readdirSync(dir).filter((f) => !f.startsWith("."))).toHaveLength(filesBefore.length + 100);
  });
});

describe("group commit in the actor", () => {
  const kvSpec = (name: string): TierSpec => ({
    kind: "kv",
    name,
    debounceMs: undefined,
    compactEvery: undefined,
    codec: { kind: "builtin", name: "json" },
  });
  const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));
  const saves = (tier: number, from: number, n: number): Op => ({
    t: "puts",
    tier,
    keys: Array.from({ length: n }, (_, i) => `k${from + i}`),
    values: Array.from({ length: n }, (_, i) => from + i),
    w: n,
    n,
  });
  /** The counters the actor shares with the main thread (what engine.stats reads). */
  let counters = new ActorCounters();
  const stats = (): { flushes: number; writes: number; settledEntries: number } => ({
    flushes: counters.get("flushes"),
    writes: counters.get("writes"),
    settledEntries: counters.get("settledEntries"),
  });

  async function openActor(): Promise<StoreActor> {
    counters = new ActorCounters();
    const actor = new StoreActor({
      store: { kind: "sqlite", path: root.fresh("group.db") },
      synchronous: "FULL",
      counters: counters.buffer,
    });
    expect(await actor.ready()).toEqual({ threadId: expect.any(Number), tenure: expect.any(String) });
    const opened = await actor.apply([
      { t: "open", tier: 1, spec: kvSpec("a"), id: 1 },
      { t: "open", tier: 2, spec: kvSpec("b"), id: 2 },
    ]);
    expect(opened.results.every((r) => r.ok)).toBe(true);
    await nextTurn();
    return actor;
  }

  it("messages waiting in one turn commit their sync-through writes in ONE transaction", async () => {
    const actor = await openActor();
    try {
      const before = stats().flushes;
      // Three messages delivered back to back, as the port hands over a backlog while the actor was busy.
      const applied = [actor.apply([saves(1, 0, 100)]), actor.apply([saves(1, 100, 100)]), actor.apply([saves(1, 200, 100)])];
      await Promise.all(applied);
      expect(stats().flushes - before, "nothing is committed before the turn ends").toBe(0);
      await nextTurn();
      const after = stats();
      expect(after.flushes - before).toBe(1);
      expect(after.writes).toBe(300);
      expect(after.settledEntries, "every write acknowledged to the main thread").toBe(300);
    } finally {
      await actor.shutdown();
    }
  });

  it("two sync-through tiers' writes interleaved over a turn's messages: one transaction, the last write in call order wins", async () => {
    const actor = await openActor();
    try {
      const commits = counters.get("commits");
      const put = (tier: number, key: string, value: number): Op => ({ t: "puts", tier, keys: [key], values: [value], w: 1, n: 1 });
      const applied = [actor.apply([put(1, "k", 1), put(2, "k", 2)]), actor.apply([put(1, "k", 3), put(2, "j", 1)]), actor.apply([put(1, "j", 2)])];
      await Promise.all(applied);
      await nextTurn(); // the turn's end, scheduled while the messages were applied
      expect(counters.get("commits") - commits, "the turn's one transaction").toBe(1);
      const { results } = await actor.apply([
        { t: "load", tier: 1, key: "k", id: 4 },
        { t: "load", tier: 2, key: "j", id: 5 },
      ]);
      expect(results.map((r) => (r as { value: unknown }).value)).toEqual([3, 2]);
    } finally {
      await actor.shutdown();
    }
  });

  it("a read in a later message of the same turn sees every earlier write, in any tier", async () => {
    const actor = await openActor();
    try {
      const writes = actor.apply([saves(1, 0, 3)]);
      const read = actor.apply([{ t: "list", tier: 2, id: 3, prefix: "k" }]);
      await writes;
      const { results } = await read;
      expect(results[0]).toEqual({ id: 3, ok: true, value: ["k0", "k1", "k2"] });
    } finally {
      await actor.shutdown();
    }
  });
});
