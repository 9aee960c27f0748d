/**
 * Failures across the thread boundary: a failed flush rejects flush(), reaches onError and keeps its data
 * pending for a retry; ignored promises never become unhandled rejections.
 * Real failure: the store directory is swapped for a regular file (ENOTDIR, even for root), then restored.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { CodecError, StorageError } from "../../src/errors.js";
import { breakableDir, expectCoded, rejectionOf, tempRoot, turn, waitFor } from "./fixtures/helpers.js";

const root = tempRoot("errors");
afterAll(() => root.remove());

interface Reported {
  error: Error;
  store: StoreSpec;
  tier: string | undefined;
}

let engine: StorageEngine;
let reported: Reported[];
afterEach(async () => {
  await engine?.close().catch(() => undefined);
});

function open(): StorageEngine {
  reported = [];
  engine = openStorageEngine({ threads: 1, onError: (error, ctx) => reported.push({ error, store: ctx.store, tier: ctx.tier }) });
  return engine;
}

describe("failed flushes", () => {
  it("reject flush(), call onError, keep the data pending, and a retry writes it once", async () => {
    open();
    const target = breakableDir(root);
    const kv = engine.kv<number>(target.store, { name: "kv", debounceMs: 60_000 });
    const log = engine.appendLog<number>(target.store, { name: "log", debounceMs: 60_000 });
    kv.save("before", 0);
    log.appendEntries([0]);
    await Promise.all([kv.flush(), log.flush()]);

    target.breakIt();
    kv.save("during", 1);
    log.appendEntries([1, 2]);
    const kvErr = await rejectionOf(kv.flush());
    const logErr = await rejectionOf(log.flush());
    expectCoded(kvErr, StorageError, "backend-error");
    expectCoded(logErr, StorageError, "backend-error");
    expect((kvErr as StorageError).details.osCode).toBe("ENOTDIR");
    // The OS failure itself crosses the thread boundary as the error's cause, as it is inline.
    const cause = (kvErr as Error).cause as (Error & { code?: string }) | undefined;
    expect(cause).toBeInstanceOf(Error);
    expect(cause!.code).toBe("ENOTDIR");
    expect(cause!.message).toMatch(/ENOTDIR/);
    await waitFor(() => reported.length >= 2); // reports travel on their own channel
    expect(reported.map((r) => (r.error as StorageError).code)).toEqual(["backend-error", "backend-error"]);
    expect(reported.map((r) => r.tier).sort()).toEqual(["kv", "log"]);
    expect(reported[0]!.store).toEqual(target.store);
    const [broken] = await engine.stats();
    expect(broken!.failedFlushes).toBe(2);
    expect(broken!.pendingEntries).toBe(1 + 2);
    expect(broken!.lastError).toMatch(/backend-error/);

    target.repair();
    await Promise.all([kv.flush(), log.flush()]);
    expect(await kv.load("during")).toBe(1);
    expect((await log.loadEntries()).entries).toEqual([0, 1, 2]); // the retry did not duplicate
    const [healed] = await engine.stats();
    expect(healed!.pendingEntries).toBe(0);
  });

  it("a background (sync-through) flush that fails reaches onError and is retried by the next flush()", async () => {
    open();
    const target = breakableDir(root);
    const kv = engine.kv<string>(target.store, { name: "sync" });
    kv.save("first", "a");
    await kv.flush();
    target.breakIt();
    kv.save("second", "b"); // flushes in the worker on its own; nobody awaits it
    expect(await rejectionOf(kv.load("second"))).toBeInstanceOf(StorageError); // ordered after that flush
    await waitFor(() => reported.length >= 1);
    expectCoded(reported[0]!.error, StorageError, "backend-error");
    expect(reported[0]!.tier).toBe("sync");
    target.repair();
    await kv.flush();
    expect(await kv.load("second")).toBe("b");
  });

  it("a value the strict codec rejects: CodecError('encode-failed') reaches flush() and onError", async () => {
    open();
    const kv = engine.kv<unknown>({ kind: "memory", name: root.fresh("codec") }, { name: "strict", debounceMs: 60_000 });
    kv.save("fine", 1);
    kv.save("cyclic-free-but-infinite", Number.POSITIVE_INFINITY);
    const err = await rejectionOf(kv.flush());
    expectCoded(err, CodecError, "encode-failed");
    await waitFor(() => reported.length >= 1);
    expect(reported).toHaveLength(1);
    expectCoded(reported[0]!.error, CodecError, "encode-failed");
    expect(reported[0]!.tier).toBe("strict");
    expect(await kv.load("fine")).toBe(1); // the encodable part of the batch was written
    await kv.flush(); // the unencodable value can never succeed, so it is not kept for a retry
    const [s] = await engine.stats();
    // A refusal is not a failed flush (everything storable was written), but it is the store's last error.
    expect(s!.failedFlushes).toBe(0);
    expect(s!.lastError).toMatch(/^encode-failed: /);
    expect(s!.pendingEntries).toBe(0);
  });
});

describe("ignored promises", () => {
  it("failing flushes, loads, lists, deletes and compactions never become unhandled rejections", async () => {
    open();
    const target = breakableDir(root);
    const kv = engine.kv<number>(target.store, { name: "kv", debounceMs: 60_000 });
    const log = engine.appendLog<number>(target.store, { name: "log", debounceMs: 60_000 });
    const snap = engine.snapshot<{ name: string }>(target.store, { name: "snap", debounceMs: 60_000 });
    kv.save("x", 1);
    await kv.flush();

    const unhandled: Promise<unknown>[] = [];
    const spy = (_reason: unknown, promise: Promise<unknown>): void => {
      unhandled.push(promise);
    };
    // Only our spy listens while the ignored promises settle (the runner's own listener is restored after).
    const previous = process.listeners("unhandledRejection");
    process.removeAllListeners("unhandledRejection");
    process.on("unhandledRejection", spy);
    const fired = new Map<Promise<unknown>, string>();
    try {
      target.breakIt();
      kv.save("y", 2);
      log.appendEntries([1]);
      snap.save({ name: "g" });
      const calls: Record<string, () => Promise<unknown>> = {
        "kv.flush": () => kv.flush(),
        "log.flush": () => log.flush(),
        "snapshot.flush": () => snap.flush(),
        "kv.load": () => kv.load("x"),
        "kv.list": () => kv.list(),
        "kv.delete": () => kv.delete("x"),
        "kv.compact": () => kv.compact(),
        "log.loadEntries": () => log.loadEntries(),
        "log.compact": () => log.compact(),
        "snapshot.load": () => snap.load("g"),
      };
      for (const [label, call] of Object.entries(calls)) fired.set(call(), label);
      // Nothing above is awaited. A later awaited call is answered in the same ordered stream, after them.
      await kv.flush().catch(() => undefined);
      for (let i = 0; i < 5; i++) await turn();
      await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      process.off("unhandledRejection", spy);
      for (const l of previous) process.on("unhandledRejection", l);
      target.repair();
    }
    expect(unhandled.map((p) => fired.get(p) ?? "(another promise)")).toEqual([]);
    const outcomes = await Promise.allSettled(fired.keys());
    expect(outcomes.map((o) => o.status)).toEqual([...fired.keys()].map(() => "rejected")); // they did fail
  });
});
