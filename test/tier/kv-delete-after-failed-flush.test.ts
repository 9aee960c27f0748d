/**
 * A kv delete queued behind a flush that fails: the failed flush puts its values back, then the delete runs. A
 * value saved before the delete was called is deleted (also when it came back from the failed flush); one saved
 * after the call is kept and stored by the retry. Asynchronous backend (writes held at a gate, then failed once).
 */
import { describe, expect, it } from "vitest";
import { kvStorage } from "../../src/tier/kv.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { wrapBackend } from "../support/test-backend.js";

function heldKv() {
  const backend = wrapBackend(memoryBackend(), { async: true });
  const kv = kvStorage<number>(backend, { name: "kv", debounceMs: 60_000, onError: () => undefined });
  return { backend, kv };
}

describe("kv delete queued behind a flush that fails", () => {
  it("deletes the value the failed flush put back: it was saved before the delete was called", async () => {
    const { backend, kv } = heldKv();
    const release = backend.holdWrites();
    kv.save("k", 1);
    kv.save("other", 7);
    backend.failNext(1);
    const flushing = kv.flush(); // takes k and other, held, then fails
    const deleting = kv.delete("k");
    release();
    await expect(flushing).rejects.toMatchObject({ code: "backend-error" });
    await deleting;
    await kv.flush(); // the retry: other only
    expect(await kv.load("k")).toBeUndefined();
    expect(await kv.load("other")).toBe(7);
    expect(await backend.inner.read("k")).toBeUndefined();
  });

  it("keeps the value saved after the delete was called over the one the failed flush put back", async () => {
    const { backend, kv } = heldKv();
    const release = backend.holdWrites();
    kv.save("k", 1);
    backend.failNext(1);
    const flushing = kv.flush();
    const deleting = kv.delete("k");
    kv.save("k", 2);
    release();
    await expect(flushing).rejects.toMatchObject({ code: "backend-error" });
    await deleting;
    await kv.flush();
    expect(await kv.load("k")).toBe(2);
    expect(await backend.inner.read("k")).toBeDefined();
  });
});
