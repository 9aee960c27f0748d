/**
 * The flush latency window's percentiles are selected, not sorted (src/engine/latency.ts, design §3.30): they must
 * equal the sorted window's, for windows of every size, with duplicates, and once the ring has wrapped.
 */
import { describe, expect, it } from "vitest";
import { LatencyWindow } from "../../src/engine/latency.js";

/** The window's percentile by sorting its samples (what the window computed before). */
function bySort(samples: readonly number[], p: number): number | undefined {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

describe("LatencyWindow percentiles", () => {
  it("equal the sorted window's for sizes 0..300, few distinct values and many", () => {
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let size = 0; size <= 300; size++) {
      for (const distinct of [3, 1000]) {
        const w = new LatencyWindow(512);
        const samples = Array.from({ length: size }, () => Math.floor(rnd() * distinct) / 10);
        for (const s of samples) w.record(s);
        expect(w.percentiles([0, 50, 90, 99, 100])).toEqual([0, 50, 90, 99, 100].map((p) => bySort(samples, p)));
        expect(w.percentile(99)).toBe(bySort(samples, 99));
        expect(w.percentiles([99, 50, 75, 1])).toEqual([99, 50, 75, 1].map((p) => bySort(samples, p)));
      }
    }
  });

  it("count only the last `capacity` samples once the ring wrapped", () => {
    const w = new LatencyWindow(100);
    for (let i = 0; i < 1000; i++) w.record(i);
    expect(w.percentiles([1, 50, 100])).toEqual([900, 949, 999]);
  });
});
