/**
 * A SQLite store's files (s.db, -wal, -shm, -lock) moved aside while their directory stays: the usual way a
 * single-file database is moved aside, its directory being shared, not the store's own. StorePlace.lockGone() called
 * the lock positively gone whenever its directory was there without it, so the writer's first write after the move
 * set finalError: every later write threw it, even once the very files (same inodes) were moved back; a reopen after
 * a lost worker said not-owner (review r298 F1). Now the lock is gone for good only when something shows it: another
 * file at its path, the lock missing while the database file is at its path, or the directory made again (its
 * identity, taken at open, travels with the writer's tenure to a reopen). The files moved aside are a failure that
 * may pass. The r287 F1 cases (directory removed and made again, another store opened at the path) stay final:
 * test/backend/sqlite-lock-gone-db-moved.test.ts. Real SQLite files.
 */
import { mkdirSync, mkdtempSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { carriedTenure, carryTenure } from "../../src/backend/reopen.js";
import { reopenSqliteBackend, sqliteBackend } from "../../src/backend/sqlite.js";
import { writerTenure } from "../../src/backend/tenure.js";
import { moveFiles } from "../support/store-aside.js";
import { syncErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-sqlite-files-aside-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A directory with a store "s.db" in it holding a = [1], and a directory beside it to move its files to. */
function setUp(name: string): { dir: string; aside: string; path: string } {
  const dir = join(root, name);
  const aside = join(root, `${name}.aside`);
  mkdirSync(dir);
  mkdirSync(aside);
  return { dir, aside, path: join(dir, "s.db") };
}

it("the files moved aside and back, the directory kept: a failure that may pass, and the store heals", () => {
  const { dir, aside, path } = setUp("heal");
  const b = sqliteBackend(path);
  try {
    b.write("a", new Uint8Array([1]));
    const files = moveFiles(dir, aside);
    expect(files).toContain("s.db-lock");
    const away = syncErrorOf(() => b.write("b", new Uint8Array([2])));
    expect(away).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "database" } });
    expect(b.finalError).toBeUndefined(); // before the fix: the lock's error, for good
    moveFiles(aside, dir, files); // the very same files
    expect(syncErrorOf(() => b.write("c", new Uint8Array([3])))).toBeUndefined();
    expect(b.finalError).toBeUndefined();
  } finally {
    syncErrorOf(() => b.close());
  }
  // What was acknowledged is in the file at the path.
  const reader = sqliteBackend(path, { readOnly: true });
  try {
    expect(reader.read("a")).toEqual(new Uint8Array([1]));
    expect(reader.read("c")).toEqual(new Uint8Array([3]));
  } finally {
    reader.close();
  }
});

it("the lock removed while the database stays at its path: final (the lock alone is gone)", () => {
  const { path } = setUp("lock-alone");
  const b = sqliteBackend(path);
  try {
    b.write("a", new Uint8Array([1]));
    unlinkSync(`${path}-lock`);
    const first = syncErrorOf(() => b.write("b", new Uint8Array([2])));
    expect(first).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "lock" } });
    expect(b.finalError).toBe(first);
  } finally {
    syncErrorOf(() => b.close());
  }
});

it("the files moved aside, then another database put at the path: final", () => {
  const { dir, aside, path } = setUp("other-db");
  const b = sqliteBackend(path);
  try {
    b.write("a", new Uint8Array([1]));
    moveFiles(dir, aside);
    expect(syncErrorOf(() => b.write("b", new Uint8Array([2])))).toMatchObject({ details: { reason: "store-moved" } });
    expect(b.finalError).toBeUndefined();
    const other = sqliteBackend(path, { lock: false }); // a store made at the path, under no lock
    other.write("x", new Uint8Array([9]));
    other.close();
    const second = syncErrorOf(() => b.write("c", new Uint8Array([3])));
    expect(second).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "lock" } });
    expect(b.finalError).toBe(second);
  } finally {
    syncErrorOf(() => b.close());
  }
});

it("a reopen after a lost writer: the files aside is store-moved (may pass), back it opens; the directory made again is not-owner", () => {
  const { dir, aside, path } = setUp("reopen");
  const first = sqliteBackend(path);
  first.write("a", new Uint8Array([1]));
  const tenure = writerTenure(first);
  expect(tenure).toBeDefined();
  const lockDir = carriedTenure(carryTenure(first, tenure!.id)).lockDir;
  expect(lockDir).toBeDefined();
  first.close();
  const files = moveFiles(dir, aside);
  // Before the fix: not-owner "held-meanwhile", final.
  expect(syncErrorOf(() => reopenSqliteBackend(path, {}, lockDir))).toMatchObject({ code: "backend-error", details: { reason: "store-moved" } });
  expect(syncErrorOf(() => reopenSqliteBackend(path))).toMatchObject({ code: "backend-error", details: { reason: "store-moved" } });
  moveFiles(aside, dir, files);
  const again = reopenSqliteBackend(path, {}, lockDir);
  expect(again.read("a")).toEqual(new Uint8Array([1]));
  again.close();
  // The directory removed and made again, empty: the lost writer's directory is another one.
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  expect(syncErrorOf(() => reopenSqliteBackend(path, {}, lockDir))).toMatchObject({ code: "not-owner", details: { reason: "held-meanwhile" } });
});
