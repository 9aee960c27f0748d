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
 *
 * A misspelt or unknown option key (review s14 H) was ignored without a word and the default ran instead:
 * `sqliteKv(path, { debounce: 10 })` ran sync-through (one fsync per save), `kv(backend, { maxPendingByte: 1 })` had
 * the 64 MiB default bound, `openStorageEngine({ thread: 1 })` started a thread per core less one. TypeScript's
 * excess-property check catches it only for a literal in a typed file. Now every option bag that reaches users
 * refuses a key it does not have with a TypeError naming it and the known key it resembles, before anything is
 * opened. And `postgresBackend({ url: "not a url" })` rejected with backend-error ENOTFOUND after a DNS lookup, where
 * the engine spec with the same URL threw invalid-argument: now invalid-argument too, up front.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { fileBackend, memoryBackend, postgresBackend, sqliteBackend } from "../../src/backend/index.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { createGraph } from "../../src/graph/index.js";
import {
  attachSnapshotStorage,
  decomposeDiffToFrames,
  diffSnapshots,
  followGraph,
  foldWal,
  restoreSnapshot,
  type GraphCheckpointRecord,
} from "../../src/persistence/index.js";
import {
  appendLogStorage,
  fileAppendLog,
  fileKv,
  fileSnapshot,
  kvStorage,
  memoryAppendLog,
  memoryKv,
  memorySnapshot,
  snapshotStorage,
  sqliteAppendLog,
  sqliteKv,
  sqliteSnapshot,
  type KvStorageTier,
  type SnapshotStorageTier,
} from "../../src/tier/index.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
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

type Make = (opts: unknown) => unknown;

describe("unknown keys: tier factories", () => {
  it("inline tiers over a backend refuse a key their kind lacks, naming the one it resembles", () => {
    const cases: Array<[Make, unknown, RegExp]> = [
      [(o) => kvStorage(memoryBackend(), o as never), { debounce: 10 }, /^debounce is not an option of a kv tier \(did you mean debounceMs\?\)$/],
      [(o) => kvStorage(memoryBackend(), o as never), { maxPendingByte: 1 }, /^maxPendingByte is not an option of a kv tier \(did you mean maxPendingBytes\?\)$/],
      [(o) => kvStorage(memoryBackend(), o as never), { debounceMS: 10 }, /^debounceMS is not an option of a kv tier \(did you mean debounceMs\?\)$/],
      [(o) => kvStorage(memoryBackend(), o as never), { keyOf: () => "k" }, /^keyOf is not an option of a kv tier \(options: name, debounceMs, .*, filter\)$/],
      [(o) => snapshotStorage(memoryBackend(), o as never), { keyof: () => "k" }, /^keyof is not an option of a snapshot tier \(did you mean keyOf\?\)$/],
      [(o) => appendLogStorage(memoryBackend(), o as never), { mod: "overwrite" }, /^mod is not an option of an append-log tier \(did you mean mode\?\)$/],
      [(o) => appendLogStorage(memoryBackend(), o as never), { compactEvry: 5 }, /^compactEvry is not an option of an append-log tier \(did you mean compactEvery\?\)$/],
      [(o) => memoryKv(o as never), { retry: { initialMS: 5 } }, /^retry\.initialMS is not an option of a tier's retry \(did you mean retry\.initialMs\?\)$/],
      [(o) => memorySnapshot(o as never), { readOnly: true }, /^readOnly is not an option of a snapshot tier/],
      [(o) => memoryAppendLog(o as never), { layuot: "array" }, /^layuot is not an option of an append-log tier \(did you mean layout\?\)$/],
    ];
    for (const [make, opts, message] of cases) expectTypeError(syncErrorOf(() => make(opts)), message);
  });

  it("file and SQLite factories refuse an unknown key before opening their store (no file, no lock)", () => {
    const sqlite: Array<[string, (path: string, opts: unknown) => unknown]> = [
      [join(root, "kv.db"), (p, o) => sqliteKv(p, o as never)],
      [join(root, "snapshot.db"), (p, o) => sqliteSnapshot(p, o as never)],
      [join(root, "log.db"), (p, o) => sqliteAppendLog(p, o as never)],
    ];
    for (const [path, open] of sqlite) {
      const make: Make = (o) => open(path, o);
      expectTypeError(syncErrorOf(() => make({ debounce: 10 })), /^debounce is not an option of an? [a-z-]+ tier \(did you mean debounceMs\?\)$/);
      expectTypeError(syncErrorOf(() => make({ readonly: true })), /^readonly is not an option of an? [a-z-]+ tier \(did you mean readOnly\?\)$/);
      expectTypeError(syncErrorOf(() => make({ sqlite: { synchronus: "NORMAL" } })), /^synchronus is not an option of sqliteBackend \(did you mean synchronous\?\)$/);
      expect(existsSync(path), path).toBe(false);
      expect(existsSync(`${path}-lock`), path).toBe(false);
    }
    const file: Record<string, Make> = {
      fileKv: (o) => fileKv(join(root, "kv-dir"), o as never),
      fileSnapshot: (o) => fileSnapshot(join(root, "snapshot-dir"), o as never),
      fileAppendLog: (o) => fileAppendLog(join(root, "log-dir"), o as never),
    };
    for (const make of Object.values(file)) {
      expectTypeError(syncErrorOf(() => make({ debounce: 10 })), /^debounce is not an option of an? [a-z-]+ tier \(did you mean debounceMs\?\)$/);
      expectTypeError(syncErrorOf(() => make({ readonly: true })), /^readonly is not an option of an? [a-z-]+ tier \(did you mean readOnly\?\)$/);
    }
    for (const dir of ["kv-dir", "snapshot-dir", "log-dir"]) expect(existsSync(join(root, dir)), dir).toBe(false);
  });

  it("every documented key is still taken, the store's own ones included", async () => {
    const path = join(root, "all.db");
    const all = { name: "n", debounceMs: 5, compactEvery: 10, onError: () => {}, onRecovered: () => {}, retry: { initialMs: 10, maxMs: 20 }, maxPendingBytes: 1 << 20 };
    const kv = sqliteKv<number>(path, { ...all, codec: undefined, filter: () => true, readOnly: false, sqlite: { synchronous: "NORMAL", lock: true, readOnly: false } });
    kv.save("k", 1);
    await kv.close();
    const log = fileAppendLog<number>(join(root, "all-dir"), { ...all, keyOf: () => "b", mode: "append", layout: "array", readOnly: false });
    log.appendEntries([1]);
    await log.close();
    const snap = memorySnapshot<{ name: string }>({ ...all, filter: () => true, keyOf: (s) => s.name });
    snap.save({ name: "x" });
    await snap.close();
    const reader = sqliteKv<number>(path, { readOnly: true });
    expect(await reader.load("k")).toBe(1);
    await reader.close();
  });
});

describe("unknown keys: engine", () => {
  it("openStorageEngine refuses an unknown top-level key", () => {
    expectTypeError(syncErrorOf(() => openStorageEngine({ thread: 1 } as never)), /^thread is not an option of openStorageEngine \(did you mean threads\?\)$/);
    expectTypeError(syncErrorOf(() => openStorageEngine({ synchronus: "OFF" } as never)), /^synchronus is not an option of openStorageEngine \(did you mean synchronous\?\)$/);
    expectTypeError(syncErrorOf(() => openStorageEngine({ watchdog: 5 } as never)), /^watchdog is not an option of openStorageEngine \(did you mean watchdogMs\?\)$/);
  });

  it("engine tiers refuse an unknown key; their documented keys are taken", async () => {
    engine = openStorageEngine({ threads: 1 });
    const e = engine;
    const store = { kind: "memory", name: "unknown-keys" } as const;
    expectTypeError(syncErrorOf(() => e.kv(store, { debounceMS: 10 } as never)), /^debounceMS is not an option of an engine kv tier \(did you mean debounceMs\?\)$/);
    expectTypeError(syncErrorOf(() => e.snapshot(store, { keyof: () => "k" } as never)), /^keyof is not an option of an engine snapshot tier \(did you mean keyOf\?\)$/);
    expectTypeError(syncErrorOf(() => e.appendLog(store, { layouts: "array" } as never)), /^layouts is not an option of an engine append-log tier \(did you mean layout\?\)$/);
    const kv = e.kv<number>(store, { name: "kv", debounceMs: 5, compactEvery: 10, retry: { initialMs: 10 }, filter: () => true });
    const log = e.appendLog<number>(store, { name: "log", keyOf: () => "b", mode: "append", layout: "segments" });
    kv.save("k", 1);
    log.appendEntries([1]);
    await Promise.all([kv.flush(), log.flush()]);
    expect(await kv.load("k")).toBe(1);
  });

  it("loadEntries refuses an unknown key, inline and through the engine, instead of reading every entry", async () => {
    engine = openStorageEngine({ threads: 1 });
    const logs = [memoryAppendLog<number>(), engine.appendLog<number>({ kind: "memory", name: "load-args" })];
    for (const log of logs) {
      log.appendEntries([1, 2, 3]);
      await log.flush();
      expectTypeError(await errorOf(() => log.loadEntries({ pagesize: 1 } as never)), /^pagesize is not an option of loadEntries \(did you mean pageSize\?\)$/);
      expect((await log.loadEntries({ pageSize: 1 })).entries).toEqual([1]);
    }
  });

  it("a postgres store spec's lease refuses an unknown key at the call", () => {
    engine = openStorageEngine({ threads: 1 });
    const spec = { kind: "postgres", url: "postgres://u@127.0.0.1:1/db", store: "x", lease: { ttl: 5 } } as never;
    expectTypeError(syncErrorOf(() => engine!.kv(spec)), /^store\.lease\.ttl is not an option of a postgres store's lease \(did you mean store\.lease\.ttlMs\?\)$/);
  });
});

describe("unknown keys: backends", () => {
  it("sqliteBackend, fileBackend and memoryBackend refuse an unknown key, opening nothing", () => {
    const path = join(root, "backend.db");
    expectTypeError(syncErrorOf(() => sqliteBackend(path, { synchronus: "OFF" } as never)), /^synchronus is not an option of sqliteBackend \(did you mean synchronous\?\)$/);
    expectTypeError(syncErrorOf(() => fileBackend(join(root, "backend-dir"), { readonly: true } as never)), /^readonly is not an option of fileBackend \(did you mean readOnly\?\)$/);
    expectTypeError(syncErrorOf(() => memoryBackend({ nam: "m" } as never)), /^nam is not an option of memoryBackend \(did you mean name\?\)$/);
    expect(existsSync(path)).toBe(false);
    expect(existsSync(join(root, "backend-dir"))).toBe(false);
  });

  // Refused before any connection: the address has no server (port 1), so a refusal after connecting would differ.
  it("postgresBackend refuses an unknown key, and one of its lease, before connecting", async () => {
    const base = { url: "postgres://u@127.0.0.1:1/db", store: "x" };
    expectTypeError(await errorOf(() => postgresBackend({ ...base, connectTimeout: 100 } as never)), /^connectTimeout is not an option of postgresBackend \(did you mean connectTimeoutMs\?\)$/);
    expectTypeError(await errorOf(() => postgresBackend({ ...base, lease: { waitMS: 5 } } as never)), /^lease\.waitMS is not an option of postgresBackend's lease \(did you mean lease\.waitMs\?\)$/);
    expectTypeError(await errorOf(() => postgresBackend({ ...base, lease: 5 } as never)), /^lease must be an object$/);
  });

  it("postgresBackend with a URL that does not parse: StorageError invalid-argument, as the engine spec", async () => {
    for (const url of ["not a url", "nope", ""]) {
      const err = await errorOf(() => postgresBackend({ url, store: "x" }));
      expect(err, url).toBeInstanceOf(StorageError);
      expect((err as StorageError).code, url).toBe("invalid-argument");
      expect((err as StorageError).details, url).toEqual({ option: "url" });
      expect((err as Error).message, url).toBe("url is not a valid postgres:// URL");
    }
    engine = openStorageEngine({ threads: 1 });
    const err = syncErrorOf(() => engine!.kv({ kind: "postgres", url: "not a url", store: "x" }));
    expect((err as StorageError).code).toBe("invalid-argument");
    expect((err as StorageError).details).toEqual({ option: "url" });
  });
});

describe("unknown keys: graph persistence", () => {
  function pair(): { snapshot: SnapshotStorageTier<GraphCheckpointRecord>; wal: KvStorageTier<WALFrame> } {
    const backend = memoryBackend();
    return { snapshot: snapshotStorage<GraphCheckpointRecord>(backend), wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }) };
  }

  it("attach, restore, follow, fold and decompose refuse an unknown key", async () => {
    const g = createGraph("g");
    g.state("a", 1);
    const tiers = pair();
    expectTypeError(syncErrorOf(() => attachSnapshotStorage(g, [tiers], { compactevery: 5 } as never)), /^compactevery is not an option of attachSnapshotStorage \(did you mean compactEvery\?\)$/);
    const handle = attachSnapshotStorage(g, [tiers]);
    await handle.flush();
    await handle.dispose();
    expectTypeError(await errorOf(() => restoreSnapshot(createGraph("g"), { ...tiers, targetseq: 1 } as never)), /^targetseq is not an option of restoreSnapshot \(did you mean targetSeq\?\)$/);
    expectTypeError(await errorOf(() => followGraph(createGraph("g"), tiers, { poll: 10 } as never)), /^poll is not an option of followGraph \(did you mean pollMs\?\)$/);
    const baseline = (await tiers.snapshot.load("g"))!;
    expectTypeError(syncErrorOf(() => foldWal(baseline, [], { verfy: false } as never)), /^verfy is not an option of foldWal \(did you mean verify\?\)$/);
    const diff = diffSnapshots(g.snapshot(), g.snapshot());
    expectTypeError(syncErrorOf(() => decomposeDiffToFrames(diff, { timestampNs: 0, baseSeq: 0, seals: true } as never)), /^seals is not an option of decomposeDiffToFrames \(did you mean seal\?\)$/);
    // The documented keys are taken.
    const restored = createGraph("g");
    await restoreSnapshot(restored, { ...tiers, lifecycle: ["spec", "data", "ownership"], targetSeq: handle.seq, onTornWrite: () => undefined });
    expect(restored.snapshot()).toEqual(g.snapshot());
    expect(foldWal(baseline, [], { verify: true, targetSeq: baseline.seq, onTornWrite: () => undefined }).seq).toBe(baseline.seq);
  });
});
