/**
 * One conformance suite for every StorageBackend. Optional behaviour is gated on `supports`; a gated
 * case that does not apply still checks that the manifest tells the truth, so nothing is skipped.
 * Listing order is checked against an oracle independent of the code under test: UTF-8 byte order.
 */
import fc from "fast-check";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import type { BatchOp, ExpectedValue, StorageBackend } from "../../src/backend/types.js";
import { errorOf } from "../support/wait.js";

export interface BackendSuiteOptions<B extends StorageBackend> {
  name: string;
  /** A fresh, empty backend on its own storage each call. */
  factory: () => B | Promise<B>;
  /** Opens the storage of closed backend `b` again; required exactly when `supports.persistent`. */
  reopen?: (b: B) => B | Promise<B>;
  cleanup?: () => void | Promise<void>;
  /** A read-only handle on the storage of open backend `b`; given exactly for backends that have read-only handles. */
  openReader?: (b: B) => StorageBackend | Promise<StorageBackend>;
  /** fast-check runs of the model property (default 40). */
  propertyRuns?: number;
}

const utf8 = (s: string): Buffer => Buffer.from(s, "utf8");

/** The oracle for listing order: code point order = UTF-8 byte order. */
function byUtf8(keys: Iterable<string>): string[] {
  return [...keys].sort((a, b) => Buffer.compare(utf8(a), utf8(b)));
}

/** The keys a listing of `b` shows, in order: all of them, but the empty key where the backend hides it. */
function listable(b: StorageBackend, keys: Iterable<string>): string[] {
  const sorted = byUtf8(keys);
  return b.supports.listsEmptyKey === false ? sorted.filter((k) => k !== "") : sorted;
}

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

async function expectStorageError(fn: () => unknown, code: string): Promise<void> {
  const err = await errorOf(fn);
  expect(err).toBeInstanceOf(StorageError);
  expect((err as StorageError).code).toBe(code);
}

function isThenable(v: unknown): boolean {
  return typeof (v as { then?: unknown } | null)?.then === "function";
}

export function backendSuite<B extends StorageBackend>(opts: BackendSuiteOptions<B>): void {
  describe(`StorageBackend conformance: ${opts.name}`, () => {
    const open: B[] = [];
    const make = async (): Promise<B> => {
      const b = await opts.factory();
      open.push(b);
      return b;
    };
    const reopen = async (b: B): Promise<B> => {
      if (opts.reopen === undefined) throw new Error("suite bug: reopen needed but not given");
      const b2 = await opts.reopen(b);
      open.push(b2);
      return b2;
    };

    afterEach(async () => {
      for (const b of open.splice(0)) await b.close?.();
    });
    afterAll(async () => {
      await opts.cleanup?.();
    });

    /** Required methods for a case that needs them; the manifest test checks they match `supports`. */
    const list = (b: B) => (b.list as NonNullable<B["list"]>).bind(b);
    const del = (b: B) => (b.delete as NonNullable<B["delete"]>).bind(b);
    const batch = (b: B) => (b.writeBatch as NonNullable<B["writeBatch"]>).bind(b);

    it("has a name and a truthful supports manifest", async () => {
      const b = await make();
      expect(typeof b.name).toBe("string");
      expect(b.name.length).toBeGreaterThan(0);
      const s = b.supports;
      for (const flag of ["list", "delete", "atomicBatch", "persistent", "durable", "sync"] as const) {
        expect(typeof s[flag]).toBe("boolean");
      }
      expect(typeof b.list === "function").toBe(s.list);
      expect(typeof b.delete === "function").toBe(s.delete);
      if (s.atomicBatch) expect(typeof b.writeBatch).toBe("function");
      expect(typeof b.writeBatchIf === "function").toBe(s.conditionalBatch === true);
      expect(typeof b.readPrefix === "function").toBe(s.readPrefix === true);
      expect(typeof b.sizes === "function").toBe(s.sizes === true);
      if (s.durable) expect(s.persistent).toBe(true);
      // The suite can only check persistence when it knows how to reopen.
      expect(opts.reopen !== undefined).toBe(s.persistent);
    });

    it("returns synchronously from every method when supports.sync", async () => {
      const b = await make();
      const results: unknown[] = [b.write("k", bytes(1)), b.read("k"), b.read("missing")];
      if (b.readMany) results.push(b.readMany(["k", "missing"]));
      if (b.readPrefix) results.push(b.readPrefix("k", 1), b.readPrefix("missing", 1));
      if (b.sizes) results.push(b.sizes(["k", "missing"]));
      if (b.list) results.push(b.list(), b.list("k"));
      if (b.delete) results.push(b.delete("k"));
      if (b.writeBatch) results.push(b.writeBatch([{ op: "put", key: "j", value: bytes(2) }]));
      if (b.writeBatchIf) results.push(b.writeBatchIf({ key: "j", value: bytes(2) }, [{ op: "delete", key: "j" }]));
      results.push(b.close?.());
      expect(results.some(isThenable)).toBe(!b.supports.sync);
    });

    it("reads a missing key as undefined", async () => {
      const b = await make();
      expect(await b.read("nope")).toBeUndefined();
      await b.write("other", bytes(1));
      expect(await b.read("nope")).toBeUndefined();
    });

    it("reads back what it wrote, as a Uint8Array", async () => {
      const b = await make();
      await b.write("a", bytes(1, 2, 3));
      const got = await b.read("a");
      expect(got).toBeInstanceOf(Uint8Array);
      expect(Array.from(got ?? [])).toEqual([1, 2, 3]);
    });

    it("reads many keys at once exactly as read reads each (when it has readMany)", async () => {
      const b = await make();
      if (b.readMany === undefined) {
        // Optional: readers fall back to read. Nothing else may depend on it.
        expect(b.readMany).toBeUndefined();
        return;
      }
      const readMany = b.readMany.bind(b);
      expect(await readMany([])).toEqual([]);
      const stored = ["", "a", "a\0", "é", "😀", "\uffff", "b/1", "b/2"];
      for (const [i, k] of stored.entries()) await b.write(k, bytes(i, 7));
      // Unsorted, with misses (below, between and above the stored keys) and a key twice.
      const asked = ["b/2", "missing", "a", "", "b/1", "😀", "a", "zzz", "é", "\uffff", "a\0", "0"];
      const got = await readMany(asked);
      expect(got).toHaveLength(asked.length);
      for (const [i, k] of asked.entries()) {
        const one = await b.read(k);
        if (one === undefined) expect(got[i]).toBeUndefined();
        else {
          expect(got[i]).toBeInstanceOf(Uint8Array);
          expect(Array.from(got[i]!)).toEqual(Array.from(one));
        }
      }
      // A repeated key gets bytes of its own, as two reads would.
      got[2]![0] = 99;
      expect(got[6]![0]).toBe(stored.indexOf("a"));
      expect(Array.from((await b.read("a")) ?? [])).toEqual([stored.indexOf("a"), 7]);
      // Many keys of one range, other keys between them, every third asked for, then all of them.
      const range = Array.from({ length: 300 }, (_, i) => `f/${String(i).padStart(4, "0")}`);
      for (const [i, k] of range.entries()) {
        await b.write(k, bytes(i % 256));
        await b.write(`${k}x`, bytes(1));
      }
      const third = range.filter((_, i) => i % 3 === 0);
      expect((await readMany(third)).map((v) => v?.[0])).toEqual(third.map((k) => Number(k.slice(2)) % 256));
      expect((await readMany(range)).map((v) => v?.[0])).toEqual(range.map((_, i) => i % 256));
      expect(await readMany(["f/", "f/0300", "f/0299y"])).toEqual([undefined, undefined, undefined]);
      // Keys are checked as read checks them.
      await expectStorageError(() => readMany(["a", "\ud800"]), "invalid-key");
      await expectStorageError(() => readMany(["a", 42 as unknown as string]), "invalid-key");
      expect(await errorOf(() => readMany("a" as unknown as string[]))).toBeInstanceOf(TypeError);
    });

    it("tells each value's byte length without reading it, as read's bytes have (when supports.sizes)", async () => {
      const b = await make();
      if (b.supports.sizes !== true) {
        // Optional: readers of many values then size their reads by the values read last.
        expect(b.sizes).toBeUndefined();
        return;
      }
      const sizes = b.sizes!.bind(b);
      expect(await sizes([])).toEqual([]);
      await b.write("empty", new Uint8Array(0));
      // A value past SQLite's and PostgreSQL's inline sizes (overflow pages, TOAST), the empty key.
      await b.write("big", new Uint8Array(300_000).fill(7));
      await b.write("", bytes(1, 2, 3));
      expect(await sizes(["big", "missing", "empty", "", "big"])).toEqual([300_000, undefined, 0, 3, 300_000]);
      // Many keys of a range (one scan where the backend has one), and a few of a wide one (each key alone).
      const keys = Array.from({ length: 200 }, (_, i) => `s/${String(i).padStart(3, "0")}`);
      if (b.writeBatch) await batch(b)(keys.map((key, i) => ({ op: "put", key, value: new Uint8Array(i) })));
      else for (const [i, key] of keys.entries()) await b.write(key, new Uint8Array(i));
      const asked = [...keys, "s/200", "s/0"];
      expect(await sizes(asked)).toEqual([...keys.map((_, i) => i), undefined, undefined]);
      expect(await sizes(["s/199", "s/000", "s/100", "s/1000", "s/050"])).toEqual([199, 0, 100, undefined, 50]);
      // A value written again: the length of what read returns now.
      await b.write("s/100", bytes(1));
      expect(await sizes(["s/099", "s/100", "s/101", "s/102"])).toEqual([99, 1, 101, 102]);
      // Keys are checked as read checks them.
      await expectStorageError(() => sizes(["a", "\ud800"]), "invalid-key");
      await expectStorageError(() => sizes(["a", 42 as unknown as string]), "invalid-key");
      expect(await errorOf(() => sizes("a" as unknown as string[]))).toBeInstanceOf(TypeError);
      await b.close?.();
      await expectStorageError(() => sizes(["big"]), "closed");
    });

    it("reads a value's prefix exactly as read's bytes cut to that length (when supports.readPrefix)", async () => {
      const b = await make();
      if (b.supports.readPrefix !== true) {
        // Optional: loadHead then reads the whole value.
        expect(b.readPrefix).toBeUndefined();
        return;
      }
      const readPrefix = b.readPrefix!.bind(b);
      expect(await readPrefix("missing", 10)).toBeUndefined();
      await b.write("empty", new Uint8Array(0));
      const empty = await readPrefix("empty", 10);
      expect(empty).toBeInstanceOf(Uint8Array);
      expect(empty?.byteLength).toBe(0);
      // Every byte value, a value past SQLite's and PostgreSQL's inline sizes (overflow pages, TOAST), the empty key.
      const big = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7 + (i >> 8)) % 256);
      await b.write("big", big);
      await b.write("", bytes(1, 2, 3));
      for (const n of [0, 1, 255, 256, 4096, 299_999, 300_000, 300_001, Number.MAX_SAFE_INTEGER]) {
        const got = await readPrefix("big", n);
        expect(got).toBeInstanceOf(Uint8Array);
        expect(Buffer.from(got!).equals(Buffer.from(big.subarray(0, n)))).toBe(true);
      }
      expect(Array.from((await readPrefix("", 2)) ?? [])).toEqual([1, 2]);
      // Its own bytes: changing them changes nothing stored.
      const got = (await readPrefix("big", 4))!;
      got[0] = (got[0]! + 1) % 256;
      expect((await b.read("big"))![0]).toBe(big[0]);
      for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "4" as unknown as number]) {
        await expectStorageError(() => readPrefix("big", bad), "invalid-argument");
      }
      await expectStorageError(() => readPrefix("\ud800", 4), "invalid-key");
      await b.close?.();
      await expectStorageError(() => readPrefix("big", 4), "closed");
    });

    it("does not alias caller buffers", async () => {
      const b = await make();
      const input = bytes(1, 2, 3);
      await b.write("a", input);
      input[0] = 99;
      const first = await b.read("a");
      expect(Array.from(first ?? [])).toEqual([1, 2, 3]);
      if (first) first[1] = 99;
      expect(Array.from((await b.read("a")) ?? [])).toEqual([1, 2, 3]);
    });

    it("writes a view's bytes only (subarray with an offset)", async () => {
      const b = await make();
      const whole = bytes(9, 9, 1, 2, 9);
      await b.write("v", whole.subarray(2, 4));
      expect(Array.from((await b.read("v")) ?? [])).toEqual([1, 2]);
    });

    it("overwrites a key", async () => {
      const b = await make();
      await b.write("a", bytes(1, 2, 3));
      await b.write("a", bytes(4));
      expect(Array.from((await b.read("a")) ?? [])).toEqual([4]);
    });

    it("stores zero-length values as present, not missing", async () => {
      const b = await make();
      await b.write("empty", new Uint8Array(0));
      const got = await b.read("empty");
      expect(got).toBeInstanceOf(Uint8Array);
      expect(got?.byteLength).toBe(0);
      if (b.list) expect(await b.list()).toEqual(["empty"]);
    });

    it("stores all 256 byte values and a large value exactly", async () => {
      const b = await make();
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      await b.write("all", all);
      expect(Buffer.from((await b.read("all")) ?? []).equals(Buffer.from(all))).toBe(true);
      const large = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 2654435761) >>> 24);
      await b.write("large", large);
      expect(Buffer.from((await b.read("large")) ?? []).equals(Buffer.from(large))).toBe(true);
    });

    it("deletes keys, tolerating missing ones (when supports.delete)", async () => {
      const b = await make();
      if (!b.supports.delete) {
        expect(b.delete).toBeUndefined();
        return;
      }
      await b.write("a", bytes(1));
      await b.write("b", bytes(2));
      await del(b)("a");
      expect(await b.read("a")).toBeUndefined();
      expect(Array.from((await b.read("b")) ?? [])).toEqual([2]);
      await del(b)("a");
      await del(b)("never-written");
      if (b.list) expect(await b.list()).toEqual(["b"]);
    });

    it("lists by literal prefix in ascending order (g/10, g/02, g/01, other)", async () => {
      const b = await make();
      if (!b.supports.list) {
        expect(b.list).toBeUndefined();
        return;
      }
      for (const k of ["g/10", "g/02", "g/01", "other"]) await b.write(k, bytes(1));
      expect(await list(b)("g/")).toEqual(["g/01", "g/02", "g/10"]);
      expect(await list(b)()).toEqual(["g/01", "g/02", "g/10", "other"]);
      expect(await list(b)("")).toEqual(["g/01", "g/02", "g/10", "other"]);
      expect(await list(b)("zzz")).toEqual([]);
      expect(await list(b)("g/01")).toEqual(["g/01"]);
    });

    it("treats %, _ and \\ in prefixes literally, case-sensitively, a/ apart from ab/", async () => {
      const b = await make();
      if (!b.supports.list) {
        expect(b.list).toBeUndefined();
        return;
      }
      const keys = ["a%b", "a_b", "a\\b", "axb", "aXb", "A/x", "a/x", "a/", "ab/x", "ab", "a%", "a"];
      for (const k of keys) await b.write(k, bytes(1));
      const l = list(b);
      expect(await l("a%")).toEqual(["a%", "a%b"]);
      expect(await l("a_")).toEqual(["a_b"]);
      expect(await l("a\\")).toEqual(["a\\b"]);
      expect(await l("a/")).toEqual(["a/", "a/x"]);
      expect(await l("ab/")).toEqual(["ab/x"]);
      expect(await l("A")).toEqual(["A/x"]);
      expect(await l("aX")).toEqual(["aXb"]);
      expect(await l("ax")).toEqual(["axb"]);
      expect(await l("a")).toEqual(byUtf8(keys.filter((k) => k.startsWith("a"))));
      expect(await l()).toEqual(byUtf8(keys));
    });

    it("handles non-ASCII, emoji and NUL keys, ordered by code point (not UTF-16)", async () => {
      const b = await make();
      const keys = ["z", "é", "\uffff", "😀", "\ud7ff", "\ue000", "a", "café", "👋 hello", "a\0b", "a\0", "€100"];
      for (const [i, k] of keys.entries()) await b.write(k, bytes(i));
      for (const [i, k] of keys.entries()) expect(Array.from((await b.read(k)) ?? [])).toEqual([i]);
      if (!b.supports.list) return;
      const all = await list(b)();
      expect(all).toEqual(byUtf8(keys));
      // JS's default sort would put the astral 😀 (a surrogate pair) before U+E000 and U+FFFF.
      expect(all.indexOf("😀")).toBeGreaterThan(all.indexOf("\uffff"));
      expect(await list(b)("a\0")).toEqual(["a\0", "a\0b"]);
      expect(await list(b)("caf")).toEqual(["café"]);
      expect(await list(b)("😀")).toEqual(["😀"]);
    });

    it("lists prefixes at the edges of the code point range", async () => {
      const b = await make();
      if (!b.supports.list) {
        expect(b.list).toBeUndefined();
        return;
      }
      const max = "\u{10FFFF}";
      const keys = [`x${max}`, `x${max}a`, `x${max}${max}`, "y", "x", "\ud7ff", "\ud7ffa", "\ue000", max, `${max}z`];
      for (const k of keys) await b.write(k, bytes(1));
      expect(await list(b)(`x${max}`)).toEqual(byUtf8([`x${max}`, `x${max}a`, `x${max}${max}`]));
      expect(await list(b)("\ud7ff")).toEqual(["\ud7ff", "\ud7ffa"]);
      expect(await list(b)(max)).toEqual([max, `${max}z`]);
      expect(await list(b)()).toEqual(byUtf8(keys));
    });

    it("supports the empty key", async () => {
      const b = await make();
      await b.write("", bytes(7));
      await b.write("a", bytes(8));
      expect(Array.from((await b.read("")) ?? [])).toEqual([7]);
      if (b.list) {
        // A backend may hide the empty key from listings (the file backend does, as both references do).
        const listed = b.supports.listsEmptyKey === false ? ["a"] : ["", "a"];
        expect(await b.list()).toEqual(listed);
        expect(await b.list("")).toEqual(listed);
      }
      if (b.delete) {
        await b.delete("");
        expect(await b.read("")).toBeUndefined();
      }
    });

    it("applies a writeBatch of puts and deletes in op order", async () => {
      const b = await make();
      if (b.writeBatch === undefined) {
        expect(b.supports.atomicBatch).toBe(false);
        return;
      }
      await b.write("x", bytes(0));
      await b.write("y", bytes(0));
      const ops: BatchOp[] = [
        { op: "put", key: "a", value: bytes(1) },
        { op: "put", key: "b", value: bytes(2) },
        { op: "delete", key: "x" },
        { op: "put", key: "a", value: bytes(3) },
        { op: "delete", key: "missing" },
        { op: "delete", key: "y" },
        { op: "put", key: "y", value: bytes(4) },
        { op: "put", key: "z", value: bytes(5) },
        { op: "delete", key: "z" },
      ];
      await batch(b)(ops);
      expect(Array.from((await b.read("a")) ?? [])).toEqual([3]);
      expect(Array.from((await b.read("b")) ?? [])).toEqual([2]);
      expect(await b.read("x")).toBeUndefined();
      expect(Array.from((await b.read("y")) ?? [])).toEqual([4]);
      expect(await b.read("z")).toBeUndefined();
      if (b.list) expect(await b.list()).toEqual(["a", "b", "y"]);
      await batch(b)([]);
      if (b.list) expect(await b.list()).toEqual(["a", "b", "y"]);
    });

    it("applies long runs of puts and deletes in a batch (runs longer than one statement's rows)", async () => {
      const b = await make();
      if (b.writeBatch === undefined) {
        expect(b.supports.atomicBatch).toBe(false);
        return;
      }
      const key = (i: number): string => `k/${String(i).padStart(3, "0")}`;
      const model = new Map<string, number>();
      const ops: BatchOp[] = [];
      const put = (i: number, v: number): void => {
        ops.push({ op: "put", key: key(i), value: bytes(v) });
        model.set(key(i), v);
      };
      const del = (i: number): void => {
        ops.push({ op: "delete", key: key(i) });
        model.delete(key(i));
      };
      for (let i = 0; i < 100; i++) put(i, 1);
      for (let i = 0; i < 70; i++) del(i * 2); // 70 deletes in a row, 20 of them of keys never written
      for (let i = 0; i < 33; i++) put(i * 3, 2); // puts after the deletes win
      for (let i = 60; i < 125; i++) del(i); // 65 in a row: two full runs and one left over
      del(1);
      put(1, 3);
      await batch(b)(ops);
      for (let i = 0; i < 140; i++) {
        const got = await b.read(key(i));
        expect(got === undefined ? undefined : got[0]).toEqual(model.get(key(i)));
      }
      if (b.list) expect(await b.list("k/")).toEqual([...model.keys()].sort());
    });

    it("rejects a batch with an invalid op before applying any of it", async () => {
      const b = await make();
      if (b.writeBatch === undefined) {
        expect(b.supports.atomicBatch).toBe(false);
        return;
      }
      await b.write("keep", bytes(1));
      await expectStorageError(
        () =>
          batch(b)([
            { op: "put", key: "a", value: bytes(1) },
            { op: "put", key: "bad\ud800", value: bytes(2) },
            { op: "delete", key: "keep" },
          ]),
        "invalid-key",
      );
      const notBytes = [{ op: "put", key: "a", value: [1, 2] }] as unknown as BatchOp[];
      expect(await errorOf(() => batch(b)(notBytes))).toBeInstanceOf(TypeError);
      const badOp = [{ op: "upsert", key: "a" }] as unknown as BatchOp[];
      expect(await errorOf(() => batch(b)(badOp))).toBeInstanceOf(TypeError);
      expect(await b.read("a")).toBeUndefined();
      expect(Array.from((await b.read("keep")) ?? [])).toEqual([1]);
    });

    it("applies a conditional batch only while the expected value is stored (when supports.conditionalBatch)", async () => {
      const b = await make();
      if (b.supports.conditionalBatch !== true) {
        expect(b.writeBatchIf).toBeUndefined();
        return;
      }
      const writeIf = b.writeBatchIf!.bind(b);
      const value = async (key: string): Promise<number[] | undefined> => {
        const v = await b.read(key);
        return v === undefined ? undefined : Array.from(v);
      };
      await b.write("base", bytes(1, 2));
      await b.write("f/1", bytes(9));
      const fold: BatchOp[] = [
        { op: "put", key: "base", value: bytes(3) },
        { op: "delete", key: "f/1" },
        { op: "put", key: "f/2", value: bytes(4) },
      ];
      // Another value (one byte off, shorter, longer, empty) or none: nothing is changed.
      for (const other of [bytes(1, 3), bytes(1), bytes(1, 2, 3), new Uint8Array(0), undefined]) {
        expect(await writeIf({ key: "base", value: other }, fold)).toBe(false);
      }
      expect([await value("base"), await value("f/1"), await value("f/2")]).toEqual([[1, 2], [9], undefined]);
      // The same bytes (here a view into a larger buffer): applied in op order, all of it.
      expect(await writeIf({ key: "base", value: bytes(0, 1, 2, 0).subarray(1, 3) }, fold)).toBe(true);
      expect([await value("base"), await value("f/1"), await value("f/2")]).toEqual([[3], undefined, [4]]);
      // No value expected: applied only while the key has none (an empty value is a value).
      expect(await writeIf({ key: "new", value: undefined }, [{ op: "put", key: "new", value: new Uint8Array(0) }])).toBe(true);
      expect(await writeIf({ key: "new", value: undefined }, [{ op: "put", key: "new", value: bytes(1) }])).toBe(false);
      expect(await value("new")).toEqual([]);
      // An empty batch answers the check alone.
      expect(await writeIf({ key: "new", value: new Uint8Array(0) }, [])).toBe(true);
      expect(await writeIf({ key: "missing", value: bytes(1) }, [])).toBe(false);
      // A large value is compared whole: its last byte off is another value.
      const big = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7 + (i >> 8)) % 256);
      await b.write("big", big);
      const off = big.slice();
      off[off.length - 1] = off[off.length - 1]! ^ 1;
      expect(await writeIf({ key: "big", value: off }, [{ op: "delete", key: "big" }])).toBe(false);
      expect(await writeIf({ key: "big", value: big }, [{ op: "delete", key: "big" }])).toBe(true);
      expect(await b.read("big")).toBeUndefined();
      // Bad input is refused before anything is applied, as writeBatch refuses it.
      await expectStorageError(() => writeIf({ key: "\ud800", value: undefined }, []), "invalid-key");
      await expectStorageError(() => writeIf({ key: "base", value: bytes(3) }, [{ op: "delete", key: "f/2" }, { op: "put", key: "bad\ud800", value: bytes(1) }]), "invalid-key");
      expect(await errorOf(() => writeIf(null as unknown as ExpectedValue, []))).toBeInstanceOf(TypeError);
      expect(await errorOf(() => writeIf({ key: "base", value: [3] as unknown as Uint8Array }, []))).toBeInstanceOf(TypeError);
      expect(await errorOf(() => writeIf({ key: "base", value: bytes(3) }, "ops" as unknown as BatchOp[]))).toBeInstanceOf(TypeError);
      expect(await value("f/2")).toEqual([4]);
      if (opts.openReader !== undefined) {
        const r = await opts.openReader(b);
        try {
          await expectStorageError(() => r.writeBatchIf!({ key: "base", value: bytes(3) }, [{ op: "delete", key: "base" }]), "read-only");
        } finally {
          await r.close?.();
        }
        expect(await value("base")).toEqual([3]);
      }
    });

    it("applies a conditional batch expecting several keys only while every one holds its value (when supports.conditionalKeys)", async () => {
      const b = await make();
      if (b.supports.conditionalKeys !== true) {
        expect(b.supports.conditionalKeys ?? false).toBe(false);
        return;
      }
      const writeIf = b.writeBatchIf!.bind(b);
      const value = async (key: string): Promise<number[] | undefined> => {
        const v = await b.read(key);
        return v === undefined ? undefined : Array.from(v);
      };
      await b.writeBatch!([
        { op: "put", key: "k1", value: bytes(1) },
        { op: "put", key: "k2", value: bytes(2) },
      ]);
      const ops: BatchOp[] = [
        { op: "put", key: "k1", value: bytes(11) },
        { op: "put", key: "k3", value: bytes(3) },
      ];
      // Any one key off (a value, a missing key that has one, listed in either order): nothing is changed.
      expect(await writeIf([{ key: "k1", value: bytes(1) }, { key: "k2", value: bytes(9) }], ops)).toBe(false);
      expect(await writeIf([{ key: "k2", value: bytes(2) }, { key: "k1", value: bytes(9) }], ops)).toBe(false);
      expect(await writeIf([{ key: "k1", value: bytes(1) }, { key: "k2", value: undefined }], ops)).toBe(false);
      expect([await value("k1"), await value("k3")]).toEqual([[1], undefined]);
      // Every key as expected (a missing one expected missing): applied, all of it.
      expect(await writeIf([{ key: "k2", value: bytes(2) }, { key: "k3", value: undefined }, { key: "k1", value: bytes(1) }], ops)).toBe(true);
      expect([await value("k1"), await value("k2"), await value("k3")]).toEqual([[11], [2], [3]]);
      // A list of one is the single form; an empty list or a bad entry is refused before anything is applied.
      expect(await writeIf([{ key: "k3", value: bytes(3) }], [{ op: "delete", key: "k3" }])).toBe(true);
      expect(await value("k3")).toBeUndefined();
      expect(await errorOf(() => writeIf([], ops))).toBeInstanceOf(TypeError);
      expect(await errorOf(() => writeIf([{ key: "k1", value: bytes(11) }, null as unknown as ExpectedValue], ops))).toBeInstanceOf(TypeError);
      await expectStorageError(() => writeIf([{ key: "k1", value: bytes(11) }, { key: "\ud800", value: undefined }], ops), "invalid-key");
      expect(await value("k3")).toBeUndefined();
    });

    it("a read-only handle's readConsistent holds one point in time while the writer commits (when it has one)", async () => {
      const b = await make();
      if (opts.openReader === undefined) {
        expect(b.readConsistent).toBeUndefined();
        return;
      }
      await b.write("k", bytes(1));
      await b.write("old", bytes(2));
      const r = await opts.openReader(b);
      try {
        expect(r.readOnly).toBe(true);
        if (r.readConsistent === undefined) {
          expect(b.readConsistent).toBeUndefined();
          return;
        }
        // A writer's handle would hold back its own writes: refused, with the typed error.
        if (b.readConsistent !== undefined) await expectStorageError(() => b.readConsistent!(async () => 1), "invalid-argument");
        const seen = await r.readConsistent(async () => {
          const first = await r.read("k");
          await b.write("k", bytes(3));
          if (b.delete) await b.delete("old");
          await b.write("new", bytes(4));
          const inner = await r.readConsistent!(async () => [await r.read("k"), await r.read("old"), await r.read("new")]);
          return { first, inner, listed: r.list ? await r.list() : ["k", "old"] };
        });
        expect(seen).toEqual({ first: bytes(1), inner: [bytes(1), bytes(2), undefined], listed: listable(r, ["k", "old"]) });
        expect([await r.read("k"), await r.read("new")]).toEqual([bytes(3), bytes(4)]);
      } finally {
        await r.close?.();
      }
    });

    it("keeps data across close and reopen (when supports.persistent)", async () => {
      const b = await make();
      if (!b.supports.persistent) {
        expect(opts.reopen).toBeUndefined();
        return;
      }
      const entries: [string, Uint8Array][] = [
        ["", bytes(1)],
        ["g/01", bytes(2, 3)],
        ["😀/é", new Uint8Array(0)],
        ["a%_\\", Uint8Array.from({ length: 256 }, (_, i) => i)],
      ];
      for (const [k, v] of entries) await b.write(k, v);
      if (b.writeBatch) {
        await b.writeBatch([
          { op: "put", key: "batched", value: bytes(9) },
          { op: "delete", key: "g/01" },
          { op: "put", key: "g/01", value: bytes(4) },
        ]);
        entries[1] = ["g/01", bytes(4)];
        entries.push(["batched", bytes(9)]);
      }
      await b.close?.();
      const b2 = await reopen(b);
      for (const [k, v] of entries) expect(Buffer.from((await b2.read(k)) ?? [0xff]).equals(Buffer.from(v))).toBe(true);
      if (b2.list) expect(await b2.list()).toEqual(listable(b2, entries.map(([k]) => k)));
    });

    it("closes idempotently; any later call throws StorageError('closed')", async () => {
      const b = await make();
      await b.write("a", bytes(1));
      if (b.close === undefined) {
        // Nothing to release: the backend stays usable.
        expect(Array.from((await b.read("a")) ?? [])).toEqual([1]);
        return;
      }
      await b.close();
      await b.close();
      await expectStorageError(() => b.read("a"), "closed");
      if (b.readMany) await expectStorageError(() => b.readMany?.(["a"]), "closed");
      await expectStorageError(() => b.write("a", bytes(2)), "closed");
      if (b.delete) await expectStorageError(() => b.delete?.("a"), "closed");
      if (b.list) await expectStorageError(() => b.list?.(), "closed");
      if (b.writeBatch) await expectStorageError(() => b.writeBatch?.([]), "closed");
      if (b.writeBatchIf) await expectStorageError(() => b.writeBatchIf?.({ key: "a", value: undefined }, []), "closed");
    });

    it("rejects keys with lone surrogates (and non-strings) as invalid-key", async () => {
      const b = await make();
      for (const key of ["\ud800", "a\udc00", "\udc00\ud800", "x\ud83d"]) {
        await expectStorageError(() => b.write(key, bytes(1)), "invalid-key");
        await expectStorageError(() => b.read(key), "invalid-key");
        if (b.readMany) await expectStorageError(() => b.readMany?.([key]), "invalid-key");
        if (b.delete) await expectStorageError(() => b.delete?.(key), "invalid-key");
        if (b.list) await expectStorageError(() => b.list?.(key), "invalid-key");
      }
      await expectStorageError(() => b.write(42 as unknown as string, bytes(1)), "invalid-key");
      expect(await errorOf(() => b.write("k", "not bytes" as unknown as Uint8Array))).toBeInstanceOf(TypeError);
      if (b.list) expect(await b.list()).toEqual([]);
    });

    it("behaves like a Map under random writes, deletes and batches (property)", async () => {
      const key = fc.oneof(
        fc.constantFrom("", "a", "a/", "a/b", "ab", "b", "A", "é", "😀", "\uffff", "%", "_", "\\", "a\0"),
        fc.string({ unit: "binary", maxLength: 4 }),
      );
      const value = fc.uint8Array({ maxLength: 12 });
      const batchOp = fc.oneof(
        fc.record({ op: fc.constant("put" as const), key, value }),
        fc.record({ op: fc.constant("delete" as const), key }),
      );
      const command = fc.oneof(
        fc.record({ kind: fc.constant("write" as const), key, value }),
        fc.record({ kind: fc.constant("delete" as const), key }),
        fc.record({ kind: fc.constant("batch" as const), ops: fc.array(batchOp, { maxLength: 5 }) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(command, { maxLength: 16 }), fc.array(key, { maxLength: 3 }), async (cmds, probes) => {
          const b = await make();
          const model = new Map<string, Uint8Array>();
          for (const c of cmds) {
            if (c.kind === "write") {
              await b.write(c.key, c.value);
              model.set(c.key, c.value);
            } else if (c.kind === "delete") {
              if (!b.delete) continue;
              await b.delete(c.key);
              model.delete(c.key);
            } else {
              if (!b.writeBatch) continue;
              await b.writeBatch(c.ops);
              for (const op of c.ops) {
                if (op.op === "put") model.set(op.key, op.value);
                else model.delete(op.key);
              }
            }
          }
          const asked = [...model.keys(), ...probes];
          const many = b.readMany ? await b.readMany(asked) : undefined;
          for (const [i, k] of asked.entries()) {
            const want = model.get(k);
            const wanted = want === undefined ? undefined : Array.from(want);
            const got = await b.read(k);
            expect(got === undefined ? undefined : Array.from(got)).toEqual(wanted);
            if (many) expect(many[i] === undefined ? undefined : Array.from(many[i]!)).toEqual(wanted);
          }
          if (b.list) {
            expect(await b.list()).toEqual(listable(b, model.keys()));
            for (const p of probes) {
              expect(await b.list(p)).toEqual(listable(b, [...model.keys()].filter((k) => k.startsWith(p))));
            }
          }
          await b.close?.();
        }),
        { numRuns: opts.propertyRuns ?? 40 },
      );
    });
  });
}
