import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { withCanonicalWriter } from "../../src/codec/canonical-writer.js";

// The writer's digits of safe integers are its own (int32 runs, the value split at 10^9 above it; design §3.48):
// they must be Number::toString's exactly, -0 as 0.

const text = (n: number): string =>
  withCanonicalWriter((w) => {
    w.number(n);
    return w.text();
  });

describe("CanonicalWriter.number of safe integers", () => {
  it("writes String()'s digits for any safe integer", () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), (n) => {
        expect(text(n)).toBe(String(n));
      }),
      { numRuns: 5_000 },
    );
  });

  it("writes String()'s digits at every power of ten and either side of it, both signs", () => {
    for (let e = 0; e <= 15; e++) {
      const p = 10 ** e;
      for (const n of [p - 1, p, p + 1, 2 * p - 1, 9 * p, 9 * p + (p - 1)]) {
        if (!Number.isSafeInteger(n)) continue;
        expect(text(n)).toBe(String(n));
        expect(text(-n)).toBe(String(-n));
      }
    }
    expect(text(-0)).toBe("0");
    expect(text(Number.MAX_SAFE_INTEGER)).toBe(String(Number.MAX_SAFE_INTEGER));
    expect(text(Number.MIN_SAFE_INTEGER)).toBe(String(Number.MIN_SAFE_INTEGER));
  });

  it("writes String()'s digits on either side of the split at 10^9, across the whole range", () => {
    // hi·10^9 + lo with lo at its ends: where a rounded quotient n / 10^9 would put hi one off.
    for (let hi = 1; hi <= 9_007_198; hi += 7919) {
      for (const lo of [0, 1, 999_999_998, 999_999_999]) {
        const n = hi * 1e9 + lo;
        expect(text(n)).toBe(String(n));
        expect(text(-n)).toBe(String(-n));
      }
    }
    for (const n of [8_999_999_999_999_999, 4_999_999_999_999_999, 1_999_999_999_999_999]) expect(text(n)).toBe(String(n));
  });
});
