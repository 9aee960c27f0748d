/**
 * fast-check arbitraries for canonical-JSON tests: plain JSON values biased towards the cases RFC 8785 is picky
 * about (unicode and integer-like keys, escapes, -0, exponent-form numbers, undefined properties, null-prototype
 * objects), and values holding exactly one thing the strict codec must refuse; plus `outcome`, what the rule did.
 */
import fc from "fast-check";
import { expect } from "vitest";
import { CodecError } from "../../src/errors.js";

const escapeUnits = fc.constantFrom("a", "z", "\"", "\\", "/", "\n", "\t", "\b", "\u0000", "\u001f", "\u007f", "é", "\u2028", "😀", "\uFF61");

/** Well-formed strings: ASCII, any code points (astral included), escape-heavy, and longer than the short-string loop. */
export const jsonString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: "grapheme-ascii" }),
  fc.string({ unit: "binary" }),
  fc.string({ unit: escapeUnits }),
  fc.string({ unit: escapeUnits, minLength: 30, maxLength: 80 }),
);

/** Object keys: the strings above plus integer-like, sort-order and prototype-related names. */
export const jsonKey: fc.Arbitrary<string> = fc.oneof(
  jsonString,
  fc.constantFrom(
    "0", "1", "9", "10", "01", "-1", "4294967294", "4294967295", "1e3",
    "", "a", "B", "_", "$bigint", "😀", "\uFF61", "é", "e\u0301",
    "__proto__", "toString", "constructor", "toJSON_", "value", "valueOf",
  ),
);

/** Finite numbers, including the forms RFC 8785 spells specially. */
export const jsonNumber: fc.Arbitrary<number> = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(-0, 0, 1e21, 1e-7, 1e-6, 1e20, 123e-20, 5e-324, Number.MAX_VALUE, Number.MAX_SAFE_INTEGER, 1.7e18, 0.1 + 0.2, -1e-7),
);

/** Plain JSON data (undefined only as an object property, which JSON omits). */
export const jsonData: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom(null, true, false),
    jsonNumber,
    jsonString,
    fc.array(tie("value"), { maxLength: 5 }),
    fc.dictionary(jsonKey, tie("value"), { maxKeys: 6 }),
    fc.dictionary(jsonKey, fc.option(tie("value"), { nil: undefined }), { maxKeys: 6 }),
  ),
})).value;

/** Values (or holders) JSON cannot carry faithfully; each must make the strict codec fail. */
export const unencodable: fc.Arbitrary<unknown> = fc.constantFrom<() => unknown>(
  () => NaN,
  () => Infinity,
  () => -Infinity,
  () => 1n,
  () => () => 1,
  () => Symbol("s"),
  () => [undefined],
  () => [1, , 3],
  () => new Map(),
  () => new Date(0),
  () => new Uint8Array(1),
  () => "lone \ud800 surrogate",
  () => "\udc00",
  () => ({ ["k\ud800"]: 1 }),
  () => ({ ["k\udfff"]: undefined }),
  () => Object.create({ inherited: 1 }) as unknown,
  () => ({ toJSON: () => 1 }),
  () => [Object.defineProperty({}, "toJSON", { value: () => 1 })],
  () => new Proxy({ a: 1 }, {}),
  () => new Proxy([1], {}),
  () => new (class Point {
    x = 1;
  })(),
  () => Object.defineProperty({}, "x", { enumerable: true, get: (): never => { throw new Error("getter"); } }),
).map((make) => make());

/** A plain value with `bad` planted somewhere inside (or at the root). */
export const withUnencodable: fc.Arbitrary<unknown> = fc
  .tuple(unencodable, fc.array(fc.tuple(fc.oneof(fc.constant(null), jsonKey), jsonData), { maxLength: 4 }))
  .map(([bad, steps]) => {
    let inner = bad;
    for (const [key, sibling] of steps) {
      if (key === null) inner = [sibling, inner];
      else {
        const holder: Record<string, unknown> = {};
        define(holder, "sibling", sibling);
        define(holder, key, inner);
        inner = holder;
      }
    }
    return inner;
  });

/** defineProperty keeps a generated "__proto__" key an own data property. */
export function define(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** What a call of the value rule did: nothing thrown, or the CodecError("encode-failed") it threw (asserted so). */
export function outcome(fn: () => unknown): { ok: true } | { ok: false; message: string; details: unknown } {
  try {
    fn();
    return { ok: true };
  } catch (err) {
    expect(err).toBeInstanceOf(CodecError);
    expect((err as CodecError).code).toBe("encode-failed");
    return { ok: false, message: (err as CodecError).message, details: (err as CodecError).details };
  }
}
