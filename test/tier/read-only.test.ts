/**
 * Read-only tiers (issue 14 item 2): over a read-only backend every tier refuses writes when they are offered,
 * with StorageError("read-only"), and reads a store another process writes. The file and SQLite factories take
 * `{ readOnly: true }`, open nothing they keep when they throw, and a call after an open failure was fixed works
 * (item 4: nothing is cached).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { StorageError } from "../../src/errors.js";
import {
  appendLogStorage,
  fileAppendLog,
  fileKv,
  fileSnapshot,
  kvStorage,
  snapshotStorage,
  sqliteAppendLog,
  sqliteKv,
  sqliteSnapshot,
} from "../../src/tier/index.js";
import type { AppendLogStorageTier, BaseStorageTier, KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { killAllStoreChildren, openStoreInChild } from "../backend/store-holder.js";
import { seedEveryTier } from "../support/seeded-store.js";
import { errorOf, syncErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-tier-read-only-"));
let n = 0;
const fresh = (ext = ""): string => join(root, `s-${n++}${ext}`);
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => killAllStoreChildren());

type Kind = "file" | "sqlite";
const KINDS: readonly Kind[] = ["file", "sqlite"];
const location = (kind: Kind): string => (kind === "sqlite" ? fresh(".db") : fresh());

function expectReadOnly(err: unknown): void {
  expect(err).toBeInstanceOf(StorageError);
  expect((err as StorageError).code).toBe("read-only");
}

interface ReadOnlyTiers {
  snapshot: SnapshotStorageTier<{ name: string; v: number }>;
  kv: KvStorageTier<number>;
  log: AppendLogStorageTier<number>;
}

function factoryTiers(kind: Kind, path: string): ReadOnlyTiers {
  return kind === "sqlite"
    ? {
        snapshot: sqliteSnapshot(path, { readOnly: true }),
        kv: sqliteKv(path, { readOnly: true }),
        log: sqliteAppendLog(path, { name: "log", readOnly: true }),
      }
    : {
        snapshot: fileSnapshot(path, { readOnly: true }),
        kv: fileKv(path, { readOnly: true }),
        log: fileAppendLog(path, { name: "log", readOnly: true }),
      };
}

function backendTiers(backend: StorageBackend): ReadOnlyTiers {
  return {
    snapshot: snapshotStorage(backend),
    kv: kvStorage(backend),
    log: appendLogStorage(backend, { name: "log" }),
  };
}

/** Every write path refuses at once (nothing buffered, onError not involved); every read path works. */
async function checkReadOnly(t: ReadOnlyTiers): Promise<void> {
  expectReadOnly(syncErrorOf(() => t.snapshot.save({ name: "g", v: 2 })));
  expectReadOnly(syncErrorOf(() => t.kv.save("k/3", 3)));
  expectReadOnly(syncErrorOf(() => t.log.appendEntries([4])));
  // An append of nothing and a save a filter would drop are writes offered all the same.
  expectReadOnly(syncErrorOf(() => t.log.appendEntries([])));
  expectReadOnly(await errorOf(() => t.kv.delete("k/1")));
  expectReadOnly(await errorOf(() => t.kv.deleteMany!(["k/1"])));
  for (const tier of [t.snapshot, t.kv, t.log] as BaseStorageTier[]) {
    expectReadOnly(await errorOf(() => tier.compact()));
    // Nothing is pending, so a flush has nothing to write and succeeds; rollback has nothing to drop.
    await tier.flush();
    tier.rollback();
  }
  expect(await t.snapshot.load("g")).toEqual({ name: "g", v: 1 });
  expect(await t.kv.load("k/1")).toBe(1);
  expect(await t.kv.list("k/")).toEqual(["k/1", "k/2"]);
  const scanned: Array<[string, number]> = [];
  for await (const { key, value } of t.kv.listByPrefix("k/")) scanned.push([key, value]);
  expect(scanned).toEqual([
    ["k/1", 1],
    ["k/2", 2],
  ]);
  expect((await t.log.loadEntries()).entries).toEqual([1, 2, 3]);
}

async function closeAll(t: ReadOnlyTiers): Promise<void> {
  await Promise.all([t.snapshot.close(), t.kv.close(), t.log.close()]);
}

describe.each(KINDS)("read-only tiers (%s)", (kind) => {
  it("factories with { readOnly: true } refuse every write synchronously with read-only and read the store", async () => {
    const path = location(kind);
    await seedEveryTier(kind, path);
    const t = factoryTiers(kind, path);
    await checkReadOnly(t);
    await closeAll(t);
  });

  it("tiers over a read-only backend refuse the same way (the backend says it is read-only)", async () => {
    const path = location(kind);
    await seedEveryTier(kind, path);
    const backend = kind === "sqlite" ? sqliteBackend(path, { readOnly: true }) : fileBackend(path, { readOnly: true });
    expect(backend.readOnly).toBe(true);
    const t = backendTiers(backend);
    await checkReadOnly(t);
    await closeAll(t);
    backend.close();
  });

  it("read-only factory tiers read a store another process is writing, which keeps its lock", async () => {
    const path = location(kind);
    await seedEveryTier(kind, path);
    const writer = await openStoreInChild(kind, path);
    expect(writer.report.code).toBe("acquired");
    const kv = kind === "sqlite" ? sqliteKv<unknown>(path, { readOnly: true }) : fileKv<unknown>(path, { readOnly: true });
    expect(await kv.list()).toContain("from-child");
    expectReadOnly(syncErrorOf(() => kv.save("mine", 1)));
    await kv.close();
    await writer.release();
  });

  it("a factory that throws while building its tier leaves the store free for another process", async () => {
    const path = location(kind);
    const bad = { compactEvery: 0 };
    const err = syncErrorOf(() => (kind === "sqlite" ? sqliteKv(path, bad) : fileKv(path, bad)));
    expect(err).toBeInstanceOf(RangeError);
    const other = await openStoreInChild(kind, path);
    expect(other.report.code).toBe("acquired");
    await other.release();
  });

  it("an open that failed is not remembered: the same factory call works once the cause is fixed", async () => {
    // The store's parent is a plain file: the open fails with the OS cause, then the file is removed.
    const parent = fresh();
    writeFileSync(parent, "not a directory");
    const path = join(parent, kind === "sqlite" ? "store.db" : "store");
    const open = (): KvStorageTier<number> => (kind === "sqlite" ? sqliteKv<number>(path) : fileKv<number>(path));
    const err = syncErrorOf(open);
    expect(err).toBeInstanceOf(StorageError);
    // The OS cause is in the error: mkdir of the store's directory meets the plain file.
    expect(String((err as StorageError).details.osCode)).toMatch(/^(ENOTDIR|EEXIST)$/);
    rmSync(parent);
    const kv = open();
    kv.save("k", 1);
    await kv.flush();
    expect(await kv.load("k")).toBe(1);
    await kv.close();
  });
});

describe("read-only options", () => {
  it("sqlite factories refuse a readOnly that contradicts opts.sqlite.readOnly", () => {
    const path = fresh(".db");
    const err = syncErrorOf(() => sqliteKv(path, { readOnly: true, sqlite: { readOnly: false } }));
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toContain("readOnly");
  });

  it("a read-only factory on a store that does not exist creates nothing: SQLite throws, a file store reads empty", async () => {
    const path = fresh(".db");
    const dir = fresh();
    expect(syncErrorOf(() => sqliteKv(path, { readOnly: true }))).toBeInstanceOf(StorageError);
    const kv = fileKv<number>(dir, { readOnly: true });
    expect(await kv.list()).toEqual([]);
    expectReadOnly(syncErrorOf(() => kv.save("k", 1)));
    await kv.close();
    expect([existsSync(path), existsSync(dir)]).toEqual([false, false]);
  });
});
