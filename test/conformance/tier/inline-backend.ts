/** Inline harnesses only (supports.inlineParts): what reaches the backend and when, over sync backends and backends without list. */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../../src/errors.js";
import { appendLogStorage } from "../../../src/tier/append-log.js";
import { kvStorage } from "../../../src/tier/kv.js";
import { resetCounts, wrapBackend } from "../../support/test-backend.js";
import { errorOf } from "../../support/wait.js";
import { HELD, text, tick, expectCoded, entriesOf } from "./common.js";
import type { SuiteContext } from "./context.js";

export function inlineBackendCases({ open, inlineOf, supports }: SuiteContext): void {
  describe("inline only", () => {
    if (supports.syncBackend) it("sync-through over a sync backend: the data is in the backend when save() returns", async () => {
      const h = await open();
      const { backend } = inlineOf(h);
      expect(backend.supports.sync).toBe(true);
      const kv = h.kv<number>({ name: "kv" });
      kv.save("k", 1);
      expect(text(backend.read("k") as Uint8Array | undefined)).toBe("1");
      const s = h.snapshot<{ v: number }>({ name: "snap", debounceMs: 0 });
      s.save({ v: 1 });
      expect(text(backend.read("snap") as Uint8Array | undefined)).toBe('{"v":1}');
    });

    if (supports.syncBackend) it("sync-through append-log over a sync backend: the entries are in the backend when appendEntries() returns", async () => {
      const h = await open();
      const { backend } = inlineOf(h);
      const list = (prefix: string): readonly string[] => backend.list!(prefix) as readonly string[];
      const log = h.appendLog<number>({ name: "log" });
      log.appendEntries([1]); // first flush of a fresh tier
      expect(list("log").length, "first append").toBe(1);
      log.appendEntries([2]);
      expect(list("log").length, "second append").toBe(2);
      const ovr = h.appendLog<number>({ name: "ovr", mode: "overwrite" });
      ovr.appendEntries([1]);
      expect(list("ovr").length, "overwrite mode").toBe(1);
    });

    it("a flush reads nothing of the existing log (O(entries flushed))", async () => {
      const h = await open();
      const { probe } = inlineOf(h);
      const log = h.appendLog<number>({ name: "log", debounceMs: HELD });
      log.appendEntries([1]);
      await log.flush();
      for (let i = 2; i < 20; i++) {
        log.appendEntries([i]);
        await log.flush();
      }
      resetCounts(probe);
      log.appendEntries([20]);
      await log.flush();
      expect(probe.counts).toMatchObject({ reads: 0, lists: 0, puts: 1, deletes: 0 });
    });

    it("listByPrefix is lazy: nothing is listed or read before the first next()", async () => {
      const h = await open();
      const { probe } = inlineOf(h);
      const kv = h.kv<number>({ name: "kv" });
      kv.save("p/1", 1);
      kv.save("p/2", 2);
      await kv.flush();
      resetCounts(probe);
      const iterator = kv.listByPrefix("p/")[Symbol.asyncIterator]();
      await tick();
      expect([probe.counts.lists, probe.counts.reads]).toEqual([0, 0]);
      expect(await iterator.next()).toEqual({ done: false, value: { key: "p/1", value: 1 } });
      expect(probe.counts.lists).toBe(1);
      expect(probe.counts.reads).toBe(1);
      expect(await iterator.next()).toEqual({ done: false, value: { key: "p/2", value: 2 } });
      expect((await iterator.next()).done).toBe(true);
    });

    it("over a backend without list: listByPrefix throws backend-no-list-support on first iteration, and so does list()", async () => {
      const h = await open();
      const noList = wrapBackend(inlineOf(h).backend, { list: false });
      expect(noList.list).toBeUndefined();
      const kv = kvStorage<number>(noList, { name: "kv" });
      kv.save("p/1", 1);
      await kv.flush();
      const iterable = kv.listByPrefix("p/");
      const err = await errorOf(() => iterable[Symbol.asyncIterator]().next());
      expectCoded(err, StorageError, "backend-no-list-support");
      expect((err as StorageError).details).toMatchObject({ tier: "kv" });
      expectCoded(await errorOf(() => kv.list()), StorageError, "backend-no-list-support");
      expect(await kv.load("p/1")).toBe(1);
      await kv.close();
    });

    it("append-log over a backend without list uses the reference layout and still loads", async () => {
      const h = await open();
      const { backend } = inlineOf(h);
      const log = appendLogStorage<number>(wrapBackend(backend, { list: false }), { name: "L", debounceMs: HELD });
      log.appendEntries([1, 2]);
      await log.flush();
      log.appendEntries([3]);
      await log.flush();
      expect(text(await backend.read("L"))).toBe("[1,2,3]");
      expect(await entriesOf(log)).toEqual([1, 2, 3]);
      expect(await log.loadEntries({ pageSize: 2 })).toEqual({ entries: [1, 2], cursor: { position: 2 } });
      await log.close();
    });
  });
}
