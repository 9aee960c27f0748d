/**
 * openStorageEngine refuses options of the wrong type or shape when it opens (review s14 E), as tiers do
 * (test/tier/options). Before: `onError: 5` was taken and every background failure went unheard (the handler's
 * TypeError was swallowed by the guard against throwing handlers); `autoCompact: { everyFrames: -1 }` compacted after
 * every commit, `{ every: 100 }` or `100` never; `null` threw "Cannot read properties of null"; `idleTimeoutMs: -5`
 * surfaced piscina's `options.idleTimeout` message. No engine (no worker) is left running by a refused call.
 */
import { describe, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import { syncErrorOf } from "../support/wait.js";

describe("openStorageEngine options", () => {
  it("refuses each malformed option with a TypeError or RangeError naming it", () => {
    const cases: Array<[unknown, typeof TypeError | typeof RangeError, RegExp]> = [
      [null, TypeError, /^engine options must be an object, got null$/],
      [{ threads: "2" }, TypeError, /^threads must be a number, got a string \("2"\)$/],
      [{ onError: 5 }, TypeError, /^onError must be a function, got number 5$/],
      [{ onRecovered: "log" }, TypeError, /^onRecovered must be a function/],
      [{ idleTimeoutMs: -5 }, RangeError, /^idleTimeoutMs must be a number of milliseconds >= 0/],
      [{ resourceLimits: 64 }, TypeError, /^resourceLimits must be an object/],
      [{ resourceLimits: { maxOldGenerationSizeMb: "64" } }, RangeError, /^resourceLimits\.maxOldGenerationSizeMb must be a number of MB > 0/],
      [{ resourceLimits: { maxOldGenerationMb: 64 } }, TypeError, /^resourceLimits\.maxOldGenerationMb is not an option of resourceLimits \(did you mean resourceLimits\.maxOldGenerationSizeMb\?\)$/],
      [{ autoCompact: 100 }, TypeError, /^autoCompact must be an object/],
      [{ autoCompact: { every: 100 } }, TypeError, /^autoCompact\.every is not an option/],
      [{ autoCompact: { everyFrames: "100" } }, TypeError, /^autoCompact\.everyFrames must be a number/],
      [{ autoCompact: { everyFrames: -1 } }, RangeError, /^autoCompact\.everyFrames must be an integer >= 1, got -1$/],
      [{ autoCompact: { everyBytes: 0 } }, RangeError, /^autoCompact\.everyBytes must be an integer >= 1/],
      [{ autoCompact: { everyFrames: 10, keepFrames: -1 } }, RangeError, /^autoCompact\.keepFrames must be an integer >= 0/],
      [{ autoCompact: { keepFrames: 5 } }, RangeError, /^autoCompact needs everyFrames or everyBytes/],
    ];
    for (const [opts, type, message] of cases) {
      const err = syncErrorOf(() => openStorageEngine(opts as never));
      expect(err, JSON.stringify(opts)).toBeInstanceOf(type);
      expect((err as Error).message, JSON.stringify(opts)).toMatch(message);
    }
  });

  it("takes well-formed options", async () => {
    const engine = openStorageEngine({
      threads: 1,
      onError: () => undefined,
      onRecovered: () => undefined,
      idleTimeoutMs: Number.POSITIVE_INFINITY,
      resourceLimits: { maxOldGenerationSizeMb: 256 },
      autoCompact: { everyFrames: 100, keepFrames: 0 },
    });
    const kv = engine.kv<number>({ kind: "memory", name: "ok" });
    kv.save("k", 1);
    await kv.flush();
    expect(await kv.load("k")).toBe(1);
    await engine.close();
  });
});

describe("store specs", () => {
  it("refuse a field their kind does not have instead of dropping it on the way to the actor", async () => {
    const engine = openStorageEngine({ threads: 1 });
    try {
      const cases: Array<[unknown, RegExp]> = [
        [{ kind: "sqlite", path: "/tmp/x.db", synchronous: "OFF" }, /^store\.synchronous is not a field of a "sqlite" store spec \(fields: path, readOnly\)$/],
        [{ kind: "file", dir: "/tmp/x", readonly: true }, /^store\.readonly is not a field of a "file" store spec/],
        [{ kind: "memory", name: "m", readOnly: true }, /^store\.readOnly is not a field of a "memory" store spec \(fields: name\)$/],
        [{ kind: "postgres", url: "postgres://u@h/d", store: "s", ssl: true }, /^store\.ssl is not a field of a "postgres" store spec/],
      ];
      for (const [spec, message] of cases) {
        const err = syncErrorOf(() => engine.kv(spec as never));
        expect(err, JSON.stringify(spec)).toBeInstanceOf(TypeError);
        expect((err as Error).message, JSON.stringify(spec)).toMatch(message);
      }
      const kv = engine.kv<number>({ kind: "memory", name: "fine" });
      kv.save("k", 1);
      await kv.flush();
      expect(await kv.load("k")).toBe(1);
    } finally {
      await engine.close();
    }
  });
});
