import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { jsonCodec, jsonCodecFor, canonicalJson } from "../../src/codec/index.js";
import { CodecError } from "../../src/errors.js";

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const encodeText = (value: unknown): string => text(jsonCodec.encode(value));

/** Runs `fn`, which must throw a CodecError, and returns it. */
function codecErrorOf(fn: () => unknown): CodecError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CodecError);
    return err as CodecError;
  }
  throw new Error("expected a CodecError, nothing was thrown");
}

/** -0 → 0 everywhere (canonical JSON writes -0 as 0). */
function normaliseZero(value: unknown): unknown {
  if (typeof value === "number") return Object.is(value, -0) ? 0 : value;
  if (Array.isArray(value)) return value.map(normaliseZero);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) define(out, k, normaliseZero(v));
    return out;
  }
  return value;
}

/** Rebuilds every object with its keys in a pseudo-random order drawn from `seed`. */
function shuffleKeys(value: unknown, seed: number): unknown {
  let state = seed >>> 0;
  const next = (): number => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return state;
  };
  const go = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(go);
    if (v === null || typeof v !== "object") return v;
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i > 0; i--) {
      const j = next() % (i + 1);
      [keys[i], keys[j]] = [keys[j] as string, keys[i] as string];
    }
    const out: Record<string, unknown> = {};
    for (const k of keys) define(out, k, go((v as Record<string, unknown>)[k]));
    return out;
  };
  return go(value);
}

// defineProperty keeps a generated "__proto__" key an own data property.
function define(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

describe("jsonCodec identity", () => {
  it("is named json, version 1, and jsonCodecFor returns the same object", () => {
    expect(jsonCodec.name).toBe("json");
    expect(jsonCodec.version).toBe(1);
    expect(jsonCodecFor<{ a: number }>()).toBe(jsonCodec);
  });
});

describe("jsonCodec canonical form (docs/protocol.md §10.4, RFC 8785)", () => {
  it.each<[string, unknown, string]>([
    ["keys sorted", { zebra: 1, apple: 2, monkey: 3 }, '{"apple":2,"monkey":3,"zebra":1}'],
    ["struct field order irrelevant", { zebra: 1, monkey: 2, apple: 3 }, '{"apple":3,"monkey":2,"zebra":1}'],
    ["insertion z then a", { z: 1, a: 2 }, '{"a":2,"z":1}'],
    [
      "checkpoint record",
      { name: "test", mode: "full", snapshot: { name: "test", nodes: {} }, seq: 42, timestamp_ns: 1000000, format_version: 1 },
      '{"format_version":1,"mode":"full","name":"test","seq":42,"snapshot":{"name":"test","nodes":{}},"timestamp_ns":1000000}',
    ],
    ["lifecycle string", "ownership", '"ownership"'],
    ["counter version", 42, "42"],
    ["cid version", "bafy123", '"bafy123"'],
    [
      "BaseChange without seq has no seq",
      { structure: "s", version: 0, t_ns: 0, seq: undefined, lifecycle: "data", change: 0 },
      '{"change":0,"lifecycle":"data","structure":"s","t_ns":0,"version":0}',
    ],
    // RFC 8785 sorts integer-like keys as strings (the TS reference put them first, numerically).
    ["integer-like keys sort as strings", { "10": 1, "9": 2 }, '{"10":1,"9":2}'],
    ["mixed keys", { "10": 1, "9": 2, a: 3, B: 4, _: 5 }, '{"10":1,"9":2,"B":4,"_":5,"a":3}'],
    ["UTF-16 code-unit key order", { "\uFF61": 1, "😀": 2 }, '{"😀":2,"｡":1}'],
    ["-0 in an array", [-0], "[0]"],
    ["-0 at the top", -0, "0"],
    ["large and small numbers", [1e21, 1e-7, 0.1 + 0.2], "[1e+21,1e-7,0.30000000000000004]"],
    ["string escapes", "\"\\\b\f\n\r\t\u0001/\u2028é", '"\\"\\\\\\b\\f\\n\\r\\t\\u0001/\u2028é"'],
    ["undefined properties omitted", { a: undefined, b: 1 }, '{"b":1}'],
    ["null-prototype objects are plain", Object.assign(Object.create(null) as object, { b: 1, a: null }), '{"a":null,"b":1}'],
    ["no whitespace", { a: [1, { b: true }], c: null }, '{"a":[1,{"b":true}],"c":null}'],
  ])("%s", (_name, value, expected) => {
    expect(encodeText(value)).toBe(expected);
    expect(canonicalJson(value)).toBe(expected);
  });

  it("allows the same object twice when it is not its own ancestor", () => {
    const shared = { v: 1 };
    expect(encodeText({ a: shared, b: [shared, shared] })).toBe('{"a":{"v":1},"b":[{"v":1},{"v":1}]}');
  });
});

describe("jsonCodec strict encoding (docs/design.md §3.2)", () => {
  class Point {
    constructor(readonly x: number) {}
  }
  class MyArray extends Array<number> {}
  const withHiddenToJSON = Object.defineProperty({ a: 1 }, "toJSON", { value: () => "other", enumerable: false });
  const nested = { a: [0, 1, { b: NaN }] };
  const cyclic: Record<string, unknown> = { a: {} };
  (cyclic.a as Record<string, unknown>).self = cyclic;
  const cyclicArray: unknown[] = [1];
  cyclicArray.push([cyclicArray]);
  const holey = [1, , 3];

  it.each<[string, unknown, string, RegExp]>([
    ["NaN", { a: NaN }, "$.a", /NaN/],
    ["Infinity", { b: [0, Infinity] }, "$.b[1]", /Infinity/],
    ["-Infinity at the root", -Infinity, "$", /Infinity/],
    ["nested path", nested, "$.a[2].b", /NaN/],
    ["bigint", { n: 1n }, "$.n", /bigintJsonCodec/],
    ["function", { f: () => 1 }, "$.f", /function/],
    ["function inside an array", { a: [() => 1] }, "$.a[0]", /function/],
    ["symbol", { s: Symbol("x") }, "$.s", /symbol/],
    ["object cycle", cyclic, "$.a.self", /cycle/],
    ["array cycle", cyclicArray, "$[1][0]", /cycle/],
    ["top-level undefined", undefined, "$", /undefined/],
    ["undefined inside an array", { xs: [1, undefined] }, "$.xs[1]", /undefined/],
    ["array hole", holey, "$[1]", /undefined/],
    ["Map", { m: new Map() }, "$.m", /Map/],
    ["Set", { s: new Set([1]) }, "$.s", /Set/],
    ["Date", { d: new Date(0) }, "$.d", /Date/],
    ["Uint8Array", { u: new Uint8Array([5, 6]) }, "$.u", /Uint8Array/],
    ["ArrayBuffer", [new ArrayBuffer(2)], "$[0]", /ArrayBuffer/],
    ["DataView", { v: new DataView(new ArrayBuffer(1)) }, "$.v", /DataView/],
    ["RegExp", { r: /x/ }, "$.r", /RegExp/],
    ["Error", { e: new Error("x") }, "$.e", /Error/],
    ["class instance", { p: new Point(1) }, "$.p", /Point/],
    ["boxed number", { n: new Number(1) }, "$.n", /Number/],
    ["Array subclass", { xs: MyArray.from([1]) }, "$.xs", /MyArray/],
    ["hidden toJSON", { o: withHiddenToJSON }, "$.o", /toJSON/],
    ["odd key is quoted", { "a b": NaN }, '$["a b"]', /NaN/],
    ["integer-like key is quoted", { "0": { $x: NaN } }, '$["0"].$x', /NaN/],
    ["lone surrogate in a string", { s: "a\ud800" }, "$.s", /surrogate/],
    ["lone surrogate in a key", { ["k\udc00"]: 1 }, '$["k\\udc00"]', /surrogate/],
  ])("%s", (_name, value, path, message) => {
    const err = codecErrorOf(() => jsonCodec.encode(value));
    expect(err.code).toBe("encode-failed");
    expect(err.details.path).toBe(path);
    expect(err.message).toMatch(message);
    expect(err.message).toContain(path);
  });

  it("reports a throwing getter at its path with the original error as cause", () => {
    const boom = new Error("boom");
    const value = { a: { get b(): number {
      throw boom;
    } } };
    const err = codecErrorOf(() => jsonCodec.encode(value));
    expect(err.code).toBe("encode-failed");
    expect(err.details.path).toBe("$.a.b");
    expect(err.cause).toBe(boom);
  });

  it("names the root it is given", () => {
    const err = codecErrorOf(() => canonicalJson({ x: NaN }, "$.change"));
    expect(err.details.path).toBe("$.change.x");
  });
});

describe("jsonCodec decode", () => {
  it.each<[string, number[], ErrorConstructor]>([
    ["invalid UTF-8 (0xff)", [0x7b, 0xff, 0x7d], TypeError],
    ["truncated UTF-8 sequence", [0x22, 0xc3, 0x22], TypeError],
    ["lone surrogate encoded as UTF-8", [0x22, 0xed, 0xa0, 0x80, 0x22], TypeError],
    ["invalid JSON", [...new TextEncoder().encode('{"a":')], SyntaxError],
    ["trailing garbage", [...new TextEncoder().encode("1 2")], SyntaxError],
    ["empty input", [], SyntaxError],
  ])("%s → decode-failed with the cause", (_name, bytes, causeType) => {
    const err = codecErrorOf(() => jsonCodec.decode(Uint8Array.from(bytes)));
    expect(err.code).toBe("decode-failed");
    expect(err.cause).toBeInstanceOf(causeType);
  });

  it("decodes what it encodes", () => {
    const value = { s: "é😀\u2028", n: [1, -2.5, 1e21], o: { t: true, f: false, z: null } };
    expect(jsonCodec.decode(jsonCodec.encode(value))).toEqual(value);
  });
});

describe("jsonCodec properties", () => {
  it("decode(encode(v)) equals v (with -0 normalised)", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(jsonCodec.decode(jsonCodec.encode(v))).toEqual(normaliseZero(v));
      }),
      { numRuns: 300 },
    );
  });

  it("encoding does not depend on key insertion order", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer(), (v, seed) => {
        expect(jsonCodec.encode(shuffleKeys(v, seed))).toEqual(jsonCodec.encode(v));
      }),
      { numRuns: 300 },
    );
  });
});
