import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { CanonicalWriter, withCanonicalWriter } from "../../src/codec/canonical-writer.js";

// The writer's digits of doubles at or above 2^53 (nanosecond timestamps) are its own, not String()'s (design §3.43):
// they must be Number::toString's exactly, which is RFC 8785's number form.

const bits = new BigUint64Array(1);
const float = new Float64Array(bits.buffer);
/** The double `k` steps above (k < 0: below) a positive double. */
function step(x: number, k: number): number {
  float[0] = x;
  bits[0] = bits[0]! + BigInt(k);
  return float[0]!;
}

const text = (n: number): string =>
  withCanonicalWriter((w) => {
    w.number(n);
    return w.text();
  });

/** Every double of magnitude in [2^52, 2^64), each sign: all binades the writer answers, and those around them. */
const wideDouble = fc
  .tuple(fc.integer({ min: 52, max: 63 }), fc.double({ min: 1, max: 2, maxExcluded: true, noNaN: true }), fc.boolean())
  .map(([e, m, negative]) => (negative ? -1 : 1) * 2 ** e * m);

describe("CanonicalWriter.number of integers above 2^53", () => {
  it("writes String()'s digits for any double of those binades", () => {
    fc.assert(
      fc.property(wideDouble, (x) => {
        expect(text(x)).toBe(String(x));
      }),
      { numRuns: 4_000 },
    );
  });

  it("writes String()'s digits next to round numbers, where the shortest digits end in long runs of zeros", () => {
    // A run of zeros may cross the 10^9 split the writer makes (left to String()), and the shortest candidate is
    // the one nearest the value: the doubles on either side of multiples of 10^3 … 10^18 cover both.
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 18 }), fc.double({ min: 2 ** 53, max: 2 ** 62, noNaN: true }), (z, at) => {
        const round = Math.max(2 ** 53, Math.round(at / 10 ** z) * 10 ** z);
        for (let k = -4; k <= 4; k++) {
          const x = step(round, k);
          expect(text(x)).toBe(String(x));
          expect(text(-x)).toBe(String(-x));
        }
      }),
      { numRuns: 400 },
    );
  });

  it("writes String()'s digits at every binade's edges and for a run of consecutive doubles", () => {
    for (let e = 52; e <= 64; e++) {
      for (let k = -64; k <= 64; k++) {
        const x = step(2 ** e, k);
        expect(text(x)).toBe(String(x));
      }
    }
    let x = 1.7e18;
    for (let k = 0; k < 5_000; k++, x = step(x, 1)) expect(text(x)).toBe(String(x));
  });

  it("writes a burst of nanosecond stamps as String() does, through value() and next to other output", () => {
    let t = 1_765_000_000_123_456_789;
    const stamps: number[] = [];
    for (let i = 0; i < 5_000; i++) stamps.push((t += 1_000 + ((i * 7_919) % 3_000)));
    const written = withCanonicalWriter((w) => (w.value({ stamps, last: stamps[4_999] }, "reject") ? w.text() : undefined));
    expect(written).toBe(`{"last":${String(stamps[4_999])},"stamps":[${stamps.map(String).join(",")}]}`);
  });
});

describe("CanonicalWriter.copyOut and raw with a length", () => {
  it("copies the bytes written since a mark, and repeats a prefix of them", () => {
    const w = new CanonicalWriter();
    w.ascii("head:");
    const mark = w.length;
    w.number(1_765_000_000_123_456_789);
    const kept = new Uint8Array(32).fill(0x21);
    const n = w.copyOut(mark, kept);
    expect(n).toBe(w.length - mark);
    w.ascii(",");
    w.raw(kept, n);
    w.raw(kept, 0);
    expect(w.text()).toBe(`head:${String(1_765_000_000_123_456_789)},${String(1_765_000_000_123_456_789)}`);
    expect(kept[n]).toBe(0x21);
  });
});
