/** The kv tier: save/load/list/delete, listByPrefix order and literal prefixes, 0-byte values. */
import { describe, expect, it } from "vitest";
import { HELD, collect } from "./common.js";
import type { SuiteContext } from "./context.js";

export function kvCases({ open }: SuiteContext): void {
  describe("kv", () => {
    it("saves, loads, lists (sorted) and deletes", async () => {
      const h = await open();
      const kv = h.kv<{ n: number }>({ name: "kv" });
      kv.save("b/2", { n: 3 });
      kv.save("a", { n: 1 });
      kv.save("b/1", { n: 2 });
      await kv.flush();
      expect(await kv.load("a")).toEqual({ n: 1 });
      expect(await kv.load("missing")).toBeUndefined();
      expect(await kv.list()).toEqual(["a", "b/1", "b/2"]);
      expect(await kv.list("b/")).toEqual(["b/1", "b/2"]);
      await kv.delete("a");
      expect(await kv.load("a")).toBeUndefined();
      expect(await kv.list()).toEqual(["b/1", "b/2"]);
      await kv.delete("never-there");
      expect(await kv.list()).toEqual(["b/1", "b/2"]);
    });

    it("repeat saves of a key before a flush write once, last value wins; load() does not see pending values", async () => {
      const h = await open();
      const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
      kv.save("a", 1);
      kv.save("a", 2);
      expect(await kv.load("a")).toBeUndefined();
      const before = await h.written();
      await kv.flush();
      expect((await h.written()).writes - before.writes).toBe(1);
      expect(await kv.load("a")).toBe(2);
    });

    it("listByPrefix yields in key order whatever the save order (§4.5 vector)", async () => {
      const h = await open();
      const kv = h.kv<number>({ name: "kv" });
      kv.save("p/00000000000000000003", 3);
      kv.save("p/00000000000000000001", 1);
      kv.save("p/00000000000000000002", 2);
      kv.save("q/00000000000000000000", 0);
      await kv.flush();
      expect(await collect(kv.listByPrefix("p/"))).toEqual([
        ["p/00000000000000000001", 1],
        ["p/00000000000000000002", 2],
        ["p/00000000000000000003", 3],
      ]);
    });

    it("listByPrefix and list take the prefix literally (a/ vs ab/, %, _)", async () => {
      const h = await open();
      const kv = h.kv<string>({ name: "kv" });
      for (const k of ["a/1", "ab/2", "a%b", "axb", "a_c", "abc"]) kv.save(k, k);
      await kv.flush();
      expect(await collect(kv.listByPrefix("a/"))).toEqual([["a/1", "a/1"]]);
      expect(await kv.list("a/")).toEqual(["a/1"]);
      expect((await collect(kv.listByPrefix("a%"))).map(([k]) => k)).toEqual(["a%b"]);
      expect((await collect(kv.listByPrefix("a_"))).map(([k]) => k)).toEqual(["a_c"]);
      expect(await collect(kv.listByPrefix("zz"))).toEqual([]);
    });

    it("listByPrefix and load skip 0-byte values", async () => {
      const h = await open();
      const kv = h.kv<number>({ name: "kv" });
      kv.save("p/1", 1);
      await kv.flush();
      await h.raw.write("p/0", new Uint8Array(0));
      expect(await kv.load("p/0")).toBeUndefined();
      expect(await collect(kv.listByPrefix("p/"))).toEqual([["p/1", 1]]);
    });

    it("delete removes the key from the backend and drops its pending value", async () => {
      const h = await open();
      const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
      kv.save("a", 1);
      await kv.flush();
      kv.save("a", 2);
      kv.save("b", 3);
      await kv.delete("a");
      await kv.delete("b");
      expect(await kv.load("a")).toBeUndefined();
      await kv.flush();
      expect(await kv.load("a")).toBeUndefined();
      expect(await kv.load("b")).toBeUndefined();
      expect(await kv.list()).toEqual([]);
    });

    it("deleteMany removes every key from the backend and their pending values", async () => {
      const h = await open();
      const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
      for (let i = 0; i < 40; i++) kv.save(`k/${String(i).padStart(2, "0")}`, i);
      await kv.flush();
      kv.save("k/00", -1); // pending over a stored value: goes with it
      kv.save("p", 7); // pending only
      const keys = ["p", "never-there", ...Array.from({ length: 39 }, (_, i) => `k/${String(i).padStart(2, "0")}`)];
      await kv.deleteMany!(keys);
      keys.length = 0; // the call copied its keys
      expect(await kv.list()).toEqual(["k/39"]);
      await kv.flush();
      expect(await kv.list()).toEqual(["k/39"]);
      expect(await kv.load("k/00")).toBeUndefined();
      await kv.deleteMany!([]); // nothing to do
      expect(await kv.load("k/39")).toBe(39);
    });

    it("sizes: each stored value's byte length, as the store holds it; pending values unseen (where the store tells sizes)", async () => {
      const h = await open();
      const kv = h.kv<string>({ name: "kv", debounceMs: HELD });
      // Engine tiers: every store kind's backend tells sizes. Inline: where the backend does (supports.sizes).
      expect(typeof kv.sizes === "function").toBe(h.mode === "worker" || h.supports.sizes === true);
      if (kv.sizes === undefined) return;
      kv.save("a", "x".repeat(300_000)); // past SQLite's and PostgreSQL's inline sizes
      kv.save("b", "");
      await kv.flush();
      kv.save("c", "pending");
      kv.save("b", "a pending value over a stored one");
      await h.raw.write("zero", new Uint8Array(0));
      const stored = async (key: string) => (await h.raw.read(key))?.byteLength;
      expect(await kv.sizes(["a", "missing", "b", "c", "zero", "a"])).toEqual([
        await stored("a"),
        undefined,
        await stored("b"),
        undefined,
        0,
        await stored("a"),
      ]);
      expect(await stored("a")).toBeGreaterThan(300_000);
      expect(await kv.sizes([])).toEqual([]);
      expect(() => kv.sizes!("a" as unknown as string[])).toThrow(TypeError);
    });

    it("rollback vector: a=1 flushed, debounced a=2 rolled back -> load(a) = 1 (§10.6)", async () => {
      const h = await open();
      const kv = h.kv<number>({ name: "kv", debounceMs: HELD });
      kv.save("a", 1);
      await kv.flush();
      kv.save("a", 2);
      kv.rollback();
      await kv.flush();
      expect(await kv.load("a")).toBe(1);
    });
  });
}
