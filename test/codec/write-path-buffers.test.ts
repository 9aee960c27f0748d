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
