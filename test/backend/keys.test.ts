import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { assertValidKey, compareKeys, prefixUpperBound } from "../../src/backend/keys.js";
import { StorageError } from "../../src/errors.js";

const utf8Compare = (a: string, b: string): number => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
const key = fc.oneof(
  fc.string({ unit: "binary", maxLength: 6 }),
  fc.string({ unit: fc.constantFrom("a", "\ud7ff", "\ue000", "\uffff", "\u{10000}", "\u{10FFFF}", "\0") }),
);

describe("compareKeys", () => {
  it("orders by code point, which is UTF-8 byte order (property)", () => {
    fc.assert(
      fc.property(key, key, (a, b) => {
        expect(Math.sign(compareKeys(a, b))).toBe(Math.sign(utf8Compare(a, b)));
      }),
      { numRuns: 2000 },
    );
  });

  it("differs from JS UTF-16 order where an astral character meets U+E000..U+FFFF", () => {
    expect(["\u{1F600}", "\uffff"].sort()).toEqual(["\u{1F600}", "\uffff"]);
    expect(["\u{1F600}", "\uffff"].sort(compareKeys)).toEqual(["\uffff", "\u{1F600}"]);
    expect(compareKeys("a", "a")).toBe(0);
    expect(compareKeys("a", "ab")).toBeLessThan(0);
  });
});

describe("prefixUpperBound", () => {
  it("bounds exactly the keys that start with the prefix (property)", () => {
    fc.assert(
      fc.property(key, key, (prefix, k) => {
        const bound = prefixUpperBound(prefix);
        const inRange = compareKeys(k, prefix) >= 0 && (bound === undefined || compareKeys(k, bound) < 0);
        expect(inRange).toBe(k.startsWith(prefix));
      }),
      { numRuns: 2000 },
    );
  });

  it("steps over the surrogate gap and drops trailing U+10FFFF", () => {
    expect(prefixUpperBound("ab")).toBe("ac");
    expect(prefixUpperBound("a\ud7ff")).toBe("a\ue000");
    expect(prefixUpperBound("a\u{10FFFF}")).toBe("b");
    expect(prefixUpperBound("a\uffff")).toBe("a\u{10000}");
    expect(prefixUpperBound("\u{10FFFF}\u{10FFFF}")).toBeUndefined();
    expect(prefixUpperBound("")).toBeUndefined();
  });
});

describe("assertValidKey", () => {
  it("accepts every well-formed string and rejects lone surrogates", () => {
    fc.assert(fc.property(fc.string({ unit: "binary" }), (k) => assertValidKey(k)));
    for (const bad of ["\ud800", "\udfff", "x\ud800y", "\udc00\ud800"]) {
      expect(() => assertValidKey(bad)).toThrow(StorageError);
    }
    expect(() => assertValidKey(undefined)).toThrow(StorageError);
  });
});
