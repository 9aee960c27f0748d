import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { bigintJsonCodec, bigintJsonCodecFor } from "../../src/codec/index.js";
import { CodecError } from "../../src/errors.js";

const encodeText = (value: unknown): string => new TextDecoder().decode(bigintJsonCodec.encode(value));
const decodeText = (json: string): unknown => bigintJsonCodec.decode(new TextEncoder().encode(json));

describe("bigintJsonCodec identity", () => {
  it("is named json-bigint, version 1, and bigintJsonCodecFor returns the same object", () => {
    expect(bigintJsonCodec.name).toBe("json-bigint");
    expect(bigintJsonCodec.version).toBe(1);
    expect(bigintJsonCodecFor<{ n: bigint }>()).toBe(bigintJsonCodec);
  });
});

describe("bigintJsonCodec encode (docs/protocol.md §2.3, §10.4)", () => {
  it("tags bigints anywhere and keeps canonical key order", () => {
    expect(encodeText({ z: 1n, a: [2n], n: 7 })).toBe('{"a":[{"$bigint":"2"}],"n":7,"z":{"$bigint":"1"}}');
  });

  it("is key-order independent", () => {
    expect(encodeText({ z: 1n, a: 2n })).toBe(encodeText({ a: 2n, z: 1n }));
  });

  it("tags a top-level bigint", () => {
    expect(encodeText(-12n)).toBe('{"$bigint":"-12"}');
  });

  it("does not modify the input value", () => {
    const input = { a: [1n, { b: 2n }], c: "x" };
    encodeText(input);
    expect(input).toEqual({ a: [1n, { b: 2n }], c: "x" });
  });

  it("keeps a __proto__ key an own property when its value is replaced", () => {
    const input = JSON.parse('{"__proto__":0,"a":1}') as Record<string, unknown>;
    Object.defineProperty(input, "__proto__", { value: 5n, enumerable: true, writable: true, configurable: true });
    expect(encodeText(input)).toBe('{"__proto__":{"$bigint":"5"},"a":1}');
  });

  it.each<[string, unknown, string]>([
    ["NaN", { a: [1n, NaN] }, "$.a[1]"],
    ["Map", { m: new Map([[1n, 1n]]) }, "$.m"],
    ["function", { f: () => 1n }, "$.f"],
    ["top-level undefined", undefined, "$"],
  ])("still applies the strict rules: %s", (_name, value, path) => {
    let caught: unknown;
    try {
      bigintJsonCodec.encode(value);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CodecError);
    expect((caught as CodecError).code).toBe("encode-failed");
    expect((caught as CodecError).details.path).toBe(path);
  });
});

describe("bigintJsonCodec decode", () => {
  it.each([1_700_000_000_000_000_000n, -12n, 0n, 2n ** 200n, -(2n ** 64n)])("round-trips %s", (n) => {
    expect(bigintJsonCodec.decode(bigintJsonCodec.encode(n))).toBe(n);
    expect(bigintJsonCodec.decode(bigintJsonCodec.encode({ v: [n] }))).toEqual({ v: [n] });
  });

  it.each(["notnum", "", "0x1f", "1e3", "  12  ", "+5", "01", "-01", "1.0", "--1", "1n"])(
    "leaves {$bigint: %j} a plain object",
    (tag) => {
      expect(decodeText(JSON.stringify({ $bigint: tag }))).toEqual({ $bigint: tag });
    },
  );

  it.each<[string, string, unknown]>([
    ["two keys", '{"$bigint":"1","x":1}', { $bigint: "1", x: 1 }],
    ["a number tag", '{"$bigint":1}', { $bigint: 1 }],
    ["a null tag", '{"$bigint":null}', { $bigint: null }],
    ["a nested tag object", '{"$bigint":{"$bigint":"3"}}', { $bigint: 3n }],
    ["an array holding the key name", '["$bigint","1"]', ["$bigint", "1"]],
    ["a differently cased key", '{"$BigInt":"1"}', { $BigInt: "1" }],
  ])("does not revive %s", (_name, json, expected) => {
    expect(decodeText(json)).toEqual(expected);
  });

  it("revives a genuine {$bigint: digits} object (documented collision)", () => {
    expect(decodeText('{"$bigint":"42"}')).toBe(42n);
  });

  it("rejects invalid UTF-8 and invalid JSON with decode-failed", () => {
    for (const bytes of [Uint8Array.from([0xff]), new TextEncoder().encode("{"), new Uint8Array(0)]) {
      let caught: unknown;
      try {
        bigintJsonCodec.decode(bytes);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(CodecError);
      expect((caught as CodecError).code).toBe("decode-failed");
    }
  });
});

describe("bigintJsonCodec properties", () => {
  // Values mixing bigints into JSON; "$bigint" keys are left out (their collision is tested above).
  const key = fc.string().filter((k) => k !== "$bigint");
  const { value } = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: "small" },
      fc.bigInt(),
      fc.integer(),
      fc.string(),
      fc.boolean(),
      fc.constant(null),
      fc.array(tie("value")),
      fc.dictionary(key, tie("value")),
    ),
  }));

  it("decode(encode(v)) equals v for bigints inside objects and arrays", () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(bigintJsonCodec.decode(bigintJsonCodec.encode(v))).toEqual(v);
      }),
      { numRuns: 300 },
    );
  });

  it("round-trips any bigint in an object and an array", () => {
    fc.assert(
      fc.property(fc.bigInt(), (n) => {
        expect(bigintJsonCodec.decode(bigintJsonCodec.encode({ a: n, b: [n, { c: n }] }))).toEqual({
          a: n,
          b: [n, { c: n }],
        });
      }),
    );
  });
});
