/**
 * The one value rule (docs/design.md §3.2, §3.16): `assertStorableJson` refuses exactly what the codecs refuse,
 * with the same located CodecError, without encoding; deep values stop at MAX_JSON_DEPTH with a typed error
 * instead of a stack overflow; Proxies are refused (structured clone cannot carry them, so the engine could not
 * store them either).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_JSON_DEPTH, assertStorableJson, bigintJsonCodec, jsonCodec } from "../../src/codec/index.js";
import { withCanonicalWriter } from "../../src/codec/canonical-writer.js";
import { CodecError } from "../../src/errors.js";
import { jsonData, outcome, withUnencodable } from "./json-arbitraries.js";

const RUNS = { numRuns: 500 };

function refusal(fn: () => unknown): CodecError {
  const r = outcome(fn);
  if (r.ok) throw new Error("expected a CodecError, nothing was thrown");
  return new CodecError("encode-failed", r.message, r.details as Record<string, unknown>);
}

/** `levels` nested containers (arrays and objects alternating) around a leaf. */
function nested(levels: number, kind: "array" | "object" | "mixed" = "mixed"): unknown {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) {
    const asArray = kind === "array" || (kind === "mixed" && i % 2 === 0);
    v = asArray ? [v] : { d: v };
  }
  return v;
}

const values = fc.oneof(jsonData, withUnencodable, fc.bigInt().map((n) => ({ n })));

describe("assertStorableJson", () => {
  it("refuses exactly what jsonCodec.encode refuses, with the same message and path", () => {
    fc.assert(
      fc.property(values, (value) => {
        expect(outcome(() => assertStorableJson(value))).toEqual(outcome(() => jsonCodec.encode(value)));
      }),
      RUNS,
    );
  });

  it("in bigint tag mode refuses exactly what bigintJsonCodec.encode refuses", () => {
    fc.assert(
      fc.property(values, (value) => {
        expect(outcome(() => assertStorableJson(value, "tag"))).toEqual(outcome(() => bigintJsonCodec.encode(value)));
      }),
      RUNS,
    );
  });

  it("names the root it is given in the path", () => {
    expect(refusal(() => assertStorableJson({ a: [1, Number.NaN] }, "reject", "$.change")).details.path).toBe("$.change.a[1]");
  });
});

describe(`nesting deeper than MAX_JSON_DEPTH (${MAX_JSON_DEPTH})`, () => {
  it.each(["array", "object", "mixed"] as const)("%s: MAX_JSON_DEPTH levels are stored and read back", (kind) => {
    const v = nested(MAX_JSON_DEPTH, kind);
    assertStorableJson(v);
    expect(jsonCodec.decode(jsonCodec.encode(v))).toEqual(v);
    expect(bigintJsonCodec.decode(bigintJsonCodec.encode(v))).toEqual(v);
  });

  it.each(["array", "object", "mixed"] as const)("%s: one level more is refused with its path, as is 4,000 deep", (kind) => {
    for (const levels of [MAX_JSON_DEPTH + 1, 4_000]) {
      const v = nested(levels, kind);
      const err = refusal(() => jsonCodec.encode(v));
      expect(err.message).toMatch(/nested deeper than 1000 levels/);
      const path = err.details.path as string;
      expect(path.startsWith("$")).toBe(true);
      expect((path.match(/\[0\]|\.d/g) ?? []).length).toBe(MAX_JSON_DEPTH); // the container one level too deep
      expect(err.message.length).toBeLessThan(400); // the message shows the path's ends; details.path has it whole
      expect(err.message).toContain(path.slice(-80));
      expect(outcome(() => assertStorableJson(v))).toEqual(outcome(() => jsonCodec.encode(v)));
    }
  });
});

describe("exotic values get one typed answer", () => {
  class Point {
    constructor(readonly x: number) {}
  }
  const throwing = Object.defineProperty({}, "x", {
    enumerable: true,
    get(): never {
      throw new Error("boom");
    },
  });
  const cases: Array<[string, () => unknown, string]> = [
    ["a nested class instance", () => ({ p: new Point(1) }), "$.p"],
    ["a Proxy of a plain object", () => ({ p: new Proxy({ a: 1 }, {}) }), "$.p"],
    ["a Proxy of an array", () => [new Proxy([1], {})], "$[0]"],
    ["a revoked Proxy", () => ({ p: revoked() }), "$.p"],
    ["a getter that throws", () => ({ g: throwing }), "$.g.x"],
  ];

  it.each(cases)("%s: CodecError('encode-failed') at its path, from the codec and from the check alike", (_name, make, path) => {
    const value = make();
    expect(refusal(() => jsonCodec.encode(value)).details.path).toBe(path);
    expect(outcome(() => assertStorableJson(value))).toEqual(outcome(() => jsonCodec.encode(value)));
  });

  it("the fast writer leaves a Proxy to the reference path (which refuses it)", () => {
    const answered = withCanonicalWriter((w) => w.value({ p: new Proxy({ a: 1 }, {}) }, "reject"));
    expect(answered).toBe(false);
  });
});

function revoked(): object {
  const r = Proxy.revocable({}, {});
  r.revoke();
  return r.proxy;
}
