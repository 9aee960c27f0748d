/** The append-log tier: accumulation, modes, buckets, pagination, layouts, compact(), O(entries flushed). */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../../src/errors.js";
import { syncErrorOf } from "../../support/wait.js";
import { HELD, text, utf8, tick, expectCoded, entriesOf } from "./common.js";
import type { SuiteContext } from "./context.js";

export function appendLogCases({ open, reopen }: SuiteContext): void {
  describe("append-log", () => {
    it("debounced: [{id:1},{id:2}] then [{id:3}] -> after flush the log is [{id:1},{id:2},{id:3}] (§10.6)", async () => {
      const h = await open();
      const log = h.appendLog<{ id: number }>({ name: "log", debounceMs: 10_000 });
      log.appendEntries([{ id: 1 }, { id: 2 }]);
      log.appendEntries([{ id: 3 }]);
      await tick();
      expect(await entriesOf(log)).toEqual([]);
      await log.flush();
      expect(await entriesOf(log)).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
    });

    it("append mode accumulates across flushes; overwrite mode replaces the key per flush (§10.6)", async () => {
      const h = await open();
      const app = h.appendLog<number>({ name: "app", debounceMs: HELD });
      app.appendEntries([1, 2]);
      await app.flush();
      app.appendEntries([3]);
      await app.flush();
      expect(await entriesOf(app, "app")).toEqual([1, 2, 3]);

      const ovr = h.appendLog<number>({ name: "ovr", mode: "overwrite", debounceMs: HELD });
      ovr.appendEntries([1, 2]);
      await ovr.flush();
      ovr.appendEntries([9]);
      await ovr.flush();
      expect(await entriesOf(ovr, "ovr")).toEqual([9]);

      const ovr2 = h.appendLog<number>({ name: "ovr2", mode: "overwrite", debounceMs: HELD });
      ovr2.appendEntries([1, 2, 3]);
      await ovr2.flush();
      ovr2.appendEntries([10]);
      ovr2.appendEntries([20]);
      await ovr2.flush();
      expect(await entriesOf(ovr2, "ovr2")).toEqual([10, 20]);
    });

    it("a fresh tier over an existing key continues the accumulation (§10.6)", async () => {
      const h = await open();
      const first = h.appendLog<string>({ name: "L" });
      first.appendEntries(["a", "b"]);
      await first.flush();
      const h2 = await reopen(h);
      const second = h2.appendLog<string>({ name: "L" });
      expect(await entriesOf(second)).toEqual(["a", "b"]);
      second.appendEntries(["c"]);
      await second.flush();
      expect(await entriesOf(second)).toEqual(["a", "b", "c"]);
      const h3 = await reopen(h2);
      expect(await entriesOf(h3.appendLog<string>({ name: "L" }))).toEqual(["a", "b", "c"]);
    });

    it("keyOf partitions entries into buckets (§10.6)", async () => {
      const h = await open();
      type E = { topic: string; id: number };
      const log = h.appendLog<E>({ name: "events", keyOf: (e) => e.topic, debounceMs: HELD });
      log.appendEntries([
        { topic: "orders", id: 1 },
        { topic: "shipments", id: 10 },
        { topic: "orders", id: 2 },
      ]);
      await log.flush();
      expect(await entriesOf(log, "orders")).toEqual([
        { id: 1, topic: "orders" },
        { id: 2, topic: "orders" },
      ]);
      expect(await entriesOf(log, "shipments")).toEqual([{ id: 10, topic: "shipments" }]);
      expect(await entriesOf(log, "events")).toEqual([]);
      expect(await entriesOf(log)).toEqual([
        { topic: "orders", id: 1 },
        { topic: "orders", id: 2 },
        { topic: "shipments", id: 10 },
      ]);
    });

    it("loadEntries paginates with cursor/pageSize over several flushes (§4.4 vectors)", async () => {
      const h = await open();
      const log = h.appendLog<number>({ name: "log", debounceMs: HELD });
      for (const batch of [[10, 20], [30], [40, 50]]) {
        log.appendEntries(batch);
        await log.flush();
      }
      const p1 = await log.loadEntries({ pageSize: 2 });
      expect(p1).toEqual({ entries: [10, 20], cursor: { position: 2 } });
      const p2 = await log.loadEntries({ pageSize: 2, cursor: p1.cursor! });
      expect(p2).toEqual({ entries: [30, 40], cursor: { position: 4 } });
      const p3 = await log.loadEntries({ pageSize: 2, cursor: p2.cursor! });
      expect(p3).toEqual({ entries: [50], cursor: undefined });

      expect(await log.loadEntries({ pageSize: 2, cursor: { position: 10 } })).toEqual({ entries: [], cursor: undefined });
      expect(await log.loadEntries({ cursor: { position: 10 } })).toEqual({ entries: [], cursor: undefined });
      expect(await log.loadEntries()).toEqual({ entries: [10, 20, 30, 40, 50], cursor: undefined });
      expect(await log.loadEntries({ cursor: { position: 1 } })).toEqual({ entries: [20, 30, 40, 50], cursor: undefined });
      for (const pageSize of [1.5, Number.NaN, 0, -1, Number.POSITIVE_INFINITY]) {
        expect(await log.loadEntries({ pageSize }), `pageSize ${pageSize}`).toEqual({
          entries: [10, 20, 30, 40, 50],
          cursor: undefined,
        });
        expect(await log.loadEntries({ pageSize, cursor: { position: 3 } }), `pageSize ${pageSize} from 3`).toEqual({
          entries: [40, 50],
          cursor: undefined,
        });
      }
      expect(await log.loadEntries({ pageSize: 5 })).toEqual({ entries: [10, 20, 30, 40, 50], cursor: undefined });
    });

    it("loadEntries keyFilter is a literal prefix of bucket keys", async () => {
      const h = await open();
      const log = h.appendLog<string>({ name: "log", keyOf: (e) => e.split(":")[0]!, debounceMs: HELD });
      log.appendEntries(["a/1:x", "ab/2:y", "a/1:z", "a%:p", "ab:q"]);
      await log.flush();
      expect(await entriesOf(log, "a/")).toEqual(["a/1:x", "a/1:z"]);
      expect(await entriesOf(log, "a%")).toEqual(["a%:p"]);
      expect(await entriesOf(log, "ab")).toEqual(["ab:q", "ab/2:y"]);
      expect(await log.loadEntries({ keyFilter: "ab", pageSize: 1 })).toEqual({ entries: ["ab:q"], cursor: { position: 1 } });
    });

    it("a key holding a plain JSON array (reference layout) still loads and keeps accumulating", async () => {
      const h = await open();
      await h.raw.write("L", utf8('["a","b"]'));
      const log = h.appendLog<string>({ name: "L" });
      expect(await entriesOf(log)).toEqual(["a", "b"]);
      log.appendEntries(["c"]);
      await log.flush();
      expect(await entriesOf(log)).toEqual(["a", "b", "c"]);
      const h2 = await reopen(h);
      const again = h2.appendLog<string>({ name: "L" });
      again.appendEntries(["d"]);
      await again.flush();
      expect(await entriesOf(again)).toEqual(["a", "b", "c", "d"]);
    });

    it('layout "array" keeps the reference layout: one JSON array per key', async () => {
      const h = await open();
      const log = h.appendLog<number>({ name: "arr", layout: "array", debounceMs: HELD });
      log.appendEntries([1, 2]);
      await log.flush();
      log.appendEntries([3]);
      await log.flush();
      expect(await h.raw.list("arr")).toEqual(["arr"]);
      expect(text(await h.raw.read("arr"))).toBe("[1,2,3]");
      expect(await entriesOf(log)).toEqual([1, 2, 3]);
    });

    it("compact() merges a bucket's segments into one reference-layout value; the log reads the same", async () => {
      const h = await open();
      const log = h.appendLog<number>({ name: "C", debounceMs: HELD });
      for (const n of [1, 2, 3]) {
        log.appendEntries([n]);
        await log.flush();
      }
      expect((await h.raw.list("C")).length).toBeGreaterThan(1);
      await log.compact();
      expect(await h.raw.list("C")).toEqual(["C"]);
      expect(text(await h.raw.read("C"))).toBe("[1,2,3]");
      expect(await entriesOf(log)).toEqual([1, 2, 3]);
      log.appendEntries([4]);
      await log.flush();
      expect(await entriesOf(log)).toEqual([1, 2, 3, 4]);
      log.appendEntries([5]);
      await log.compact(); // flushes first
      expect(await h.raw.list("C")).toEqual(["C"]);
      expect(await entriesOf(log)).toEqual([1, 2, 3, 4, 5]);
      const h2 = await reopen(h);
      expect(await entriesOf(h2.appendLog<number>({ name: "C" }))).toEqual([1, 2, 3, 4, 5]);
    });

    it("a flush costs O(entries flushed): bytes and writes per flush do not grow with the log (docs/design.md §3.11)", async () => {
      const h = await open();
      const log = h.appendLog<{ v: string }>({ name: "big", debounceMs: HELD });
      const batch = Array.from({ length: 10 }, () => ({ v: "0123456789abcdef" }));
      const deltas: Array<{ bytes: number; writes: number }> = [];
      for (let i = 0; i < 25; i++) {
        log.appendEntries(batch);
        const before = await h.written();
        await log.flush();
        const after = await h.written();
        deltas.push({ bytes: after.bytes - before.bytes, writes: after.writes - before.writes });
      }
      expect(deltas[0]!.bytes).toBeGreaterThan(0);
      expect(deltas[0]!.writes).toBe(1);
      for (const d of deltas) expect(d).toEqual(deltas[0]);
      expect((await entriesOf(log)).length).toBe(250);
    });

    it("rollback vector: [{a:1}] flushed, [{a:2}] rolled back -> [{a:1}] (§10.6)", async () => {
      const h = await open();
      const log = h.appendLog<{ a: number }>({ name: "log", debounceMs: HELD });
      log.appendEntries([{ a: 1 }]);
      await log.flush();
      log.appendEntries([{ a: 2 }]);
      log.rollback();
      await log.flush();
      expect(await entriesOf(log)).toEqual([{ a: 1 }]);
    });

    it("rejects a bucket key containing the segment separator U+001F with invalid-key", async () => {
      const h = await open();
      const log = h.appendLog<string>({ name: "log", keyOf: (e) => e });
      expectCoded(syncErrorOf(() => log.appendEntries(["bad\u001fkey"])), StorageError, "invalid-key");
      log.appendEntries(["fine"]);
      await log.flush();
      expect(await entriesOf(log, "fine")).toEqual(["fine"]);
    });
  });
}
