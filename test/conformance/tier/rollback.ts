/** rollback() across the three tiers. */
import { describe, expect, it } from "vitest";
import { until } from "../../support/wait.js";
import { HELD, WINDOW, entriesOf } from "./common.js";
import type { SuiteContext } from "./context.js";

export function rollbackCases({ open }: SuiteContext): void {
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
}
