/** The kv tier: save/load/list/delete, listByPrefix order and literal prefixes, 0-byte values. */
import { describe, expect, it } from "vitest";
import { CodecError, StorageError } from "../../../src/errors.js";
import { errorOf, syncErrorOf } from "../../support/wait.js";
import { HELD, LONE_SURROGATE, collect, expectCoded } from "./common.js";
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

    it("saveMany takes its entries as one unit: one commit with sync-through, filter per entry, stored as saves", async () => {
      const h = await open();
      const kv = h.kv<number>({ name: "kv", filter: (key) => key !== "skip" });
      expect(typeof kv.saveMany).toBe("function");
      const before = await h.commits();
      kv.saveMany!([
        ["u/3", 3],
        ["u/1", 1],
        ["skip", 0],
        ["u/2", 2],
        ["u/1", 11], // a key twice: the later value wins, as with save
      ]);
      await kv.flush();
      expect(await h.commits(), "sync-through: one commit for the unit, not one per entry").toBe(before + 1);
      expect(await kv.list()).toEqual(["u/1", "u/2", "u/3"]);
      expect(await kv.load("u/1")).toBe(11);
      expect(await kv.load("u/3")).toBe(3);
      kv.saveMany!([]); // nothing to do
      kv.saveMany!([["one", 1]]);
      await kv.flush();
      expect(await kv.load("one")).toBe(1);
    });

    it("saveMany is all or none for the call's faults (an invalid key, bad arguments); a refused value is refused alone", async () => {
      const h = await open();
      const kv = h.kv<unknown>({ name: "kv", debounceMs: HELD });
      expectCoded(syncErrorOf(() => kv.saveMany!([["a", 1], [LONE_SURROGATE, 2]])), StorageError, "invalid-key");
      expect(syncErrorOf(() => kv.saveMany!("a" as unknown as Array<[string, unknown]>))).toBeInstanceOf(TypeError);
      expect(syncErrorOf(() => kv.saveMany!([["a", 1], ["b"]] as unknown as Array<[string, unknown]>))).toBeInstanceOf(TypeError);
      await kv.flush();
      expect(await kv.list(), "nothing of a refused call was taken").toEqual([]);
      kv.saveMany!([["a", 1], ["bad", { n: Number.NaN }], ["b", 2]]);
      expect(await errorOf(() => kv.flush())).toBeInstanceOf(CodecError);
      expect(await kv.list()).toEqual(["a", "b"]);
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
