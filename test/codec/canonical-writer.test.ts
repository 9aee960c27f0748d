import { describe, it, expect } from "vitest";
import fc from "fast-check";
import canonicalize from "canonicalize";
import { bigintJsonCodec, canonicalJson, jsonCodec } from "../../src/codec/index.js";
import { withCanonicalWriter } from "../../src/codec/canonical-writer.js";
import { referenceCanonicalText } from "../../src/codec/json.js";
import { prepareJsonValue } from "../../src/codec/strict.js";
import { CodecError } from "../../src/errors.js";
import { define, jsonData, jsonKey, jsonNumber, withUnencodable } from "./json-arbitraries.js";

const RUNS = { numRuns: 500 };

/** The library on its own, after the strict walk: the reference the fast path must match byte for byte. */
const reference = (value: unknown, bigints: "reject" | "tag" = "reject"): string =>
  canonicalize(prepareJsonValue(value, bigints)) as string;

/** What the fast path alone writes (as text), or undefined when it leaves the value to the reference path. */
const fastCanonicalJson = (value: unknown, bigints: "reject" | "tag"): string | undefined =>
  withCanonicalWriter((w) => (w.value(value, bigints) ? w.text() : undefined));

function thrown(fn: () => unknown): CodecError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CodecError);
    return err as CodecError;
  }
  throw new Error("expected a CodecError, nothing was thrown");
}

describe("CanonicalWriter.value equals canonicalize (RFC 8785)", () => {
  it("answers for all plain JSON data, with the reference's bytes", () => {
    fc.assert(
      fc.property(jsonData, (value) => {
        const fast = fastCanonicalJson(value, "reject");
        expect(fast).toBe(reference(value));
        expect(canonicalJson(value)).toBe(fast);
        expect(jsonCodec.encode(value)).toEqual(new TextEncoder().encode(fast));
      }),
      RUNS,
    );
  });

  it("matches on fc.jsonValue with any code points in keys and strings", () => {
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: "binary" }), (value) => {
        expect(fastCanonicalJson(value, "reject")).toBe(reference(value));
      }),
      RUNS,
    );
  });

  it("matches when every object's keys arrive in a shuffled order", () => {
    fc.assert(
      fc.property(fc.dictionary(jsonKey, jsonData, { minKeys: 2, maxKeys: 40 }), fc.integer(), (obj, seed) => {
        const keys = Object.keys(obj);
        let state = seed >>> 0;
        for (let i = keys.length - 1; i > 0; i--) {
          state = (Math.imul(state, 1103515245) + 12345) >>> 0;
          const j = state % (i + 1);
          [keys[i], keys[j]] = [keys[j] as string, keys[i] as string];
        }
        const shuffled: Record<string, unknown> = {};
        for (const k of keys) define(shuffled, k, obj[k]);
        expect(fastCanonicalJson(shuffled, "reject")).toBe(reference(obj));
      }),
      RUNS,
    );
  });

  it.each<[string, unknown, string]>([
    ["-0 anywhere", { a: -0, b: [-0] }, '{"a":0,"b":[0]}'],
    ["exponent forms", [1e21, 1e-7, 1e-6, 1e20, 5e-324], "[1e+21,1e-7,0.000001,100000000000000000000,5e-324]"],
    ["integer-like keys sort as strings", { "10": 1, "9": 2, "1": 3, a: 4 }, '{"1":3,"10":1,"9":2,"a":4}'],
    ["keys sort by UTF-16 code units", { "\uFF61": 1, "😀": 2, é: 3, z: 4 }, '{"z":4,"é":3,"😀":2,"｡":1}'],
    ["nested arrays", [[[]], [[1, [2]]], []], "[[[]],[[1,[2]]],[]]"],
    ["surrogate pairs stay raw", "😀x", '"😀x"'],
    ["escapes in a long string", `${"x".repeat(40)}\u0001"\\\n`, `"${"x".repeat(40)}\\u0001\\"\\\\\\n"`],
    ["an own __proto__ key", JSON.parse('{"__proto__":{"b":1},"a":2}') as unknown, '{"__proto__":{"b":1},"a":2}'],
    ["null-prototype objects", Object.assign(Object.create(null) as object, { b: 1, a: [] }), '{"a":[],"b":1}'],
    ["empty containers", { o: {}, a: [] }, '{"a":[],"o":{}}'],
  ])("%s", (_name, value, expected) => {
    expect(fastCanonicalJson(value, "reject")).toBe(expected);
    expect(reference(value)).toBe(expected);
  });

  it("sorts objects with more keys than the insertion sort takes", () => {
    const big = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${39 - i}`, i]));
    const text = fastCanonicalJson(big, "reject");
    expect(text).toBe(reference(big));
    expect(text?.startsWith('{"k0":39,"k1":38,"k10":29,')).toBe(true);
  });

  it("stays exact across many distinct and long keys (the key cache is bounded and cleared)", () => {
    const wide: Record<string, number> = {};
    for (let i = 0; i < 3000; i++) wide[`key-${(i * 7919) % 3000}`] = i;
    const long = { [`${"k".repeat(100)}b`]: 1, [`${"k".repeat(100)}a`]: 2 };
    for (let round = 0; round < 2; round++) {
      expect(fastCanonicalJson(wide, "reject")).toBe(reference(wide));
      expect(fastCanonicalJson(long, "reject")).toBe(reference(long));
    }
  });

  it("writes objects with more keys than the key cache holds (a baseline's nodes) byte for byte as the reference", () => {
    // 1,100 filler keys push the object past the cache's 1,024 entries; the drawn keys (escapes, astral, integer-like,
    // undefined values) land among them in any order.
    const filler = Object.fromEntries(Array.from({ length: 1100 }, (_, i) => [`n${(i * 7919) % 1100}`, { v: i, s: "x" }]));
    fc.assert(
      fc.property(fc.dictionary(jsonKey, fc.option(jsonData, { nil: undefined }), { maxKeys: 30 }), (drawn) => {
        const wide = { ...filler, ...drawn };
        expect(fastCanonicalJson(wide, "reject")).toBe(reference(wide));
      }),
      { numRuns: 100 },
    );
  });

  it("refuses a wide object holding a lone-surrogate key, whether or not its value is undefined", () => {
    const filler = Object.fromEntries(Array.from({ length: 1100 }, (_, i) => [`n${i}`, i]));
    for (const value of [1, undefined]) {
      const wide = { ...filler, "bad\uD800": value };
      expect(fastCanonicalJson(wide, "reject")).toBeUndefined();
      expect(thrown(() => canonicalJson(wide)).code).toBe(thrown(() => reference(wide)).code);
    }
  });

  it("leaves values deeper than its limit to the reference path, which still encodes them", () => {
    let deep: unknown = "leaf";
    for (let i = 0; i < 100; i++) deep = i % 2 === 0 ? [deep] : { d: deep };
    expect(fastCanonicalJson(deep, "reject")).toBeUndefined();
    expect(canonicalJson(deep)).toBe(reference(deep));
  });
});

describe("CanonicalWriter.value never answers for what the strict codec refuses", () => {
  it("returns undefined, and canonicalJson throws the reference path's located error", () => {
    fc.assert(
      fc.property(withUnencodable, (value) => {
        expect(fastCanonicalJson(value, "reject")).toBeUndefined();
        const fromCodec = thrown(() => canonicalJson(value));
        const fromReference = thrown(() => referenceCanonicalText(value, "reject", "$"));
        expect(fromCodec.code).toBe("encode-failed");
        expect(fromCodec.message).toBe(fromReference.message);
        expect(fromCodec.details).toEqual(fromReference.details);
      }),
      RUNS,
    );
  });

  it("returns undefined for a cycle and for a throwing getter instead of throwing", () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = { back: cyclic };
    const getter = Object.defineProperty({}, "x", {
      enumerable: true,
      get(): never {
        throw new Error("boom");
      },
    });
    expect(fastCanonicalJson(cyclic, "reject")).toBeUndefined();
    expect(fastCanonicalJson({ g: getter }, "reject")).toBeUndefined();
    expect(thrown(() => canonicalJson({ g: getter })).details.path).toBe("$.g.x");
  });
});

describe("CanonicalWriter.value in bigint tag mode", () => {
  const withBigints = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small" },
      fc.bigInt(),
      jsonNumber,
      fc.string(),
      fc.array(tie("value"), { maxLength: 4 }),
      fc.dictionary(jsonKey, tie("value"), { maxKeys: 4 }),
    ),
  })).value;

  it("tags bigints exactly as the walk + canonicalize do", () => {
    fc.assert(
      fc.property(withBigints, (value) => {
        const fast = fastCanonicalJson(value, "tag");
        expect(fast).toBe(reference(value, "tag"));
        expect(new TextDecoder().decode(bigintJsonCodec.encode(value))).toBe(fast);
      }),
      RUNS,
    );
  });
});

describe("strings", () => {
  const anyUnits = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 70 });
  const nearSurrogates = fc.string({ unit: fc.integer({ min: 0xd7fe, max: 0xe001 }).map((c) => String.fromCharCode(c)) });

  it("are written as JSON.stringify writes well-formed strings, and refused with a lone surrogate", () => {
    fc.assert(
      fc.property(fc.oneof(anyUnits, nearSurrogates, fc.string({ unit: "binary" })), (s) => {
        const wellFormed = (s as string & { isWellFormed(): boolean }).isWellFormed();
        expect(fastCanonicalJson(s, "reject")).toBe(wellFormed ? JSON.stringify(s) : undefined);
        expect(fastCanonicalJson({ [s]: 1 }, "reject")).toBe(wellFormed ? `{${JSON.stringify(s)}:1}` : undefined);
      }),
      RUNS,
    );
  });
});

describe("withCanonicalWriter", () => {
  it("gives a nested call (a getter that encodes) its own writer, so outputs never interleave", () => {
    const inner = { z: [1, 2], a: "inner" };
    const outer = {
      b: 2,
      get a(): string {
        return new TextDecoder().decode(jsonCodec.encode(inner));
      },
    };
    const expected = reference(outer);
    expect(new TextDecoder().decode(jsonCodec.encode(outer))).toBe(expected);
    expect(canonicalJson(outer)).toBe(expected);
  });

  it("grows for long non-ASCII strings (up to 3 bytes per UTF-16 unit)", () => {
    for (const unit of ["é", "€", "😀", "\u0001", "a"]) {
      const value = { pad: "x".repeat(16_000), s: unit.repeat(20_000), t: [unit.repeat(9_000)] };
      expect(fastCanonicalJson(value, "reject")).toBe(reference(value));
    }
  });

  it("hands out independent copies, and stays exact after a value larger than its buffer", () => {
    const big = { s: "x".repeat(3 * 1024 * 1024), n: Array.from({ length: 5000 }, (_, i) => i) };
    const first = jsonCodec.encode({ a: 1 });
    const large = jsonCodec.encode(big);
    const after = jsonCodec.encode({ b: [true] });
    expect(new TextDecoder().decode(first)).toBe('{"a":1}');
    expect(new TextDecoder().decode(large)).toBe(reference(big));
    expect(new TextDecoder().decode(after)).toBe('{"b":[true]}');
    expect(first.buffer).not.toBe(after.buffer);
    expect(first.byteOffset).toBe(0);
    expect(first.buffer.byteLength).toBe(first.byteLength);
  });
});

describe("CanonicalWriter bytes in", () => {
  it("raw appends parts of every length whole and in order (short ones by loop, long ones by set)", () => {
    const parts = Array.from({ length: 80 }, (_, n) => Uint8Array.from({ length: n }, (_, i) => (n * 31 + i) & 0xff));
    const written = withCanonicalWriter((w) => {
      for (const p of parts) w.raw(p);
      return Buffer.from(w.view());
    });
    expect(written.equals(Buffer.concat(parts))).toBe(true);
  });

  it("hexOfLatin1 writes the lowercase hex of every char code 0-255, as a digest in Node's binary form gives them", () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const hex = withCanonicalWriter((w) => {
      w.ascii("x");
      w.hexOfLatin1(all.toString("latin1"));
      return w.text();
    });
    expect(hex).toBe("x" + all.toString("hex"));
  });
});
