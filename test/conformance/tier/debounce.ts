/** debounceMs: the timer window, flush() draining it, and sync-through when it is 0 or unset. */
import { describe, expect, it } from "vitest";
import { sleep, until } from "../../support/wait.js";
import { HELD, WINDOW, parsed, tick, entriesOf } from "./common.js";
import type { SuiteContext } from "./context.js";

export function debounceCases({ open }: SuiteContext): void {
  describe("cadence", () => {
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
}
