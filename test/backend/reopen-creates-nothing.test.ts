/**
 * The engine's reopen of a store its lost actor held (backend/reopen.ts, review r287 F2) creates nothing: a store not
 * at its path fails store-moved (a failure that may pass), a directory there without its lock fails not-owner
 * held-meanwhile, and a store in place opens as before. The engine-level proof is test/engine/reopen-moved-aside.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { fileBackend, reopenFileBackend } from "../../src/backend/file.js";
import { reopenSqliteBackend, sqliteBackend } from "../../src/backend/sqlite.js";
import { syncErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-reopen-nothing-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it("file store: moved aside, the reopen fails store-moved and makes nothing; its lock removed, not-owner; in place, it opens", () => {
  const dir = join(root, "file");
  const first = fileBackend(dir);
  first.write("a", new Uint8Array([1]));
  first.close();
  renameSync(dir, `${dir}.aside`);
  expect(syncErrorOf(() => reopenFileBackend(dir))).toMatchObject({ code: "backend-error", details: { reason: "store-moved", osCode: "ENOENT" } });
  expect(existsSync(dir)).toBe(false);
  renameSync(`${dir}.aside`, dir);
  const again = reopenFileBackend(dir);
  expect(again.read("a")).toEqual(new Uint8Array([1]));
  again.close();
  unlinkSync(join(dir, ".graphrefly.lock"));
  const before = readdirSync(dir).sort();
  expect(syncErrorOf(() => reopenFileBackend(dir))).toMatchObject({ code: "not-owner", details: { reason: "held-meanwhile" } });
  expect(readdirSync(dir).sort()).toEqual(before);
});

it("SQLite store: its directory or database moved aside, the reopen fails store-moved and makes nothing; its lock removed, not-owner", () => {
  const dir = join(root, "sqlite");
  mkdirSync(dir);
  const path = join(dir, "s.db");
  const first = sqliteBackend(path);
  first.write("a", new Uint8Array([1]));
  first.close();
  renameSync(dir, `${dir}.aside`);
  expect(syncErrorOf(() => reopenSqliteBackend(path))).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "database" } });
  expect(existsSync(dir)).toBe(false);
  renameSync(`${dir}.aside`, dir);
  renameSync(path, `${path}.aside`); // the database file alone moved aside: its lock is there
  const withoutDb = readdirSync(dir).sort();
  expect(syncErrorOf(() => reopenSqliteBackend(path))).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "database" } });
  expect(readdirSync(dir).sort()).toEqual(withoutDb);
  renameSync(`${path}.aside`, path);
  const again = reopenSqliteBackend(path);
  expect(again.read("a")).toEqual(new Uint8Array([1]));
  again.close();
  unlinkSync(`${path}-lock`);
  const before = readdirSync(dir).sort();
  expect(syncErrorOf(() => reopenSqliteBackend(path))).toMatchObject({ code: "not-owner", details: { reason: "held-meanwhile" } });
  expect(readdirSync(dir).sort()).toEqual(before);
});
