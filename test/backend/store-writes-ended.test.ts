/**
 * Stores that take no write for good say so (review r265 of task 258):
 * - a file store whose lock is positively gone (its directory removed and made again, an empty store under no lock
 *   of this writer) fails backend-error reason "store-moved" (file "lock"), and that error is the backend's
 *   finalError, the same object for every later write; so does a SQLite store whose lock file was removed;
 * - while the store's directory is only missing (`rm -rf`, or moved aside) or a file stands in its place, the
 *   failure may pass: a directory moved back brings the very lock back, and the writes resume (task 280; a store
 *   moved aside by maintenance or a backup tool heals);
 * - a SQLite database overwritten under a live handle: a write SQLite answers SQLITE_NOTADB (or SQLITE_CORRUPT) is
 *   corrupt-store (reason "damaged"), not a passing backend-error.
 */
import { closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { syncErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-writes-ended-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it("a file store whose directory was removed and made again: its writes end for good with one error, its finalError", () => {
  const dir = join(root, "file-store");
  const b = fileBackend(dir);
  try {
    b.write("a", new Uint8Array([1]));
    expect(b.finalError).toBeUndefined();
    rmSync(dir, { recursive: true, force: true });
    // Only missing: it may be a directory moved aside, so the failure may pass (no finalError yet).
    const missing = syncErrorOf(() => b.write("b", new Uint8Array([2])));
    expect(missing).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "lock", osCode: "ENOENT" } });
    expect(b.finalError).toBeUndefined();
    mkdirSync(dir, { recursive: true }); // made again: an empty store, under no lock of this writer
    const first = syncErrorOf(() => b.write("c", new Uint8Array([3])));
    expect(first).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "lock", osCode: "ENOENT" } });
    expect(b.finalError).toBe(first);
    expect(syncErrorOf(() => b.write("c", new Uint8Array([3])))).toBe(first);
    expect(syncErrorOf(() => b.writeBatch([{ op: "put", key: "d", value: new Uint8Array([4]) }]))).toBe(first);
    expect(readdirSync(dir)).toEqual([]);
  } finally {
    b.close();
  }
});

it("a file store whose directory was moved aside (or a file put in its place) and back: its writes resume", () => {
  const dir = join(root, "moved-file-store");
  const b = fileBackend(dir);
  try {
    b.write("a", new Uint8Array([1]));
    renameSync(dir, `${dir}.aside`);
    expect(syncErrorOf(() => b.write("b", new Uint8Array([2])))).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "lock", osCode: "ENOENT" } });
    writeFileSync(dir, "not a directory");
    expect(syncErrorOf(() => b.write("b", new Uint8Array([2])))).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "lock", osCode: "ENOTDIR" } });
    // Before task 280 the first of these failures ended the writes for good (finalError set, every later write threw it).
    expect(b.finalError).toBeUndefined();
    unlinkSync(dir);
    renameSync(`${dir}.aside`, dir);
    b.write("b", new Uint8Array([2]));
    expect(b.finalError).toBeUndefined();
    expect(b.read("a")).toEqual(new Uint8Array([1]));
    expect(b.read("b")).toEqual(new Uint8Array([2]));
  } finally {
    b.close();
  }
});

it("a SQLite store whose directory was moved aside and back: its writes resume", () => {
  const dir = join(root, "moved-sqlite");
  mkdirSync(dir);
  const path = join(dir, "s.db");
  const b = sqliteBackend(path);
  try {
    b.write("a", new Uint8Array([1]));
    renameSync(dir, `${dir}.aside`);
    expect(syncErrorOf(() => b.write("b", new Uint8Array([2])))).toMatchObject({ code: "backend-error", details: { reason: "store-moved" } });
    expect(syncErrorOf(() => b.write("c", new Uint8Array([3])))).toMatchObject({ code: "backend-error", details: { reason: "store-moved" } });
    expect(b.finalError).toBeUndefined();
    renameSync(`${dir}.aside`, dir);
    b.write("d", new Uint8Array([4]));
    expect(b.finalError).toBeUndefined();
    expect(b.read("a")).toEqual(new Uint8Array([1]));
    expect(b.read("d")).toEqual(new Uint8Array([4]));
  } finally {
    syncErrorOf(() => b.close());
  }
});

it("a SQLite store whose lock file was removed: its writes end for good with one error, its finalError", () => {
  const path = join(root, "unlocked.db");
  const b = sqliteBackend(path);
  try {
    b.write("a", new Uint8Array([1]));
    expect(b.finalError).toBeUndefined();
    rmSync(`${path}-lock`);
    const first = syncErrorOf(() => b.write("b", new Uint8Array([2])));
    expect(first).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "lock" } });
    expect(b.finalError).toBe(first);
    expect(syncErrorOf(() => b.write("c", new Uint8Array([3])))).toBe(first);
    expect(syncErrorOf(() => b.delete("a"))).toBe(first);
  } finally {
    syncErrorOf(() => b.close());
  }
});

it("a SQLite database overwritten under its writer: the write fails corrupt-store, not a passing backend-error", () => {
  const path = join(root, "damaged.db");
  const b = sqliteBackend(path);
  try {
    b.write("a", new Uint8Array([1]));
    // Everything into the database file, the -wal emptied: the handle's next transaction reads the file again.
    const other = new Database(path);
    other.pragma("wal_checkpoint(TRUNCATE)");
    other.close();
    const fd = openSync(path, "r+");
    const size = fstatSync(fd).size;
    writeSync(fd, Buffer.alloc(size, 0x5a), 0, size, 0); // same file (same inode): not a moved store
    closeSync(fd);
    const err = syncErrorOf(() => b.write("b", new Uint8Array([2])));
    expect(err).toMatchObject({ code: "corrupt-store", details: { reason: "damaged", path } });
    expect((err as { details: { sqliteCode: string } }).details.sqliteCode).toMatch(/^SQLITE_(NOTADB|CORRUPT)/);
    expect(syncErrorOf(() => b.writeBatch([{ op: "put", key: "c", value: new Uint8Array([3]) }]))).toMatchObject({ code: "corrupt-store" });
  } finally {
    syncErrorOf(() => b.close());
  }
});
