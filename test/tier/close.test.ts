/**
 * Close semantics (docs/design.md §3.16, issue 10 item 7): once close() begins, a tier takes nothing more. Every write
 * throws StorageError('closed') synchronously (never accepted and silently dropped), every promise-returning
 * call rejects with it, and a flush() called while the close drains joins that drain. The same for a tier of an
 * engine whose close() began. Every backend, inline and through the engine.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { kvStorage } from "../../src/tier/kv.js";
import { wrapBackend } from "../support/test-backend.js";
import { inlineFactory, workerFactory, type BackendKind, type HarnessFactory, type TierHarness } from "../support/tier-harness.js";
import { errorOf, syncErrorOf } from "../support/wait.js";

function expectClosed(err: unknown, what: string): void {
  expect(err, `${what}: expected StorageError(closed)`).toBeInstanceOf(StorageError);
  expect((err as StorageError).code, what).toBe("closed");
}

const HELD = 60_000;

const factories: HarnessFactory[] = (["memory", "file", "sqlite"] as const satisfies readonly BackendKind[]).flatMap((kind) => [
  inlineFactory(kind),
  workerFactory(kind),
]);

for (const factory of factories) {
  describe(`closing a tier: ${factory.name}`, () => {
    const live: TierHarness[] = [];
    const open = async (): Promise<TierHarness> => {
      const h = await factory.open();
      live.push(h);
      return h;
    };
    afterEach(async () => {
      for (const h of live.splice(0)) await h.close();
    });
    afterAll(() => factory.cleanup());

    it("writes after close() began throw closed at once; what was saved before is stored; nothing is reported", async () => {
      const h = await open();
      const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
      const s = h.snapshot<{ v: number }>({ name: "snap", debounceMs: HELD });
      const log = h.appendLog<number>({ name: "log", debounceMs: HELD });
      kv.save("before", 1);
      s.save({ v: 1 });
      log.appendEntries([1]);
      const closing = [kv.close(), s.close(), log.close()];
      expectClosed(syncErrorOf(() => kv.save("after", 2)), "kv.save");
      expectClosed(syncErrorOf(() => s.save({ v: 2 })), "snapshot.save");
      expectClosed(syncErrorOf(() => log.appendEntries([2])), "appendEntries");
      expectClosed(syncErrorOf(() => kv.rollback()), "kv.rollback");
      expectClosed(await errorOf(() => kv.delete("before")), "kv.delete");
      expectClosed(await errorOf(() => log.compact()), "log.compact");
      await Promise.all(closing);

      const kv2 = h.kv<number>({ name: "kv" });
      expect(await kv2.load("before")).toBe(1);
      expect(await kv2.load("after")).toBeUndefined();
      expect(await h.snapshot<{ v: number }>({ name: "snap" }).load("snap")).toEqual({ v: 1 });
      expect((await h.appendLog<number>({ name: "log" }).loadEntries({ keyFilter: "log" })).entries).toEqual([1]);
      expect(h.errors).toEqual([]);
    });

    it("a flush() called while close() drains joins it; on a closed tier flush, compact, rollback and delete fail with closed", async () => {
      const h = await open();
      const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
      const s = h.snapshot<{ v: number }>({ name: "snap", debounceMs: HELD });
      kv.save("k", 1);
      const closing = kv.close();
      await kv.flush(); // resolves only once the close made "k" durable
      expect(await h.kv<number>({ name: "reader" }).load("k")).toBe(1);
      await closing;
      await s.close();

      for (const tier of [kv, s]) {
        expectClosed(await errorOf(() => tier.flush()), "flush");
        expectClosed(await errorOf(() => tier.compact()), "compact");
        expectClosed(syncErrorOf(() => tier.rollback()), "rollback");
      }
      expectClosed(await errorOf(() => kv.delete("k")), "delete");
      await kv.close(); // idempotent
    });
  });
}

describe("close racing writes in flight (inline tier over an async backend)", () => {
  it("close() waits for the flush in flight and for what was pending; a save meanwhile throws closed", async () => {
    const backend = wrapBackend(memoryBackend(), { async: true });
    const errors: Error[] = [];
    const kv = kvStorage<number>(backend, { name: "kv", onError: (e) => errors.push(e) });
    const release = backend.holdWrites();
    kv.save("a", 1); // sync-through: its flush waits at the gate
    const closing = kv.close();
    expectClosed(syncErrorOf(() => kv.save("b", 2)), "save while closing");
    const joined = kv.flush();
    release();
    await Promise.all([closing, joined]);
    expect(await kvStorage<number>(backend).load("a")).toBe(1);
    expect(await kvStorage<number>(backend).load("b")).toBeUndefined();
    expect(errors).toEqual([]);
  });

  it("a close whose write fails rejects and leaves the tier open with its data pending; a retry closes it", async () => {
    const backend = wrapBackend(memoryBackend());
    const kv = kvStorage<number>(backend, { name: "kv", debounceMs: HELD, onError: () => undefined });
    kv.save("a", 1);
    backend.failNext(1);
    expect((await errorOf(() => kv.close())) as StorageError).toMatchObject({ code: "backend-error" });
    kv.save("b", 2); // still open
    await kv.close();
    expect(await kvStorage<number>(backend).load("a")).toBe(1);
    expect(await kvStorage<number>(backend).load("b")).toBe(2);
  });
});

describe("closing an engine", () => {
  let engine: StorageEngine | undefined;
  afterEach(async () => {
    await engine?.close().catch(() => undefined);
    engine = undefined;
  });

  it("after engine.close() began, writes throw closed at once, a flush joins the drain, nothing is dropped silently", async () => {
    const errors: Error[] = [];
    engine = openStorageEngine({ threads: 1, onError: (e) => errors.push(e) });
    const store: StoreSpec = { kind: "memory", name: `engine-close-${process.pid}` };
    const kv = engine.kv<number>(store, { name: "kv", debounceMs: HELD });
    const s = engine.snapshot<{ v: number }>(store, { name: "snap", debounceMs: HELD });
    const log = engine.appendLog<number>(store, { name: "log", debounceMs: HELD });
    kv.save("before", 1);
    const closing = engine.close();
    expectClosed(syncErrorOf(() => kv.save("after", 2)), "kv.save");
    expectClosed(syncErrorOf(() => s.save({ v: 2 })), "snapshot.save");
    expectClosed(syncErrorOf(() => log.appendEntries([2])), "appendEntries");
    expectClosed(syncErrorOf(() => kv.rollback()), "rollback");
    expectClosed(await errorOf(() => kv.delete("before")), "delete");
    expectClosed(await errorOf(() => kv.load("before")), "load");
    await kv.flush(); // joins the engine's drain
    await closing;
    // After the drain: its outcome again (task 299: it rejected closed, as if the drained write were not stored).
    await kv.flush();
    expectClosed(syncErrorOf(() => kv.save("later", 3)), "kv.save after the engine closed");
    expect(errors).toEqual([]);
  });

  it("what was saved before engine.close() is durable once it resolves (file store, read by a fresh engine)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "grf-engine-close-"));
    try {
      const store: StoreSpec = { kind: "file", dir: join(dir, "store") };
      const first = openStorageEngine({ threads: 1 });
      const kv = first.kv<number>(store, { name: "kv", debounceMs: HELD });
      kv.save("before", 1);
      const closing = first.close();
      expectClosed(syncErrorOf(() => kv.save("after", 2)), "save during close");
      await closing;
      engine = openStorageEngine({ threads: 1 });
      const again = engine.kv<number>(store, { name: "kv" });
      expect(await again.load("before")).toBe(1);
      expect(await again.list()).toEqual(["before"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
