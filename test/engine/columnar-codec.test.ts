/**
 * A codec may declare a columnar transport (Codec.columns): the engine carries the puts of a tier whose codec runs
 * in the worker as that transport's columns, and the worker rebuilds them with the same codec's `at`, whichever
 * codec it is. A value that does not fit crosses whole, in order with the others; a codec that runs on the main
 * thread sends bytes, never columns. The fixture counts, on this thread, the values it put in columns.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { CodecError } from "../../src/errors.js";
import { tempRoot, waitFor } from "./fixtures/helpers.js";
import { codec as columnarCodec, pushed } from "./fixtures/columnar-codec.mjs";

const MODULE = new URL("./fixtures/columnar-codec.mjs", import.meta.url).href;
const root = tempRoot("columnar");
afterAll(() => root.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});
const count = (): number => pushed.count;

describe("a module codec declaring columns", () => {
  it("kv and snapshot puts cross as its columns and come back equal; a value that does not fit crosses whole, in order", async () => {
    engine = openStorageEngine({ threads: 1 });
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("columns.db") };
    const kv = engine.kv<unknown>(store, { name: "kv", debounceMs: 60_000, codec: { module: MODULE, export: "codec" } });
    const snap = engine.snapshot<unknown>(store, { name: "snap", codec: { module: MODULE, export: "codec" }, keyOf: () => "s" });
    await Promise.all([kv.flush(), snap.flush()]); // both tiers open: the main thread has imported the module too
    const before = count();
    const saved: Record<string, unknown> = {
      a: { n: 1, data: "x" },
      b: { n: 2, data: [1, { z: null }] },
      misfit: { n: 3, data: "y", extra: true },
      d: { n: 4, data: "w" },
    };
    for (const [k, v] of Object.entries(saved)) kv.save(k, v);
    // One key written as fitting then misfit value, one the other way: columns and whole values keep their order.
    kv.save("fit-then-misfit", { n: 5, data: 1 });
    kv.save("fit-then-misfit", { n: 6 });
    kv.save("misfit-then-fit", { n: 7 });
    kv.save("misfit-then-fit", { n: 8, data: 2 });
    snap.save({ n: 9, data: { deep: [true] } });
    await Promise.all([kv.flush(), snap.flush()]);
    expect(count() - before).toBe(6); // a, b, d, the two fitting values of the ordered keys, the snapshot
    for (const [k, v] of Object.entries(saved)) expect(await kv.load(k)).toEqual(v);
    expect(await kv.load("fit-then-misfit")).toEqual({ n: 6 });
    expect(await kv.load("misfit-then-fit")).toEqual({ n: 8, data: 2 });
    expect(await snap.load("s")).toEqual({ n: 9, data: { deep: [true] } });
  });

  it("a value structured clone refuses, inside one tick's columns: only it is refused (CodecError), the others land", async () => {
    const errors: unknown[] = [];
    engine = openStorageEngine({ threads: 1, onError: (e) => void errors.push(e) });
    const kv = engine.kv<unknown>({ kind: "memory", name: root.fresh("unclonable") }, {
      name: "kv",
      debounceMs: 60_000,
      codec: { module: MODULE, export: "codec" },
    });
    await kv.flush();
    const before = count();
    kv.save("before", { n: 1, data: 1 });
    kv.save("bad", { n: 2, data: Symbol("not cloneable") });
    kv.save("after", { n: 3, data: 3 });
    expect(count() - before).toBe(3); // all three went into one op's columns
    await expect(kv.flush()).rejects.toMatchObject({ name: "CodecError", code: "encode-failed" });
    await waitFor(() => errors.length > 0);
    expect(errors).toHaveLength(1);
    expect(await kv.load("before")).toEqual({ n: 1, data: 1 });
    expect(await kv.load("after")).toEqual({ n: 3, data: 3 });
    expect(await kv.load("bad")).toBeUndefined();
  });

  it("a push that throws (a getter of the value) refuses that value alone, with the error thrown; the columns it half filled stay aligned", async () => {
    const errors: unknown[] = [];
    engine = openStorageEngine({ threads: 1, onError: (e) => void errors.push(e) });
    const kv = engine.kv<unknown>({ kind: "memory", name: root.fresh("throwing") }, {
      name: "kv",
      debounceMs: 60_000,
      codec: { module: MODULE, export: "codec" },
    });
    await kv.flush();
    const bad = {
      n: 2,
      get data(): never {
        throw new RangeError("no data here");
      },
    };
    kv.save("before", { n: 1, data: 1 });
    expect(() => kv.save("bad", bad)).not.toThrow(); // refused as a codec's refusal is: at the next flush
    kv.save("after", { n: 3, data: 3 }); // its n would read 2 if it joined the columns the throw left uneven
    const err = await kv.flush().then(
      () => undefined,
      (e: unknown) => e,
    );
    // A user codec's throw is typed (task 182): CodecError("encode-failed"), what it threw as its cause.
    expect(err).toBeInstanceOf(CodecError);
    expect((err as CodecError).code).toBe("encode-failed");
    expect((err as Error).message).toBe("no data here");
    expect((err as Error).cause).toBeInstanceOf(RangeError);
    await waitFor(() => errors.length > 0); // onError hears it on its own channel
    expect(errors).toHaveLength(1);
    expect(await kv.load("before")).toEqual({ n: 1, data: 1 });
    expect(await kv.load("after")).toEqual({ n: 3, data: 3 });
    expect(await kv.load("bad")).toBeUndefined();
  });

  it("an export whose columns member is not a transport is not a codec: the tier's calls fail with a TypeError", async () => {
    engine = openStorageEngine({ threads: 1 });
    const kv = engine.kv<unknown>({ kind: "memory", name: root.fresh("broken") }, { codec: { module: MODULE, export: "broken" } });
    const err = await kv.flush().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toMatch(/"broken" is not a codec/);
  });

  it("a transport whose encoder is not a function is not a codec either", async () => {
    engine = openStorageEngine({ threads: 1 });
    const kv = engine.kv<unknown>({ kind: "memory", name: root.fresh("broken-encoder") }, { codec: { module: MODULE, export: "brokenEncoder" } });
    const err = await kv.flush().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toMatch(/"brokenEncoder" is not a codec/);
  });
});

describe("a codec object that runs on the main thread", () => {
  it("sends bytes even when it declares columns, and its values come back equal", async () => {
    engine = openStorageEngine({ threads: 1 });
    const kv = engine.kv<unknown>({ kind: "memory", name: root.fresh("main") }, { debounceMs: 60_000, codec: columnarCodec });
    expect(kv.codecName).toBe("columnar-json");
    await kv.flush();
    const before = count();
    kv.save("a", { n: 1, data: "x" });
    kv.save("b", { n: 2, data: [3] });
    await kv.flush();
    expect(count()).toBe(before);
    expect(await kv.load("a")).toEqual({ n: 1, data: "x" });
    expect(await kv.load("b")).toEqual({ n: 2, data: [3] });
  });
});

describe("a module codec's columnar encoder (found by review: its bytes may be pooled)", () => {
  it("bytes the encoder reuses for its next value are copied at once: every value is stored as saved", async () => {
    engine = openStorageEngine({ threads: 1 });
    const kv = engine.kv<unknown>({ kind: "memory", name: root.fresh("pooled") }, {
      name: "kv",
      debounceMs: 60_000,
      codec: { module: MODULE, export: "pooledEncoder" },
    });
    await kv.flush();
    const saved = Array.from({ length: 50 }, (_, i) => ({ n: i, data: "v".repeat(i * 37) }));
    saved.forEach((v, i) => kv.save(`k${i}`, v));
    await kv.flush();
    for (let i = 0; i < saved.length; i++) expect(await kv.load(`k${i}`)).toEqual(saved[i]);
  });

  it("a value the encoder returns as something other than bytes is refused alone (CodecError); an encoder that cannot be made falls back to the codec", async () => {
    const errors: unknown[] = [];
    engine = openStorageEngine({ threads: 1, onError: (e) => void errors.push(e) });
    const kv = engine.kv<unknown>({ kind: "memory", name: root.fresh("wrong") }, {
      name: "kv",
      debounceMs: 60_000,
      codec: { module: MODULE, export: "wrongEncoder" },
    });
    await kv.flush();
    kv.save("a", { n: 1, data: "x" });
    kv.save("b", { n: 2, data: "not bytes from the encoder" });
    kv.save("c", { n: 3, data: "z" });
    await expect(kv.flush()).rejects.toMatchObject({ name: "CodecError", code: "encode-failed" });
    expect(await kv.load("a")).toEqual({ n: 1, data: "x" });
    expect(await kv.load("b")).toBeUndefined();
    expect(await kv.load("c")).toEqual({ n: 3, data: "z" });
    kv.save("d", { n: 99, data: "encoder throws for this op" });
    kv.save("e", { n: 5, data: "e" });
    await kv.flush();
    expect(await kv.load("d")).toEqual({ n: 99, data: "encoder throws for this op" });
    expect(await kv.load("e")).toEqual({ n: 5, data: "e" });
  });
});
