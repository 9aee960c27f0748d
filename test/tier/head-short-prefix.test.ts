/**
 * loadHead on a value shorter than its prefix read: a head the parser does not vouch for is decoded from `read`'s
 * bytes, never from the prefix. A backend wrapper that transforms values in read/write (here: every byte XOR 1, as
 * compression or encryption would) but forwards readPrefix made loadHead throw a CodecError where load worked
 * (review finding; values of 4 KiB or more already fell back to the whole read).
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import type { BatchOp, StorageBackend } from "../../src/backend/types.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";

const flip = (b: Uint8Array): Uint8Array => b.map((x) => x ^ 1);

function transforming(inner: StorageBackend): StorageBackend {
  return Object.assign(Object.create(inner) as StorageBackend, {
    read: (key: string) => {
      const b = inner.read(key) as Uint8Array | undefined;
      return b === undefined ? undefined : flip(b);
    },
    write: (key: string, bytes: Uint8Array) => inner.write(key, flip(bytes)),
    writeBatch: (ops: readonly BatchOp[]) =>
      inner.writeBatch?.(ops.map((op) => (op.op === "put" ? { ...op, value: flip(op.value) } : op))),
  });
}

describe("loadHead of a short value", () => {
  it("decodes the whole value read, not the prefix, when the prefix's head is not vouched for", async () => {
    const backend = transforming(memoryBackend());
    expect(backend.supports.readPrefix).toBe(true);
    const tier = snapshotStorage<{ name: string; seq: number; snapshot: object }>(backend, { debounceMs: 0 });
    tier.save({ name: "g", seq: 7, snapshot: { a: 1 } });
    await tier.flush();
    expect(await tier.load()).toEqual({ name: "g", seq: 7, snapshot: { a: 1 } });
    expect(await tier.loadHead?.()).toEqual({ name: "g", seq: 7 });
    await tier.close();
  });
});
