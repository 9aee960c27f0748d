/**
 * One value rule, inline and engine alike (issue 10 item 8, docs/design.md §3.2, §3.16): the same value gets the
 * same outcome in both modes. A value no built-in codec can store is refused with CodecError('encode-failed')
 * and its JSON path (the next flush rejects, onError hears it), whatever structured clone would have made of
 * it; a value within the rule (MAX_JSON_DEPTH levels deep included) is stored and read back equal.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { MAX_JSON_DEPTH, bigintJsonCodec, type Codec } from "../../src/codec/index.js";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { kvStorage } from "../../src/tier/kv.js";
import type { AppendLogStorageTier, KvStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { errorOf, syncErrorOf, until } from "../support/wait.js";
import { assertBuilt } from "./fixtures/crash-harness.js";

type Mode = "inline" | "engine";

let dir: string;
let n = 0;
beforeAll(() => {
  assertBuilt();
  dir = mkdtempSync(join(tmpdir(), "grf-value-rule-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let engine: StorageEngine | undefined;
const backends: StorageBackend[] = [];
const reported: Error[] = [];
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
  for (const b of backends.splice(0)) b.close?.();
  reported.length = 0;
});

function store(): StoreSpec {
  return { kind: "sqlite", path: join(dir, `store-${n++}.db`) };
}

function kvOn<T>(mode: Mode, spec: StoreSpec, codec?: Codec<T>): KvStorageTier<T> {
  const onError = (e: Error): void => void reported.push(e);
  const path = (spec as { path: string }).path;
  if (mode === "engine") {
    engine ??= openStorageEngine({ threads: 1, onError });
    return engine.kv<T>(spec, { name: "kv", ...(codec ? { codec } : {}) });
  }
  const b = sqliteBackend(path);
  backends.push(b);
  return kvStorage<T>(b, { name: "kv", onError, ...(codec ? { codec } : {}) });
}

function logOn<T>(mode: Mode, spec: StoreSpec): AppendLogStorageTier<T> {
  const onError = (e: Error): void => void reported.push(e);
  if (mode === "engine") {
    engine ??= openStorageEngine({ threads: 1, onError });
    return engine.appendLog<T>(spec, { name: "log" });
  }
  const b = sqliteBackend((spec as { path: string }).path);
  backends.push(b);
  return appendLogStorage<T>(b, { name: "log", onError });
}

/** What happened to one save: how it failed (name/code/path, at save or at flush) and what was stored. */
interface Outcome {
  error: string | undefined;
  reported: string[];
  stored: unknown;
}

function describeError(e: unknown): string | undefined {
  if (e === undefined) return undefined;
  const { name, code, details } = e as Error & { code?: unknown; details?: { path?: unknown } };
  return `${name}/${String(code)} at ${String(details?.path)}`;
}

async function outcomeOf<T>(kv: KvStorageTier<T>, value: T): Promise<Outcome> {
  const thrown = syncErrorOf(() => kv.save("k", value));
  const failed = thrown ?? (await errorOf(() => kv.flush()));
  if (failed !== undefined && thrown === undefined) await until(() => reported.length > 0, "onError report");
  const stored = await kv.load("k").catch((e: unknown) => `load failed: ${describeError(e)}`);
  return { error: describeError(failed), reported: reported.map((e) => describeError(e)!), stored };
}

async function inBothModes(run: (mode: Mode) => Promise<Outcome>): Promise<Outcome> {
  const inline = await run("inline");
  reported.length = 0;
  const viaEngine = await run("engine");
  expect(viaEngine, "the engine's outcome differs from the inline one").toEqual(inline);
  return inline;
}

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

function nested(levels: number): unknown {
  let v: unknown = "leaf";
  for (let i = 0; i < levels; i++) v = i % 2 === 0 ? [v] : { d: v };
  return v;
}

/** The path of the container one level deeper than allowed (the innermost MAX_JSON_DEPTH segments from the root). */
function depthPath(levels: number): string {
  const segments: string[] = [];
  for (let i = levels - 1; i >= levels - MAX_JSON_DEPTH; i--) segments.push(i % 2 === 0 ? "[0]" : ".d");
  return `$${segments.join("")}`;
}

const refused: Array<[string, () => unknown, string]> = [
  ["a nested class instance", () => ({ p: new Point(1, 2) }), "$.p"],
  ["a class instance", () => new Point(1, 2), "$"],
  ["a Proxy", () => new Proxy({ a: 1 }, {}), "$"],
  ["a nested Proxy", () => ({ list: [1, new Proxy([2], {})] }), "$.list[1]"],
  [
    "a getter that throws",
    () => ({
      o: Object.defineProperty({}, "x", {
        enumerable: true,
        get(): never {
          throw new Error("boom");
        },
      }),
    }),
    "$.o.x",
  ],
  ["a function inside", () => ({ f: () => 1 }), "$.f"],
  ["a Date inside", () => ({ when: new Date(0) }), "$.when"],
  ["nesting one level deeper than MAX_JSON_DEPTH", () => nested(MAX_JSON_DEPTH + 1), depthPath(MAX_JSON_DEPTH + 1)],
  ["nesting 2,000 deep", () => nested(2_000), depthPath(2_000)],
  ["nesting 4,000 deep", () => nested(4_000), depthPath(4_000)],
];

describe("the same value, the same outcome inline and through the engine", () => {
  it.each(refused)("%s: refused with CodecError('encode-failed') at its path", async (_name, make, path) => {
    const outcome = await inBothModes((mode) => outcomeOf(kvOn<unknown>(mode, store()), make()));
    expect(outcome).toEqual({
      error: `CodecError/encode-failed at ${path}`,
      reported: [`CodecError/encode-failed at ${path}`],
      stored: undefined,
    });
  });

  it(`a value nested MAX_JSON_DEPTH (${MAX_JSON_DEPTH}) levels deep is stored and read back equal`, async () => {
    const value = nested(MAX_JSON_DEPTH);
    const outcome = await inBothModes((mode) => outcomeOf(kvOn<unknown>(mode, store()), value));
    expect(outcome.error).toBeUndefined();
    expect(outcome.stored).toEqual(value);
  });

  it("bigint codec: bigints are stored, a NaN beside one is refused at its path", async () => {
    const codec = bigintJsonCodec as Codec<unknown>;
    const good = await inBothModes((mode) => outcomeOf(kvOn(mode, store(), codec), { n: 2n ** 70n }));
    expect(good).toEqual({ error: undefined, reported: [], stored: { n: 2n ** 70n } });
    reported.length = 0;
    const bad = await inBothModes((mode) => outcomeOf(kvOn(mode, store(), codec), { n: 1n, m: Number.NaN }));
    expect(bad.error).toBe("CodecError/encode-failed at $.m");
  });

  it("append-log: one refused entry refuses the call, its path indexing the caller's entries", async () => {
    const outcome = await inBothModes(async (mode) => {
      const log = logOn<unknown>(mode, store());
      log.appendEntries([1]);
      const thrown = syncErrorOf(() => log.appendEntries([2, { p: new Proxy({}, {}) }]));
      const failed = thrown ?? (await errorOf(() => log.flush()));
      log.appendEntries([3]);
      await log.flush();
      return { error: describeError(failed), reported: reported.map((e) => describeError(e)!), stored: (await log.loadEntries()).entries };
    });
    expect(outcome).toEqual({
      error: "CodecError/encode-failed at $[1].p",
      reported: ["CodecError/encode-failed at $[1].p"],
      stored: [1, 3],
    });
  });
});

describe("WAL frames: the frame codec's rule, checked before the frame crosses", () => {
  const frame = (over: Partial<WALFrame> & { payload?: unknown } = {}): WALFrame => {
    const { payload, ...rest } = over;
    return {
      t: "c",
      lifecycle: "data",
      path: "g::a",
      change: { structure: "node.set", version: 1, t_ns: 5, lifecycle: "data", change: payload === undefined ? { value: 1 } : payload },
      frame_seq: 1,
      frame_t_ns: 5,
      checksum: "",
      format_version: 1,
      ...rest,
    };
  };
  const codec = walFrameCodec as Codec<WALFrame>;

  it.each<[string, () => WALFrame, string]>([
    ["a payload holding a class instance", () => frame({ payload: { value: new Point(1, 2) } }), "$.change.change.value"],
    ["a payload holding a Proxy", () => frame({ payload: { value: new Proxy({}, {}) } }), "$.change.change.value"],
    ["a NaN t_ns", () => frame({ change: { ...frame().change, t_ns: Number.NaN } }), "$.change.t_ns"],
    ["a lone surrogate in the path", () => frame({ path: "g::\ud800" }), "$.path"],
    ["a negative frame_seq", () => frame({ frame_seq: -1 }), "$.frame_seq"],
  ])("%s: refused at its path in both modes", async (_name, make, path) => {
    const outcome = await inBothModes((mode) => outcomeOf(kvOn(mode, store(), codec), make()));
    expect(outcome.error).toBe(`CodecError/encode-failed at ${path}`);
    expect(outcome.stored).toBeUndefined();
  });

  it("a good frame is sealed and stored in both modes", async () => {
    const outcome = await inBothModes((mode) => outcomeOf(kvOn(mode, store(), codec), frame()));
    expect(outcome.error).toBeUndefined();
    expect((outcome.stored as WALFrame).checksum).toMatch(/^[0-9a-f]{64}$/);
  });
});
