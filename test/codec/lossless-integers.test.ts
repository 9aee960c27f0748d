/**
 * Plain JSON integers of any size round-trip exactly (docs/protocol.md §2.6): decoding gives a bigint for an
 * integer no double writes back as the same digits (`isWideInteger`) and a number otherwise; encoding writes
 * such bigints as their digits and refuses the others (they would come back as numbers).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bigintJsonCodec, canonicalJson, jsonCodec } from "../../src/codec/index.js";
import { isWideInteger } from "../../src/codec/strict.js";
import { CodecError } from "../../src/errors.js";

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const textOf = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const decode = (text: string): unknown => jsonCodec.decode(utf8(text));

/** Integers of any size: small, near 2^53, u64/i64 edges, and far beyond. */
const anyInteger = fc.oneof(
  fc.bigInt({ min: -(2n ** 16n), max: 2n ** 16n }),
  fc.bigInt({ min: -(2n ** 54n), max: 2n ** 54n }),
  fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }),
  fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }),
  fc.constantFrom(2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 64n - 1n, -(2n ** 63n), 10n ** 21n, 10n ** 21n - 1n),
  // Few significant digits and many zeros (our own timestamps are Date.now() x 10^6), either sign.
  fc
    .tuple(fc.bigInt({ min: -(10n ** 18n), max: 10n ** 18n }), fc.integer({ min: 0, max: 12 }))
    .map(([d, k]) => d * 10n ** BigInt(k)),
);

describe("integer texts of any size", () => {
  it("decode to a bigint exactly when no number writes the same digits, and write back as the same text", () => {
    fc.assert(
      fc.property(anyInteger, (n) => {
        const digits = String(n);
        for (const text of [digits, `[${digits}]`, `{"a":{"b":[1,${digits},"x"]}}`, ` \n${digits}\t`]) {
          const value = decode(text);
          expect(canonicalJson(value)).toBe(text.trim());
        }
        // At every offset (the scan for long digit runs probes every 16th character).
        for (let pad = 0; pad < 17; pad++) {
          const text = `["${"p".repeat(pad)}",${digits}]`;
          expect(canonicalJson(decode(text))).toBe(text);
        }
        const value = decode(digits);
        if (isWideInteger(n)) expect(value).toBe(n);
        else expect(value).toBe(Number(n));
      }),
    );
  });

  it("bigints the writer accepts come back as the same bigint, through jsonCodec and bigintJsonCodec alike", () => {
    fc.assert(
      fc.property(anyInteger, (n) => {
        if (isWideInteger(n)) {
          expect(textOf(jsonCodec.encode({ n }))).toBe(`{"n":${String(n)}}`);
          expect(jsonCodec.decode(jsonCodec.encode({ n }))).toEqual({ n });
        } else {
          expect(() => jsonCodec.encode({ n })).toThrow(CodecError);
        }
        // The bigint codec's tag rule is unchanged: every bigint is a tag.
        expect(textOf(bigintJsonCodec.encode(n))).toBe(`{"$bigint":"${String(n)}"}`);
        expect(bigintJsonCodec.decode(bigintJsonCodec.encode(n))).toBe(n);
      }),
    );
  });

  it("numbers round-trip as numbers (a double that is an integer beyond 2^53 stays a number)", () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        const back = jsonCodec.decode(jsonCodec.encode(x));
        expect(back).toBe(x === 0 ? 0 : x);
      }),
    );
    expect(decode("9007199254740992")).toBe(2 ** 53);
    expect(decode("123456789012345680000")).toBe(123456789012345680000);
  });

  it("the lossless parser agrees with JSON.parse on everything else", () => {
    // The trailing wide integer sends the whole text to the lossless parser.
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = JSON.stringify(v);
        expect(decode(`[${text},18446744073709551615]`)).toEqual([JSON.parse(text), 18446744073709551615n]);
      }),
    );
  });

  it("keeps JSON.parse's rules where they are subtle: __proto__ is an own key, the last duplicate wins", () => {
    const value = decode('{"__proto__":{"x":1},"a":1,"a":18446744073709551615}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toEqual(["__proto__", "a"]);
    expect(Object.getOwnPropertyDescriptor(value, "__proto__")?.value).toEqual({ x: 1 });
    expect(value.a).toBe(18446744073709551615n);
    expect(decode('{"a":1,"b":12345678901234567890,"a":2}')).toEqual({ a: 2, b: 12345678901234567890n });
  });

  it("bigintJsonCodec revives its tags in a text that also holds a wide plain integer (the lossless path)", () => {
    const text = '{"a":{"$bigint":"5"},"b":18446744073709551615,"c":[{"$bigint":"-7"},{"$bigint":"x"}]}';
    expect(bigintJsonCodec.decode(utf8(text))).toEqual({ a: 5n, b: 18446744073709551615n, c: [-7n, { $bigint: "x" }] });
  });

  it("invalid JSON on the lossless path is still CodecError decode-failed", () => {
    for (const bad of ["[18446744073709551615,]", "018446744073709551615", "[18446744073709551615", "- 18446744073709551615"]) {
      expect(() => decode(bad)).toThrow(CodecError);
      expect(() => decode(bad)).toThrow(/not valid JSON/);
    }
  });

  it("digit runs inside strings stay strings", () => {
    expect(decode('{"id":"12345678901234567890","note":"x: 12345678901234567890"}')).toEqual({
      id: "12345678901234567890",
      note: "x: 12345678901234567890",
    });
  });

  it("a value nested deeper than the one-pass writer goes (the reference path) writes wide bigints as digits too", () => {
    let deep: unknown = [2n ** 64n, { k: -(2n ** 70n) }];
    for (let i = 0; i < 100; i++) deep = [deep];
    const text = canonicalJson(deep);
    expect(text).toBe(`${"[".repeat(101)}18446744073709551616,{"k":-1180591620717411303424}${"]".repeat(101)}`);
    expect(canonicalJson(decode(text))).toBe(text);
    let deepSafe: unknown = [5n];
    for (let i = 0; i < 100; i++) deepSafe = [deepSafe];
    expect(() => canonicalJson(deepSafe)).toThrow(/exactly a JSON number/);
  });
});
