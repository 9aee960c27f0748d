/**
 * Review s15r2 D1/D1b: a flush (or close) called while a delete of a key waits on the write lane of an asynchronous
 * backend leaves the key's value saved before the delete pending, for the delete to drop (kv.ts leaveForDeletes).
 * When that delete fails, the value is still owed: the flush must store it (as on a synchronous backend, where the
 * delete fails at its call and the flush then writes it) or reject; it resolved with nothing written, and close()
 * closed the tier over it. No timing: faultyBackend's async mode settles each call on a later macrotask.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { kvStorage } from "../../src/tier/kv.js";
import { faultyBackend } from "../support/faulty-backend.js";

const HELD = 60_000; // no debounce or retry timer fires during a case
const V = "x".repeat(1_000);
const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => "resolved",
    (e: unknown) => `rejected ${(e as { code?: string }).code}`,
  );

describe("kv: a value left pending for a queued delete that fails", () => {
  it("async backend: the value left for the delete stays counted against maxPendingBytes while its write fails", async () => {
    const fb = faultyBackend(memoryBackend(), [], { async: true });
    // Room for two values: once b = V is pending again, c fits and e does not.
    const t = kvStorage<string>(fb, { name: "t", debounceMs: HELD, retry: { initialMs: HELD, maxMs: HELD }, maxPendingBytes: 2_300 });
    t.saveMany!([["a", "0"], ["b", "0"]]);
    await t.flush();
    fb.inject({ op: "delete", errno: "EIO", times: 1 });
    fb.inject({ op: "write", errno: "EIO", key: /^b$/ });
    fb.inject({ op: "writeBatch", errno: "EIO", key: /^b$/ });
    t.save("a", V);
    t.save("b", V);
    const d = outcome(t.delete("b"));
    const f = outcome(t.flush()); // writes a and leaves b for the delete; then b's write fails
    expect({ delete: await d, flush: await f }).toEqual({ delete: "rejected backend-error", flush: "rejected backend-error" });
    t.save("c", V);
    expect(() => t.save("e", V)).toThrow(expect.objectContaining({ code: "backpressure" }));
    fb.heal();
    await t.flush();
    expect([await t.load("a"), await t.load("b"), await t.load("c")]).toEqual([V, V, V]);
    await t.close();
  });

  for (const async of [true, false]) {
    const kind = async ? "async backend" : "sync backend";

    it(`${kind}: flush() called behind the failing delete stores the value saved before it`, async () => {
      const fb = faultyBackend(memoryBackend(), [], { async });
      const t = kvStorage<number>(fb, { name: "t", debounceMs: HELD, retry: { initialMs: HELD, maxMs: HELD } });
      t.save("b", 0);
      await t.flush();
      fb.inject({ op: "delete", errno: "EIO", times: 1 });
      t.save("b", 1);
      const d = outcome(t.delete("b"));
      const f = outcome(t.flush());
      expect({ delete: await d, flush: await f }).toEqual({ delete: "rejected backend-error", flush: "resolved" });
      expect(await fb.inner.read!("b")).toBeDefined();
      expect(await t.load("b")).toBe(1);
      await t.close();
    });

    it(`${kind}: deleteMany failing behind a flush: the flush stores the values saved before it`, async () => {
      const fb = faultyBackend(memoryBackend(), [], { async });
      const t = kvStorage<number>(fb, { name: "t", debounceMs: HELD, retry: { initialMs: HELD, maxMs: HELD } });
      t.saveMany!([["a", 0], ["b", 0]]);
      await t.flush();
      fb.inject({ op: "writeBatch", errno: "EIO", times: 1, deletesOnly: true });
      t.saveMany!([["a", 1], ["b", 1]]);
      const d = outcome(t.deleteMany!(["a", "b"]));
      const f = outcome(t.flush());
      expect({ delete: await d, flush: await f }).toEqual({ delete: "rejected backend-error", flush: "resolved" });
      expect([await t.load("a"), await t.load("b")]).toEqual([1, 1]);
      await t.close();
    });

    it(`${kind}: a flush writing other keys behind the failing delete also stores the value it left for it`, async () => {
      const fb = faultyBackend(memoryBackend(), [], { async });
      const t = kvStorage<number>(fb, { name: "t", debounceMs: HELD, retry: { initialMs: HELD, maxMs: HELD } });
      t.saveMany!([["a", 0], ["b", 0]]);
      await t.flush();
      fb.inject({ op: "delete", errno: "EIO", times: 1 });
      t.save("a", 1);
      t.save("b", 1);
      const d = outcome(t.delete("b"));
      const f = outcome(t.flush()); // takes a, leaves b for the delete
      expect({ delete: await d, flush: await f }).toEqual({ delete: "rejected backend-error", flush: "resolved" });
      expect([await fb.inner.read!("a"), await fb.inner.read!("b")].map((v) => v !== undefined)).toEqual([true, true]);
      expect([await t.load("a"), await t.load("b")]).toEqual([1, 1]);
      await t.close();
    });

    it(`${kind}: close() called behind the failing delete stores the value before the tier closes`, async () => {
      const fb = faultyBackend(memoryBackend(), [], { async });
      const t = kvStorage<number>(fb, { name: "t", debounceMs: HELD });
      t.save("b", 0);
      await t.flush();
      fb.inject({ op: "delete", errno: "EIO", times: 1 });
      t.save("b", 1);
      const d = outcome(t.delete("b"));
      const c = outcome(t.close());
      expect({ delete: await d, close: await c }).toEqual({ delete: "rejected backend-error", close: "resolved" });
      expect(await kvStorage<number>(fb, { name: "reader" }).load("b")).toBe(1);
    });

    it(`${kind}: a delete that succeeds behind the flush drops the value, and its weight is no longer held`, async () => {
      const fb = faultyBackend(memoryBackend(), [], { async });
      // Bound of two values: the one left pending for the delete must not stay held once the delete dropped it.
      const t = kvStorage<string>(fb, { name: "t", debounceMs: HELD, maxPendingBytes: 2_200 });
      t.save("b", V);
      await t.flush();
      t.save("b", V);
      const d = outcome(t.delete("b"));
      const f = outcome(t.flush());
      expect({ delete: await d, flush: await f }).toEqual({ delete: "resolved", flush: "resolved" });
      expect(await t.load("b")).toBeUndefined();
      // Nothing pending or in flight: room for two values again (drained() resolves, both saves are taken).
      await t.drained!();
      t.save("c", V);
      t.save("e", V);
      await t.flush();
      expect(await t.load("e")).toBe(V);
      await t.close();
    });
  }
});
