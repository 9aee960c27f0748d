/** Write failures injected into the store (supports.writeFaults): what is kept, reported and retried. */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../../src/errors.js";
import { errorOf, until } from "../../support/wait.js";
import { HELD, expectCoded, entriesOf } from "./common.js";
import type { SuiteContext } from "./context.js";

export function writeFailureCases({ open, reopen, faultsOf }: SuiteContext): void {
  describe("write failures", () => {
    it("snapshot: a failed flush rejects, reports onError, keeps pending; the retry writes exactly once", async () => {
      const h = await open();
      const faults = faultsOf(h);
      const s = h.snapshot<{ v: number }>({ name: "s", debounceMs: HELD });
      s.save({ v: 0 });
      await s.flush();
      s.save({ v: 1 });
      await faults.failWrites();
      expectCoded(await errorOf(() => s.flush()), StorageError, "backend-error");
      await until(() => h.errors.length >= 1, "onError report");
      expectCoded(h.errors[0], StorageError, "backend-error");
      // Counted from before healing: once healed, a backed-off background retry may commit before flush() does.
      const before = await h.written();
      await faults.heal();
      await s.flush();
      await s.flush();
      expect((await h.written()).writes - before.writes).toBe(1);
      expect(await s.load()).toEqual({ v: 1 });
    });

    it("snapshot: a newer save made while a flush failed supersedes the failed one", async () => {
      const h = await open();
      const faults = faultsOf(h);
      const s = h.snapshot<{ v: number }>({ name: "s", debounceMs: HELD });
      s.save({ v: 0 });
      await s.flush();
      s.save({ v: 1 });
      await faults.failWrites();
      expectCoded(await errorOf(() => s.flush()), StorageError, "backend-error");
      s.save({ v: 2 });
      const before = await h.written(); // before healing, as above
      await faults.heal();
      await s.flush();
      expect((await h.written()).writes - before.writes).toBe(1);
      expect(await s.load()).toEqual({ v: 2 });
    });

    it("snapshot: a save of another key does not drop a record a failed write put back; the flush stores both (review r264 F5)", async () => {
      const h = await open();
      const faults = faultsOf(h);
      const s = h.snapshot<{ name: string; v: number }>({ name: "s", debounceMs: HELD });
      s.save({ name: "h", v: 0 });
      await s.flush(); // the store exists (an engine's file store is made at its first write)
      s.save({ name: "h", v: 7 });
      await faults.failWrites();
      expectCoded(await errorOf(() => s.flush()), StorageError, "backend-error");
      s.save({ name: "g", v: 1 }); // another key takes the tier's latest slot
      await faults.heal();
      await s.flush();
      expect({ h: await s.load("h"), g: await s.load("g") }).toEqual({ h: { name: "h", v: 7 }, g: { name: "g", v: 1 } });
    });

    it("snapshot: discarding a key keeps another key's record a failed write put back (review r264 F4)", async () => {
      const h = await open();
      const faults = faultsOf(h);
      const s = h.snapshot<{ name: string; v: number }>({ name: "s", debounceMs: HELD });
      s.save({ name: "user", v: 0 });
      await s.flush(); // as above
      s.save({ name: "user", v: 1 });
      await faults.failWrites();
      expectCoded(await errorOf(() => s.flush()), StorageError, "backend-error");
      s.save({ name: "g", v: 1 });
      s.save({ name: "g", v: 2 });
      s.discard!("g");
      await faults.heal();
      await s.flush();
      expect({ user: await s.load("user"), g: await s.load("g") }).toEqual({ user: { name: "user", v: 1 }, g: undefined });
    });

    it("kv: a failed flush keeps every pending key; newer saves win over restored ones", async () => {
      const h = await open();
      const faults = faultsOf(h);
      const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
      kv.save("a", 1);
      await kv.flush();
      kv.save("a", 2);
      kv.save("b", 3);
      await faults.failWrites();
      expectCoded(await errorOf(() => kv.flush()), StorageError, "backend-error");
      // Counted from here: once healed, a backed-off background retry may commit before the explicit flush does.
      const before = await h.written();
      kv.save("a", 5);
      await faults.heal();
      await kv.flush();
      await kv.flush();
      expect((await h.written()).writes - before.writes).toBe(2);
      expect([await kv.load("a"), await kv.load("b")]).toEqual([5, 3]);
    });

    it("append-log: existing [1,2], append [3,4], the write fails twice, the retry gives [1,2,3,4] (§10.6)", async () => {
      const h = await open();
      const faults = faultsOf(h);
      const log = h.appendLog<number>({ name: "log", debounceMs: HELD });
      log.appendEntries([1, 2]);
      await log.flush();
      log.appendEntries([3, 4]);
      await faults.failWrites();
      expectCoded(await errorOf(() => log.flush()), StorageError, "backend-error");
      expectCoded(await errorOf(() => log.flush()), StorageError, "backend-error");
      await faults.heal();
      await log.flush();
      await log.flush();
      expect(await entriesOf(log)).toEqual([1, 2, 3, 4]);
      log.appendEntries([5]);
      await log.flush();
      const h2 = await reopen(h);
      expect(await entriesOf(h2.appendLog<number>({ name: "log" }))).toEqual([1, 2, 3, 4, 5]);
    });

    it("append-log: entries appended while a flush failed follow the restored ones in order", async () => {
      const h = await open();
      const faults = faultsOf(h);
      const log = h.appendLog<number>({ name: "log", debounceMs: HELD });
      log.appendEntries([1]);
      await log.flush();
      log.appendEntries([2]);
      await faults.failWrites();
      expectCoded(await errorOf(() => log.flush()), StorageError, "backend-error");
      log.appendEntries([3]);
      await faults.heal();
      await log.flush();
      expect(await entriesOf(log)).toEqual([1, 2, 3]);
    });

    it("a failing sync-through save does not throw: onError gets it, the data stays pending for flush()", async () => {
      const h = await open();
      const faults = faultsOf(h);
      const kv = h.kv<number>({ name: "kv" });
      kv.save("warm", 0);
      await kv.flush();
      await faults.failWrites();
      expect(() => kv.save("k", 1)).not.toThrow();
      await until(() => h.errors.length >= 1, "onError report");
      expectCoded(h.errors[0], StorageError, "backend-error");
      await faults.heal();
      await kv.flush();
      expect(await kv.load("k")).toBe(1);
    });

    it("a rollback after a failed flush discards the restored data", async () => {
      const h = await open();
      const faults = faultsOf(h);
      const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
      kv.save("warm", 0);
      await kv.flush();
      kv.save("k", 1);
      await faults.failWrites();
      expectCoded(await errorOf(() => kv.flush()), StorageError, "backend-error");
      kv.rollback();
      await faults.heal();
      await kv.flush();
      expect(await kv.load("k")).toBeUndefined();
    });
  });
}
