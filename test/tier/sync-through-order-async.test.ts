/**
 * The tiers of one backend write in call order over an asynchronous backend (PostgreSQL), also while a write of one
 * of them is still in flight (docs/design.md §3.30, src/tier/write-lane.ts): a sync-through tier (debounceMs
 * 0/undefined) starts its write at save(), so over SQLite (synchronous) each save is stored when it returns; here
 * its next write waited inside the tier for the one in flight, and another tier's flush, delete or write called
 * later went to the backend at once and landed first. Inline tiers and a store actor over the same PostgreSQL
 * (real server, test/support); a write started synchronously before the next call cannot have been answered yet
 * (the answer needs the event loop), so "in flight" holds by construction. Values and order, never timings.
 */
import { describe, expect, it } from "vitest";
import { StoreActor } from "../../src/engine/actor.js";
import { ActorCounters } from "../../src/engine/actor-counters.js";
import type { Op, StoreSpec, TierSpec } from "../../src/engine/protocol.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";
import { append, flush, load, nextId, nextTurn, put } from "../engine/fixtures/actor-ops.js";

const database = useTestDatabase();
const backend = useBackends(database, "sync-order");
const HELD = 60_000;

/** A sync-through kv tier `s` and a held one `t` over one new backend. */
async function kvPair(): Promise<{ s: KvStorageTier<number>; t: KvStorageTier<number> }> {
  const b = await backend();
  return { s: kvStorage<number>(b, { name: "s" }), t: kvStorage<number>(b, { name: "t", debounceMs: HELD }) };
}

describe("inline over PostgreSQL: a sync-through save and another tier's later call keep call order", () => {
  it("s.save(k, 1); t.save(k, 2); await t.flush() leaves k = 2; the other way round, 1", async () => {
    const { s, t } = await kvPair();
    s.save("k", 1);
    t.save("k", 2);
    await t.flush();
    await s.flush();
    expect(await t.load("k")).toBe(2);
    t.save("j", 2);
    const tf = t.flush();
    s.save("j", 1);
    await Promise.all([tf, s.flush()]);
    expect(await t.load("j")).toBe(1);
  });

  it("kv: with the sync-through tier's earlier write still in flight, the later flush of another tier wins", async () => {
    const { s, t } = await kvPair();
    s.save("a", 1); // in flight
    s.save("a", 3); // behind it
    t.save("a", 2);
    await t.flush();
    await s.flush();
    expect(await t.load("a")).toBe(2);
  });

  it("kv: a sync-through save after another tier's flush still waiting lands after that flush", async () => {
    const { s, t } = await kvPair();
    s.save("a", 1); // in flight
    s.save("a", 3);
    t.save("a", 2);
    const tf = t.flush(); // waits behind s's writes
    s.save("a", 4); // called after t's flush: lands after it
    await Promise.all([tf, s.flush()]);
    expect(await t.load("a")).toBe(4);
    // And a debounced tier's value saved after that lands at its own flush, the last call.
    s.save("b", 1);
    t.save("b", 2);
    const first = t.flush();
    s.save("b", 3);
    t.save("b", 5);
    await Promise.all([first, t.flush(), s.flush()]);
    expect(await t.load("b")).toBe(5);
  });

  it("kv: a delete of another tier called after the sync-through saves removes the key", async () => {
    const { s, t } = await kvPair();
    s.save("a", 1); // in flight
    s.save("a", 3);
    await t.delete("a");
    await s.flush();
    expect(await t.load("a")).toBeUndefined();
    // A sync-through save called after the delete stays.
    s.save("c", 1);
    const deleted = t.delete("c");
    s.save("c", 2);
    await Promise.all([deleted, s.flush()]);
    expect(await t.load("c")).toBe(2);
  });

  it("kv: another tier's close() called after the sync-through saves lands after them", async () => {
    const { s, t } = await kvPair();
    s.save("a", 1); // in flight
    s.save("a", 3);
    t.save("a", 2);
    await t.close(); // drains t's write in its place: after s's
    await s.flush();
    expect(await s.load("a")).toBe(2);
  });

  it("kv: a flush called while the tier's delete runs does not write a value saved before that delete", async () => {
    const { s, t } = await kvPair();
    t.save("b", 1);
    const deleted = t.delete("b"); // runs at once: in flight
    const flushed = t.flush(); // behind it: b = 1 was saved before the delete's call, the delete wins
    t.save("c", 1);
    const many = t.deleteMany!(["c", "d"]);
    s.save("d", 2); // another tier's save after the delete's call lands after it
    await Promise.all([deleted, flushed, many, t.flush(), s.flush()]);
    expect(await t.load("b")).toBeUndefined();
    expect(await t.load("c")).toBeUndefined();
    expect(await t.load("d")).toBe(2);
  });

  it("kv: a rollback discards a sync-through write still waiting (a flush started before it writes nothing more)", async () => {
    const { s, t } = await kvPair();
    s.save("a", 1); // in flight: stored
    s.save("a", 3); // waits on the lane: rolled back below
    t.save("a", 2);
    const tf = t.flush();
    s.rollback();
    s.save("b", 4);
    await Promise.all([tf, s.flush()]);
    expect(await t.load("a")).toBe(2);
    expect(await t.load("b")).toBe(4);
  });

  it("append-log: two logs sharing a bucket keep their entries in call order", async () => {
    const b = await backend();
    const shared = { keyOf: () => "shared" };
    const ls = appendLogStorage<string>(b, { name: "ls", ...shared });
    const lt = appendLogStorage<string>(b, { name: "lt", debounceMs: HELD, ...shared });
    ls.appendEntries(["e1"]); // in flight (it first lists the bucket's segments)
    ls.appendEntries(["e2"]);
    lt.appendEntries(["e3"]);
    const tf = lt.flush();
    ls.appendEntries(["e4"]);
    await Promise.all([tf, ls.flush()]);
    expect((await ls.loadEntries({ keyFilter: "shared" })).entries).toEqual(["e1", "e2", "e3", "e4"]);
  });

  it("snapshot and kv sharing a key: each tier's write lands in call order", async () => {
    const b = await backend();
    const ss = snapshotStorage<{ name: string; v: number }>(b, { name: "ss" });
    const t = kvStorage<{ name: string; v: number }>(b, { name: "t", debounceMs: HELD });
    ss.save({ name: "rec", v: 1 }); // in flight
    ss.save({ name: "rec", v: 3 });
    t.save("rec", { name: "rec", v: 2 });
    await t.flush();
    await ss.flush();
    expect(await t.load("rec")).toEqual({ name: "rec", v: 2 });
  });
});

describe("inline over PostgreSQL: a failed write with a later one of its tier waiting", () => {
  /**
   * Refuses, for `store`, rows whose value is `value` (as the json codec writes it), while `body` runs (a backend
   * opened meanwhile would refuse the table: made after the open). `accept` ends it early.
   */
  async function refusingValue(store: string, value: string, body: (accept: () => Promise<void>) => Promise<void>): Promise<void> {
    const refused = await refuseValue(store, value);
    try {
      await body(refused.accept);
    } finally {
      await refused.accept();
    }
  }

  async function refuseValue(store: string, value: string): Promise<{ accept(): Promise<void> }> {
    const db = await database();
    const raw = await db.raw();
    const fn = `"${db.schema}".refuse_${store.replace(/\W/g, "_")}`;
    await raw.query(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.store = '${store}' AND NEW.v = convert_to('${value}', 'UTF8') THEN RAISE EXCEPTION 'value ${value} refused'; END IF;
        RETURN NEW;
      END $$`);
    const trigger = `refuse_${store.replace(/\W/g, "_")}`;
    await raw.query(`CREATE TRIGGER ${trigger} BEFORE INSERT OR UPDATE ON "${db.schema}".graphrefly_storage FOR EACH ROW EXECUTE FUNCTION ${fn}()`);
    return { accept: async () => void (await raw.query(`DROP TRIGGER IF EXISTS ${trigger} ON "${db.schema}".graphrefly_storage`)) };
  }

  it("kv: the later batches fail with it unwritten, and the retry stores the newer value, never the older over it", async () => {
    const b = await backend({ store: "order-fail-kv" });
    const errors: Error[] = [];
    const s = kvStorage<number>(b, { name: "s", retry: { initialMs: HELD, maxMs: HELD }, onError: (e) => errors.push(e) });
    await refusingValue("order-fail-kv", "1", async (accept) => {
      s.save("a", 1); // in flight: refused
      s.save("a", 3); // waits behind it: written first, the older value's retry would land over it
      s.save("b", 7);
      // Takes nothing: answers once the batches above are stored; they failed, so it writes them again (a = 3 wins).
      await s.flush();
      await accept();
      await s.flush(); // nothing older may be left to write
    });
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/refused/)]);
    expect(await s.load("a")).toBe(3);
    expect(await s.load("b")).toBe(7);
  });

  it("append-log: entries waiting behind a refused segment are retried after it, in order", async () => {
    const b = await backend({ store: "order-fail-log" });
    const ls = appendLogStorage<string>(b, { name: "ls", retry: { initialMs: HELD, maxMs: HELD } });
    await refusingValue("order-fail-log", '["bad"]', async (accept) => {
      ls.appendEntries(["bad"]); // refused
      ls.appendEntries(["e2"]);
      ls.appendEntries(["e3"]);
      await expect(ls.flush()).rejects.toThrow(/refused/);
      await accept();
      await ls.flush();
    });
    expect((await ls.loadEntries()).entries).toEqual(["bad", "e2", "e3"]);
  });

  it("snapshot: the newer record waiting behind a refused one is the one kept", async () => {
    const b = await backend({ store: "order-fail-snap" });
    const ss = snapshotStorage<{ name: string; v: number }>(b, { name: "ss", retry: { initialMs: HELD, maxMs: HELD } });
    await refusingValue("order-fail-snap", '{"name":"rec","v":1}', async (accept) => {
      ss.save({ name: "rec", v: 1 }); // refused
      ss.save({ name: "rec", v: 2 });
      await ss.flush(); // the retry after the failure writes v 2 alone
      await accept();
      await ss.flush();
    });
    expect(await ss.load("rec")).toEqual({ name: "rec", v: 2 });
  });
});

describe("a store actor over PostgreSQL (the engine's tier code, asynchronous backend)", () => {
  const json = { kind: "builtin", name: "json" } as const;
  const spec = (kind: TierSpec["kind"], name: string, debounceMs: number | undefined): TierSpec => ({ kind, name, debounceMs, compactEvery: undefined, codec: json });
  /** 1 kv sync-through, 2 kv held, 3 log sync-through, 4 log held (bucket "shared"). */
  const TIERS: TierSpec[] = [spec("kv", "s", undefined), spec("kv", "t", HELD), spec("append-log", "ls", undefined), spec("append-log", "lt", HELD)];

  async function withActor(name: string, body: (apply: (ops: Op[]) => Promise<boolean>, one: (op: Op) => Promise<unknown>) => Promise<void>): Promise<void> {
    const db = await database();
    const store: StoreSpec = { kind: "postgres", url: db.url, schema: db.schema, store: name };
    const counters = new ActorCounters();
    const actor = new StoreActor({ store, synchronous: "FULL", counters: counters.buffer });
    await actor.ready();
    try {
      const opened = await actor.apply(TIERS.map((s, i) => ({ t: "open", tier: i + 1, spec: s, id: nextId() })));
      expect(opened.results.every((r) => r.ok)).toBe(true);
      const apply = async (ops: Op[]): Promise<boolean> => {
        const a = await actor.apply(ops);
        return a.errors.length === 0 && a.results.every((r) => r.ok);
      };
      const one = async (op: Op): Promise<unknown> => ((await actor.apply([op])).results[0] as { value: unknown }).value;
      await body(apply, one);
    } finally {
      await actor.shutdown();
    }
  }

  it("kv: a held tier's flush after the sync-through tier's writes, one of them in flight, wins", async () => {
    await withActor("actor-kv", async (apply, one) => {
      const first = apply([put(1, "a", 1)]);
      await nextTurn(); // the run ended: s's write is in flight (its answer needs the event loop)
      const later = [apply([put(1, "a", 3)]), apply([put(2, "a", 2), flush(2)])];
      expect(await Promise.all([first, ...later])).toEqual([true, true, true]);
      expect(await apply([flush(1)])).toBe(true);
      expect(await one(load(2, "a"))).toBe(2);
    });
  });

  it("append-log: a shared bucket's entries in call order", async () => {
    await withActor("actor-log", async (apply, one) => {
      const first = apply([append(3, "e1")]);
      await nextTurn();
      const later = [apply([append(3, "e2")]), apply([append(4, "e3"), flush(4)]), apply([append(3, "e4")])];
      expect(await Promise.all([first, ...later])).toEqual([true, true, true, true]);
      expect(await apply([flush(3)])).toBe(true);
      const page = (await one({ t: "loadEntries", tier: 3, id: nextId(), opts: { keyFilter: "shared" } })) as { entries: unknown[] };
      expect(page.entries).toEqual(["e1", "e2", "e3", "e4"]);
    });
  });
});
