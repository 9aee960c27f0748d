/** Tier options: validation at construction, and the options a tier exposes. */
import { describe, expect, it } from "vitest";
import type { BaseStorageTier } from "../../../src/tier/types.js";
import type { TierHarness } from "../../support/tier-harness.js";
import { syncErrorOf } from "../../support/wait.js";
import type { SuiteContext } from "./context.js";

export function optionsCases({ open }: SuiteContext): void {
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
}
