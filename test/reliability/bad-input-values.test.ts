/**
 * Bad input from callers: hostile keys, values the strict codec rejects, and huge values, through SQLite and
 * file stores, inline and in the engine. Required: a typed error with a stable code, nothing written outside
 * the store directory, the rest of the batch kept, and the store still usable afterwards.
 */
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { CodecError, StorageError } from "../../src/errors.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { kvStorage } from "../../src/tier/kv.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { assertBuilt, tempDir, type TempDir } from "./fixtures/crash-harness.js";

type Kind = "sqlite" | "file";
type Mode = "inline" | "engine";

let tmp: TempDir;
let n = 0;
beforeAll(() => {
  assertBuilt();
  tmp = tempDir("bad-values");
});
afterAll(() => tmp.remove());

let engine: StorageEngine | undefined;
const backends: StorageBackend[] = [];
const reported: Error[] = [];
afterEach(async () => {
  for (const b of backends.splice(0)) b.close?.();
  await engine?.close().catch(() => undefined);
  engine = undefined;
  reported.length = 0;
});

/** A store of `kind` alone in its own sandbox directory, so anything written beside it is visible. */
function sandboxed(kind: Kind): { sandbox: string; spec: StoreSpec } {
  const sandbox = join(tmp.dir, `sandbox-${n++}`);
  return { sandbox, spec: kind === "sqlite" ? { kind, path: join(sandbox, "store.db") } : { kind, dir: join(sandbox, "store") } };
}

function kvOn<T>(mode: Mode, spec: StoreSpec, debounceMs = 60_000): KvStorageTier<T> {
  const onError = (e: Error): void => void reported.push(e);
  if (spec.kind === "sqlite") withParent(spec.path);
  if (mode === "engine") {
    engine ??= openStorageEngine({ threads: 1, onError });
    return engine.kv<T>(spec, { name: "kv", debounceMs });
  }
  const b = spec.kind === "sqlite" ? sqliteBackend(spec.path) : fileBackend((spec as { dir: string }).dir);
  backends.push(b);
  return kvStorage<T>(b, { name: "kv", debounceMs, onError });
}

/** SQLite needs the directory of its file to exist (the file backend creates its own). */
function withParent(file: string): string {
  mkdirSync(dirname(file), { recursive: true });
  return file;
}

async function failureOf(p: () => unknown): Promise<unknown> {
  try {
    await p();
  } catch (e) {
    return e;
  }
  return undefined;
}

const combos: Array<{ kind: Kind; mode: Mode }> = [
  { kind: "sqlite", mode: "inline" },
  { kind: "file", mode: "inline" },
  { kind: "sqlite", mode: "engine" },
  { kind: "file", mode: "engine" },
];

// ---- hostile keys -------------------------------------------------------------------------------------------------

describe.each(combos)("hostile keys: $kind, $mode", ({ kind, mode }) => {
  it("path-like keys stay inside the store and round-trip exactly", async () => {
    const { sandbox, spec } = sandboxed(kind);
    const escapeTarget = join(sandbox, "escaped"); // what "../escaped" would hit if keys were paths
    const keys = [
      "../escaped",
      "../../escaped",
      escapeTarget, // an absolute path
      "a/../../escaped",
      "..",
      ".",
      "",
      "\0",
      "a\0b",
      "..\\..\\escaped",
      "C:\\escaped",
      "%2e%2e%2fescaped",
      ".tmp-1-1-1", // looks like the file backend's temp files
      ".graphrefly.lock", // the lock file's name
      ".bin",
      "é/ü",
      "\u{1F642}",
      "x".repeat(80),
    ];
    const kv = kvOn<string>(mode, spec);
    keys.forEach((k, i) => kv.save(k, `value ${i}`));
    await kv.flush();
    const listed = await kv.list();
    // The file backend hides the empty key from listings (both references do); load("") still finds it below.
    const listable = kind === "file" ? keys.filter((k) => k !== "") : keys;
    expect([...listed].sort()).toEqual([...listable].sort());
    for (const [i, k] of keys.entries()) expect(await kv.load(k)).toBe(`value ${i}`);
    // Nothing beside the store.
    const beside = readdirSync(sandbox).filter((f) => !f.startsWith(kind === "sqlite" ? "store.db" : "store"));
    expect(beside).toEqual([]);
    expect(existsSync(escapeTarget)).toBe(false);
    expect(existsSync(join(tmp.dir, "escaped"))).toBe(false);
  });

  it("a lone surrogate is refused with StorageError('invalid-key'); the store keeps working", async () => {
    const { spec } = sandboxed(kind);
    const kv = kvOn<number>(mode, spec);
    kv.save("good", 1);
    const err = await failureOf(async () => {
      kv.save("bad\uD800", 2);
      await kv.flush();
    });
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("invalid-key");
    kv.save("later", 3);
    await kv.flush();
    expect(await kv.load("good")).toBe(1);
    expect(await kv.load("later")).toBe(3);
    expect(await kv.list()).toEqual(["good", "later"]);
  });

  it("a 10 kB key: stored by SQLite, refused with 'invalid-key' by the file backend; either way the store keeps working", async () => {
    const { spec } = sandboxed(kind);
    const kv = kvOn<number>(mode, spec);
    const long = "k".repeat(10_000);
    kv.save("good", 1);
    const err = await failureOf(async () => {
      kv.save(long, 2);
      await kv.flush();
    });
    if (kind === "sqlite") {
      expect(err).toBeUndefined();
      expect(await kv.load(long)).toBe(2);
    } else {
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).code).toBe("invalid-key");
    }
    // The refused key must not block everything saved after it.
    kv.save("later", 3);
    const later = await failureOf(() => kv.flush());
    expect(later, "a flush after the refused key still fails: the store is stuck").toBeUndefined();
    expect(await kv.load("later")).toBe(3);
    expect(await kv.load("good")).toBe(1);
  });
});

// ---- values the strict codec rejects --------------------------------------------------------------------------------

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

const cyclic: Record<string, unknown> = { a: 1 };
cyclic.self = cyclic;

/** Values that structured clone carries to the worker unchanged, and that JSON cannot carry faithfully. */
const unencodable: Array<[string, unknown]> = [
  ["NaN", Number.NaN],
  ["Infinity", Number.POSITIVE_INFINITY],
  ["-Infinity nested", { deep: [{ x: Number.NEGATIVE_INFINITY }] }],
  ["bigint", 10n],
  ["cycle", cyclic],
  ["Map", new Map([["a", 1]])],
  ["Set", new Set([1])],
  ["Date", new Date(0)],
  ["Uint8Array", new Uint8Array(2)],
  ["undefined", undefined],
  ["lone surrogate string", "a\uD800b"],
];

/** Values that cannot cross a thread boundary at all, or lose what makes them unencodable on the way. */
const uncloneable: Array<[string, unknown]> = [
  ["function", () => 1],
  ["symbol", Symbol("s")],
  ["class instance", new Point(1, 2)],
  ["object holding a function", { f: () => 1 }],
];

/** One acknowledged write, then a good and a bad value in one batch: only the bad one may be refused. */
async function expectRejectedAlone(kv: KvStorageTier<unknown>, value: unknown): Promise<void> {
  kv.save("acked", 0);
  await kv.flush();
  const err = await failureOf(() => {
    kv.save("good", 1);
    kv.save("bad", value);
    return kv.flush();
  });
  const fine = await failureOf(() => kv.flush()); // the bad value is dropped, not retried forever
  const good = await kv.load("good").catch((e: unknown) => e);
  const bad = await kv.load("bad").catch((e: unknown) => e);
  const later = await failureOf(() => {
    kv.save("later", 2);
    return kv.flush();
  });
  const laterValue = await kv.load("later").catch((e: unknown) => e);
  expect(await kv.load("acked")).toBe(0);
  expect({
    error: `${(err as Error | undefined)?.name}/${String((err as { code?: unknown } | undefined)?.code)}`,
    retry: fine,
    good,
    bad,
    later,
    laterValue,
    reported: reported.map((e) => `${e.name}/${String((e as { code?: unknown }).code)}`),
  }).toEqual({
    error: "CodecError/encode-failed",
    retry: undefined,
    good: 1,
    bad: undefined,
    later: undefined,
    laterValue: 2,
    reported: ["CodecError/encode-failed"],
  });
}

// Sync-through (debounceMs 0) writes in a background flush nobody awaits: its refusal must still reach flush().
const cadences = [0, 60_000].flatMap((debounceMs) => combos.map((c) => ({ ...c, debounceMs })));

describe.each(cadences)("values the strict codec rejects: $kind, $mode, debounceMs $debounceMs", ({ kind, mode, debounceMs }) => {
  it.each(unencodable)("%s: CodecError('encode-failed') at flush and onError; the rest of the batch is written", async (_name, value) => {
    const { spec } = sandboxed(kind);
    await expectRejectedAlone(kvOn<unknown>(mode, spec, debounceMs), value);
  });
});

describe.each([0, 60_000].flatMap((debounceMs) => (["inline", "engine"] as const).map((mode) => ({ mode, debounceMs }))))(
  "values that cannot cross to the worker: $mode, debounceMs $debounceMs",
  ({ mode, debounceMs }) => {
    it.each(uncloneable)("%s: rejected like any unencodable value, nothing else lost", async (_name, value) => {
      const { spec } = sandboxed("sqlite");
      await expectRejectedAlone(kvOn<unknown>(mode, spec, debounceMs), value);
    });
  },
);

describe("append-log entries the codec rejects", () => {
  it("the rejected append is dropped with CodecError; entries appended before and after are kept in order", async () => {
    const { spec } = sandboxed("sqlite");
    const b = sqliteBackend(withParent((spec as { path: string }).path));
    backends.push(b);
    const errors: Error[] = [];
    const log = appendLogStorage<unknown>(b, { name: "log", debounceMs: 60_000, onError: (e) => errors.push(e) });
    log.appendEntries([1, 2]);
    log.appendEntries([3, Number.NaN]);
    log.appendEntries([4]);
    const err = await failureOf(() => log.flush());
    expect(err).toBeInstanceOf(CodecError);
    expect((err as CodecError).code).toBe("encode-failed");
    await log.flush();
    expect((await log.loadEntries()).entries).toEqual([1, 2, 4]);
    expect(errors).toHaveLength(1);
  });
});

// ---- huge values -----------------------------------------------------------------------------------------------------

const MB = 1 << 20;

function hugeString(bytes: number): string {
  const unit = "0123456789abcdef-é✓"; // multi-byte characters too: encoded size != length
  return unit.repeat(Math.ceil(bytes / unit.length));
}

describe.each(combos)("huge values (>= 50 MB): $kind, $mode", ({ kind, mode }) => {
  it("a 50 MB value is stored, read back intact, and the store keeps working", async () => {
    const { spec } = sandboxed(kind);
    const kv = kvOn<{ blob: string }>(mode, spec);
    const blob = hugeString(50 * MB);
    expect(Buffer.byteLength(blob)).toBeGreaterThanOrEqual(50 * MB);
    kv.save("huge", { blob });
    kv.save("small", { blob: "s" });
    await kv.flush();
    const back = await kv.load("huge");
    expect(back?.blob.length).toBe(blob.length);
    expect(back?.blob === blob).toBe(true);
    kv.save("huge", { blob: "replaced" });
    await kv.flush();
    expect(await kv.load("huge")).toEqual({ blob: "replaced" });
    expect(await kv.load("small")).toEqual({ blob: "s" });
  }, 120_000);
});
