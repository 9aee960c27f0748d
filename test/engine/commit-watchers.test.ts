/**
 * Commit watchers are generic (src/engine/commit-watchers.ts): a watcher a worker entry registers sees every batch
 * its store's actor commits (keys and byte sizes) and the configs tiers send it, and the jobs it asks for run in the
 * actor's mailbox, their failures reaching onError. The test entry (fixtures/watcher-worker.mjs) registers a
 * recorder the engine knows nothing about.
 */
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngineForTests } from "../../src/engine/engine.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { jsonCodec } from "../../src/codec/json.js";
import { StorageError } from "../../src/errors.js";
import { kvStorage } from "../../src/tier/kv.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { until } from "../support/wait.js";
import { tempRoot } from "./fixtures/helpers.js";

const WATCHER_WORKER = fileURLToPath(new URL("./fixtures/watcher-worker.mjs", import.meta.url));
const root = tempRoot("commit-watchers");
afterAll(() => root.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

function open(onError: (err: Error, ctx: { tier?: string }) => void = () => undefined): StorageEngine {
  engine = openStorageEngineForTests({ threads: 1, onError }, WATCHER_WORKER).engine;
  return engine;
}

const size = (value: unknown): number => jsonCodec.encode(value).byteLength;

describe("commit watchers registered by a worker entry", () => {
  it("see each committed batch with its keys and byte sizes, take configs from tiers, and run jobs", async () => {
    const e = open();
    const kv = e.kv<unknown>({ kind: "sqlite", path: root.fresh("watched.db") }, { name: "kv" });
    expect(kv.configureCommitWatcher?.("test-recorder", "a", { prefix: "a/" })).toBe(true);
    kv.save("a/1", "x");
    kv.save("b/1", "yy");
    await kv.flush();
    kv.save("b/2", "not watched");
    await kv.flush();
    kv.save("a/2", { z: 3 });
    await kv.flush();
    // Each job was queued in the actor's mailbox when its batch committed, so before these reads.
    const first = (await kv.load("seen/1")) as Array<{ key: string; bytes: number }>;
    expect([...first].sort((p, q) => p.key.localeCompare(q.key))).toEqual([
      { key: "a/1", bytes: size("x") },
      { key: "b/1", bytes: size("yy") },
    ]);
    expect(await kv.load("seen/2")).toEqual([{ key: "a/2", bytes: size({ z: 3 }) }]);
    expect(await kv.list("seen/")).toEqual(["seen/1", "seen/2"]);
  });

  it("a later config under the same key replaces the earlier one", async () => {
    const e = open();
    const kv = e.kv<unknown>({ kind: "sqlite", path: root.fresh("replaced.db") }, { name: "kv" });
    kv.configureCommitWatcher?.("test-recorder", "k", { prefix: "a/" });
    kv.configureCommitWatcher?.("test-recorder", "k", { prefix: "b/" });
    kv.save("a/1", 1);
    await kv.flush();
    kv.save("b/1", 2);
    await kv.flush();
    expect(await kv.load("seen/1")).toEqual([{ key: "b/1", bytes: size(2) }]);
    expect(await kv.list("seen/")).toEqual(["seen/1"]);
  });

  it("an actor restarted after its worker was lost gets the latest configs again", async () => {
    const access = openStorageEngineForTests({ threads: 1, onError: () => undefined }, WATCHER_WORKER);
    engine = access.engine;
    const store = { kind: "sqlite" as const, path: root.fresh("restarted.db") };
    const kv = engine.kv<unknown>(store, { name: "kv" });
    kv.configureCommitWatcher?.("test-recorder", "a", { prefix: "a/" });
    kv.save("a/before", 1);
    await kv.flush();
    expect(await kv.load("seen/1")).toEqual([{ key: "a/before", bytes: size(1) }]);
    await access.terminate(store);
    // The store reopens at its next operation; a call that still met the dead actor fails and is retried.
    await until(async () => {
      try {
        kv.save("a/after", 2);
        await kv.flush();
        return true;
      } catch {
        return false;
      }
    }, "the store reopened");
    // The new actor's recorder numbers batches from 1 again: it was configured without a new configure call.
    expect(await kv.load("seen/1")).toEqual([{ key: "a/after", bytes: size(2) }]);
  });

  it("a job a watcher asked for that fails reaches onError with the watcher's subject; the store keeps working", async () => {
    const reported: Array<{ err: Error; tier: string | undefined }> = [];
    const e = open((err, ctx) => reported.push({ err, tier: ctx.tier }));
    const kv = e.kv<unknown>({ kind: "sqlite", path: root.fresh("failing.db") }, { name: "kv" });
    kv.configureCommitWatcher?.("test-recorder", "a", { prefix: "a/" });
    kv.save("a/boom", 1);
    await kv.flush();
    await until(() => reported.length > 0, "the failed job reported");
    expect(reported[0]?.err.message).toMatch(/refused a boom key/);
    expect(reported[0]?.tier).toBe("recorder");
    kv.save("a/fine", 2);
    await kv.flush();
    expect(await kv.load("seen/2")).toEqual([{ key: "a/fine", bytes: size(2) }]);
  });

  it("a watcher that throws is reported; the batch stays committed and the flush succeeds", async () => {
    const reported: Error[] = [];
    const e = open((err) => reported.push(err));
    const kv = e.kv<number>({ kind: "sqlite", path: root.fresh("throwing.db") }, { name: "kv" });
    kv.save("throw-in-watcher", 1);
    await kv.flush();
    expect(await kv.load("throw-in-watcher")).toBe(1);
    await until(() => reported.length > 0, "the throwing watcher reported");
    expect(reported[0]?.message).toMatch(/recorder threw on the commit path/);
  });

  it("a config for a watcher the entry did not register is reported, not a refusal of the tier", async () => {
    const reported: Error[] = [];
    const e = open((err) => reported.push(err));
    const kv = e.kv<number>({ kind: "sqlite", path: root.fresh("unknown.db") }, { name: "kv" });
    expect(kv.configureCommitWatcher?.("no-such-watcher", "k", {})).toBe(true);
    kv.save("x", 1);
    await kv.flush();
    expect(await kv.load("x")).toBe(1);
    await until(() => reported.length > 0, "the unknown watcher reported");
    expect(reported[0]).toBeInstanceOf(StorageError);
    expect((reported[0] as StorageError).code).toBe("invalid-argument");
    expect(reported[0]?.message).toMatch(/no-such-watcher/);
  });

  it("sends nothing when sameStoreAs is a tier of another store, and inline tiers have no watchers", async () => {
    const e = (engine = openStorageEngine({ threads: 1 }));
    const kv = e.kv<number>({ kind: "memory", name: "one" });
    expect(kv.configureCommitWatcher?.("wal-growth", "g", { ratio: 2, minBytes: 1 }, e.snapshot({ kind: "memory", name: "two" }))).toBe(false);
    expect(kv.configureCommitWatcher?.("wal-growth", "g", { ratio: 2, minBytes: 1 }, e.snapshot({ kind: "memory", name: "one" }))).toBe(true);
    expect(kvStorage(memoryBackend()).configureCommitWatcher).toBeUndefined();
  });
});
