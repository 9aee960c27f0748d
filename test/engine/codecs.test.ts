/**
 * Where codecs run: built-ins (json, json-bigint) in the worker, a custom codec object on the main thread
 * (its bytes cross), a codec named by module specifier imported by the worker.
 */
import { isMainThread, threadId } from "node:worker_threads";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { bigintJsonCodec, bigintJsonCodecFor, jsonCodec } from "../../src/codec/index.js";
import type { Codec } from "../../src/codec/types.js";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { CodecError } from "../../src/errors.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { sqliteAppendLog, sqliteKv } from "../../src/tier/index.js";
import { THREAD_CODEC_URL, expectCoded, tempRoot, type Stamped } from "./fixtures/helpers.js";

const root = tempRoot("codecs");
afterAll(() => root.remove());
let engine: StorageEngine;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
});

/** A custom codec object (not a built-in): counts calls and the thread each ran on. */
function countingCodec<T>(): Codec<T> & { encodes: boolean[]; decodes: boolean[] } {
  const encodes: boolean[] = [];
  const decodes: boolean[] = [];
  return {
    name: "counting-json",
    version: 1,
    encodes,
    decodes,
    encode(value: T): Uint8Array {
      encodes.push(isMainThread);
      return jsonCodec.encode(value);
    },
    decode(bytes: Uint8Array): T {
      decodes.push(isMainThread);
      return jsonCodec.decode(bytes) as T;
    },
  };
}

describe("built-in codecs run in the worker", () => {
  it("json: values cross as data and are encoded in the worker; the value rule refuses bad ones before they cross", async () => {
    engine = openStorageEngine({ threads: 1 });
    const path = root.fresh("json.db");
    const kv = engine.kv<unknown>({ kind: "sqlite", path }, { codec: jsonCodec, debounceMs: 60_000 });
    expect(kv.codecName).toBe("json");
    kv.save("ok", { b: 1, a: [true, null, "x"] });
    kv.save("bad", Number.NaN); // refused on the main thread by a validation walk (no encoding), reported at flush
    const err = await kv.flush().then(
      () => undefined,
      (e: unknown) => e,
    );
    expectCoded(err, CodecError, "encode-failed");
    expect((err as CodecError).details.path).toBe("$");
    expect(await kv.load("ok")).toEqual({ a: [true, null, "x"], b: 1 });
    await engine.close();
    const raw = sqliteBackend(path);
    expect(new TextDecoder().decode(raw.read("ok"))).toBe('{"a":[true,null,"x"],"b":1}'); // canonical, RFC 8785
    raw.close();
  });

  it("json-bigint: bigints cross to the worker and are stored in the bigint wire form inline tiers read", async () => {
    engine = openStorageEngine({ threads: 1 });
    const path = root.fresh("bigint.db");
    const store: StoreSpec = { kind: "sqlite", path };
    const big = 2n ** 80n + 7n;
    const kv = engine.kv<{ n: bigint }>(store, { codec: bigintJsonCodecFor<{ n: bigint }>() });
    const log = engine.appendLog<bigint>(store, { name: "log", codec: bigintJsonCodec as Codec<readonly bigint[]> });
    expect(kv.codecName).toBe("json-bigint");
    kv.save("big", { n: big });
    log.appendEntries([1n, big]);
    await Promise.all([kv.flush(), log.flush()]);
    expect(await kv.load("big")).toEqual({ n: big });
    expect((await log.loadEntries()).entries).toEqual([1n, big]);
    kv.save("bad", { n: Number.POSITIVE_INFINITY as unknown as bigint });
    const err = await kv.flush().then(
      () => undefined,
      (e: unknown) => e,
    );
    expectCoded(err, CodecError, "encode-failed");
    expect((err as CodecError).details.path).toBe("$.n");
    await engine.close();

    const inline = sqliteKv<{ n: bigint }>(path, { codec: bigintJsonCodecFor<{ n: bigint }>() });
    expect(await inline.load("big")).toEqual({ n: big });
    await inline.close();
    const raw = sqliteBackend(path);
    expect(new TextDecoder().decode(raw.read("big"))).toBe(`{"n":{"$bigint":"${big}"}}`);
    raw.close();
  });
});

describe("a custom codec object runs on the main thread", () => {
  it("kv: every encode and decode is a main-thread call; its bytes are what the store holds", async () => {
    engine = openStorageEngine({ threads: 1 });
    const path = root.fresh("custom.db");
    const codec = countingCodec<{ i: number }>();
    const kv = engine.kv<{ i: number }>({ kind: "sqlite", path }, { codec, debounceMs: 60_000 });
    expect(kv.codecName).toBe("counting-json");
    for (let i = 0; i < 25; i++) kv.save(`k${i}`, { i });
    expect(codec.encodes).toHaveLength(25); // encoded at save(), on this thread, before anything was sent
    await kv.flush();
    expect(await kv.load("k3")).toEqual({ i: 3 });
    const seen: number[] = [];
    for await (const { value } of kv.listByPrefix("k")) seen.push(value.i);
    expect(seen.sort((a, b) => a - b)).toEqual([...Array(25).keys()]);
    expect(codec.encodes.every((onMain) => onMain)).toBe(true);
    expect(codec.decodes).toHaveLength(1 + 25);
    expect(codec.decodes.every((onMain) => onMain)).toBe(true);
    await engine.close();
    const inline = sqliteKv<{ i: number }>(path);
    expect(await inline.load("k24")).toEqual({ i: 24 });
    await inline.close();
  });

  it("append-log and snapshot: chunks are encoded here and decoded here", async () => {
    engine = openStorageEngine({ threads: 1 });
    const path = root.fresh("custom-log.db");
    const store: StoreSpec = { kind: "sqlite", path };
    const logCodec = countingCodec<readonly string[]>();
    const snapCodec = countingCodec<{ name: string; v: number }>();
    const log = engine.appendLog<string>(store, { name: "log", codec: logCodec, keyOf: (e) => `log/${e[0]}` });
    const snap = engine.snapshot<{ name: string; v: number }>(store, { name: "snap", codec: snapCodec });
    log.appendEntries(["a1", "b1", "a2"]); // two buckets: one encode each
    log.appendEntries(["b2"]);
    snap.save({ name: "g", v: 1 });
    expect(logCodec.encodes).toEqual([true, true, true]);
    expect(snapCodec.encodes).toEqual([true]);
    await Promise.all([log.flush(), snap.flush()]);
    expect((await log.loadEntries({ keyFilter: "log/a" })).entries).toEqual(["a1", "a2"]);
    expect((await log.loadEntries({ keyFilter: "log/" })).entries).toEqual(["a1", "a2", "b1", "b2"]);
    expect(await snap.load("g")).toEqual({ name: "g", v: 1 });
    expect(logCodec.decodes.length).toBeGreaterThan(0);
    expect(logCodec.decodes.every((onMain) => onMain)).toBe(true);
    expect(snapCodec.decodes).toEqual([true]);
    await engine.close();
    const inline = sqliteAppendLog<string>(path, { name: "log" });
    expect((await inline.loadEntries({ keyFilter: "log/b" })).entries).toEqual(["b1", "b2"]);
    await inline.close();
  });
});

describe("a codec named by module specifier is imported by the worker", () => {
  it("kv and snapshot encode and decode inside the owning worker thread", async () => {
    engine = openStorageEngine({ threads: 1 });
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("module.db") };
    const codec = { module: THREAD_CODEC_URL, export: "codec" };
    const kv = engine.kv<unknown>(store, { codec });
    const snap = engine.snapshot<unknown>(store, { name: "snap", codec, keyOf: () => "snap-key" });
    expect(kv.codecName).toBe(`${THREAD_CODEC_URL}#codec`);
    kv.save("k", { x: 1 });
    snap.save([1, 2, 3]);
    await Promise.all([kv.flush(), snap.flush()]);
    const fromKv = (await kv.load("k")) as Stamped<{ x: number }>;
    const fromSnap = (await snap.load("snap-key")) as Stamped<number[]>;
    expect(fromKv.value).toEqual({ x: 1 });
    expect(fromSnap.value).toEqual([1, 2, 3]);
    for (const s of [fromKv, fromSnap]) {
      expect(s.encodedIn.isMainThread).toBe(false);
      expect(s.decodedIn.isMainThread).toBe(false);
      expect(s.encodedIn.threadId).not.toBe(threadId);
      expect(s.decodedIn.threadId).toBe(s.encodedIn.threadId);
    }
  });

  it("a module that does not export a codec fails the tier's calls with a TypeError naming the export", async () => {
    engine = openStorageEngine({ threads: 1 });
    const kv = engine.kv<unknown>({ kind: "memory", name: root.fresh("bad-module") }, {
      codec: { module: THREAD_CODEC_URL, export: "missing" },
    });
    const sameTick = kv.flush(); // travels in the same message as the tier's open
    const err = await sameTick.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toMatch(/missing/);
    const later = await kv.load("k").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(later).toBeInstanceOf(TypeError);
    expect((later as Error).message).toMatch(/missing/);
  });
});
