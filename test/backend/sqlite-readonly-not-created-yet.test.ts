/**
 * A read-only SQLite open of a database that holds no store yet: an empty file (what a starting writer's
 * `new Database(path)` leaves), or a writer's store table not committed yet. It was StorageError("invalid-argument",
 * reason "not-a-store"), which docs/api.md reserves for another program's database, so a follower's retry had no
 * reason to treat it as "not yet" (review r294 F1). It is now a transient backend-error, details.reason
 * "not-created-yet", beside the missing file's ENOENT; once the writer commits, the same open succeeds. Real SQLite
 * files and connections (better-sqlite3, as the writer uses).
 */
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { StorageError } from "../../src/errors.js";
import { syncErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-sqlite-ro-not-yet-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it("an empty database file: backend-error not-created-yet (not invalid-argument), the file left as it was", () => {
  const dir = mkdtempSync(join(root, "empty-"));
  const path = join(dir, "g.db");
  writeFileSync(path, "");
  const err = syncErrorOf(() => sqliteBackend(path, { readOnly: true }).close());
  expect(err).toBeInstanceOf(StorageError);
  expect(err).toMatchObject({ code: "backend-error", details: { path, reason: "not-created-yet" } });
  expect(statSync(path).size).toBe(0);
  expect(readdirSync(dir)).toEqual(["g.db"]);
});

it("a writer's store table not committed yet: not-created-yet; once it commits, the same read-only open reads it", () => {
  const dir = mkdtempSync(join(root, "setup-"));
  const path = join(dir, "g.db");
  // A writer between its `new Database(path)` and its setup's commit: WAL mode on, the table created in an open
  // transaction.
  const writer = new Database(path);
  try {
    writer.pragma("journal_mode = WAL");
    writer.exec("BEGIN IMMEDIATE");
    writer.exec("CREATE TABLE graphrefly_storage (k TEXT PRIMARY KEY, v BLOB NOT NULL)");
    const err = syncErrorOf(() => sqliteBackend(path, { readOnly: true }).close());
    expect(err).toMatchObject({ code: "backend-error", details: { path, reason: "not-created-yet" } });
    writer.exec("COMMIT");
  } finally {
    writer.close();
  }
  const w = sqliteBackend(path);
  try {
    w.write("a", new Uint8Array([7]));
  } finally {
    w.close();
  }
  const reader = sqliteBackend(path, { readOnly: true });
  try {
    expect(reader.read("a")).toEqual(new Uint8Array([7]));
  } finally {
    reader.close();
  }
});

it("a database holding something else is still refused as not a store", () => {
  const dir = mkdtempSync(join(root, "foreign-"));
  const path = join(dir, "g.db");
  const other = new Database(path);
  other.exec("CREATE TABLE notes (t TEXT)");
  other.close();
  expect(syncErrorOf(() => sqliteBackend(path, { readOnly: true }).close())).toMatchObject({
    code: "invalid-argument",
    details: { reason: "not-a-store" },
  });
});
