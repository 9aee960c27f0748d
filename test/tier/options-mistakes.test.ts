/**
 * Options a new user puts in the wrong place (review s14 E): each was taken without a word and had no effect, or
 * failed later with an error naming the library's files. Now refused at creation with a TypeError saying where the
 * option goes (docs/design.md §3.3), before any store is opened (no lock or file left behind):
 * - `sqliteKv(path, { synchronous: "NORMAL" })` (it belongs in `sqlite: { … }`): the store ran FULL;
 * - `sqliteKv(path, { sqlite: "NORMAL" })`: a string for the backend's options, ignored the same way;
 * - `onError`, `onRecovered`, `maxPendingBytes` given to an engine tier (set on the engine): never called, no bound;
 * - a relative codec module (`{ module: "./codec.mjs" }`): the worker resolved it against the library's own files.
 * A codec module that cannot be imported fails the tier's calls with a TypeError naming the module (before: Node's
 * raw ERR_MODULE_NOT_FOUND naming a path inside the library).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { fileAppendLog, fileKv, fileSnapshot, sqliteAppendLog, sqliteKv, sqliteSnapshot } from "../../src/tier/index.js";
import { errorOf, syncErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-options-mistakes-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close();
  engine = undefined;
});

const sqliteFactories = { sqliteKv, sqliteSnapshot, sqliteAppendLog } as Record<string, (path: string, opts: unknown) => unknown>;
const fileFactories = { fileKv, fileSnapshot, fileAppendLog } as Record<string, (dir: string, opts: unknown) => unknown>;

function expectTypeError(err: unknown, message: RegExp): void {
  expect(err).toBeInstanceOf(TypeError);
  expect((err as Error).message).toMatch(message);
}

describe("store options of the tier factories", () => {
  it("SQLite factories refuse a backend option beside `sqlite` and a `sqlite` that is not an object, opening nothing", () => {
    for (const [name, make] of Object.entries(sqliteFactories)) {
      const path = join(root, `${name}.db`);
      expectTypeError(syncErrorOf(() => make(path, { synchronous: "NORMAL" })), /^synchronous is an option of the SQLite backend: pass it as \{ sqlite: \{ synchronous \} \}$/);
      expectTypeError(syncErrorOf(() => make(path, { lock: false })), /^lock is an option of the SQLite backend/);
      expectTypeError(syncErrorOf(() => make(path, { sqlite: "NORMAL" })), /^sqlite must be an object of sqliteBackend options .*got a string \("NORMAL"\)$/);
      expect(existsSync(path)).toBe(false);
      expect(existsSync(`${path}-lock`)).toBe(false);
    }
  });

  it("file factories refuse `lock` and `sqlite`, opening nothing", () => {
    for (const [name, make] of Object.entries(fileFactories)) {
      const dir = join(root, name);
      expectTypeError(syncErrorOf(() => make(dir, { lock: false })), /^lock is not an option of a file store's tier/);
      expectTypeError(syncErrorOf(() => make(dir, { sqlite: {} })), /^sqlite is not an option of a file store's tier/);
      expect(existsSync(dir)).toBe(false);
    }
  });

  it("the right place still works: sqlite: { synchronous } and readOnly", async () => {
    const path = join(root, "right.db");
    const kv = sqliteKv<number>(path, { sqlite: { synchronous: "NORMAL" } });
    kv.save("k", 1);
    await kv.close();
    const reader = sqliteKv<number>(path, { readOnly: true, sqlite: { readOnly: true } });
    expect(await reader.load("k")).toBe(1);
    await reader.close();
  });
});

describe("engine tier options", () => {
  it("refuses the engine's own options given to a tier (onError, onRecovered, maxPendingBytes)", () => {
    engine = openStorageEngine({ threads: 1 });
    const e = engine;
    const store = { kind: "memory", name: "engine-level" } as const;
    const makers = [(o: unknown) => e.kv(store, o as never), (o: unknown) => e.snapshot(store, o as never), (o: unknown) => e.appendLog(store, o as never)];
    for (const make of makers) {
      for (const [key, value] of [["onError", () => undefined], ["onRecovered", () => undefined], ["maxPendingBytes", 1024]] as const) {
        expectTypeError(syncErrorOf(() => make({ [key]: value })), new RegExp(`^${key} of an engine tier is set on the engine: pass it to openStorageEngine\\(\\)$`));
      }
    }
  });

  it("refuses a relative codec module at creation", () => {
    engine = openStorageEngine({ threads: 1 });
    for (const module of ["./codec.mjs", "../codecs/codec.mjs", ".", ".."]) {
      const err = syncErrorOf(() => engine!.kv({ kind: "memory", name: "relative" }, { codec: { module } }));
      expectTypeError(err, /^codec\.module must be an absolute file: URL or a package name, got the relative /);
    }
  });

  it("a codec module that cannot be imported fails the tier's calls with a TypeError naming it", async () => {
    engine = openStorageEngine({ threads: 1 });
    const module = pathToFileURL(join(root, "no-such-codec.mjs")).href;
    const kv = engine.kv<unknown>({ kind: "sqlite", path: join(root, "codec-missing.db") }, { codec: { module } });
    for (const call of [() => kv.flush(), () => kv.load("k")]) {
      const err = await errorOf(call);
      expectTypeError(err, new RegExp(`^codec module "${module.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}" could not be imported in the store's worker: `));
    }
  });
});
