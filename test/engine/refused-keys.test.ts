/**
 * Writes the actor refuses when it applies them (a key the store's backend can never hold) are refused one by one,
 * as inline tiers refuse them at the call: the puts of one tick travel as one op, but each put stands alone, so
 * the other keys of that op are stored and only the refused one fails the next flush (and reaches onError).
 * Real parts: a file store (file names have a length limit), real worker threads.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { expectCoded, rejectionOf, settledBacklog, tempRoot, waitFor } from "./fixtures/helpers.js";

const MODULE = new URL("./fixtures/columnar-codec.mjs", import.meta.url).href;
const root = tempRoot("refused-keys");
afterAll(() => root.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

/** Too long for a file name on the file backend (255 bytes), fine for the shared key rule. */
const LONG = "x".repeat(300);

describe("one refused key in a tick's puts", () => {
  it("puts (built-in codec): the other keys of the op are stored, the refused one fails the next flush alone", async () => {
    const errors: Error[] = [];
    engine = openStorageEngine({ threads: 1, onError: (e) => void errors.push(e) });
    const kv = engine.kv<number>({ kind: "file", dir: root.fresh("puts") }, { name: "kv", debounceMs: 60_000 });
    await kv.flush();
    kv.save("a", 1);
    kv.save(LONG, 2);
    kv.save("c", 3);
    kv.save(`${LONG}y`, 4);
    kv.save("e", 5);
    const err = await rejectionOf(kv.flush());
    expectCoded(err, StorageError, "invalid-key");
    expect([await kv.load("a"), await kv.load("c"), await kv.load("e")]).toEqual([1, 3, 5]);
    await kv.flush(); // the refusal was reported once
    await waitFor(() => errors.length >= 2);
    expect(errors.map((e) => (e as StorageError).code)).toEqual(["invalid-key", "invalid-key"]);
    expect(new Set(errors.map((e) => e.message)).size).toBe(2); // each key refused on its own
    // Every posted write was acknowledged (stored or refused): the store's backlog is empty again.
    expect(await settledBacklog(engine!)).toBe(0);
  });

  it("columns (a module codec declaring them): the other keys of the op are stored", async () => {
    engine = openStorageEngine({ threads: 1, onError: () => undefined });
    const kv = engine.kv<unknown>({ kind: "file", dir: root.fresh("columns") }, {
      name: "kv",
      debounceMs: 60_000,
      codec: { module: MODULE, export: "codec" },
    });
    await kv.flush();
    kv.save("a", { n: 1, data: "x" });
    kv.save(LONG, { n: 2, data: "y" });
    kv.save("c", { n: 3, data: "z" });
    expectCoded(await rejectionOf(kv.flush()), StorageError, "invalid-key");
    expect(await kv.load("a")).toEqual({ n: 1, data: "x" });
    expect(await kv.load("c")).toEqual({ n: 3, data: "z" });
    await kv.flush();
    expect(await settledBacklog(engine!)).toBe(0);
  });
});
