/** cloneSize (src/tier/clone-size.ts): the weight of a value a module codec encodes in an engine store's worker. */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { cloneSize } from "../../src/tier/clone-size.js";
import { storableJsonSize } from "../../src/codec/strict.js";
import { UNKNOWN_SIZE } from "../../src/tier/value-check.js";
import { kvStorage } from "../../src/tier/kv.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { countingCodec } from "../support/counting-codec.js";
import { saveUntilRefused } from "../support/save-until-refused.js";

describe("cloneSize", () => {
  it("weighs plain data as the JSON rule does, and big values by their size", () => {
    const v = { a: 1, b: "hello", c: [1, true, null, { d: "x".repeat(10) }] };
    expect(Math.abs(cloneSize(v) - storableJsonSize(v))).toBeLessThanOrEqual(8);
    expect(cloneSize("x".repeat(100_000))).toBeGreaterThanOrEqual(100_000);
    expect(cloneSize({ pad: "y".repeat(100_000) })).toBeGreaterThanOrEqual(100_000);
  });

  it("binary data by its buffer (structured clone copies the whole buffer a view looks into), once per buffer", () => {
    const buf = new ArrayBuffer(64 * 1024);
    expect(cloneSize(new Uint8Array(buf, 0, 10))).toBeGreaterThanOrEqual(64 * 1024);
    expect(cloneSize([new Uint8Array(buf), new DataView(buf), buf])).toBeLessThan(2 * 64 * 1024);
  });

  it("Maps, Sets, class instances and null-prototype objects are walked; shared objects and cycles count once", () => {
    const big = { s: "z".repeat(10_000) };
    expect(cloneSize(new Map([["k", big]]))).toBeGreaterThanOrEqual(10_000);
    expect(cloneSize(new Set([big]))).toBeGreaterThanOrEqual(10_000);
    expect(cloneSize(Object.assign(Object.create(null) as object, { big }))).toBeGreaterThanOrEqual(10_000);
    const shared = Array.from({ length: 200 }, () => big); // more objects than the linear scan takes
    expect(cloneSize(shared)).toBeLessThan(11_000);
    const cyclic: Record<string, unknown> = { big };
    cyclic.self = cyclic;
    expect(cloneSize(cyclic)).toBeLessThan(11_000);
    // Many distinct objects (past the linear scan) all count.
    expect(cloneSize(Array.from({ length: 500 }, (_, i) => ({ i, s: "w".repeat(100) })))).toBeGreaterThan(500 * 100);
  });

  it("a sparse array weighs its entries, not its length (length 2^32 - 1 walked every index: seconds, gigabytes, then V8 aborted)", () => {
    const sparse = (length: number): unknown[] => {
      const a: unknown[] = [];
      a.length = length;
      a[5] = "x";
      a[length - 1] = { y: 1 };
      return a;
    };
    expect(cloneSize({ rows: sparse(10_000_000) })).toBeLessThan(4096); // 50,000,011 before
    expect(cloneSize({ rows: sparse(2 ** 32 - 1) })).toBeLessThan(4096);
    // A few holes in a dense array change nothing much; a named property on an array is not an entry.
    const dense = Array.from({ length: 3000 }, (_, i) => i);
    delete dense[10];
    expect(cloneSize(Object.assign(dense, { note: "z".repeat(10_000) }))).toBeLessThan(30_000);
  });

  it("never throws: a value it cannot read weighs UNKNOWN_SIZE, and a walk a getter starts does not disturb the outer one", () => {
    const hostile = {
      get x(): number {
        throw new Error("no");
      },
    };
    expect(cloneSize(hostile)).toBe(UNKNOWN_SIZE);
    const nesting = {
      get inner(): string {
        expect(cloneSize({ t: "q".repeat(50) })).toBeGreaterThan(50);
        return "r".repeat(1000);
      },
      other: "s".repeat(1000),
    };
    expect(cloneSize(nesting)).toBeGreaterThan(2000);
    expect(cloneSize(1n << 4096n)).toBeGreaterThan(500);
  });
});

describe("inline tiers with a codec that has no value rule weigh values by the walk", () => {
  it("a burst of 100 KiB kv saves through a custom codec is refused near the bound (each weighed 1 KiB before)", async () => {
    const bound = 256 * 1024;
    const kv = kvStorage<{ pad: string }>(memoryBackend(), { codec: countingCodec(), debounceMs: 60_000, maxPendingBytes: bound });
    const value = { pad: "p".repeat(100 * 1024) };
    const { accepted, refused } = saveUntilRefused((i) => kv.save(`k${i}`, value), 400);
    expect((refused as StorageError).code).toBe("backpressure");
    expect(accepted * 100 * 1024).toBeLessThanOrEqual(bound); // 2; before: 255
    await kv.flush();
    expect((await kv.load("k0"))?.pad.length).toBe(100 * 1024);
    await kv.close();
  });

  it("sparse arrays through a custom codec are weighed by their entries: two saves under a 64 KiB bound both taken", async () => {
    const kv = kvStorage<unknown[]>(memoryBackend(), { codec: countingCodec(), debounceMs: 60_000, maxPendingBytes: 64 * 1024 });
    const rows: unknown[] = [];
    rows.length = 1_000_000;
    rows[0] = 1;
    kv.save("a", rows);
    expect(() => kv.save("b", rows)).not.toThrow(); // before: StorageError backpressure (the first weighed ~5 MB)
    kv.rollback();
    await kv.close();
  });
});
