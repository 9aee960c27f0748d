/** compactEvery: the flush cadence of a debounced tier counted in accepted writes (§4.1). */
import { describe, expect, it } from "vitest";
import { until } from "../../support/wait.js";
import { HELD, parsed, tick, entriesOf } from "./common.js";
import type { SuiteContext } from "./context.js";

export function compactEveryCases({ open }: SuiteContext): void {
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
  });
}
