/**
 * Pooled bytes on the tier write path: the pooled twin of a built-in codec gives exactly the bytes and the
 * errors of its `encode`; codec results handed to callers still own their buffer; `ownedBytes` makes a view
 * safe to transfer.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ownedBytes, pooledBytes, transientEncoder } from "../../src/codec/bytes.js";
import { bigintJsonCodec, jsonCodec, type Codec } from "../../src/codec/index.js";
import { CodecError } from "../../src/errors.js";
import { jsonData, withUnencodable } from "./json-arbitraries.js";

function outcome(encode: () => Uint8Array): { bytes?: number[]; code?: string; path?: unknown } {
  try {
    return { bytes: [...encode()] };
  } catch (err) {
    expect(err).toBeInstanceOf(CodecError);
    const e = err as CodecError;
    return { code: e.code, path: (e.details as { path?: unknown }).path };
  }
}

describe("pooledBytes / ownedBytes", () => {
  it("pooledBytes gives a view of exactly the requested length; small ones share a larger buffer", () => {
    const a = pooledBytes(100);
    const b = pooledBytes(100);
    expect(a).toBeInstanceOf(Uint8Array);
    expect(a.byteLength).toBe(100);
    a.fill(1);
    b.fill(2);
    expect([...a].every((x) => x === 1)).toBe(true);
    expect(a.buffer.byteLength).toBeGreaterThan(100);
  });

  it("ownedBytes keeps a whole-buffer array and copies a view, so a transfer moves nothing else", () => {
    const whole = new Uint8Array([1, 2, 3]);
    expect(ownedBytes(whole)).toBe(whole);
    const view = pooledBytes(3);
    view.set([4, 5, 6]);
    const owned = ownedBytes(view);
    expect(owned).not.toBe(view);
    expect([...owned]).toEqual([4, 5, 6]);
    expect(owned.byteOffset).toBe(0);
    expect(owned.buffer.byteLength).toBe(3);
  });
});

describe("transientEncoder", () => {
  const builtins: Array<[string, Codec<unknown>]> = [
    ["json", jsonCodec],
    ["json-bigint", bigintJsonCodec],
  ];

  it.each(builtins)("%s: same bytes as encode() for any plain value (property)", (_name, codec) => {
    const pooled = transientEncoder(codec);
    fc.assert(
      fc.property(fc.oneof(jsonData, fc.bigInt().map((n) => ({ n }))), (v) => {
        expect(outcome(() => pooled(v))).toEqual(outcome(() => codec.encode(v)));
      }),
      { numRuns: 300 },
    );
  });

  it.each(builtins)("%s: the same CodecError as encode() for unencodable values (property)", (_name, codec) => {
    const pooled = transientEncoder(codec);
    fc.assert(
      fc.property(withUnencodable, (v) => {
        expect(outcome(() => pooled(v))).toEqual(outcome(() => codec.encode(v)));
      }),
      { numRuns: 200 },
    );
  });

  it("encode() results still own their buffer (callers may transfer them)", () => {
    const bytes = jsonCodec.encode({ a: 1 });
    expect(bytes.byteOffset).toBe(0);
    expect(bytes.buffer.byteLength).toBe(bytes.byteLength);
  });

  it("a codec without a pooled twin is called as is", () => {
    const calls: unknown[] = [];
    const custom: Codec<number> = {
      name: "custom",
      version: 1,
      encode: (v) => (calls.push(v), new Uint8Array([v])),
      decode: (b) => b[0] ?? 0,
    };
    expect([...transientEncoder(custom)(7)]).toEqual([7]);
    expect(calls).toEqual([7]);
  });
});
