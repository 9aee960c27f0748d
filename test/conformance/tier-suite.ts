/**
 * One conformance suite for the three tiers, run over every backend, inline and worker-proxied
 * (like abstract-level's `suite({ test, factory })`). Behaviour comes from docs/protocol.md §4 (+ §10.6
 * vectors) and docs/design.md §3.3–§3.6, §3.11. Cases that need a capability only some harnesses have
 * (injected write failures, direct access to the inline backend) are registered only where they apply;
 * nothing is skipped.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { CodecError, StorageError } from "../../src/errors.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { AppendLogStorageTier, BaseStorageTier } from "../../src/tier/types.js";
import { resetCounts, wrapBackend } from "../support/test-backend.js";
import type { HarnessMode, InlineParts, TierHarness, WriteFaults } from "../support/tier-harness.js";
import { kvInChild } from "../support/tier-child.js";
import { errorOf, sleep, syncErrorOf, until } from "../support/wait.js";

export interface TierSuiteOptions {
  name: string;
  mode: HarnessMode;
  /** A harness over a fresh, empty store. */
  open: () => Promise<TierHarness>;
  /** Harnesses expose `faults` (registers the injected-failure cases). */
  faults: boolean;
  /** The backend answers asynchronously (PostgreSQL): the cases about a sync backend's writes are not registered. */
  asyncBackend?: boolean;
  /**
   * Harnesses have a `location` and `share()` (file and SQLite stores): registers the cases of several handles on one
   * store, in this process and in others (issue 14).
   */
  sharedStores?: boolean;
  cleanup?: () => Promise<void>;
}

/** Long enough that a debounce timer never fires during a test: only flush()/compactEvery write. */
const HELD = 60_000;
/** Short debounce windows for the cases where the timer itself is under test. */
const WINDOW = 30;

const LONE_SURROGATE = "\ud800";

const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b));
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const parsed = (b: Uint8Array | undefined): unknown => (b === undefined ? undefined : JSON.parse(text(b)!));

/** One macrotask: in worker mode, ops queued before it travel in an earlier message than anything queued after. */
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function expectCoded(err: unknown, type: typeof StorageError | typeof CodecError, code: string): void {
  expect(err, `expected ${type.name}(${code})`).toBeInstanceOf(type);
  expect((err as StorageError | CodecError).code).toBe(code);
}

async function entriesOf<T>(log: AppendLogStorageTier<T>, keyFilter?: string): Promise<T[]> {
  const r = await log.loadEntries(keyFilter === undefined ? undefined : { keyFilter });
  expect(r.cursor).toBeUndefined();
  return r.entries;
}

async function collect<T>(it: AsyncIterable<{ key: string; value: T }>): Promise<Array<[string, T]>> {
  const out: Array<[string, T]> = [];
  for await (const { key, value } of it) out.push([key, value]);
  return out;
}

export function tierSuite(opts: TierSuiteOptions): void {
  describe(`tier conformance: ${opts.name}`, () => {
    const live: TierHarness[] = [];
    const open = async (): Promise<TierHarness> => {
      const h = await opts.open();
      live.push(h);
      return h;
    };
    const reopen = async (h: TierHarness): Promise<TierHarness> => {
      const h2 = await h.reopen();
      live.push(h2);
      return h2;
    };
    afterEach(async () => {
      const errors: unknown[] = [];
      for (const h of live.splice(0).reverse()) await h.close().catch((err: unknown) => errors.push(err));
      if (errors.length > 0) throw errors[0];
    });
    afterAll(async () => {
      await opts.cleanup?.();
    });

    const faultsOf = (h: TierHarness): WriteFaults => {
      if (!h.faults) throw new Error("suite bug: a failure case ran on a harness without faults");
      return h.faults;
    };
    const inlineOf = (h: TierHarness): InlineParts => {
      if (!h.inline) throw new Error("suite bug: an inline-only case ran on a worker harness");
      return h.inline;
    };

    it("harness manifest: memory is the only non-persistent store, every shipped backend can list", async () => {
      const h = await open();
      // reopen() goes through a new backend/engine exactly when the store is persistent.
      expect(h.supports.persistent).toBe(h.kind !== "memory");
      expect(h.supports.list).toBe(true);
      expect(h.mode).toBe(opts.mode);
    });

    describe("options", () => {
      it("rejects compactEvery 0 / 1.5 / -1 / NaN and debounceMs -1 / NaN / Infinity with a RangeError naming the option", async () => {
        const h = await open();
        const makers = {
          snapshot: (o: { compactEvery?: number; debounceMs?: number }) => h.snapshot(o),
          appendLog: (o: { compactEvery?: number; debounceMs?: number }) => h.appendLog(o),
          kv: (o: { compactEvery?: number; debounceMs?: number }) => h.kv(o),
        };
        for (const [tier, make] of Object.entries(makers)) {
          for (const compactEvery of [0, 1.5, -1, Number.NaN]) {
            const err = syncErrorOf(() => make({ compactEvery }));
            expect(err, `${tier} compactEvery ${compactEvery}`).toBeInstanceOf(RangeError);
            expect((err as Error).message).toContain("compactEvery");
          }
          for (const debounceMs of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
            const err = syncErrorOf(() => make({ debounceMs }));
            expect(err, `${tier} debounceMs ${String(debounceMs)}`).toBeInstanceOf(RangeError);
            expect((err as Error).message).toContain("debounceMs");
          }
          // The wrong type is a TypeError that says what was given.
          const asString = syncErrorOf(() => make({ debounceMs: "5" as unknown as number }));
          expect(asString).toBeInstanceOf(TypeError);
          expect((asString as Error).message).toBe('debounceMs must be a number of milliseconds, got a string ("5")');
        }
      });

      it("rejects a non-string name with a TypeError naming it", async () => {
        const h = await open();
        const err = syncErrorOf(() => h.kv({ name: 5 as unknown as string }));
        expect(err).toBeInstanceOf(TypeError);
        expect((err as Error).message).toContain("name");
      });

      /** Construction must throw; a tier that was built anyway is broken and must not fail the teardown. */
      const constructionError = (h: TierHarness, make: () => BaseStorageTier): unknown => {
        let built: BaseStorageTier | undefined;
        const err = syncErrorOf(() => (built = make()));
        if (built) h.untrack(built);
        return err;
      };

      it("rejects an unknown append-log mode at construction with a RangeError naming it", async () => {
        const h = await open();
        const err = constructionError(h, () => h.appendLog({ mode: "sideways" as "append" }));
        expect(err).toBeInstanceOf(RangeError);
        expect((err as Error).message).toContain("mode");
      });

      it("rejects an unknown append-log layout at construction with a RangeError naming it", async () => {
        const h = await open();
        const err = constructionError(h, () => h.appendLog({ layout: "columnar" as "array" }));
        expect(err).toBeInstanceOf(RangeError);
        expect((err as Error).message).toContain("layout");
      });

      it("accepts the boundary values and exposes name, cadence options as passed, codec name and mode", async () => {
        const h = await open();
        const s = h.snapshot({ name: "s1", debounceMs: 25, compactEvery: 1 });
        expect([s.name, s.debounceMs, s.compactEvery, s.codecName]).toEqual(["s1", 25, 1, "json"]);
        const k = h.kv({ name: "k1", debounceMs: 0 });
        expect([k.name, k.debounceMs, k.compactEvery]).toEqual(["k1", 0, undefined]);
        const l = h.appendLog({ name: "l1" });
        expect([l.name, l.mode, l.debounceMs, l.compactEvery]).toEqual(["l1", "append", undefined, undefined]);
        expect(h.appendLog({ name: "l2", mode: "overwrite" }).mode).toBe("overwrite");
      });
    });

    describe("cadence", () => {
      it("kv compactEvery 2 (debounced): the first save stays buffered, the second writes both (§4.1)", async () => {
        const h = await open();
        const kv = h.kv<number>({ name: "kv", debounceMs: HELD, compactEvery: 2 });
        kv.save("k1", 1);
        await tick();
        expect(await h.raw.read("k1")).toBeUndefined();
        kv.save("k2", 2);
        await until(async () => (await h.raw.read("k2")) !== undefined, "compactEvery boundary flush");
        expect([await kv.load("k1"), await kv.load("k2")]).toEqual([1, 2]);
      });

      it("snapshot compactEvery 3 (debounced): saves 1-2 stay buffered, save 3 writes (§4.1)", async () => {
        const h = await open();
        const s = h.snapshot<{ v: number }>({ name: "snap", debounceMs: HELD, compactEvery: 3 });
        s.save({ v: 1 });
        s.save({ v: 2 });
        await tick();
        expect(await h.raw.read("snap")).toBeUndefined();
        s.save({ v: 3 });
        await until(async () => (await h.raw.read("snap")) !== undefined, "third save flushes");
        expect(parsed(await h.raw.read("snap"))).toEqual({ v: 3 });
      });

      it("append-log compactEvery 3: one batch of 5 crosses the boundary and all 5 are persisted; 6 crosses again, 7 does not (§4.1)", async () => {
        const h = await open();
        const log = h.appendLog<number>({ name: "log", debounceMs: HELD, compactEvery: 3 });
        log.appendEntries([1, 2, 3, 4, 5]);
        await until(async () => (await entriesOf(log)).length === 5, "batch of 5 flushed");
        expect(await entriesOf(log)).toEqual([1, 2, 3, 4, 5]);
        log.appendEntries([6]);
        await until(async () => (await entriesOf(log)).length === 6, "count 5 -> 6 crosses 6");
        log.appendEntries([7]);
        await tick();
        expect(await entriesOf(log)).toEqual([1, 2, 3, 4, 5, 6]);
        await log.flush();
        expect(await entriesOf(log)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      });

      it("append-log compactEvery 2, debounced: the first append stays buffered, the second writes [{id:1},{id:2}] (§4.1)", async () => {
        const h = await open();
        const log = h.appendLog<{ id: number }>({ name: "log", debounceMs: 10_000, compactEvery: 2 });
        log.appendEntries([{ id: 1 }]);
        await tick();
        expect(await entriesOf(log)).toEqual([]);
        log.appendEntries([{ id: 2 }]);
        await until(async () => (await entriesOf(log)).length === 2, "second append flushes");
        expect(await entriesOf(log)).toEqual([{ id: 1 }, { id: 2 }]);
      });

      it("filter-rejected saves do not advance the compactEvery counter (kv and snapshot)", async () => {
        const h = await open();
        const kv = h.kv<number>({ name: "kv", debounceMs: HELD, compactEvery: 2, filter: (k) => !k.startsWith("skip") });
        const s = h.snapshot<{ v: number; keep: boolean }>({
          name: "snap",
          debounceMs: HELD,
          compactEvery: 2,
          filter: (v) => v.keep,
        });
        kv.save("a", 1);
        kv.save("skip1", 9);
        kv.save("skip2", 9);
        s.save({ v: 1, keep: true });
        s.save({ v: 8, keep: false });
        s.save({ v: 9, keep: false });
        await tick();
        expect(await h.raw.read("a")).toBeUndefined();
        expect(await h.raw.read("snap")).toBeUndefined();
        kv.save("b", 2);
        s.save({ v: 2, keep: true });
        await until(async () => (await h.raw.read("b")) !== undefined && (await h.raw.read("snap")) !== undefined, "second accepted save flushes");
        expect(await h.raw.list()).toEqual(["a", "b", "snap"]);
        expect(parsed(await h.raw.read("snap"))).toEqual({ v: 2, keep: true });
      });

      it("appendEntries([]) is a no-op: no write, no counter advance", async () => {
        const h = await open();
        const log = h.appendLog<number>({ name: "log", debounceMs: HELD, compactEvery: 2 });
        log.appendEntries([1]);
        for (let i = 0; i < 3; i++) log.appendEntries([]);
        await tick();
        expect(await entriesOf(log)).toEqual([]);
        log.appendEntries([2]);
        await until(async () => (await entriesOf(log)).length === 2, "second entry crosses 2");
        expect(await entriesOf(log)).toEqual([1, 2]);

        const through = h.appendLog<number>({ name: "other" });
        const before = await h.written();
        through.appendEntries([]);
        await through.flush();
        expect(await h.written()).toEqual(before);
        expect(await entriesOf(through, "other")).toEqual([]);
      });

      it("debounceMs > 0 flushes by itself when the window ends (all three tiers)", async () => {
        const h = await open();
        const kv = h.kv<number>({ name: "kv", debounceMs: WINDOW });
        const s = h.snapshot<{ v: number }>({ name: "snap", debounceMs: WINDOW });
        const log = h.appendLog<number>({ name: "log", debounceMs: WINDOW });
        kv.save("k", 1);
        s.save({ v: 1 });
        log.appendEntries([1, 2]);
        await until(
          async () => (await h.raw.read("k")) !== undefined && (await h.raw.read("snap")) !== undefined && (await entriesOf(log, "log")).length === 2,
          "debounce timers flush",
        );
        expect(await kv.load("k")).toBe(1);
        expect(await s.load()).toEqual({ v: 1 });
        expect(await entriesOf(log, "log")).toEqual([1, 2]);
      });

      it("the debounce window starts at the first buffered write: saves arriving faster than the window do not postpone it", async () => {
        const h = await open();
        const kv = h.kv<number>({ name: "kv", debounceMs: WINDOW });
        let n = 0;
        let seen: number | undefined;
        await until(
          async () => {
            kv.save("k", ++n);
            await sleep(5);
            seen = (await kv.load("k")) as number | undefined;
            return seen !== undefined;
          },
          "a flush while saves keep coming (a trailing debounce would never fire)",
        );
        expect(seen).toBeGreaterThanOrEqual(1);
        expect(seen).toBeLessThanOrEqual(n);
        await kv.flush();
        expect(await kv.load("k")).toBe(n);
      });

      it("flush() drains a debounced tier now", async () => {
        const h = await open();
        const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
        const s = h.snapshot<{ v: number }>({ name: "snap", debounceMs: HELD });
        const log = h.appendLog<number>({ name: "log", debounceMs: HELD });
        kv.save("k", 1);
        s.save({ v: 1 });
        log.appendEntries([1]);
        await tick();
        expect(await h.raw.list()).toEqual([]);
        await Promise.all([kv.flush(), s.flush(), log.flush()]);
        expect(await kv.load("k")).toBe(1);
        expect(await s.load()).toEqual({ v: 1 });
        expect(await entriesOf(log, "log")).toEqual([1]);
      });

      it("debounceMs 0 or undefined is sync-through: written without flush()", async () => {
        const h = await open();
        for (const debounceMs of [0, undefined]) {
          const tag = String(debounceMs);
          const kv = h.kv<number>({ name: `kv-${tag}`, debounceMs });
          const s = h.snapshot<{ v: number }>({ name: `snap-${tag}`, debounceMs });
          const log = h.appendLog<number>({ name: `log-${tag}`, debounceMs });
          kv.save(`k-${tag}`, 1);
          s.save({ v: 1 });
          log.appendEntries([1]);
          await tick();
          expect(await h.raw.read(`k-${tag}`), tag).toBeDefined();
          expect(parsed(await h.raw.read(`snap-${tag}`)), tag).toEqual({ v: 1 });
          expect(await entriesOf(log, `log-${tag}`), tag).toEqual([1]);
        }
      });

      it("kv: a load issued right after a sync-through save (same tick) sees the value", async () => {
        const h = await open();
        const kv = h.kv<number>({ name: "kv" });
        kv.save("a", 1);
        expect(await kv.load("a")).toBe(1);
      });

      it("snapshot: a load issued right after a sync-through save (same tick) sees the value", async () => {
        const h = await open();
        const s = h.snapshot<{ v: number }>({ name: "snap" });
        s.save({ v: 2 });
        expect(await s.load()).toEqual({ v: 2 });
      });

      it("append-log: loadEntries issued right after a sync-through append (same tick) sees the entries", async () => {
        const h = await open();
        const log = h.appendLog<number>({ name: "log" });
        log.appendEntries([3]);
        expect(await entriesOf(log, "log")).toEqual([3]);
      });
    });

    describe("snapshot", () => {
      it("debounced last-write-wins: three saves, nothing written until flush(), then exactly the last (§10.6)", async () => {
        const h = await open();
        const s = h.snapshot<{ name: string; value: number }>({ name: "snap", debounceMs: 10_000 });
        for (const value of [1, 2, 3]) s.save({ name: "snap", value });
        await tick();
        expect(await h.raw.read("snap")).toBeUndefined();
        const before = await h.written();
        await s.flush();
        const after = await h.written();
        expect(text(await h.raw.read("snap"))).toBe('{"name":"snap","value":3}');
        expect(after.writes - before.writes).toBe(1);
        await s.flush();
        expect((await h.written()).writes).toBe(after.writes);
      });

      it("keys a record by its own string `name`, else by the tier name (docs/design.md §3.6)", async () => {
        const h = await open();
        const s = h.snapshot<{ name?: unknown; x: number }>({ name: "tierA" });
        s.save({ name: "g1", x: 1 });
        await s.flush();
        expect(parsed(await h.raw.read("g1"))).toEqual({ name: "g1", x: 1 });
        expect(await h.raw.read("tierA")).toBeUndefined();
        s.save({ x: 2 });
        await s.flush();
        expect(parsed(await h.raw.read("tierA"))).toEqual({ x: 2 });
        s.save({ name: 42, x: 3 });
        await s.flush();
        expect(parsed(await h.raw.read("tierA"))).toEqual({ name: 42, x: 3 });
        expect(await s.load()).toEqual({ name: 42, x: 3 });
        expect(await s.load("g1")).toEqual({ name: "g1", x: 1 });
        expect(await s.load("nothing-here")).toBeUndefined();
      });

      it("a custom keyOf routes each save to its own key; load() returns the most recently written", async () => {
        const h = await open();
        const s = h.snapshot<{ id: number }>({ name: "snaps", keyOf: (v) => `snap/${v.id}` });
        s.save({ id: 1 });
        s.save({ id: 2 });
        await s.flush();
        expect(await h.raw.list("snap/")).toEqual(["snap/1", "snap/2"]);
        expect(await s.load()).toEqual({ id: 2 });
        expect(await s.load("snap/1")).toEqual({ id: 1 });
      });

      it("load() in a fresh tier (fresh process for persistent stores) finds a baseline by the record's name", async () => {
        const h = await open();
        const writer = h.snapshot<{ name: string; n: number }>({ name: "writer" });
        writer.save({ name: "graph-x", n: 1 });
        await writer.flush();
        const h2 = await reopen(h);
        expect(await h2.snapshot({ name: "graph-x" }).load()).toEqual({ name: "graph-x", n: 1 });
        const other = h2.snapshot({ name: "other" });
        expect(await other.load("graph-x")).toEqual({ name: "graph-x", n: 1 });
        expect(await other.load()).toBeUndefined();
      });

      it("treats a 0-byte stored value as absent", async () => {
        const h = await open();
        await h.raw.write("empty", new Uint8Array(0));
        expect(await h.snapshot({ name: "empty" }).load()).toBeUndefined();
      });

      it("rollback vector: {x:1} flushed, {x:2} rolled back -> load() = {x:1} (§10.6)", async () => {
        const h = await open();
        const s = h.snapshot<{ x: number }>({ name: "s", debounceMs: HELD });
        s.save({ x: 1 });
        await s.flush();
        s.save({ x: 2 });
        s.rollback();
        await s.flush();
        expect(await s.load()).toEqual({ x: 1 });
      });
    });

    describe("append-log", () => {
      it("debounced: [{id:1},{id:2}] then [{id:3}] -> after flush the log is [{id:1},{id:2},{id:3}] (§10.6)", async () => {
        const h = await open();
        const log = h.appendLog<{ id: number }>({ name: "log", debounceMs: 10_000 });
        log.appendEntries([{ id: 1 }, { id: 2 }]);
        log.appendEntries([{ id: 3 }]);
        await tick();
        expect(await entriesOf(log)).toEqual([]);
        await log.flush();
        expect(await entriesOf(log)).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
      });

      it("append mode accumulates across flushes; overwrite mode replaces the key per flush (§10.6)", async () => {
        const h = await open();
        const app = h.appendLog<number>({ name: "app", debounceMs: HELD });
        app.appendEntries([1, 2]);
        await app.flush();
        app.appendEntries([3]);
        await app.flush();
        expect(await entriesOf(app, "app")).toEqual([1, 2, 3]);

        const ovr = h.appendLog<number>({ name: "ovr", mode: "overwrite", debounceMs: HELD });
        ovr.appendEntries([1, 2]);
        await ovr.flush();
        ovr.appendEntries([9]);
        await ovr.flush();
        expect(await entriesOf(ovr, "ovr")).toEqual([9]);

        const ovr2 = h.appendLog<number>({ name: "ovr2", mode: "overwrite", debounceMs: HELD });
        ovr2.appendEntries([1, 2, 3]);
        await ovr2.flush();
        ovr2.appendEntries([10]);
        ovr2.appendEntries([20]);
        await ovr2.flush();
        expect(await entriesOf(ovr2, "ovr2")).toEqual([10, 20]);
      });

      it("a fresh tier over an existing key continues the accumulation (§10.6)", async () => {
        const h = await open();
        const first = h.appendLog<string>({ name: "L" });
        first.appendEntries(["a", "b"]);
        await first.flush();
        const h2 = await reopen(h);
        const second = h2.appendLog<string>({ name: "L" });
        expect(await entriesOf(second)).toEqual(["a", "b"]);
        second.appendEntries(["c"]);
        await second.flush();
        expect(await entriesOf(second)).toEqual(["a", "b", "c"]);
        const h3 = await reopen(h2);
        expect(await entriesOf(h3.appendLog<string>({ name: "L" }))).toEqual(["a", "b", "c"]);
      });

      it("keyOf partitions entries into buckets (§10.6)", async () => {
        const h = await open();
        type E = { topic: string; id: number };
        const log = h.appendLog<E>({ name: "events", keyOf: (e) => e.topic, debounceMs: HELD });
        log.appendEntries([
          { topic: "orders", id: 1 },
          { topic: "shipments", id: 10 },
          { topic: "orders", id: 2 },
        ]);
        await log.flush();
        expect(await entriesOf(log, "orders")).toEqual([
          { id: 1, topic: "orders" },
          { id: 2, topic: "orders" },
        ]);
        expect(await entriesOf(log, "shipments")).toEqual([{ id: 10, topic: "shipments" }]);
        expect(await entriesOf(log, "events")).toEqual([]);
        expect(await entriesOf(log)).toEqual([
          { topic: "orders", id: 1 },
          { topic: "orders", id: 2 },
          { topic: "shipments", id: 10 },
        ]);
      });

      it("loadEntries paginates with cursor/pageSize over several flushes (§4.4 vectors)", async () => {
        const h = await open();
        const log = h.appendLog<number>({ name: "log", debounceMs: HELD });
        for (const batch of [[10, 20], [30], [40, 50]]) {
          log.appendEntries(batch);
          await log.flush();
        }
        const p1 = await log.loadEntries({ pageSize: 2 });
        expect(p1).toEqual({ entries: [10, 20], cursor: { position: 2 } });
        const p2 = await log.loadEntries({ pageSize: 2, cursor: p1.cursor! });
        expect(p2).toEqual({ entries: [30, 40], cursor: { position: 4 } });
        const p3 = await log.loadEntries({ pageSize: 2, cursor: p2.cursor! });
        expect(p3).toEqual({ entries: [50], cursor: undefined });

        expect(await log.loadEntries({ pageSize: 2, cursor: { position: 10 } })).toEqual({ entries: [], cursor: undefined });
        expect(await log.loadEntries({ cursor: { position: 10 } })).toEqual({ entries: [], cursor: undefined });
        expect(await log.loadEntries()).toEqual({ entries: [10, 20, 30, 40, 50], cursor: undefined });
        expect(await log.loadEntries({ cursor: { position: 1 } })).toEqual({ entries: [20, 30, 40, 50], cursor: undefined });
        for (const pageSize of [1.5, Number.NaN, 0, -1, Number.POSITIVE_INFINITY]) {
          expect(await log.loadEntries({ pageSize }), `pageSize ${pageSize}`).toEqual({
            entries: [10, 20, 30, 40, 50],
            cursor: undefined,
          });
          expect(await log.loadEntries({ pageSize, cursor: { position: 3 } }), `pageSize ${pageSize} from 3`).toEqual({
            entries: [40, 50],
            cursor: undefined,
          });
        }
        expect(await log.loadEntries({ pageSize: 5 })).toEqual({ entries: [10, 20, 30, 40, 50], cursor: undefined });
      });

      it("loadEntries keyFilter is a literal prefix of bucket keys", async () => {
        const h = await open();
        const log = h.appendLog<string>({ name: "log", keyOf: (e) => e.split(":")[0]!, debounceMs: HELD });
        log.appendEntries(["a/1:x", "ab/2:y", "a/1:z", "a%:p", "ab:q"]);
        await log.flush();
        expect(await entriesOf(log, "a/")).toEqual(["a/1:x", "a/1:z"]);
        expect(await entriesOf(log, "a%")).toEqual(["a%:p"]);
        expect(await entriesOf(log, "ab")).toEqual(["ab:q", "ab/2:y"]);
        expect(await log.loadEntries({ keyFilter: "ab", pageSize: 1 })).toEqual({ entries: ["ab:q"], cursor: { position: 1 } });
      });

      it("a key holding a plain JSON array (reference layout) still loads and keeps accumulating", async () => {
        const h = await open();
        await h.raw.write("L", utf8('["a","b"]'));
        const log = h.appendLog<string>({ name: "L" });
        expect(await entriesOf(log)).toEqual(["a", "b"]);
        log.appendEntries(["c"]);
        await log.flush();
        expect(await entriesOf(log)).toEqual(["a", "b", "c"]);
        const h2 = await reopen(h);
        const again = h2.appendLog<string>({ name: "L" });
        again.appendEntries(["d"]);
        await again.flush();
        expect(await entriesOf(again)).toEqual(["a", "b", "c", "d"]);
      });

      it('layout "array" keeps the reference layout: one JSON array per key', async () => {
        const h = await open();
        const log = h.appendLog<number>({ name: "arr", layout: "array", debounceMs: HELD });
        log.appendEntries([1, 2]);
        await log.flush();
        log.appendEntries([3]);
        await log.flush();
        expect(await h.raw.list("arr")).toEqual(["arr"]);
        expect(text(await h.raw.read("arr"))).toBe("[1,2,3]");
        expect(await entriesOf(log)).toEqual([1, 2, 3]);
      });

      it("compact() merges a bucket's segments into one reference-layout value; the log reads the same", async () => {
        const h = await open();
        const log = h.appendLog<number>({ name: "C", debounceMs: HELD });
        for (const n of [1, 2, 3]) {
          log.appendEntries([n]);
          await log.flush();
        }
        expect((await h.raw.list("C")).length).toBeGreaterThan(1);
        await log.compact();
        expect(await h.raw.list("C")).toEqual(["C"]);
        expect(text(await h.raw.read("C"))).toBe("[1,2,3]");
        expect(await entriesOf(log)).toEqual([1, 2, 3]);
        log.appendEntries([4]);
        await log.flush();
        expect(await entriesOf(log)).toEqual([1, 2, 3, 4]);
        log.appendEntries([5]);
        await log.compact(); // flushes first
        expect(await h.raw.list("C")).toEqual(["C"]);
        expect(await entriesOf(log)).toEqual([1, 2, 3, 4, 5]);
        const h2 = await reopen(h);
        expect(await entriesOf(h2.appendLog<number>({ name: "C" }))).toEqual([1, 2, 3, 4, 5]);
      });

      it("a flush costs O(entries flushed): bytes and writes per flush do not grow with the log (docs/design.md §3.11)", async () => {
        const h = await open();
        const log = h.appendLog<{ v: string }>({ name: "big", debounceMs: HELD });
        const batch = Array.from({ length: 10 }, () => ({ v: "0123456789abcdef" }));
        const deltas: Array<{ bytes: number; writes: number }> = [];
        for (let i = 0; i < 25; i++) {
          log.appendEntries(batch);
          const before = await h.written();
          await log.flush();
          const after = await h.written();
          deltas.push({ bytes: after.bytes - before.bytes, writes: after.writes - before.writes });
        }
        expect(deltas[0]!.bytes).toBeGreaterThan(0);
        expect(deltas[0]!.writes).toBe(1);
        for (const d of deltas) expect(d).toEqual(deltas[0]);
        expect((await entriesOf(log)).length).toBe(250);
      });

      it("rollback vector: [{a:1}] flushed, [{a:2}] rolled back -> [{a:1}] (§10.6)", async () => {
        const h = await open();
        const log = h.appendLog<{ a: number }>({ name: "log", debounceMs: HELD });
        log.appendEntries([{ a: 1 }]);
        await log.flush();
        log.appendEntries([{ a: 2 }]);
        log.rollback();
        await log.flush();
        expect(await entriesOf(log)).toEqual([{ a: 1 }]);
      });

      it("rejects a bucket key containing the segment separator U+001F with invalid-key", async () => {
        const h = await open();
        const log = h.appendLog<string>({ name: "log", keyOf: (e) => e });
        expectCoded(syncErrorOf(() => log.appendEntries(["bad\u001fkey"])), StorageError, "invalid-key");
        log.appendEntries(["fine"]);
        await log.flush();
        expect(await entriesOf(log, "fine")).toEqual(["fine"]);
      });
    });

    describe("kv", () => {
      it("saves, loads, lists (sorted) and deletes", async () => {
        const h = await open();
        const kv = h.kv<{ n: number }>({ name: "kv" });
        kv.save("b/2", { n: 3 });
        kv.save("a", { n: 1 });
        kv.save("b/1", { n: 2 });
        await kv.flush();
        expect(await kv.load("a")).toEqual({ n: 1 });
        expect(await kv.load("missing")).toBeUndefined();
        expect(await kv.list()).toEqual(["a", "b/1", "b/2"]);
        expect(await kv.list("b/")).toEqual(["b/1", "b/2"]);
        await kv.delete("a");
        expect(await kv.load("a")).toBeUndefined();
        expect(await kv.list()).toEqual(["b/1", "b/2"]);
        await kv.delete("never-there");
        expect(await kv.list()).toEqual(["b/1", "b/2"]);
      });

      it("repeat saves of a key before a flush write once, last value wins; load() does not see pending values", async () => {
        const h = await open();
        const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
        kv.save("a", 1);
        kv.save("a", 2);
        expect(await kv.load("a")).toBeUndefined();
        const before = await h.written();
        await kv.flush();
        expect((await h.written()).writes - before.writes).toBe(1);
        expect(await kv.load("a")).toBe(2);
      });

      it("listByPrefix yields in key order whatever the save order (§4.5 vector)", async () => {
        const h = await open();
        const kv = h.kv<number>({ name: "kv" });
        kv.save("p/00000000000000000003", 3);
        kv.save("p/00000000000000000001", 1);
        kv.save("p/00000000000000000002", 2);
        kv.save("q/00000000000000000000", 0);
        await kv.flush();
        expect(await collect(kv.listByPrefix("p/"))).toEqual([
          ["p/00000000000000000001", 1],
          ["p/00000000000000000002", 2],
          ["p/00000000000000000003", 3],
        ]);
      });

      it("listByPrefix and list take the prefix literally (a/ vs ab/, %, _)", async () => {
        const h = await open();
        const kv = h.kv<string>({ name: "kv" });
        for (const k of ["a/1", "ab/2", "a%b", "axb", "a_c", "abc"]) kv.save(k, k);
        await kv.flush();
        expect(await collect(kv.listByPrefix("a/"))).toEqual([["a/1", "a/1"]]);
        expect(await kv.list("a/")).toEqual(["a/1"]);
        expect((await collect(kv.listByPrefix("a%"))).map(([k]) => k)).toEqual(["a%b"]);
        expect((await collect(kv.listByPrefix("a_"))).map(([k]) => k)).toEqual(["a_c"]);
        expect(await collect(kv.listByPrefix("zz"))).toEqual([]);
      });

      it("listByPrefix and load skip 0-byte values", async () => {
        const h = await open();
        const kv = h.kv<number>({ name: "kv" });
        kv.save("p/1", 1);
        await kv.flush();
        await h.raw.write("p/0", new Uint8Array(0));
        expect(await kv.load("p/0")).toBeUndefined();
        expect(await collect(kv.listByPrefix("p/"))).toEqual([["p/1", 1]]);
      });

      it("delete removes the key from the backend and drops its pending value", async () => {
        const h = await open();
        const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
        kv.save("a", 1);
        await kv.flush();
        kv.save("a", 2);
        kv.save("b", 3);
        await kv.delete("a");
        await kv.delete("b");
        expect(await kv.load("a")).toBeUndefined();
        await kv.flush();
        expect(await kv.load("a")).toBeUndefined();
        expect(await kv.load("b")).toBeUndefined();
        expect(await kv.list()).toEqual([]);
      });

      it("rollback vector: a=1 flushed, debounced a=2 rolled back -> load(a) = 1 (§10.6)", async () => {
        const h = await open();
        const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
        kv.save("a", 1);
        await kv.flush();
        kv.save("a", 2);
        kv.rollback();
        await kv.flush();
        expect(await kv.load("a")).toBe(1);
      });
    });

    describe("rollback", () => {
      it("clears pending of every tier; writes after the rollback still flush", async () => {
        const h = await open();
        const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
        const s = h.snapshot<{ v: number }>({ name: "snap", debounceMs: HELD });
        const log = h.appendLog<number>({ name: "log", debounceMs: HELD });
        kv.save("gone", 1);
        s.save({ v: 1 });
        log.appendEntries([1]);
        kv.rollback();
        s.rollback();
        log.rollback();
        kv.save("kept", 2);
        s.save({ v: 2 });
        log.appendEntries([2]);
        await Promise.all([kv.flush(), s.flush(), log.flush()]);
        expect(await h.raw.list()).not.toContain("gone");
        expect(await kv.load("kept")).toBe(2);
        expect(await s.load()).toEqual({ v: 2 });
        expect(await entriesOf(log, "log")).toEqual([2]);
      });

      it("a rollback stops the pending debounce timer from writing rolled-back data", async () => {
        const h = await open();
        const kv = h.kv<number>({ name: "kv", debounceMs: WINDOW });
        kv.save("gone", 1);
        kv.rollback();
        kv.save("kept", 2);
        await until(async () => (await kv.load("kept")) === 2, "timer flush of the post-rollback save");
        expect(await kv.load("gone")).toBeUndefined();
      });
    });

    describe("bad input", () => {
      it("reads, deletes and listings with a lone-surrogate key reject with invalid-key", async () => {
        const h = await open();
        const kv = h.kv<number>({ name: "kv" });
        expectCoded(await errorOf(() => kv.load(LONE_SURROGATE)), StorageError, "invalid-key");
        expectCoded(await errorOf(() => kv.delete(LONE_SURROGATE)), StorageError, "invalid-key");
        expectCoded(await errorOf(() => kv.list(LONE_SURROGATE)), StorageError, "invalid-key");
        expectCoded(await errorOf(() => collect(kv.listByPrefix(LONE_SURROGATE))), StorageError, "invalid-key");
        expectCoded(await errorOf(() => h.snapshot({ name: "s" }).load(LONE_SURROGATE)), StorageError, "invalid-key");
        const log = h.appendLog({ name: "log" });
        expectCoded(await errorOf(() => log.loadEntries({ keyFilter: LONE_SURROGATE })), StorageError, "invalid-key");
      });

      it("kv.save with a lone-surrogate key throws invalid-key and leaves the tier usable", async () => {
        const h = await open();
        const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
        try {
          expectCoded(syncErrorOf(() => kv.save(LONE_SURROGATE, 1)), StorageError, "invalid-key");
          kv.save("good", 2);
          await kv.flush();
          expect(await kv.load("good")).toBe(2);
        } finally {
          kv.rollback(); // a poisoned pending value must not fail the harness teardown too
        }
      });

      it("a snapshot keyOf returning a lone surrogate makes save throw invalid-key and leaves the tier usable", async () => {
        const h = await open();
        const s = h.snapshot<{ k: string; v: number }>({ name: "s", keyOf: (x) => x.k, debounceMs: HELD });
        try {
          expectCoded(syncErrorOf(() => s.save({ k: LONE_SURROGATE, v: 1 })), StorageError, "invalid-key");
          await s.flush();
          s.save({ k: "fine", v: 2 });
          await s.flush();
          expect(await s.load("fine")).toEqual({ k: "fine", v: 2 });
        } finally {
          s.rollback();
        }
      });

      it("an append-log keyOf returning a lone surrogate makes appendEntries throw invalid-key and leaves the log usable", async () => {
        const h = await open();
        const log = h.appendLog<{ bad?: boolean; v: number }>({
          name: "log",
          keyOf: (e) => (e.bad ? LONE_SURROGATE : "ok"),
          debounceMs: HELD,
        });
        try {
          expectCoded(syncErrorOf(() => log.appendEntries([{ bad: true, v: 1 }])), StorageError, "invalid-key");
          log.appendEntries([{ v: 2 }]);
          await log.flush();
          expect(await entriesOf(log, "ok")).toEqual([{ v: 2 }]);
        } finally {
          log.rollback();
        }
      });

      it("unencodable values: CodecError(encode-failed) reaches flush() and onError, the value is dropped (not retried), the rest is written", async () => {
        const h = await open();
        const kv = h.kv<unknown>({ name: "kv", debounceMs: HELD });
        const s = h.snapshot<unknown>({ name: "snap", debounceMs: HELD });
        const log = h.appendLog<unknown>({ name: "log", debounceMs: HELD });
        kv.save("bad", { n: Number.NaN });
        kv.save("good", { n: 1 });
        s.save({ big: 10n });
        log.appendEntries([{ n: Number.POSITIVE_INFINITY }]);
        log.appendEntries([{ ok: 1 }]);
        for (const tier of [kv, s, log]) {
          expectCoded(await errorOf(() => tier.flush()), CodecError, "encode-failed");
        }
        await until(() => h.errors.length >= 3, "onError reports");
        for (const e of h.errors) expectCoded(e, CodecError, "encode-failed");
        // Dropped, not retried: the next flushes succeed and write nothing more.
        await Promise.all([kv.flush(), s.flush(), log.flush()]);
        expect(await kv.load("good")).toEqual({ n: 1 });
        expect(await kv.load("bad")).toBeUndefined();
        expect(await s.load()).toBeUndefined();
        expect(await entriesOf(log, "log")).toEqual([{ ok: 1 }]);
        expect(h.errors.length).toBe(3);
      });

      it("a sync-through save of an unencodable value does not throw; onError gets encode-failed, and so does the next flush", async () => {
        const h = await open();
        const kv = h.kv<unknown>({ name: "kv" });
        expect(() => kv.save("bad", { when: new Date(0) })).not.toThrow();
        await until(() => h.errors.length >= 1, "onError report");
        expectCoded(h.errors[0], CodecError, "encode-failed");
        expectCoded(await errorOf(() => kv.flush()), CodecError, "encode-failed");
        expect(await kv.load("bad")).toBeUndefined();
      });

      it("wrong argument types throw TypeError", async () => {
        const h = await open();
        expect(() => h.kv({ name: "kv" }).save(7 as unknown as string, 1)).toThrow(TypeError);
        expect(() => h.appendLog({ name: "log" }).appendEntries("abc" as unknown as string[])).toThrow(TypeError);
      });

      it("a closed tier rejects further use with closed; close() flushed its pending data and is idempotent", async () => {
        const h = await open();
        const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
        const s = h.snapshot<{ v: number }>({ name: "snap", debounceMs: HELD });
        const log = h.appendLog<number>({ name: "log", debounceMs: HELD });
        kv.save("k", 1);
        s.save({ v: 1 });
        log.appendEntries([1]);
        await Promise.all([kv.close(), s.close(), log.close()]);
        expect(parsed(await h.raw.read("k"))).toBe(1);
        expect(parsed(await h.raw.read("snap"))).toEqual({ v: 1 });
        expect(await entriesOf(h.appendLog<number>({ name: "log" }))).toEqual([1]);

        expectCoded(syncErrorOf(() => kv.save("k", 2)), StorageError, "closed");
        expectCoded(await errorOf(() => kv.load("k")), StorageError, "closed");
        expectCoded(await errorOf(() => kv.delete("k")), StorageError, "closed");
        expectCoded(await errorOf(() => kv.list()), StorageError, "closed");
        expectCoded(await errorOf(() => collect(kv.listByPrefix(""))), StorageError, "closed");
        expectCoded(syncErrorOf(() => s.save({ v: 2 })), StorageError, "closed");
        expectCoded(await errorOf(() => s.load()), StorageError, "closed");
        expectCoded(syncErrorOf(() => log.appendEntries([2])), StorageError, "closed");
        expectCoded(await errorOf(() => log.loadEntries()), StorageError, "closed");
        await Promise.all([kv.close(), s.close(), log.close()]);
      });
    });

    if (opts.faults) {
      describe("write failures", () => {
        it("snapshot: a failed flush rejects, reports onError, keeps pending; the retry writes exactly once", async () => {
          const h = await open();
          const faults = faultsOf(h);
          const s = h.snapshot<{ v: number }>({ name: "s", debounceMs: HELD });
          s.save({ v: 0 });
          await s.flush();
          s.save({ v: 1 });
          await faults.failWrites();
          expectCoded(await errorOf(() => s.flush()), StorageError, "backend-error");
          await until(() => h.errors.length >= 1, "onError report");
          expectCoded(h.errors[0], StorageError, "backend-error");
          await faults.heal();
          const before = await h.written();
          await s.flush();
          await s.flush();
          expect((await h.written()).writes - before.writes).toBe(1);
          expect(await s.load()).toEqual({ v: 1 });
        });

        it("snapshot: a newer save made while a flush failed supersedes the failed one", async () => {
          const h = await open();
          const faults = faultsOf(h);
          const s = h.snapshot<{ v: number }>({ name: "s", debounceMs: HELD });
          s.save({ v: 0 });
          await s.flush();
          s.save({ v: 1 });
          await faults.failWrites();
          expectCoded(await errorOf(() => s.flush()), StorageError, "backend-error");
          s.save({ v: 2 });
          await faults.heal();
          const before = await h.written();
          await s.flush();
          expect((await h.written()).writes - before.writes).toBe(1);
          expect(await s.load()).toEqual({ v: 2 });
        });

        it("kv: a failed flush keeps every pending key; newer saves win over restored ones", async () => {
          const h = await open();
          const faults = faultsOf(h);
          const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
          kv.save("a", 1);
          await kv.flush();
          kv.save("a", 2);
          kv.save("b", 3);
          await faults.failWrites();
          expectCoded(await errorOf(() => kv.flush()), StorageError, "backend-error");
          kv.save("a", 5);
          await faults.heal();
          const before = await h.written();
          await kv.flush();
          await kv.flush();
          expect((await h.written()).writes - before.writes).toBe(2);
          expect([await kv.load("a"), await kv.load("b")]).toEqual([5, 3]);
        });

        it("append-log: existing [1,2], append [3,4], the write fails twice, the retry gives [1,2,3,4] (§10.6)", async () => {
          const h = await open();
          const faults = faultsOf(h);
          const log = h.appendLog<number>({ name: "log", debounceMs: HELD });
          log.appendEntries([1, 2]);
          await log.flush();
          log.appendEntries([3, 4]);
          await faults.failWrites();
          expectCoded(await errorOf(() => log.flush()), StorageError, "backend-error");
          expectCoded(await errorOf(() => log.flush()), StorageError, "backend-error");
          await faults.heal();
          await log.flush();
          await log.flush();
          expect(await entriesOf(log)).toEqual([1, 2, 3, 4]);
          log.appendEntries([5]);
          await log.flush();
          const h2 = await reopen(h);
          expect(await entriesOf(h2.appendLog<number>({ name: "log" }))).toEqual([1, 2, 3, 4, 5]);
        });

        it("append-log: entries appended while a flush failed follow the restored ones in order", async () => {
          const h = await open();
          const faults = faultsOf(h);
          const log = h.appendLog<number>({ name: "log", debounceMs: HELD });
          log.appendEntries([1]);
          await log.flush();
          log.appendEntries([2]);
          await faults.failWrites();
          expectCoded(await errorOf(() => log.flush()), StorageError, "backend-error");
          log.appendEntries([3]);
          await faults.heal();
          await log.flush();
          expect(await entriesOf(log)).toEqual([1, 2, 3]);
        });

        it("a failing sync-through save does not throw: onError gets it, the data stays pending for flush()", async () => {
          const h = await open();
          const faults = faultsOf(h);
          const kv = h.kv<number>({ name: "kv" });
          kv.save("warm", 0);
          await kv.flush();
          await faults.failWrites();
          expect(() => kv.save("k", 1)).not.toThrow();
          await until(() => h.errors.length >= 1, "onError report");
          expectCoded(h.errors[0], StorageError, "backend-error");
          await faults.heal();
          await kv.flush();
          expect(await kv.load("k")).toBe(1);
        });

        it("a rollback after a failed flush discards the restored data", async () => {
          const h = await open();
          const faults = faultsOf(h);
          const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
          kv.save("warm", 0);
          await kv.flush();
          kv.save("k", 1);
          await faults.failWrites();
          expectCoded(await errorOf(() => kv.flush()), StorageError, "backend-error");
          kv.rollback();
          await faults.heal();
          await kv.flush();
          expect(await kv.load("k")).toBeUndefined();
        });
      });
    }

    if (opts.mode === "inline") {
      describe("inline only", () => {
        if (!opts.asyncBackend) it("sync-through over a sync backend: the data is in the backend when save() returns", async () => {
          const h = await open();
          const { backend } = inlineOf(h);
          expect(backend.supports.sync).toBe(true);
          const kv = h.kv<number>({ name: "kv" });
          kv.save("k", 1);
          expect(text(backend.read("k") as Uint8Array | undefined)).toBe("1");
          const s = h.snapshot<{ v: number }>({ name: "snap", debounceMs: 0 });
          s.save({ v: 1 });
          expect(text(backend.read("snap") as Uint8Array | undefined)).toBe('{"v":1}');
        });

        if (!opts.asyncBackend) it("sync-through append-log over a sync backend: the entries are in the backend when appendEntries() returns", async () => {
          const h = await open();
          const { backend } = inlineOf(h);
          const list = (prefix: string): readonly string[] => backend.list!(prefix) as readonly string[];
          const log = h.appendLog<number>({ name: "log" });
          log.appendEntries([1]); // first flush of a fresh tier
          expect(list("log").length, "first append").toBe(1);
          log.appendEntries([2]);
          expect(list("log").length, "second append").toBe(2);
          const ovr = h.appendLog<number>({ name: "ovr", mode: "overwrite" });
          ovr.appendEntries([1]);
          expect(list("ovr").length, "overwrite mode").toBe(1);
        });

        it("a flush reads nothing of the existing log (O(entries flushed))", async () => {
          const h = await open();
          const { probe } = inlineOf(h);
          const log = h.appendLog<number>({ name: "log", debounceMs: HELD });
          log.appendEntries([1]);
          await log.flush();
          for (let i = 2; i < 20; i++) {
            log.appendEntries([i]);
            await log.flush();
          }
          resetCounts(probe);
          log.appendEntries([20]);
          await log.flush();
          expect(probe.counts).toMatchObject({ reads: 0, lists: 0, puts: 1, deletes: 0 });
        });

        it("listByPrefix is lazy: nothing is listed or read before the first next()", async () => {
          const h = await open();
          const { probe } = inlineOf(h);
          const kv = h.kv<number>({ name: "kv" });
          kv.save("p/1", 1);
          kv.save("p/2", 2);
          await kv.flush();
          resetCounts(probe);
          const iterator = kv.listByPrefix("p/")[Symbol.asyncIterator]();
          await tick();
          expect([probe.counts.lists, probe.counts.reads]).toEqual([0, 0]);
          expect(await iterator.next()).toEqual({ done: false, value: { key: "p/1", value: 1 } });
          expect(probe.counts.lists).toBe(1);
          expect(probe.counts.reads).toBe(1);
          expect(await iterator.next()).toEqual({ done: false, value: { key: "p/2", value: 2 } });
          expect((await iterator.next()).done).toBe(true);
        });

        it("over a backend without list: listByPrefix throws backend-no-list-support on first iteration, and so does list()", async () => {
          const h = await open();
          const noList = wrapBackend(inlineOf(h).backend, { list: false });
          expect(noList.list).toBeUndefined();
          const kv = kvStorage<number>(noList, { name: "kv" });
          kv.save("p/1", 1);
          await kv.flush();
          const iterable = kv.listByPrefix("p/");
          const err = await errorOf(() => iterable[Symbol.asyncIterator]().next());
          expectCoded(err, StorageError, "backend-no-list-support");
          expect((err as StorageError).details).toMatchObject({ tier: "kv" });
          expectCoded(await errorOf(() => kv.list()), StorageError, "backend-no-list-support");
          expect(await kv.load("p/1")).toBe(1);
          await kv.close();
        });

        it("append-log over a backend without list uses the reference layout and still loads", async () => {
          const h = await open();
          const { backend } = inlineOf(h);
          const log = appendLogStorage<number>(wrapBackend(backend, { list: false }), { name: "L", debounceMs: HELD });
          log.appendEntries([1, 2]);
          await log.flush();
          log.appendEntries([3]);
          await log.flush();
          expect(text(await backend.read("L"))).toBe("[1,2,3]");
          expect(await entriesOf(log)).toEqual([1, 2, 3]);
          expect(await log.loadEntries({ pageSize: 2 })).toEqual({ entries: [1, 2], cursor: { position: 2 } });
          await log.close();
        });

        it("kv delete goes to the backend first: a failed backend delete keeps the pending value (D152)", async () => {
          const h = await open();
          const { probe } = inlineOf(h);
          const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
          kv.save("a", 1);
          probe.failNext(1);
          expect(String(await errorOf(() => kv.delete("a")))).toContain("EIO");
          await kv.flush();
          expect(await kv.load("a")).toBe(1);
          await kv.delete("a");
          expect(await kv.load("a")).toBeUndefined();
        });

        it("kv delete waits for an in-flight flush of the same key (async backend)", async () => {
          const h = await open();
          const slow = wrapBackend(inlineOf(h).backend, { async: true });
          const kv = kvStorage<number>(slow, { name: "kv", debounceMs: HELD });
          const release = slow.holdWrites();
          kv.save("a", 1);
          const flushed = kv.flush();
          const deleted = kv.delete("a");
          release();
          await Promise.all([flushed, deleted]);
          expect(await kv.load("a")).toBeUndefined();
          await kv.close();
        });

        it("rollback epoch (kv, async backend): cancels a flush scheduled before it, not one scheduled after", async () => {
          const h = await open();
          const slow = wrapBackend(inlineOf(h).backend, { async: true });
          const kv = kvStorage<number>(slow, { name: "kv", debounceMs: HELD });
          const release = slow.holdWrites();
          kv.save("a", 1);
          const inFlight = kv.flush(); // its write is already with the backend when the rollback comes
          kv.save("b", 1);
          const before = kv.flush(); // scheduled before the rollback
          kv.rollback();
          kv.save("c", 1);
          const after = kv.flush(); // scheduled after the rollback
          release();
          await Promise.all([inFlight, before, after]);
          expect(await kv.load("a")).toBe(1); // handed to the backend before the rollback: cannot be undone
          expect(await kv.load("b")).toBeUndefined();
          expect(await kv.load("c")).toBe(1);
          await kv.close();
        });

        it("rollback epoch (snapshot, async backend): the rolled-back snapshot is never written, a later one is", async () => {
          const h = await open();
          const slow = wrapBackend(inlineOf(h).backend, { async: true });
          const s = snapshotStorage<{ v: number }>(slow, { name: "s", debounceMs: HELD });
          const release = slow.holdWrites();
          s.save({ v: 1 });
          const inFlight = s.flush();
          s.save({ v: 2 });
          const before = s.flush();
          s.rollback();
          release();
          await Promise.all([inFlight, before]);
          expect(await s.load()).toEqual({ v: 1 });
          s.save({ v: 3 });
          await s.flush();
          expect(await s.load()).toEqual({ v: 3 });
          await s.close();
        });

        it("rollback epoch (append-log, async backend): a flush that started before the rollback writes nothing", async () => {
          const h = await open();
          const slow = wrapBackend(inlineOf(h).backend, { async: true });
          const log = appendLogStorage<number>(slow, { name: "log", debounceMs: HELD });
          log.appendEntries([1]);
          const started = log.flush(); // lists existing segments asynchronously first
          log.rollback();
          await started;
          expect(await entriesOf(log)).toEqual([]);
          expect(slow.counts.puts).toBe(0);
          log.appendEntries([2]);
          await log.flush();
          expect(await entriesOf(log)).toEqual([2]);
          await log.close();
        });

        it("a write that fails after a rollback is not restored", async () => {
          const h = await open();
          const slow = wrapBackend(inlineOf(h).backend, { async: true });
          const errors: Error[] = [];
          const log = appendLogStorage<number>(slow, { name: "log", debounceMs: HELD, onError: (e) => errors.push(e) });
          log.appendEntries([1]);
          await log.flush();
          const release = slow.holdWrites();
          log.appendEntries([2]);
          const failing = log.flush(); // the segment number is known, so its write is issued right away
          log.rollback();
          slow.failNext(1);
          release();
          expectCoded(await errorOf(() => failing), StorageError, "backend-error");
          expect(slow.counts.failed).toBe(1);
          expect(errors.length).toBe(1);
          await log.flush();
          expect(await entriesOf(log)).toEqual([1]);
          await log.close();
        });

        it("a throwing onError handler does not break the flush chain", async () => {
          const h = await open();
          const { probe } = inlineOf(h);
          const kv = kvStorage<number>(probe, {
            name: "kv",
            onError: () => {
              throw new Error("handler bug");
            },
          });
          probe.failNext(1);
          kv.save("a", 1);
          expect(probe.counts.failed).toBe(1);
          await kv.flush();
          expect(await kv.load("a")).toBe(1);
          await kv.close();
        });
      });
    }

    if (opts.sharedStores) {
      describe("one store, several handles (docs/design.md §3.17)", () => {
        const locationOf = (h: TierHarness): { kind: "file" | "sqlite"; path: string } => {
          if (!h.location) throw new Error("suite bug: a shared-store case ran on a harness without a location");
          return h.location;
        };

        it("a second handle in this process reads what the first wrote and writes through the same store", async () => {
          const h = await open();
          const kv = h.kv<number>({ name: "kv" });
          const snap = h.snapshot<{ name: string; v: number }>({ name: "snap" });
          kv.save("k/a", 1);
          snap.save({ name: "g", v: 1 });
          await Promise.all([kv.flush(), snap.flush()]);
          const second = await h.share();
          live.push(second);
          const kv2 = second.kv<number>({ name: "kv" });
          const snap2 = second.snapshot<{ name: string; v: number }>({ name: "snap" });
          expect(await kv2.load("k/a")).toBe(1);
          expect(await snap2.load("g")).toEqual({ name: "g", v: 1 });
          kv2.save("k/b", 2);
          snap2.save({ name: "g", v: 2 });
          await Promise.all([kv2.flush(), snap2.flush()]);
          expect(await kv.load("k/b")).toBe(2);
          expect(await snap.load("g")).toEqual({ name: "g", v: 2 });
          expect(await kv.list("k/")).toEqual(["k/a", "k/b"]);
          // Closing the second handle leaves the store with the first, still writable.
          await second.close();
          kv.save("k/c", 3);
          await kv.flush();
          expect(await kv.list("k/")).toEqual(["k/a", "k/b", "k/c"]);
        });

        it("a read-only handle in another process reads what this one wrote while it writes, and refuses writes", async () => {
          const h = await open();
          const kv = h.kv<number>({ name: "kv" });
          kv.save("a", 1);
          await kv.flush();
          const { kind, path } = locationOf(h);
          const first = await kvInChild(kind, path, "read", "a");
          expect(first).toMatchObject({ opened: true, keys: ["a"], value: 1, write: { code: "read-only" } });
          kv.save("b", 2);
          await kv.flush();
          expect(await kvInChild(kind, path, "read", "b")).toMatchObject({ opened: true, keys: ["a", "b"], value: 2 });
          // This handle still writes after the reader came and went.
          kv.save("c", 3);
          await kv.flush();
          expect(await kv.load("c")).toBe(3);
        });

        it("a second writer process is refused with store-locked naming this process", async () => {
          const h = await open();
          const kv = h.kv<number>({ name: "kv" });
          kv.save("a", 1);
          await kv.flush(); // the store is open (an engine opens it in its actor at the first op)
          const { kind, path } = locationOf(h);
          const report = await kvInChild(kind, path, "write", "a");
          expect(report).toMatchObject({ opened: false, error: { code: "store-locked", details: { pid: process.pid } } });
          kv.save("b", 2);
          await kv.flush();
          expect(await kv.list()).toEqual(["a", "b"]);
        });
      });
    }
  });
}
