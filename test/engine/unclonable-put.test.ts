/**
 * A value structured clone refuses (the port throws DataCloneError) among other puts of the same tier in one tick:
 * the tick's puts travel as ONE columnar op, and only the refused value may be refused (its tier's next flush
 * rejects with CodecError, onError hears it once); the others are written.
 */
import { afterAll, afterEach, expect, it } from "vitest";
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
  expect(errors).toHaveLength(1);
  await kv.flush();
  expect(await kv.load("before")).toMatchObject({ value: 1 });
  expect(await kv.load("after")).toMatchObject({ value: 2 });
  expect(await kv.load("bad")).toBeUndefined();
});
