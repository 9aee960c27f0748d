/**
 * One key check per thread on the write path (issue 12 item 1): a tier's public entry (src/tier/arguments.ts,
 * shared by inline tiers and engine proxies) applies the shared key rule once; the tier core then applies only the
 * backend's own rule (`checkKey`), once per key written; the backend's public write/batch keeps its own check.
 *
 * How checks are counted: `assertValidKey` (the shared rule) is wrapped by a pass-through spy, so the real function
 * runs and every module that imports it is counted; the backend is a real memory backend whose `checkKey` counts
 * its calls. Refusals are covered by test/tier/argument-order.test.ts and the conformance suites.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("../../src/backend/keys.js", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../src/backend/keys.js")>();
  return { ...real, assertValidKey: vi.fn(real.assertValidKey) };
});

import { assertValidKey } from "../../src/backend/keys.js";
import { memoryBackend } from "../../src/backend/memory.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";

const sharedRule = vi.mocked(assertValidKey);
/** Held: nothing flushes while the counts are taken, so they are the save path's alone. */
const HELD = 3_600_000;

/** A real memory backend with a backend-specific key rule that counts its calls. */
function countingBackend(): StorageBackend & { checks: number } {
  const inner = memoryBackend();
  const b = Object.create(inner) as StorageBackend & { checks: number };
  b.checks = 0;
  b.checkKey = (key: string): void => {
    b.checks++;
    if (key.length > 200) throw new Error("unreachable in these tests");
  };
  return b;
}

// A braced body: mockClear returns the mock, which vitest would take for a cleanup hook and call.
beforeEach(() => {
  sharedRule.mockClear();
});

describe("key checks per write, inline tiers", () => {
  it("kv save: the shared rule once, the backend's rule once", async () => {
    const backend = countingBackend();
    const kv = kvStorage<number>(backend, { debounceMs: HELD });
    sharedRule.mockClear();
    for (let i = 0; i < 10; i++) kv.save(`k${i}`, i);
    expect(sharedRule).toHaveBeenCalledTimes(10);
    expect(backend.checks).toBe(10);
    await kv.close();
  });

  it("snapshot save (record name, keyOf): the shared rule once, the backend's rule once", async () => {
    const backend = countingBackend();
    const byName = snapshotStorage<{ name: string }>(backend, { debounceMs: HELD });
    const byKeyOf = snapshotStorage<{ id: number }>(backend, { name: "s", debounceMs: HELD, keyOf: (r) => `r/${r.id}` });
    sharedRule.mockClear();
    byName.save({ name: "g" });
    byKeyOf.save({ id: 1 });
    expect(sharedRule).toHaveBeenCalledTimes(2);
    expect(backend.checks).toBe(2);
    await Promise.all([byName.close(), byKeyOf.close()]);
  });

  it("appendEntries with keyOf: each bucket's shared rule once, the backend's rule once for its base and once for its segment key", async () => {
    const backend = countingBackend();
    const log = appendLogStorage<{ b: string }>(backend, { name: "log", debounceMs: HELD, keyOf: (e) => e.b });
    sharedRule.mockClear();
    log.appendEntries([{ b: "x" }, { b: "y" }, { b: "x" }]);
    expect(sharedRule).toHaveBeenCalledTimes(2);
    expect(backend.checks).toBe(4);
    await log.close();
  });

  it("appendEntries into the tier's own bucket: its name is checked on the first call only", async () => {
    const backend = countingBackend();
    const log = appendLogStorage<number>(backend, { name: "log", debounceMs: HELD });
    sharedRule.mockClear();
    for (let i = 0; i < 5; i++) log.appendEntries([i]);
    expect(sharedRule).toHaveBeenCalledTimes(1);
    expect(backend.checks).toBe(2);
    await log.close();
  });
});

describe("key checks per write, file backend", () => {
  it("kv save on a real file store: the tier's entry once, the file name encoding once (its length rule reuses it)", async () => {
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { fileBackend } = await import("../../src/backend/file.js");
    const dir = mkdtempSync(join(tmpdir(), "key-checks-file-"));
    try {
      const kv = kvStorage<number>(fileBackend(dir), { debounceMs: HELD });
      sharedRule.mockClear();
      for (let i = 0; i < 10; i++) kv.save(`k${i}`, i);
      expect(sharedRule).toHaveBeenCalledTimes(20);
      await kv.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
