/**
 * A SQLite store's files removed, renamed or replaced under a live writer (task 174). SQLite in WAL mode goes on
 * committing through the descriptors it opened, into files no longer at the store's path, and says nothing: every
 * flush resolved, and the writes were gone once the process ended (or, the -wal left at the old name, read as part of
 * whatever database then had the store's name). Required now: such a flush rejects with StorageError("backend-error"),
 * details.reason "store-moved" naming the file, again until the file is back; once back, flushes store everything;
 * what was acknowledged before a rename aside is in the renamed file; a database put in the store's place is left as
 * it was. A file store writes by path, but its lock file removed (or its directory swapped for a new one) let another
 * process open the store and write beside it, both acknowledged: now its writes refuse store-moved naming the lock.
 * Real files, a real engine worker, a real second process.
 */
import Database from "better-sqlite3";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { fileKv, sqliteKv } from "../../src/tier/factories.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { assertBuilt } from "../reliability/fixtures/crash-harness.js";

let root: string;
let n = 0;
beforeAll(() => {
  assertBuilt();
  root = mkdtempSync(join(tmpdir(), "grf-sqlite-moved-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

let engine: StorageEngine | undefined;
const inlineTiers: Array<KvStorageTier<number>> = [];
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
  for (const kv of inlineTiers.splice(0)) await kv.close().catch(() => undefined);
});

function storePath(): string {
  return join(root, `s${++n}`, "app.db");
}

/** The flush's rejection, which must be the typed store-moved error naming `file`. */
async function expectMoved(flush: Promise<unknown>, path: string, file: string, where: "path" | "dir" = "path"): Promise<StorageError> {
  const err = await flush.then(
    () => new Error("flush resolved: a write into files no longer at the store's path was acknowledged"),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  expect(err).toMatchObject({ code: "backend-error", details: { [where]: path, reason: "store-moved", file } });
  return err as StorageError;
}

/**
 * The rows of a database file and the -wal of its name, read from copies (the original may still be open in this
 * process, whose SQLite locks a second connection would share).
 */
function rowsOf(path: string): Record<string, string> {
  const copy = `${path}.copy-${++n}`;
  copyFileSync(path, copy);
  if (existsSync(`${path}-wal`)) copyFileSync(`${path}-wal`, `${copy}-wal`);
  const db = new Database(copy, { readonly: true });
  try {
    const rows = db.prepare<[], { k: string; v: Buffer }>("SELECT k, v FROM graphrefly_storage ORDER BY k").all();
    return Object.fromEntries(rows.map((r) => [r.k, Buffer.from(r.v).toString("utf8")]));
  } finally {
    db.close();
    for (const suffix of ["", "-wal", "-shm"]) rmSync(copy + suffix, { force: true });
  }
}

type Tier = Pick<KvStorageTier<number>, "save" | "flush" | "load" | "close">;

function inlineTier(path: string): Tier {
  const kv = sqliteKv<number>(path, { name: "kv", retry: { initialMs: 5, maxMs: 20 } });
  inlineTiers.push(kv);
  return kv;
}

function engineTier(path: string): Tier {
  engine = openStorageEngine({ threads: 1 });
  return engine.kv<number>({ kind: "sqlite", path }, { name: "kv", retry: { initialMs: 5, maxMs: 20 } });
}

const modes = [
  ["inline", inlineTier],
  ["engine", engineTier],
] as const;

describe.each(modes)("%s: a SQLite store's files moved under its writer", (mode, open) => {
  it("its database file removed (with -wal and -shm): every flush rejects store-moved, ENOENT", async () => {
    const path = storePath();
    const kv = open(path);
    kv.save("a", 1);
    await kv.flush();
    for (const suffix of ["", "-wal", "-shm"]) rmSync(path + suffix, { force: true });
    kv.save("b", 2);
    const err = await expectMoved(kv.flush(), path, "database");
    expect(err.details.osCode).toBe("ENOENT");
    kv.save("c", 3);
    await expectMoved(kv.flush(), path, "database");
    expect(existsSync(path)).toBe(false);
  });

  it("its database file replaced by another SQLite database: flushes reject, and that database is left as it was", async () => {
    const path = storePath();
    const kv = open(path);
    kv.save("a", 1);
    await kv.flush();
    const other = `${path}.other`;
    const db = new Database(other);
    db.exec("CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('theirs')");
    db.close();
    renameSync(other, path);
    kv.save("b", 2);
    await expectMoved(kv.flush(), path, "database");
    await expectMoved(kv.flush(), path, "database");
    // Read through the store's name (with whatever -wal sits beside it, as any program opening it would): before,
    // the writer's -wal left at that name was read as part of this database, which showed the store's table.
    const check = new Database(path, { readonly: true });
    try {
      const tables = check.prepare<[], string>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
      expect(tables).toEqual(["notes"]);
      expect(check.prepare<[], string>("SELECT x FROM notes").pluck().all()).toEqual(["theirs"]);
    } finally {
      check.close();
    }
  });

  it("renamed aside: the renamed file holds every acknowledged write; once it is back, flushes store everything", async () => {
    const path = storePath();
    const kv = open(path);
    kv.save("a", 1);
    await kv.flush();
    const aside = `${path}.aside`;
    renameSync(path, aside);
    kv.save("b", 2);
    await expectMoved(kv.flush(), path, "database");
    // SQLite skips its closing checkpoint for a moved file, and the -wal holding "a" keeps the old name: the
    // acknowledged write reaches the renamed file only because the handle checkpointed when it found the move.
    expect(rowsOf(aside)).toMatchObject({ a: "1" });
    renameSync(aside, path);
    kv.save("c", 3);
    await kv.flush();
    expect(await kv.load("b")).toBe(2);
    expect(rowsOf(path)).toMatchObject({ a: "1", c: "3" });
  });

  it("renamed aside with nothing written after: once closed, the renamed file holds every acknowledged write", async () => {
    const path = storePath();
    const kv = open(path);
    kv.save("a", 1);
    kv.save("b", 2);
    await kv.flush();
    const aside = `${path}.aside`;
    renameSync(path, aside);
    // SQLite's closing checkpoint is skipped for a moved file: the commits stayed in the -wal at the old name.
    if (mode === "engine") await engine!.close();
    else await kv.close();
    engine = undefined;
    expect(rowsOf(aside)).toEqual({ a: "1", b: "2" });
  });

  it("its -wal file removed: flushes reject store-moved naming the -wal (its commits would die with the process)", async () => {
    const path = storePath();
    const kv = open(path);
    kv.save("a", 1);
    await kv.flush();
    kv.save("a", 2);
    await kv.flush(); // the -wal exists and was seen by a check
    rmSync(`${path}-wal`);
    kv.save("b", 2);
    await expectMoved(kv.flush(), path, "wal");
    await expectMoved(kv.flush(), path, "wal");
  });

  it("its lock file removed: flushes reject store-moved naming the lock (another process could take the store)", async () => {
    const path = storePath();
    const kv = open(path);
    kv.save("a", 1);
    await kv.flush();
    rmSync(`${path}-lock`);
    kv.save("b", 2);
    await expectMoved(kv.flush(), path, "lock");
  });
});

it("inline: a store opened by a relative path keeps acknowledging after the process changes its directory", async () => {
  const path = storePath();
  const cwd = process.cwd();
  process.chdir(dirname(dirname(path)));
  try {
    mkdirSync(dirname(path), { recursive: true });
    const kv = inlineTier(join(basename(dirname(path)), basename(path)));
    kv.save("a", 1);
    await kv.flush();
    process.chdir(root === cwd ? tmpdir() : cwd); // relative to here, the path names nothing
    kv.save("b", 2);
    await kv.flush();
    expect(rowsOf(path)).toEqual({ a: "1", b: "2" });
  } finally {
    process.chdir(cwd);
  }
});

it("an in-place store keeps acknowledging: many flushes of an inline tier and an engine tier resolve", async () => {
  const inline = inlineTier(storePath());
  const viaEngine = engineTier(storePath());
  for (let i = 0; i < 50; i++) {
    inline.save(`k${i % 5}`, i);
    viaEngine.save(`k${i % 5}`, i);
    await Promise.all([inline.flush(), viaEngine.flush()]);
  }
  expect(await inline.load("k4")).toBe(49);
  expect(await viaEngine.load("k4")).toBe(49);
});

function fileInline(dir: string): Tier {
  const kv = fileKv<number>(dir, { name: "kv", retry: { initialMs: 5, maxMs: 20 } });
  inlineTiers.push(kv);
  return kv;
}

function fileEngine(dir: string): Tier {
  engine = openStorageEngine({ threads: 1 });
  return engine.kv<number>({ kind: "file", dir }, { name: "kv", retry: { initialMs: 5, maxMs: 20 } });
}

/** Opens the file store in another process and stores a key there; resolves with what that process said. */
function otherProcessWrites(dir: string): string {
  const script = `
    const { fileBackend } = await import(${JSON.stringify(new URL("../../dist/src/backend/file.js", import.meta.url).href)});
    try { const b = fileBackend(${JSON.stringify(dir)}); b.write("theirs", new Uint8Array([1])); b.close(); console.log("wrote"); }
    catch (err) { console.log(err.code); }`;
  return execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" }).trim();
}

describe.each([
  ["inline", fileInline],
  ["engine", fileEngine],
] as const)("%s: a file store's lock moved under its writer", (_mode, open) => {
  it("its lock file removed: another process may take the store, and this writer's flushes reject store-moved", async () => {
    const dir = join(root, `f${++n}`);
    const kv = open(dir);
    kv.save("a", 1);
    await kv.flush();
    expect(otherProcessWrites(dir)).toBe("store-locked");
    rmSync(join(dir, ".graphrefly.lock"));
    expect(otherProcessWrites(dir)).toBe("wrote");
    kv.save("b", 2);
    await expectMoved(kv.flush(), dir, "lock", "dir");
    await expectMoved(kv.flush(), dir, "lock", "dir");
    expect(readdirSync(dir).filter((f) => !f.startsWith("."))).not.toContain("b.bin");
  });

  it("its directory swapped for a new one: flushes reject store-moved naming the lock, nothing lands in the new one", async () => {
    const dir = join(root, `f${++n}`);
    const kv = open(dir);
    kv.save("a", 1);
    await kv.flush();
    renameSync(dir, `${dir}.old`);
    mkdirSync(dir);
    kv.save("b", 2);
    await expectMoved(kv.flush(), dir, "lock", "dir");
    expect(readdirSync(dir)).toEqual([]);
  });
});
