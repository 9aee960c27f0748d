/**
 * A shutdown that closes the engine first and its tiers after (`await engine.close(); await kv.close()`): the
 * engine's close closes every tier, and a tier's close() is idempotent (docs/api.md BaseStorageTier, StorageEngine
 * close: "a tier's flush() or close() joins the drain and settles with that tier's own outcome"). Once the engine's
 * close had resolved, a tier's close() rejected with StorageError("closed") (review s14 E), failing such shutdowns
 * although every write was stored. It now settles as the tier's part of the drain did, and so does flush() (task
 * 299); writes and the other calls still reject with closed (test/tier/close).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { errorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-tier-close-after-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("a tier closed after its engine", () => {
  it("close() resolves once the engine's close resolved (kv, snapshot, append-log), twice too; writes stored", async () => {
    const store = { kind: "sqlite", path: join(root, "app.db") } as const;
    const engine = openStorageEngine({ threads: 1 });
    const kv = engine.kv<number>(store, { name: "kv", debounceMs: 60_000 });
    const snapshot = engine.snapshot<{ v: number }>(store, { name: "snap", debounceMs: 60_000 });
    const log = engine.appendLog<number>(store, { name: "log", debounceMs: 60_000 });
    kv.save("k", 1);
    snapshot.save({ v: 2 });
    log.appendEntries([3]);
    await engine.close();
    for (const tier of [kv, snapshot, log]) {
      await expect(tier.close()).resolves.toBeUndefined();
      await expect(tier.close()).resolves.toBeUndefined();
    }
    // A flush after the drain settles as the tier's part of it did too (task 299; it rejected closed before).
    for (const tier of [kv, snapshot, log]) await expect(tier.flush()).resolves.toBeUndefined();
    const writeErr = await errorOf(() => kv.save("k", 9));
    expect(writeErr).toBeInstanceOf(StorageError);
    expect((writeErr as StorageError).code).toBe("closed");

    const again = openStorageEngine({ threads: 1 });
    try {
      expect(await again.kv<number>(store, { name: "kv" }).load("k")).toBe(1);
      expect(await again.snapshot<{ v: number }>(store, { name: "snap" }).load()).toEqual({ v: 2 });
      expect((await again.appendLog<number>(store, { name: "log" }).loadEntries()).entries).toEqual([3]);
    } finally {
      await again.close();
    }
  });

  it("a tier whose drain reported a refusal hears that refusal from close(), not closed", async () => {
    const engine = openStorageEngine({ threads: 1 });
    const kv = engine.kv<unknown>({ kind: "memory", name: "refusal" }, { name: "kv", debounceMs: 60_000 });
    kv.save("bad", new Date(0));
    await engine.close().catch(() => undefined);
    const err = await errorOf(() => kv.close());
    expect(err).toBeDefined();
    expect((err as { code?: string }).code).toBe("encode-failed");
  });
});
