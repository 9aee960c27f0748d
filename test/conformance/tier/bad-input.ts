/** Bad input: invalid keys, unencodable values, wrong argument types, use after close. */
import { describe, expect, it } from "vitest";
import { CodecError, StorageError } from "../../../src/errors.js";
import { errorOf, syncErrorOf, until } from "../../support/wait.js";
import { HELD, LONE_SURROGATE, parsed, expectCoded, entriesOf, collect } from "./common.js";
import type { SuiteContext } from "./context.js";

export function badInputCases({ open }: SuiteContext): void {
  describe("bad input", () => {
    it("reads, deletes and listings with a lone-surrogate key reject with invalid-key", async () => {
      const h = await open();
      const kv = h.kv<number>({ name: "kv" });
      expectCoded(await errorOf(() => kv.load(LONE_SURROGATE)), StorageError, "invalid-key");
      expectCoded(await errorOf(() => kv.delete(LONE_SURROGATE)), StorageError, "invalid-key");
      kv.save("kept", 1);
      await kv.flush();
      // Every key is checked before anything is deleted.
      expectCoded(await errorOf(() => kv.deleteMany!(["kept", LONE_SURROGATE])), StorageError, "invalid-key");
      expect(await kv.load("kept")).toBe(1);
      expect(await errorOf(() => kv.deleteMany!("kept" as unknown as string[]))).toBeInstanceOf(TypeError);
      expect(await errorOf(() => kv.deleteMany!([1] as unknown as string[]))).toBeInstanceOf(TypeError);
      expect(await kv.load("kept")).toBe(1);
      expectCoded(await errorOf(() => kv.list(LONE_SURROGATE)), StorageError, "invalid-key");
      expectCoded(await errorOf(() => collect(kv.listByPrefix(LONE_SURROGATE))), StorageError, "invalid-key");
      expectCoded(await errorOf(() => h.snapshot({ name: "s" }).load(LONE_SURROGATE)), StorageError, "invalid-key");
      const log = h.appendLog({ name: "log" });
      expectCoded(await errorOf(() => log.loadEntries({ keyFilter: LONE_SURROGATE })), StorageError, "invalid-key");
    });

    it("kv.save with a lone-surrogate key throws invalid-key and leaves the tier usable", async () => {
      const h = await open();
      const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
      try {
        expectCoded(syncErrorOf(() => kv.save(LONE_SURROGATE, 1)), StorageError, "invalid-key");
        kv.save("good", 2);
        await kv.flush();
        expect(await kv.load("good")).toBe(2);
      } finally {
        kv.rollback(); // a poisoned pending value must not fail the harness teardown too
      }
    });

    it("a snapshot keyOf returning a lone surrogate makes save throw invalid-key and leaves the tier usable", async () => {
      const h = await open();
      const s = h.snapshot<{ k: string; v: number }>({ name: "s", keyOf: (x) => x.k, debounceMs: HELD });
      try {
        expectCoded(syncErrorOf(() => s.save({ k: LONE_SURROGATE, v: 1 })), StorageError, "invalid-key");
        await s.flush();
        s.save({ k: "fine", v: 2 });
        await s.flush();
        expect(await s.load("fine")).toEqual({ k: "fine", v: 2 });
      } finally {
        s.rollback();
      }
    });

    it("an append-log keyOf returning a lone surrogate makes appendEntries throw invalid-key and leaves the log usable", async () => {
      const h = await open();
      const log = h.appendLog<{ bad?: boolean; v: number }>({
        name: "log",
        keyOf: (e) => (e.bad ? LONE_SURROGATE : "ok"),
        debounceMs: HELD,
      });
      try {
        expectCoded(syncErrorOf(() => log.appendEntries([{ bad: true, v: 1 }])), StorageError, "invalid-key");
        log.appendEntries([{ v: 2 }]);
        await log.flush();
        expect(await entriesOf(log, "ok")).toEqual([{ v: 2 }]);
      } finally {
        log.rollback();
      }
    });

    it("unencodable values: CodecError(encode-failed) reaches flush() and onError, the value is dropped (not retried), the rest is written", async () => {
      const h = await open();
      const kv = h.kv<unknown>({ name: "kv", debounceMs: HELD });
      const s = h.snapshot<unknown>({ name: "snap", debounceMs: HELD });
      const log = h.appendLog<unknown>({ name: "log", debounceMs: HELD });
      kv.save("bad", { n: Number.NaN });
      kv.save("good", { n: 1 });
      s.save({ big: 10n });
      log.appendEntries([{ n: Number.POSITIVE_INFINITY }]);
      log.appendEntries([{ ok: 1 }]);
      for (const tier of [kv, s, log]) {
        expectCoded(await errorOf(() => tier.flush()), CodecError, "encode-failed");
      }
      await until(() => h.errors.length >= 3, "onError reports");
      for (const e of h.errors) expectCoded(e, CodecError, "encode-failed");
      // Dropped, not retried: the next flushes succeed and write nothing more.
      await Promise.all([kv.flush(), s.flush(), log.flush()]);
      expect(await kv.load("good")).toEqual({ n: 1 });
      expect(await kv.load("bad")).toBeUndefined();
      expect(await s.load()).toBeUndefined();
      expect(await entriesOf(log, "log")).toEqual([{ ok: 1 }]);
      expect(h.errors.length).toBe(3);
    });

    it("a value refused after a flush was called fails the next flush, not that one (it answers for earlier writes)", async () => {
      const h = await open();
      const kv = h.kv<unknown>({ name: "kv", debounceMs: HELD });
      const s = h.snapshot<unknown>({ name: "snap", debounceMs: HELD });
      const log = h.appendLog<unknown>({ name: "log", debounceMs: HELD });
      kv.save("a", 1);
      s.save({ v: 1 });
      log.appendEntries([1]);
      // On an asynchronous backend these flushes are in flight when the unencodable values come.
      const flushes = [kv.flush(), s.flush(), log.flush()];
      kv.save("bad", { n: Number.NaN });
      s.save({ big: 10n });
      log.appendEntries([{ n: Number.POSITIVE_INFINITY }]);
      await Promise.all(flushes);
      for (const tier of [kv, s, log]) expectCoded(await errorOf(() => tier.flush()), CodecError, "encode-failed");
      await Promise.all([kv.flush(), s.flush(), log.flush()]); // reported once
      expect(await kv.load("a")).toBe(1);
      expect(await s.load()).toEqual({ v: 1 });
      expect(await entriesOf(log, "log")).toEqual([1]);
      expect(h.errors.length).toBe(3);
    });

    it("watchRefusals: a watcher hears each refused write under its prefix, by key, before the flush reporting it settles", async () => {
      const h = await open();
      const kv = h.kv<unknown>({ name: "kv", debounceMs: HELD });
      const s = h.snapshot<{ name: string; v: unknown }>({ name: "snap", debounceMs: HELD });
      const log = h.appendLog<unknown>({ name: "log", debounceMs: HELD });
      const heard: string[] = [];
      const watch = (tier: { watchRefusals?: (p: string, l: (key: string | undefined, err: Error) => void) => () => void }, prefix: string) =>
        tier.watchRefusals!(prefix, (key, err) => heard.push(`${prefix}|${key}|${(err as CodecError).code}`));
      watch(kv, "g/");
      watch(kv, "");
      const removed = watch(kv, "h/");
      removed();
      removed(); // idempotent
      watch(s, "snapA");
      watch(log, "log");
      kv.save("g/1", { n: Number.NaN });
      kv.save("x", { n: Number.NaN });
      kv.save("g/2", 1);
      kv.save("h/1", { n: Number.NaN });
      s.save({ name: "snapA", v: 10n });
      log.appendEntries([{ n: Number.POSITIVE_INFINITY }]);
      // Whoever flushes: each flush's rejection runs after its tier's watchers heard the refusals it reports.
      const atSettle = await Promise.all([kv, s, log].map((tier) => tier.flush().then(() => "resolved", () => [...heard].sort())));
      const expected = ["g/|g/1|encode-failed", "|g/1|encode-failed", "|x|encode-failed", "|h/1|encode-failed", "snapA|snapA|encode-failed", "log|log|encode-failed"].sort();
      expect([...heard].sort()).toEqual(expected);
      for (const seen of atSettle) expect(seen).not.toBe("resolved");
      expect((atSettle[0] as string[]).filter((e) => !e.startsWith("snapA") && !e.startsWith("log"))).toHaveLength(4);
      expect(await kv.load("g/2")).toBe(1);
      expect(() => kv.watchRefusals!(1 as unknown as string, () => {})).toThrow(TypeError);
      expect(() => kv.watchRefusals!("p", undefined as unknown as () => void)).toThrow(TypeError);
    });

    it("writePending writes what was accepted and leaves a refusal to the flush that answers for it", async () => {
      const h = await open();
      const kv = h.kv<unknown>({ name: "kv", debounceMs: HELD });
      const s = h.snapshot<unknown>({ name: "snap", debounceMs: HELD });
      const log = h.appendLog<unknown>({ name: "log", debounceMs: HELD });
      kv.save("good", 1);
      kv.save("bad", { n: Number.NaN });
      s.save({ big: 10n });
      log.appendEntries([1]);
      log.appendEntries([{ n: Number.POSITIVE_INFINITY }]);
      await Promise.all([kv, s, log].map((tier) => tier.writePending!()));
      expect(await kv.load("good")).toBe(1);
      expect(await entriesOf(log, "log")).toEqual([1]);
      // The refusals are still the flushes' to report, once.
      for (const tier of [kv, s, log]) expectCoded(await errorOf(() => tier.flush()), CodecError, "encode-failed");
      await Promise.all([kv.flush(), s.flush(), log.flush()]);
    });

    it("a sync-through save of an unencodable value does not throw; onError gets encode-failed, and so does the next flush", async () => {
      const h = await open();
      const kv = h.kv<unknown>({ name: "kv" });
      expect(() => kv.save("bad", { when: new Date(0) })).not.toThrow();
      await until(() => h.errors.length >= 1, "onError report");
      expectCoded(h.errors[0], CodecError, "encode-failed");
      expectCoded(await errorOf(() => kv.flush()), CodecError, "encode-failed");
      expect(await kv.load("bad")).toBeUndefined();
    });

    it("wrong argument types throw TypeError", async () => {
      const h = await open();
      expect(() => h.kv({ name: "kv" }).save(7 as unknown as string, 1)).toThrow(TypeError);
      expect(() => h.appendLog({ name: "log" }).appendEntries("abc" as unknown as string[])).toThrow(TypeError);
    });

    it("a closed tier rejects further use with closed; close() flushed its pending data and is idempotent", async () => {
      const h = await open();
      const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
      const s = h.snapshot<{ v: number }>({ name: "snap", debounceMs: HELD });
      const log = h.appendLog<number>({ name: "log", debounceMs: HELD });
      kv.save("k", 1);
      s.save({ v: 1 });
      log.appendEntries([1]);
      await Promise.all([kv.close(), s.close(), log.close()]);
      expect(parsed(await h.raw.read("k"))).toBe(1);
      expect(parsed(await h.raw.read("snap"))).toEqual({ v: 1 });
      expect(await entriesOf(h.appendLog<number>({ name: "log" }))).toEqual([1]);

      expectCoded(syncErrorOf(() => kv.save("k", 2)), StorageError, "closed");
      expectCoded(await errorOf(() => kv.load("k")), StorageError, "closed");
      expectCoded(await errorOf(() => kv.delete("k")), StorageError, "closed");
      expectCoded(await errorOf(() => kv.deleteMany!(["k"])), StorageError, "closed");
      expectCoded(await errorOf(() => kv.list()), StorageError, "closed");
      expectCoded(await errorOf(() => collect(kv.listByPrefix(""))), StorageError, "closed");
      expectCoded(syncErrorOf(() => s.save({ v: 2 })), StorageError, "closed");
      expectCoded(await errorOf(() => s.load()), StorageError, "closed");
      expectCoded(syncErrorOf(() => log.appendEntries([2])), StorageError, "closed");
      expectCoded(await errorOf(() => log.loadEntries()), StorageError, "closed");
      await Promise.all([kv.close(), s.close(), log.close()]);
    });
  });
}
