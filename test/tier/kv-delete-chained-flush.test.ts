/**
 * A kv delete queued behind a flush that was called (or triggered) before the delete but had not yet taken the
 * pending values: that flush took a value saved AFTER the delete's call and wrote it, then the delete ran and
 * removed it from the backend, and the flush called after the save resolved with the value lost (review). The
 * delete now leaves a key whose committed value was saved after its call. A real memory backend behind the
 * asynchronous test wrapper (writes held at a gate).
 */
import { describe, expect, it } from "vitest";
import { kvStorage } from "../../src/tier/kv.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { wrapBackend } from "../support/test-backend.js";

describe("kv delete queued behind a flush that takes a value saved after the delete's call", () => {
  it("explicit flushes: the value saved after delete() is stored; the one before is deleted", async () => {
    const backend = wrapBackend(memoryBackend(), { async: true });
    const kv = kvStorage<number>(backend, { name: "kv", debounceMs: 60_000 });
    const release = backend.holdWrites();
    kv.save("x", 0);
    const f0 = kv.flush(); // in flight, held
    kv.save("k", 1);
    kv.save("gone", 1);
    const f1 = kv.flush(); // waits for f0, then takes what is pending then
    const deleting = kv.deleteMany!(["k", "gone"]); // waits for f1
    kv.save("k", 2); // after the delete's call: wins
    const f2 = kv.flush();
    release();
    await Promise.all([f0, f1, deleting, f2]);
    expect(await kv.load("k")).toBe(2);
    expect(await backend.inner.read("k")).toBeDefined();
    expect(await kv.load("gone")).toBeUndefined();
    expect(await kv.load("x")).toBe(0);
  });

  it("sync-through (default cadence): save, delete, save keeps the last save", async () => {
    const backend = wrapBackend(memoryBackend(), { async: true });
    const kv = kvStorage<number>(backend, { name: "kv" });
    const release = backend.holdWrites();
    kv.save("x", 0); // a background flush, in flight
    kv.save("k", 1); // another, waiting
    const deleting = kv.delete("k");
    kv.save("k", 2);
    const flushed = kv.flush();
    release();
    await Promise.all([deleting, flushed]);
    expect(await kv.load("k")).toBe(2);
  });

  it("two deletes queued: a value saved between them is deleted by the second, one saved after both stays", async () => {
    const backend = wrapBackend(memoryBackend(), { async: true });
    const kv = kvStorage<number>(backend, { name: "kv", debounceMs: 60_000 });
    const release = backend.holdWrites();
    kv.save("x", 0);
    const f0 = kv.flush();
    const f1 = kv.flush(); // waits for f0, takes what is pending then
    const first = kv.delete("k");
    kv.save("k", 1); // after the first delete, before the second
    const second = kv.delete("k");
    kv.save("j", 1);
    const third = kv.delete("j");
    kv.save("j", 2); // after every delete of j
    release();
    await Promise.all([f0, f1, first, second, third]);
    await kv.flush();
    expect(await kv.load("k")).toBeUndefined();
    expect(await kv.load("j")).toBe(2);
  });
});
