/**
 * Explicit flushes share a commit (src/engine/flush-group.ts, docs/design.md §3.30). Each flush op takes its tier's
 * batch at its call; the batches of one message commit as one transaction, in taking order. Guards: grouping happens
 * (commits counted by the actor's counters, never timed), call order across tiers (shared keys, a shared append
 * bucket), a rollback after grouped flushes discards only what no flush took, a failed group commits each batch
 * alone (only the failing tier's flushes reject; its batches go back, newest over oldest), and a file store
 * (its batch is not atomic) joins as well, in call order. Real SQLite files; the engine cases in real workers.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { StoreActor } from "../../src/engine/actor.js";
import { ActorCounters } from "../../src/engine/actor-counters.js";
import { MAX_HELD_PUTS } from "../../src/engine/group-commit.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import type { ApplyResult, Op, OpResult, StoreSpec, TierSpec } from "../../src/engine/protocol.js";
import { StorageError } from "../../src/errors.js";
import { rejectionOf, tempRoot } from "./fixtures/helpers.js";
import { append, flush, load, nextId, nextTurn, put } from "./fixtures/actor-ops.js";
import { acceptRows, rejectRow } from "./fixtures/refused-rows.js";

const root = tempRoot("flush-group");
afterAll(() => root.remove());

const json = { kind: "builtin", name: "json" } as const;
const kvSpec = (name: string): TierSpec => ({ kind: "kv", name, debounceMs: 60_000, compactEvery: undefined, codec: json });
const logSpec = (name: string): TierSpec => ({ kind: "append-log", name, debounceMs: 60_000, compactEvery: undefined, codec: json });

/** Kv tier 1 saves `k`, append-log 3 appends `entry`, and both flush. */
const savedAndFlushed = (value: unknown, entry: string): Op[] => [put(1, "k", value), append(3, entry), flush(1), flush(3)];

interface Opened {
  actor: StoreActor;
  counters: ActorCounters;
  apply(ops: Op[]): Promise<ApplyResult>;
  value(tier: number, key: string): Promise<unknown>;
  entries(tier: number): Promise<unknown[]>;
}

/** An actor on `store` with kv tiers 1 and 2 and append-logs 3 and 4 (one bucket shared), as an engine opens them. */
async function open(store: StoreSpec): Promise<Opened> {
  const counters = new ActorCounters();
  const actor = new StoreActor({ store, synchronous: "FULL", counters: counters.buffer });
  await actor.ready();
  const specs = [kvSpec("a"), kvSpec("b"), logSpec("la"), logSpec("lb")];
  const opened = await actor.apply(specs.map((spec, i) => ({ t: "open", tier: i + 1, spec, id: nextId() })));
  expect(opened.results.every((r) => r.ok)).toBe(true);
  await nextTurn();
  const one = async (op: Op): Promise<OpResult> => (await actor.apply([op])).results[0]!;
  return {
    actor,
    counters,
    apply: (ops) => actor.apply(ops),
    value: async (tier, key) => ((await one(load(tier, key))) as { value: unknown }).value,
    entries: async (tier) => ((await one({ t: "loadEntries", tier, id: nextId(), opts: { keyFilter: "shared" } })) as { value: { entries: unknown[] } }).value.entries,
  };
}

/** Runs `body` on an actor opened on `store` (see `open`), then shuts it down. */
async function withOpen(store: StoreSpec, body: (s: Opened) => Promise<void>): Promise<void> {
  const s = await open(store);
  try {
    await body(s);
  } finally {
    await s.actor.shutdown();
  }
}

const sqliteStore = (name: string): StoreSpec => ({ kind: "sqlite", path: root.fresh(name) });

const flushAnswers = (applied: ApplyResult): OpResult[] => applied.results;

describe("explicit flushes of one message share a commit", () => {
  it("100 kv saves each with a flush, in one message: one transaction, every flush answered, every value stored", async () => {
    await withOpen(sqliteStore("count.db"), async (s) => {
      const commits = s.counters.get("commits");
      const flushes = s.counters.get("flushes");
      const ops: Op[] = [];
      for (let i = 0; i < 100; i++) ops.push(put(1, `k${i}`, i), flush(1));
      // A read in the same message commits the group first: it sees what the flushes before it took.
      ops.push(load(1, "k99"));
      const applied = await s.apply(ops);
      expect(flushAnswers(applied).slice(0, 100).map((r) => r.ok)).toEqual(new Array(100).fill(true));
      expect((applied.results[100] as { value: unknown }).value).toBe(99);
      expect(s.counters.get("flushes") - flushes, "each flush counts").toBe(100);
      expect(s.counters.get("commits") - commits, "one transaction for all of them").toBe(1);
      for (const i of [0, 50, 99]) expect(await s.value(1, `k${i}`)).toBe(i);
    });
  });

  it("flushes of two kv tiers and two append-logs interleaved: one transaction, the store equals separate commits in call order", async () => {
    await withOpen(sqliteStore("order.db"), async (s) => {
      const commits = s.counters.get("commits");
      const applied = await s.apply([
        put(1, "k", "a1"),
        append(3, "e1"),
        flush(1),
        flush(3),
        put(2, "k", "b1"),
        append(4, "e2"),
        flush(2),
        flush(4),
        put(1, "k", "a2"),
        put(1, "j", "a"),
        put(2, "j", "b"),
        append(3, "e3"),
        append(4, "e4"),
        flush(2), // j = b, then e4 before e3: the log's order is its flushes'
        flush(4),
        flush(1), // k = a2, j = a
        flush(3),
      ]);
      expect(flushAnswers(applied).every((r) => r.ok)).toBe(true);
      expect(s.counters.get("commits") - commits).toBe(1);
      // Batches committed tier by tier would give k = b1 and j = b; separate commits in call order give these.
      expect(await s.value(1, "k")).toBe("a2");
      expect(await s.value(1, "j")).toBe("a");
      expect(await s.entries(3)).toEqual(["e1", "e2", "e4", "e3"]);
    });
  });

  it("a rollback after grouped flushes discards only the writes no flush took", async () => {
    await withOpen(sqliteStore("rollback.db"), async (s) => {
      const commits = s.counters.get("commits");
      const applied = await s.apply([
        ...savedAndFlushed(1, "e1"),
        ...savedAndFlushed(2, "e2"),
        put(1, "k", 3),
        append(3, "e3"),
        { t: "rollback", tier: 1 },
        { t: "rollback", tier: 3 },
        flush(1),
        flush(3),
      ]);
      expect(flushAnswers(applied).every((r) => r.ok)).toBe(true);
      // The rollback commits the four flushes before it (one transaction); the two after it take nothing.
      expect(s.counters.get("commits") - commits).toBe(1);
      expect(await s.value(1, "k")).toBe(2);
      expect(await s.entries(3)).toEqual(["e1", "e2"]);
    });
  });

  it("a failed group commit: each batch commits alone, the failing tier's flushes reject and its batches go back, newest over oldest", async () => {
    const path = root.fresh("fail.db");
    await withOpen({ kind: "sqlite", path }, async (s) => {
      rejectRow(path, "boom");
      const failed = s.counters.get("failedFlushes");
      const applied = await s.apply([put(1, "boom", "x"), ...savedAndFlushed(1, "e1"), put(2, "j", 1), flush(2), ...savedAndFlushed(2, "e2")]);
      const answers = flushAnswers(applied);
      // Tier 1's first batch holds the refused row; its second fails with it (alone it would have taken it back).
      expect(answers.map((r) => r.ok)).toEqual([false, true, true, false, true]);
      const messages = [answers[0]!, answers[3]!].map((r) => (r as { error: { message: string } }).error.message);
      expect(new Set(messages).size, messages.join(" | ")).toBe(1);
      expect(messages[0]).toMatch(/boom rejected/);
      expect(s.counters.get("failedFlushes") - failed).toBe(2);
      expect(await s.value(1, "k")).toBeUndefined();
      expect(await s.entries(3)).toEqual(["e1", "e2"]);
      expect(await s.value(2, "j")).toBe(1);
      // Tier 1's batches are kept: once the store takes the row, its next flush stores the newest value of each key.
      acceptRows(path);
      const healed = await s.apply([flush(1)]);
      expect(flushAnswers(healed).every((r) => r.ok)).toBe(true);
      expect(await s.value(1, "k")).toBe(2);
      expect(await s.value(1, "boom")).toBe("x");
    });
  });

  it("a group commits once it holds MAX_HELD_PUTS joined puts (group commit's bound); a batch above it stays whole", async () => {
    await withOpen(sqliteStore("bound.db"), async (s) => {
      const n = (MAX_HELD_PUTS * 3) / 4;
      const many = (tier: number): Op => ({ t: "puts", tier, keys: Array.from({ length: n }, (_, i) => `t${tier}-${i}`), values: Array.from({ length: n }, (_, i) => i), w: n, n });
      // Pending from earlier turns (the tiers flush only when asked): applied puts of this message stay below the bound.
      await s.apply([many(1)]);
      await nextTurn();
      await s.apply([many(2)]);
      await nextTurn();
      const commits = s.counters.get("commits");
      const applied = await s.apply([flush(1), flush(2), put(1, "x", 1), flush(1)]);
      expect(flushAnswers(applied).every((r) => r.ok)).toBe(true);
      expect(s.counters.get("commits") - commits, "past the bound after the second flush, then the rest").toBe(2);
      await s.apply([many(1), flush(1)]);
      expect(s.counters.get("commits") - commits, "one batch past the bound: one transaction").toBe(3);
      expect(await s.value(2, `t2-${n - 1}`)).toBe(n - 1);
      expect(await s.value(1, "x")).toBe(1);
    });
  });

  it("a file store's batch is not atomic, yet its flushes join too (one durable round, task 182), in call order", async () => {
    await withOpen({ kind: "file", dir: root.fresh("file-store") }, async (s) => {
      const commits = s.counters.get("commits");
      const applied = await s.apply([put(1, "k", "a1"), flush(1), put(2, "k", "b1"), flush(2), put(1, "k", "a2"), flush(1)]);
      expect(flushAnswers(applied).every((r) => r.ok)).toBe(true);
      expect(s.counters.get("commits") - commits).toBe(1);
      expect(await s.value(1, "k")).toBe("a2");
    });
  });
});

describe("a flush group spans the messages the actor takes in one run", () => {
  /** Each list is its own message, all posted in one turn (a backlog the port hands over at once). */
  const post = (s: Opened, ...messages: Op[][]): Promise<ApplyResult[]> => Promise.all(messages.map((m) => s.apply(m)));

  it("50 messages each saving and flushing (50 handlers' turns): the first commits, the other 49 share one transaction", async () => {
    await withOpen(sqliteStore("run.db"), async (s) => {
      const commits = s.counters.get("commits");
      const applied = await post(s, ...Array.from({ length: 50 }, (_, i) => [put(1, `k${i}`, i), flush(1)]));
      expect(applied.map((a) => a.results[0]!.ok)).toEqual(new Array(50).fill(true));
      // The turn's first message commits at its end (nothing said more were queued); the backlog after it, at the run's.
      expect(s.counters.get("commits") - commits).toBe(2);
      for (const i of [0, 25, 49]) expect(await s.value(1, `k${i}`)).toBe(i);
      // A message of a later run commits on its own: no flush waits for another message to come.
      expect(flushAnswers(await s.apply([put(1, "later", 1), flush(1)]))[0]!.ok).toBe(true);
      expect(s.counters.get("commits") - commits).toBe(3);
    });
  });

  it("a read in a later message commits the run's earlier flushes first; flushes after it form the next group", async () => {
    await withOpen(sqliteStore("run-read.db"), async (s) => {
      const commits = s.counters.get("commits");
      const [, read] = await post(s, [put(1, "k", 1), flush(1), put(2, "k", 2), flush(2)], [load(1, "k")], [put(1, "k", 3), flush(1)], [put(2, "k", 4), flush(2)]);
      expect((read!.results[0] as { value: unknown }).value).toBe(2); // tier 2's flush was called last
      expect(s.counters.get("commits") - commits).toBe(2);
      expect(await s.value(2, "k")).toBe(4);
    });
  });

  it("a failed group across messages rejects each flush whose batch failed, in every message; the batches are kept", async () => {
    const path = root.fresh("run-fail.db");
    await withOpen({ kind: "sqlite", path }, async (s) => {
      rejectRow(path, "boom");
      // The first message has no flush (nothing commits at its end): the two after it share the run's commit.
      const applied = await post(s, [put(1, "x", 0)], [put(2, "boom", "x"), flush(2)], [put(2, "k", 1), flush(2)]);
      const answers = applied.flatMap(flushAnswers);
      expect(answers.map((r) => r.ok)).toEqual([false, false]);
      expect(new Set(answers.map((r) => (r as { error: { message: string } }).error.message)).size).toBe(1);
      expect(await s.value(2, "k")).toBeUndefined();
      acceptRows(path);
      expect(flushAnswers(await s.apply([flush(2)]))[0]!.ok).toBe(true);
      expect(await s.value(2, "boom")).toBe("x");
      expect(await s.value(2, "k")).toBe(1);
    });
  });

  it("the bound holds across messages: a run's joined puts past MAX_HELD_PUTS commit, the rest at the run's end", async () => {
    await withOpen(sqliteStore("run-bound.db"), async (s) => {
      const n = MAX_HELD_PUTS / 4;
      const message = (m: number): Op[] => [
        { t: "puts", tier: 1, keys: Array.from({ length: n }, (_, i) => `m${m}-${i}`), values: Array.from({ length: n }, (_, i) => i), w: n, n },
        flush(1),
      ];
      const commits = s.counters.get("commits");
      const applied = await post(s, ...Array.from({ length: 6 }, (_, m) => message(m)));
      expect(applied.every((a) => a.results.every((r) => r.ok))).toBe(true);
      // The first message commits at its end; applied puts reach the bound after the fourth (group commit's count,
      // the turn's) and commit what was joined; the last two at the run's end.
      expect(s.counters.get("commits") - commits).toBe(3);
      expect(await s.value(1, `m5-${n - 1}`)).toBe(n - 1);
    });
  });
});

describe("through an engine (real worker threads)", () => {
  let engine: StorageEngine | undefined;
  afterEach(async () => {
    await engine?.close().catch(() => undefined);
    engine = undefined;
  });

  it("1000 handlers each saving and flushing in one turn, with a rollback after: every flush resolves, only untaken writes are discarded", async () => {
    engine = openStorageEngine({ threads: 1 });
    const kv = engine.kv<number>({ kind: "sqlite", path: root.fresh("engine.db") }, { name: "kv", debounceMs: 60_000 });
    await kv.flush();
    const flushes = Array.from({ length: 1000 }, (_, i) => (kv.save(`h${i}`, i), kv.flush()));
    kv.save("h0", -1);
    kv.save("late", -1);
    kv.rollback();
    await Promise.all(flushes);
    await kv.flush();
    expect(await kv.load("h0")).toBe(0);
    expect(await kv.load("h999")).toBe(999);
    expect(await kv.load("late")).toBeUndefined();
  });

  it("a failed group commit rejects only the flushes of the tier whose row failed; its data stays for the next flush", async () => {
    const path = root.fresh("engine-fail.db");
    engine = openStorageEngine({ threads: 1, onError: () => undefined });
    const a = engine.kv<number>({ kind: "sqlite", path }, { name: "a", debounceMs: 60_000, retry: { initialMs: 60_000, maxMs: 60_000 } });
    const b = engine.kv<number>({ kind: "sqlite", path }, { name: "b", debounceMs: 60_000, retry: { initialMs: 60_000, maxMs: 60_000 } });
    await Promise.all([a.flush(), b.flush()]);
    rejectRow(path, "boom");
    a.save("k", 1);
    const first = a.flush();
    b.save("boom", 2);
    const second = b.flush();
    await first; // a's batch committed alone once the group failed
    const err = await rejectionOf(second);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toMatch(/boom rejected/);
    expect(await a.load("k")).toBe(1);
    acceptRows(path);
    await b.flush();
    expect(await b.load("boom")).toBe(2);
  });
});
