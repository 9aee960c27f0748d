/** Buffers of the tier write path: pooled bytes carved from slabs, and the writer's in-place move of the WAL seal. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { pooledBytes } from "../../src/codec/bytes.js";
import { withCanonicalWriter } from "../../src/codec/canonical-writer.js";

describe("pooledBytes slabs", () => {
  it("never hands out overlapping bytes, across slab boundaries and for large values", () => {
    const views: Uint8Array[] = [];
    // ~1.3 MiB in all: several slabs, with sizes that leave odd remainders, plus values too large to pool.
    for (let i = 0; i < 3000; i++) views.push(pooledBytes(i % 50 === 0 ? 40_000 + i : 1 + ((i * 37) % 700)));
    views.forEach((v, i) => v.fill(i % 251));
    views.forEach((v, i) => expect(v.every((b) => b === i % 251)).toBe(true));
    expect(views.every((v, i) => v.byteLength === (i % 50 === 0 ? 40_000 + i : 1 + ((i * 37) % 700)))).toBe(true);
  });
});

describe("CanonicalWriter.moveBack", () => {
  it("turns [head][body][seal] into [head][seal][body], also when the move grows the buffer", () => {
    const part = (max: number) => fc.uint8Array({ maxLength: max });
    fc.assert(
      fc.property(part(300), part(20_000), part(300), (head, body, seal) => {
        const out = withCanonicalWriter((w) => {
          for (const p of [head, body, seal]) w.ascii(String.fromCharCode(...p.map((b) => b & 0x7f)));
          w.moveBack(head.length, head.length + body.length);
          return [...w.view()];
        });
        const ascii = (p: Uint8Array) => [...p].map((b) => b & 0x7f);
        expect(out).toEqual([...ascii(head), ...ascii(seal), ...ascii(body)]);
      }),
      { numRuns: 200 },
    );
  });
});

describe("CanonicalWriter integers", () => {
  const written = (n: number): string | undefined => withCanonicalWriter((w) => (w.value(n, "reject") ? w.text() : undefined));

  it("writes safe integers exactly as Number::toString does, without making the string", () => {
    const edges = [0, -0, 1, -1, 9, 10, 99, 100, 2 ** 31, -(2 ** 31), 2 ** 32 + 1, 1e15, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER];
    for (const n of edges) expect(written(n)).toBe(String(n));
    fc.assert(
      fc.property(fc.maxSafeInteger(), (n) => {
        expect(written(n)).toBe(String(n));
      }),
      { numRuns: 2000 },
    );
  });

  it("leaves integers beyond 2^53 and fractions to Number::toString", () => {
    for (const n of [2 ** 53, 2 ** 60, 1.7e18, -1.7e18, 1e21, 0.5, -2.25, 1 / 3]) expect(written(n)).toBe(String(n));
  });
});
