/**
 * openStorageEngine API: options, store kinds, actor reuse, stats, close() draining debounced writes,
 * and the `closed` error afterwards.
 */
import { relative } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { sqliteAppendLog, sqliteKv, sqliteSnapshot } from "../../src/tier/index.js";
import { compactGraphInEngine } from "../../src/persistence/compaction.js";
import { expectCoded, failureOf, tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("api");
afterAll(() => root.remove());

const engines: StorageEngine[] = [];
function engine(opts: Parameters<typeof openStorageEngine>[0] = {}): StorageEngine {
  const e = openStorageEngine({ threads: 1, ...opts });
  engines.push(e);
  return e;
}
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close().catch(() => undefined)));
});

function stores(): Array<[string, StoreSpec]> {
  return [
    ["sqlite", { kind: "sqlite", path: root.fresh("kinds.db") }],
    ["file", { kind: "file", dir: root.fresh("kinds-dir") }],
    ["memory", { kind: "memory", name: root.fresh("kinds-mem") }],
  ];
}

describe("openStorageEngine options", () => {
  it("rejects a thread count that is not an integer >= 1 with a RangeError naming it", () => {
    expect(() => openStorageEngine({ threads: 0 })).toThrow(RangeError);
    expect(() => openStorageEngine({ threads: 1.5 })).toThrow(/threads/);
  });

  it("rejects an unknown SQLite synchronous mode at openStorageEngine with a RangeError naming it", async () => {
    const bad = { threads: 1, synchronous: "SOMETIMES" } as unknown as Parameters<typeof openStorageEngine>[0];
    const { error } = await failureOf(() => engines.push(openStorageEngine(bad)));
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toMatch(/synchronous/);
  });

  it("accepts threads, onError and synchronous and serves stores with them", async () => {
    const errors: Error[] = [];
    const e = engine({ threads: 2, synchronous: "NORMAL", onError: (err) => errors.push(err) });
    const path = root.fresh("normal.db");
    const kv = e.kv<number>({ kind: "sqlite", path });
    kv.save("a", 1);
    await kv.flush();
    expect(await kv.load("a")).toBe(1);
    await e.close();
    expect(errors).toEqual([]);
    const inline = sqliteKv<number>(path);
    expect(await inline.load("a")).toBe(1);
    await inline.close();
  });
});

describe("store kinds", () => {
  it.each(stores())("%s: kv, snapshot and append-log proxies round-trip through the actor", async (_kind, store) => {
    const e = engine();
    const kv = e.kv<{ n: number }>(store, { name: "kv" });
    const snap = e.snapshot<{ name: string; v: number }>(store, { name: "snap" });
    const log = e.appendLog<string>(store, { name: "log" });
    kv.save("k/1", { n: 1 });
    snap.save({ name: "g", v: 7 });
    log.appendEntries(["a", "b"]);
    log.appendEntries(["c"]);
    await Promise.all([kv.flush(), snap.flush(), log.flush()]);
    expect(await kv.load("k/1")).toEqual({ n: 1 });
    expect(await snap.load("g")).toEqual({ name: "g", v: 7 });
    expect((await log.loadEntries()).entries).toEqual(["a", "b", "c"]);
    const [s] = await e.stats();
    expect(s?.store).toEqual(store);
    expect(s?.alive).toBe(true);
  });

  it("normalises store paths: a relative sqlite path names the same store as its absolute form", async () => {
    const e = engine();
    const abs = root.fresh("norm.db");
    const rel = relative(process.cwd(), abs);
    const a = e.kv<number>({ kind: "sqlite", path: abs });
    const b = e.kv<number>({ kind: "sqlite", path: rel });
    a.save("x", 1);
    await a.flush();
    expect(await b.load("x")).toBe(1);
    expect(await e.stats()).toHaveLength(1);
  });

  it("rejects a malformed store spec with a TypeError naming the field", () => {
    const e = engine();
    expect(() => e.kv({ kind: "sqlite", path: "" })).toThrow(/store\.path/);
    expect(() => e.kv({ kind: "carrier-pigeon" } as unknown as StoreSpec)).toThrow(TypeError);
  });
});

describe("one actor per store", () => {
  it.each(stores())("%s: opening the same store twice reuses its actor and both proxies share data", async (_k, store) => {
    const e = engine();
    const first = e.kv<string>(store, { name: "first" });
    const second = e.kv<string>(store, { name: "second" });
    first.save("from-first", "1");
    await first.flush();
    second.save("from-second", "2");
    await second.flush();
    expect(await second.load("from-first")).toBe("1");
    expect(await first.load("from-second")).toBe("2");
    const stats = await e.stats();
    expect(stats).toHaveLength(1);
    expect(stats[0]?.flushes).toBe(2);
  });

  it("different stores get different entries in stats()", async () => {
    const e = engine();
    const [[, a], [, b], [, c]] = stores() as [[string, StoreSpec], [string, StoreSpec], [string, StoreSpec]];
    for (const s of [a, b, c]) {
      const kv = e.kv<number>(s);
      kv.save("k", 1);
      await kv.flush();
    }
    const stats = await e.stats();
    expect(stats.map((s) => s.store.kind).sort()).toEqual(["file", "memory", "sqlite"]);
  });
});

describe("engine.stats()", () => {
  it("reports flushes, bytes, frames and latency percentiles after a load", async () => {
    const e = engine();
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("stats.db") };
    const kv = e.kv<{ i: number; pad: string }>(store, { debounceMs: 60_000 });
    const log = e.appendLog<number>(store, { name: "log", debounceMs: 60_000 });
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 50; i++) kv.save(`k${round}-${i}`, { i, pad: "x".repeat(32) });
      log.appendEntries([round, round + 1]);
      await Promise.all([kv.flush(), log.flush()]);
    }
    const [s] = await e.stats();
    expect(s).toBeDefined();
    expect(s!.store).toEqual(store);
    expect(s!.alive).toBe(true);
    expect(s!.flushes).toBe(40);
    expect(s!.failedFlushes).toBe(0);
    expect(s!.bytesWritten).toBeGreaterThan(20 * 50 * 32);
    expect(s!.frames).toBe(20 * 50 + 20);
    expect(s!.pendingEntries).toBe(0);
    expect(s!.pendingBytes).toBe(0);
    expect(s!.queueDepth).toBe(0);
    expect(s!.lastError).toBeUndefined();
    expect(typeof s!.flushLatencyP50Ms).toBe("number");
    expect(typeof s!.flushLatencyP99Ms).toBe("number");
    expect(s!.flushLatencyP50Ms!).toBeGreaterThanOrEqual(0);
    expect(s!.flushLatencyP99Ms!).toBeGreaterThanOrEqual(s!.flushLatencyP50Ms!);
  });

  it("counts entries still pending in a debounce window", async () => {
    const e = engine();
    const kv = e.kv<number>({ kind: "memory", name: root.fresh("pending") }, { debounceMs: 60_000 });
    for (let i = 0; i < 7; i++) kv.save(`k${i}`, i);
    // A read is ordered after the saves in the actor's mailbox (stats() is not), and sees none of them.
    expect(await kv.load("k0")).toBeUndefined();
    const [s] = await e.stats();
    expect(s!.pendingEntries).toBe(7);
    expect(s!.flushes).toBe(0);
    await kv.flush();
    const [after] = await e.stats();
    expect(after!.pendingEntries).toBe(0);
    expect(after!.flushes).toBe(1);
  });
});

describe("engine.close()", () => {
  it("drains debounced writes durably: a fresh engine and inline tiers read them back", async () => {
    const path = root.fresh("drain.db");
    const store: StoreSpec = { kind: "sqlite", path };
    const e = engine();
    const kv = e.kv<number>(store, { name: "kv", debounceMs: 60_000 });
    const snap = e.snapshot<{ name: string; v: number }>(store, { name: "snap", debounceMs: 60_000 });
    const log = e.appendLog<string>(store, { name: "log", debounceMs: 60_000 });
    for (let i = 0; i < 100; i++) kv.save(`k${i}`, i);
    snap.save({ name: "graph", v: 42 });
    log.appendEntries(["e1", "e2", "e3"]);
    expect(await kv.load("k0")).toBeUndefined(); // the actor has the writes, buffered
    const [before] = await e.stats();
    expect(before!.pendingEntries).toBeGreaterThan(0); // still in the debounce window
    await e.close();
    expect(e.closed).toBe(true);

    const fresh = engine();
    const kv2 = fresh.kv<number>(store, { name: "kv" });
    expect(await kv2.list("k")).toHaveLength(100);
    expect(await kv2.load("k99")).toBe(99);
    expect(await fresh.snapshot<{ name: string; v: number }>(store, { name: "snap" }).load("graph")).toEqual({ name: "graph", v: 42 });
    expect((await fresh.appendLog<string>(store, { name: "log" }).loadEntries({ keyFilter: "log" })).entries).toEqual([
      "e1",
      "e2",
      "e3",
    ]);
    await fresh.close();

    const inlineKv = sqliteKv<number>(path);
    expect(await inlineKv.load("k0")).toBe(0);
    expect(await inlineKv.list("k")).toHaveLength(100);
    await inlineKv.close();
    const inlineSnap = sqliteSnapshot<{ name: string; v: number }>(path);
    expect(await inlineSnap.load("graph")).toEqual({ name: "graph", v: 42 });
    await inlineSnap.close();
    const inlineLog = sqliteAppendLog<string>(path, { name: "log" });
    expect((await inlineLog.loadEntries({ keyFilter: "log" })).entries).toEqual(["e1", "e2", "e3"]);
    await inlineLog.close();
  });

  it("later calls fail with StorageError('closed') (a flush settles as the drain did); close() is idempotent", async () => {
    const store: StoreSpec = { kind: "memory", name: root.fresh("closed") };
    const e = engine();
    const kv = e.kv<number>(store);
    kv.save("a", 1);
    await kv.flush();
    await e.close();
    await e.close();

    expectCoded((await failureOf(() => e.kv(store))).error, StorageError, "closed");
    expectCoded((await failureOf(() => e.snapshot(store))).error, StorageError, "closed");
    expectCoded((await failureOf(() => e.appendLog(store))).error, StorageError, "closed");
    expectCoded((await failureOf(() => kv.save("b", 2))).error, StorageError, "closed");
    const calls: Record<string, () => unknown> = {
      stats: () => e.stats(),
      runJob: () => e.runJob(store, "anything", {}),
      compact: () => compactGraphInEngine(e, store, "graph"),
      "tier.load": () => kv.load("a"),
      "tier.list": () => kv.list(),
    };
    const threwSynchronously: string[] = [];
    for (const [name, call] of Object.entries(calls)) {
      const { sync, error } = await failureOf(call);
      expectCoded(error, StorageError, "closed");
      if (sync) threwSynchronously.push(name);
    }
    // Promise-returning calls report through the promise, never by throwing at the call site.
    expect(threwSynchronously).toEqual([]);
    // A flush after close settles as the close's drain did (design §3.18): "a" was stored, so it resolves.
    await expect(kv.flush()).resolves.toBeUndefined();
  });
});
