/**
 * Tiers of one store commit in call order when one of them is sync-through (debounceMs 0/undefined: each write is
 * owed to the store at once, as an inline tier over SQLite writes it at save()) and another flushes explicitly
 * (src/engine/flush-group.ts, docs/design.md §3.30). Group commit holds a sync-through tier's writes to the end of
 * the actor's run over its queued messages; a later explicit flush of another tier must still land after them: on a
 * shared kv key, a shared append-log bucket, and a key a snapshot tier shares with a kv tier. Real SQLite files,
 * the actor as the engine runs it, and one case through an engine's worker. Values and order are checked, never
 * timings.
 */
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { StoreActor } from "../../src/engine/actor.js";
import { ActorCounters } from "../../src/engine/actor-counters.js";
import { openStorageEngine } from "../../src/engine/index.js";
import type { ApplyResult, Op, OpResult, StoreSpec, TierSpec } from "../../src/engine/protocol.js";
import { kvStorage } from "../../src/tier/kv.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { tempRoot } from "./fixtures/helpers.js";
import { append, flush, load, nextId, nextTurn, put } from "./fixtures/actor-ops.js";
import { acceptRows, rejectRow } from "./fixtures/refused-rows.js";

const root = tempRoot("flush-order-sync");
afterAll(() => root.remove());

const json = { kind: "builtin", name: "json" } as const;
/** Sync-through: no debounce (each write triggers a flush the actor's group commit holds to its run's end). */
const SYNC = undefined;
const HELD = 60_000;
const spec = (kind: TierSpec["kind"], name: string, debounceMs: number | undefined): TierSpec => ({ kind, name, debounceMs, compactEvery: undefined, codec: json });


/** Tiers by id: 1 kv sync-through, 2 kv held, 3 log sync-through, 4 log held (bucket "shared"), 5 snapshot sync-through, 6 snapshot held. */
const TIERS: TierSpec[] = [
  spec("kv", "s", SYNC),
  spec("kv", "t", HELD),
  spec("append-log", "ls", SYNC),
  spec("append-log", "lt", HELD),
  spec("snapshot", "ss", SYNC),
  spec("snapshot", "st", HELD),
];

interface Opened {
  actor: StoreActor;
  counters: ActorCounters;
  /** Applies each list as its own message, all posted in one turn (as queued messages arrive), answers once all are. */
  post(...messages: Op[][]): Promise<ApplyResult[]>;
  value(tier: number, key: string): Promise<unknown>;
  entries(tier: number): Promise<unknown[]>;
}

async function withActor(store: StoreSpec, body: (s: Opened) => Promise<void>): Promise<void> {
  const counters = new ActorCounters();
  const actor = new StoreActor({ store, synchronous: "FULL", counters: counters.buffer });
  await actor.ready();
  const opened = await actor.apply(TIERS.map((s, i) => ({ t: "open", tier: i + 1, spec: s, id: nextId() })));
  expect(opened.results.every((r) => r.ok)).toBe(true);
  await nextTurn();
  const one = async (op: Op): Promise<OpResult> => (await actor.apply([op])).results[0]!;
  try {
    await body({
      actor,
      counters,
      post: async (...messages) => {
        const answers = await Promise.all(messages.map((m) => actor.apply(m)));
        await nextTurn(); // the run's held writes commit by the end of its turn
        return answers;
      },
      value: async (tier, key) => ((await one(load(tier, key))) as { value: unknown }).value,
      entries: async (tier) => ((await one({ t: "loadEntries", tier, id: nextId(), opts: { keyFilter: "shared" } })) as { value: { entries: unknown[] } }).value.entries,
    });
  } finally {
    await actor.shutdown();
  }
}

const sqliteStore = (name: string): StoreSpec => ({ kind: "sqlite", path: root.fresh(name) });

const allOk = (answers: ApplyResult[]): boolean => answers.every((a) => a.results.every((r) => r.ok) && a.errors.length === 0);

/** SQLite: batches share a commit (flush group); a file store's batches are not atomic and commit alone, in order. */
const STORES: Array<[string, (name: string) => StoreSpec]> = [
  ["sqlite", (name) => sqliteStore(`${name}.db`)],
  ["file", (name) => ({ kind: "file", dir: root.fresh(name) })],
];

describe.each(STORES)("%s: a sync-through tier's writes land before another tier's later explicit flush", (_kind, storeOf) => {
  it("kv: s.save(k, 1); t.save(k, 2); t.flush() leaves k = 2, in one message and across two", async () => {
    await withActor(storeOf("kv"), async (s) => {
      expect(allOk(await s.post([put(1, "k", 1), put(2, "k", 2), flush(2)]))).toBe(true);
      expect(await s.value(2, "k")).toBe(2);
      // The same calls made by two handlers, each its own message of one turn.
      expect(allOk(await s.post([put(1, "j", 1)], [put(2, "j", 2), flush(2)]))).toBe(true);
      expect(await s.value(2, "j")).toBe(2);
      // And the other way round: the explicit flush first, the sync-through write after it wins.
      expect(allOk(await s.post([put(2, "i", 2), flush(2)], [put(1, "i", 1)]))).toBe(true);
      expect(await s.value(1, "i")).toBe(1);
    });
  });

  it("two sync-through tiers and a held one interleaved on one key: the last write in call order wins", async () => {
    await withActor(storeOf("kv-three"), async (s) => {
      // Inline over SQLite each sync-through save is written at its call: s1 = 1, then t's flush 2, then s 3.
      expect(allOk(await s.post([put(1, "k", 1), put(2, "k", 2)], [flush(2)], [put(1, "k", 3)], [put(2, "m", 1), put(1, "m", 2), flush(2)]))).toBe(true);
      expect(await s.value(1, "k")).toBe(3);
      expect(await s.value(1, "m")).toBe(1);
    });
  });

  it("append-log: a sync-through log's entries come before a held log's later flush in a shared bucket", async () => {
    await withActor(storeOf("log"), async (s) => {
      expect(allOk(await s.post([append(3, "e1"), append(4, "e2"), flush(4)], [append(3, "e3")], [append(4, "e4")], [flush(4)]))).toBe(true);
      expect(await s.entries(3)).toEqual(["e1", "e2", "e3", "e4"]);
    });
  });

  it("snapshot and kv sharing a key: each tier's write lands in call order", async () => {
    await withActor(storeOf("snapshot"), async (s) => {
      // A sync-through snapshot record under "rec", then a held kv tier's value of "rec" flushed: the kv value wins.
      expect(allOk(await s.post([put(5, "rec", { v: "snapshot" })], [put(2, "rec", { v: "kv" }), flush(2)]))).toBe(true);
      expect(await s.value(2, "rec")).toEqual({ v: "kv" });
      // A sync-through kv value of "rec2", then a held snapshot tier's record flushed: the snapshot wins.
      expect(allOk(await s.post([put(1, "rec2", { v: "kv" })], [put(6, "rec2", { v: "snapshot" }), flush(6)]))).toBe(true);
      expect(await s.value(1, "rec2")).toEqual({ v: "snapshot" });
    });
  });
});

describe("a flush answers for its tier's writes another tier's write took into the group", () => {
  /** Whether `key` is committed in the SQLite file, read by a connection of its own (as another process would). */
  const stored = (path: string, key: string): boolean => {
    const db = new Database(path, { readonly: true });
    try {
      return db.prepare("SELECT 1 FROM graphrefly_storage WHERE k = ?").get(key) !== undefined;
    } finally {
      db.close();
    }
  };

  it("its answer comes once they are committed, not before (nothing was left pending for it to take)", async () => {
    const path = root.fresh("answer.db");
    await withActor({ kind: "sqlite", path }, async (s) => {
      // s's write is taken into the group when ss writes (call order); s's flush then finds nothing pending.
      const answer = await s.actor.apply([put(1, "a", 1), put(5, "rec", { v: 1 }), flush(1)]);
      expect(answer.results[0]!.ok).toBe(true);
      expect(stored(path, "a"), "durable when the flush answered").toBe(true);
    });
  });

  it("a failed commit of that group rejects the flush, and the write stays for the next one", async () => {
    const path = root.fresh("answer-fail.db");
    await withActor({ kind: "sqlite", path }, async (s) => {
      rejectRow(path, "boom");
      const answer = await s.actor.apply([put(1, "boom", 1), put(5, "rec", { v: 1 }), flush(1)]);
      expect(answer.results[0]!.ok).toBe(false);
      expect((answer.results[0] as { error: { message: string } }).error.message).toMatch(/boom rejected/);
      acceptRows(path);
      expect((await s.actor.apply([flush(1)])).results[0]!.ok).toBe(true);
      expect(await s.value(1, "boom")).toBe(1);
    });
  });

  it("a second flush of a tier whose first flush's batch waits in a failing group rejects with it too", async () => {
    const path = root.fresh("answer-twice.db");
    await withActor({ kind: "sqlite", path }, async (s) => {
      rejectRow(path, "boom");
      const answer = await s.actor.apply([put(2, "boom", 1), flush(2), flush(2)]);
      expect(answer.results.map((r) => r.ok)).toEqual([false, false]);
      acceptRows(path);
      expect((await s.actor.apply([flush(2)])).results[0]!.ok).toBe(true);
      expect(await s.value(2, "boom")).toBe(1);
    });
  });
});

describe("through an engine (a real worker)", () => {
  it("s.save(k, 1); t.save(k, 2); await t.flush(): k = 2 once both are durable, as inline", async () => {
    const path = root.fresh("engine.db");
    const engine = openStorageEngine({ threads: 1 });
    try {
      const s = engine.kv<number>({ kind: "sqlite", path }, { name: "s" });
      const t = engine.kv<number>({ kind: "sqlite", path }, { name: "t", debounceMs: HELD });
      await Promise.all([s.flush(), t.flush()]);
      for (let i = 0; i < 20; i++) {
        s.save(`k${i}`, 1);
        t.save(`k${i}`, 2);
        await t.flush();
      }
      await s.flush();
      const values = await Promise.all(Array.from({ length: 20 }, (_, i) => t.load(`k${i}`)));
      expect(values).toEqual(new Array(20).fill(2));
    } finally {
      await engine.close();
    }
    // Inline over the same file: the same calls give the same store.
    const backend = sqliteBackend(path);
    try {
      const si = kvStorage<number>(backend, { name: "s" });
      const ti = kvStorage<number>(backend, { name: "t", debounceMs: HELD });
      si.save("inline", 1);
      ti.save("inline", 2);
      await ti.flush();
      expect(await ti.load("inline")).toBe(2);
      expect(await ti.load("k0")).toBe(2);
    } finally {
      backend.close();
    }
  });
});
