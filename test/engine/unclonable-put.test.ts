/**
 * A value structured clone refuses (the port throws DataCloneError) among other puts of the same tier in one tick:
 * the tick's puts travel as ONE columnar op, and only the refused value may be refused (its tier's next flush
 * rejects with CodecError, onError hears it once); the others are written.
 */
import { afterAll, afterEach, expect, it } from "vitest";
import { until } from "../support/wait.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("unclonable");
afterAll(() => root.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

it("a value structured clone refuses, among other puts of its tier in one tick: its tier's next flush rejects with CodecError, the other saves land", async () => {
  const errors: unknown[] = [];
  engine = openStorageEngine({ threads: 1, onError: (e) => void errors.push(e) });
  // A codec the worker runs (no main-thread value rule), so the value reaches the port and structured clone refuses it.
  const codec = { module: new URL("./fixtures/thread-codec.mjs", import.meta.url).href, export: "codec" };
  const kv = engine.kv<unknown>({ kind: "sqlite", path: root.fresh("c.db") }, { name: "kv", debounceMs: 60_000, codec });
  await kv.flush();
  kv.save("before", 1);
  kv.save("bad", Symbol("not cloneable"));
  kv.save("after", 2);
  await turn();
  await expect(kv.flush()).rejects.toMatchObject({ name: "CodecError", code: "encode-failed" });
  // onError hears it on the actor's event channel, not in the flush's answer: it may come just after the rejection.
  await until(() => errors.length > 0, "onError to hear the refusal");
  await kv.flush();
  expect(errors).toHaveLength(1);
  expect(await kv.load("before")).toMatchObject({ value: 1 });
  expect(await kv.load("after")).toMatchObject({ value: 2 });
  expect(await kv.load("bad")).toBeUndefined();
});

it("the refusal settles the tick's weight once: an append and a main-thread-codec put resent beside it are not counted twice", async () => {
  engine = openStorageEngine({ threads: 1, onError: () => undefined });
  const store = { kind: "memory" as const, name: root.fresh("weights") };
  const codec = { module: new URL("./fixtures/thread-codec.mjs", import.meta.url).href, export: "codec" };
  const bad = engine.kv<unknown>(store, { name: "bad", codec });
  const log = engine.appendLog<{ i: number; pad: string }>(store, { name: "log" });
  const text = new TextEncoder();
  const textOut = new TextDecoder();
  const mainCodec = {
    name: "main-json",
    version: 1,
    encode: (v: unknown) => text.encode(JSON.stringify(v)),
    decode: (b: Uint8Array) => JSON.parse(textOut.decode(b)) as unknown,
  };
  const here = engine.kv<unknown>(store, { name: "here", codec: mainCodec });
  await Promise.all([bad.flush(), log.flush(), here.flush()]);
  // One tick: weighed appends, a weighed main-codec put, and a value structured clone refuses.
  for (let i = 0; i < 10; i++) log.appendEntries([{ i, pad: "x".repeat(100) }]);
  here.save("k", { pad: "y".repeat(5000) });
  bad.save("f", () => 1);
  await Promise.all([log.flush(), here.flush()]);
  await expect(bad.flush()).rejects.toMatchObject({ code: "encode-failed" });
  expect((await log.loadEntries()).entries).toHaveLength(10);
  expect(await here.load("k")).toEqual({ pad: "y".repeat(5000) });
  const [stats] = await engine.stats();
  expect(stats).toMatchObject({ pendingEntries: 0, pendingBytes: 0 });
});

it("a tick whose message fails to clone whole while each write clones alone is sent write by write, never recursing: the other writes land", async () => {
  const errors: unknown[] = [];
  engine = openStorageEngine({ threads: 1, onError: (e) => void errors.push(e) });
  const codec = { module: new URL("./fixtures/thread-codec.mjs", import.meta.url).href, export: "codec" };
  const kv = engine.kv<unknown>({ kind: "sqlite", path: root.fresh("flip.db") }, { name: "kv", debounceMs: 60_000, codec });
  await kv.flush();
  // Hostile: a getter that throws on every other read, so the whole message fails and each write alone clones. Its
  // first read is the save's weight walk (a module codec's values are weighed by walking them: clone-size.ts).
  let reads = 0;
  const flipping = {
    get x(): number {
      if (++reads % 2 === 0) throw new Error("even read");
      return 1;
    },
  };
  kv.save("before", 1);
  kv.save("flip", flipping);
  kv.save("after", 2);
  await turn();
  // Before: resent whole after every failure until the stack overflowed (an unhandled RangeError).
  await expect(kv.flush()).rejects.toMatchObject({ name: "CodecError", code: "encode-failed" });
  await kv.flush();
  expect(await kv.load("before")).toMatchObject({ value: 1 });
  expect(await kv.load("after")).toMatchObject({ value: 2 });
  expect(await kv.load("flip")).toBeUndefined();
  expect(errors).toHaveLength(1);
});
