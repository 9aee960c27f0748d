/** Inline harnesses only (supports.inlineParts): deletes, rollbacks and failures racing writes of a slow async backend. */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../../src/errors.js";
import { appendLogStorage } from "../../../src/tier/append-log.js";
import { kvStorage } from "../../../src/tier/kv.js";
import { snapshotStorage } from "../../../src/tier/snapshot.js";
import { wrapBackend } from "../../support/test-backend.js";
import { errorOf } from "../../support/wait.js";
import { HELD, expectCoded, entriesOf } from "./common.js";
import type { SuiteContext } from "./context.js";

export function inlineAsyncCases({ open, inlineOf }: SuiteContext): void {
  describe("inline only", () => {
    it("kv delete goes to the backend first: a failed backend delete keeps the pending value (D152)", async () => {
      const h = await open();
      const { probe } = inlineOf(h);
      const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
      kv.save("a", 1);
      probe.failNext(1);
      expect(String(await errorOf(() => kv.delete("a")))).toContain("EIO");
      await kv.flush();
      expect(await kv.load("a")).toBe(1);
      await kv.delete("a");
      expect(await kv.load("a")).toBeUndefined();
    });

    it("kv delete waits for an in-flight flush of the same key (async backend)", async () => {
      const h = await open();
      const slow = wrapBackend(inlineOf(h).backend, { async: true });
      const kv = kvStorage<number>(slow, { name: "kv", debounceMs: HELD });
      const release = slow.holdWrites();
      kv.save("a", 1);
      const flushed = kv.flush();
      const deleted = kv.delete("a");
      release();
      await Promise.all([flushed, deleted]);
      expect(await kv.load("a")).toBeUndefined();
      await kv.close();
    });

    it("rollback epoch (kv, async backend): cancels a flush scheduled before it, not one scheduled after", async () => {
      const h = await open();
      const slow = wrapBackend(inlineOf(h).backend, { async: true });
      const kv = kvStorage<number>(slow, { name: "kv", debounceMs: HELD });
      const release = slow.holdWrites();
      kv.save("a", 1);
      const inFlight = kv.flush(); // its write is already with the backend when the rollback comes
      kv.save("b", 1);
      const before = kv.flush(); // scheduled before the rollback
      kv.rollback();
      kv.save("c", 1);
      const after = kv.flush(); // scheduled after the rollback
      release();
      await Promise.all([inFlight, before, after]);
      expect(await kv.load("a")).toBe(1); // handed to the backend before the rollback: cannot be undone
      expect(await kv.load("b")).toBeUndefined();
      expect(await kv.load("c")).toBe(1);
      await kv.close();
    });

    it("rollback epoch (snapshot, async backend): the rolled-back snapshot is never written, a later one is", async () => {
      const h = await open();
      const slow = wrapBackend(inlineOf(h).backend, { async: true });
      const s = snapshotStorage<{ v: number }>(slow, { name: "s", debounceMs: HELD });
      const release = slow.holdWrites();
      s.save({ v: 1 });
      const inFlight = s.flush();
      s.save({ v: 2 });
      const before = s.flush();
      s.rollback();
      release();
      await Promise.all([inFlight, before]);
      expect(await s.load()).toEqual({ v: 1 });
      s.save({ v: 3 });
      await s.flush();
      expect(await s.load()).toEqual({ v: 3 });
      await s.close();
    });

    it("rollback epoch (append-log, async backend): a flush that started before the rollback writes nothing", async () => {
      const h = await open();
      const slow = wrapBackend(inlineOf(h).backend, { async: true });
      const log = appendLogStorage<number>(slow, { name: "log", debounceMs: HELD });
      log.appendEntries([1]);
      const started = log.flush(); // lists existing segments asynchronously first
      log.rollback();
      await started;
      expect(await entriesOf(log)).toEqual([]);
      expect(slow.counts.puts).toBe(0);
      log.appendEntries([2]);
      await log.flush();
      expect(await entriesOf(log)).toEqual([2]);
      await log.close();
    });

    it("a write that fails after a rollback is not restored", async () => {
      const h = await open();
      const slow = wrapBackend(inlineOf(h).backend, { async: true });
      const errors: Error[] = [];
      const log = appendLogStorage<number>(slow, { name: "log", debounceMs: HELD, onError: (e) => errors.push(e) });
      log.appendEntries([1]);
      await log.flush();
      const release = slow.holdWrites();
      log.appendEntries([2]);
      const failing = log.flush(); // the segment number is known, so its write is issued right away
      log.rollback();
      slow.failNext(1);
      release();
      expectCoded(await errorOf(() => failing), StorageError, "backend-error");
      expect(slow.counts.failed).toBe(1);
      expect(errors.length).toBe(1);
      await log.flush();
      expect(await entriesOf(log)).toEqual([1]);
      await log.close();
    });

    it("a throwing onError handler does not break the flush chain", async () => {
      const h = await open();
      const { probe } = inlineOf(h);
      const kv = kvStorage<number>(probe, {
        name: "kv",
        onError: () => {
          throw new Error("handler bug");
        },
      });
      probe.failNext(1);
      kv.save("a", 1);
      expect(probe.counts.failed).toBe(1);
      await kv.flush();
      expect(await kv.load("a")).toBe(1);
      await kv.close();
    });
  });
}
