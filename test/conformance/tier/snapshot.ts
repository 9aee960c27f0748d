/** The snapshot tier: last write wins per key, record keys, baselines found by name. */
import { describe, expect, it } from "vitest";
import { HELD, text, parsed, tick } from "./common.js";
import type { SuiteContext } from "./context.js";

export function snapshotCases({ open, reopen }: SuiteContext): void {
  describe("snapshot", () => {
    it("debounced last-write-wins: three saves, nothing written until flush(), then exactly the last (§10.6)", async () => {
      const h = await open();
      const s = h.snapshot<{ name: string; value: number }>({ name: "snap", debounceMs: 10_000 });
      for (const value of [1, 2, 3]) s.save({ name: "snap", value });
      await tick();
      expect(await h.raw.read("snap")).toBeUndefined();
      const before = await h.written();
      await s.flush();
      const after = await h.written();
      expect(text(await h.raw.read("snap"))).toBe('{"name":"snap","value":3}');
      expect(after.writes - before.writes).toBe(1);
      await s.flush();
      expect((await h.written()).writes).toBe(after.writes);
    });

    it("one record per key: saves of two keys in one debounce window are both written by the flush (review r264 F5)", async () => {
      const h = await open();
      const s = h.snapshot<{ name: string; v: number }>({ name: "multi", debounceMs: HELD });
      s.save({ name: "a", v: 1 });
      s.save({ name: "b", v: 1 });
      s.save({ name: "a", v: 2 }); // replaces a's pending record only
      await s.flush();
      expect({ a: parsed(await h.raw.read("a")), b: parsed(await h.raw.read("b")), last: await s.load() }).toEqual({
        a: { name: "a", v: 2 },
        b: { name: "b", v: 1 },
        last: { name: "a", v: 2 },
      });
    });

    it("keys a record by its own string `name`, else by the tier name (docs/design.md §3.6)", async () => {
      const h = await open();
      const s = h.snapshot<{ name?: unknown; x: number }>({ name: "tierA" });
      s.save({ name: "g1", x: 1 });
      await s.flush();
      expect(parsed(await h.raw.read("g1"))).toEqual({ name: "g1", x: 1 });
      expect(await h.raw.read("tierA")).toBeUndefined();
      s.save({ x: 2 });
      await s.flush();
      expect(parsed(await h.raw.read("tierA"))).toEqual({ x: 2 });
      s.save({ name: 42, x: 3 });
      await s.flush();
      expect(parsed(await h.raw.read("tierA"))).toEqual({ name: 42, x: 3 });
      expect(await s.load()).toEqual({ name: 42, x: 3 });
      expect(await s.load("g1")).toEqual({ name: "g1", x: 1 });
      expect(await s.load("nothing-here")).toBeUndefined();
    });

    it("a custom keyOf routes each save to its own key; load() returns the most recently written", async () => {
      const h = await open();
      const s = h.snapshot<{ id: number }>({ name: "snaps", keyOf: (v) => `snap/${v.id}` });
      s.save({ id: 1 });
      s.save({ id: 2 });
      await s.flush();
      expect(await h.raw.list("snap/")).toEqual(["snap/1", "snap/2"]);
      expect(await s.load()).toEqual({ id: 2 });
      expect(await s.load("snap/1")).toEqual({ id: 1 });
    });

    it("load() in a fresh tier (fresh process for persistent stores) finds a baseline by the record's name", async () => {
      const h = await open();
      const writer = h.snapshot<{ name: string; n: number }>({ name: "writer" });
      writer.save({ name: "graph-x", n: 1 });
      await writer.flush();
      const h2 = await reopen(h);
      expect(await h2.snapshot({ name: "graph-x" }).load()).toEqual({ name: "graph-x", n: 1 });
      const other = h2.snapshot({ name: "other" });
      expect(await other.load("graph-x")).toEqual({ name: "graph-x", n: 1 });
      expect(await other.load()).toBeUndefined();
    });

    it("treats a 0-byte stored value as absent", async () => {
      const h = await open();
      await h.raw.write("empty", new Uint8Array(0));
      expect(await h.snapshot({ name: "empty" }).load()).toBeUndefined();
    });

    it("rollback vector: {x:1} flushed, {x:2} rolled back -> load() = {x:1} (§10.6)", async () => {
      const h = await open();
      const s = h.snapshot<{ x: number }>({ name: "s", debounceMs: HELD });
      s.save({ x: 1 });
      await s.flush();
      s.save({ x: 2 });
      s.rollback();
      await s.flush();
      expect(await s.load()).toEqual({ x: 1 });
    });

    it("loadHead: the stored record's name and seq (its head), as load() finds it; undefined when nothing is stored", async () => {
      const h = await open();
      const s = h.snapshot<{ name: string; seq?: unknown; snapshot: unknown }>({ name: "heads", debounceMs: 10_000 });
      expect(s.loadHead).toBeTypeOf("function");
      const big = { nodes: Array.from({ length: 100 }, (_, i) => ({ id: `n${i}`, v: "}".repeat(i) })) };
      s.save({ name: "g1", seq: 41, snapshot: big });
      await s.flush();
      s.save({ name: 'g "2"', seq: 1.5, snapshot: big });
      await s.flush();
      s.save({ name: "g1", seq: 99, snapshot: {} }); // pending: not visible, as for load()
      expect(await s.loadHead!("g1")).toEqual({ name: "g1", seq: 41 });
      expect(await s.loadHead!('g "2"')).toEqual({ name: 'g "2"', seq: undefined }); // not a safe integer
      expect(await s.loadHead!()).toEqual({ name: 'g "2"', seq: undefined }); // the last key written
      expect(await s.loadHead!("nothing-here")).toBeUndefined();
      await s.flush();
      expect(await s.loadHead!("g1")).toEqual({ name: "g1", seq: 99 });
    });
  });
}
