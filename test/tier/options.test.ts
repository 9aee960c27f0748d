/**
 * Tiers refuse bad arguments when they are created, saying what was wrong (docs/design.md §3.3), inline and through
 * the engine, instead of constructing fine and failing at the first flush.
 */
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { appendLogStorage, kvStorage, snapshotStorage } from "../../src/tier/index.js";

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("nothing was thrown");
}

const makers = {
  kv: (b: unknown, o?: unknown) => kvStorage(b as never, o as never),
  snapshot: (b: unknown, o?: unknown) => snapshotStorage(b as never, o as never),
  "append-log": (b: unknown, o?: unknown) => appendLogStorage(b as never, o as never),
};

/** The function options each kind has (a kv tier has no keyOf, an append-log no filter: refused as unknown keys). */
const functionOptions: Record<string, readonly string[]> = { kv: ["filter"], snapshot: ["filter", "keyOf"], "append-log": ["keyOf"] };

describe.each(Object.entries(makers))("%s tier arguments (inline)", (kind, make) => {
  it("refuses a missing or shapeless backend with a TypeError that says what it got", () => {
    for (const [backend, got] of [
      [undefined, "undefined"],
      [{}, "an object"],
      ["./data", 'a string ("./data")'],
    ] as const) {
      const err = thrown(() => make(backend));
      expect(err).toBeInstanceOf(TypeError);
      expect(err.message).toBe(`backend must be a StorageBackend (an object with read() and write()), got ${got}`);
    }
  });

  it("names an option of the wrong type or range", () => {
    const b = memoryBackend();
    // A function option the kind lacks is refused as an unknown key whatever its value.
    const own = (key: string, value: unknown, message: RegExp): [unknown, RegExp, typeof TypeError] => [
      { [key]: value },
      functionOptions[kind]!.includes(key) ? message : new RegExp(`^${key} is not an option of an? ${kind} tier`),
      TypeError,
    ];
    const cases: Array<[unknown, RegExp, typeof TypeError | typeof RangeError]> = [
      ["fast", /^tier options must be an object, got a string \("fast"\)$/, TypeError],
      [{ debounceMs: "10" }, /^debounceMs must be a number of milliseconds, got a string \("10"\)$/, TypeError],
      [{ debounceMs: -1 }, /^debounceMs must be a finite number >= 0, got -1$/, RangeError],
      [{ compactEvery: "5" }, /^compactEvery must be a number, got a string \("5"\)$/, TypeError],
      [{ compactEvery: 1.5 }, /^compactEvery must be an integer >= 1, got 1.5$/, RangeError],
      [{ codec: "json" }, /^codec must be a Codec \(\{ name, version, encode, decode \}\), got a string \("json"\)$/, TypeError],
      [{ codec: { name: "half" } }, /^codec must be a Codec/, TypeError],
      own("filter", true, /^filter must be a function, got boolean true$/),
      own("keyOf", "name", /^keyOf must be a function, got a string/),
      [{ onError: {} }, /^onError must be a function, got an object$/, TypeError],
      [{ name: 7 }, /^name must be a string, got number 7$/, TypeError],
    ];
    for (const [opts, message, type] of cases) {
      const err = thrown(() => make(b, opts));
      expect(err, JSON.stringify(opts)).toBeInstanceOf(type);
      expect(err.message).toMatch(message);
    }
  });
});

describe("tier arguments through the engine", () => {
  const engine = openStorageEngine({ threads: 1 });
  afterAll(() => engine.close());
  const store = { kind: "memory", name: "options" } as const;

  it("are refused at creation with the same messages; a codec module reference is accepted", () => {
    expect(thrown(() => engine.kv(store, { debounceMs: "10" as never })).message).toBe(
      'debounceMs must be a number of milliseconds, got a string ("10")',
    );
    expect(thrown(() => engine.snapshot(store, { codec: "json" as never })).message).toMatch(/^codec must be a Codec .* or \{ module, export\? \}/);
    // Not imported before the worker opens the tier; only a relative specifier is refused here (options-mistakes).
    expect(() => engine.kv(store, { codec: { module: "file:///no-such-dir/no-such-codec.js" } })).not.toThrow();
  });
});

describe("a kv tier over a backend that cannot list", () => {
  it("refuses list() with backend-no-list-support instead of answering that nothing is stored", async () => {
    const inner = memoryBackend();
    const noList = { name: "no-list", supports: { ...inner.supports, list: false }, read: inner.read.bind(inner), write: inner.write.bind(inner) };
    const kv = kvStorage<number>(noList);
    kv.save("k", 1);
    await kv.flush();
    expect(await kv.load("k")).toBe(1);
    await expect(kv.list()).rejects.toMatchObject({ name: "StorageError", code: "backend-no-list-support" });
  });
});
