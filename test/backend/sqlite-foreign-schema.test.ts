/**
 * A SQLite file whose `graphrefly_storage` table is not the one the backend creates (review F2). `CREATE TABLE IF NOT
 * EXISTS` kept it and nothing checked it, so the key/value contract broke silently: with no primary key a key held
 * several rows and read returned the first value; with a NOCASE key `key` overwrote `Key`. Now both writable and
 * read-only opens refuse such a table (corrupt-store, details.reason "foreign-schema") and change nothing in the file.
 */
import Database from "better-sqlite3";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { storageErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-sqlite-schema-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

/** A database made by another program with `ddl`, holding one row under key "Key". */
function databaseWith(ddl: string, insert = "INSERT INTO graphrefly_storage (k, v) VALUES ('Key', x'01')"): string {
  const path = join(root, `db-${counter++}.db`);
  const db = new Database(path);
  db.exec(ddl);
  if (insert !== "") db.exec(insert);
  db.close();
  return path;
}

const sha = (path: string): string => createHash("sha256").update(readFileSync(path)).digest("hex");


const FOREIGN: Array<[string, string, string?]> = [
  ["no primary key (a key holds several rows)", "CREATE TABLE graphrefly_storage (k TEXT, v BLOB NOT NULL)"],
  ["a NOCASE key column (key overwrites Key)", "CREATE TABLE graphrefly_storage (k TEXT PRIMARY KEY COLLATE NOCASE, v BLOB NOT NULL)"],
  ["a NOCASE primary key constraint", "CREATE TABLE graphrefly_storage (k TEXT, v BLOB NOT NULL, PRIMARY KEY (k COLLATE NOCASE))"],
  ["a NOCASE column under a BINARY primary key", "CREATE TABLE graphrefly_storage (k TEXT COLLATE NOCASE, v BLOB NOT NULL, PRIMARY KEY (k COLLATE BINARY))"],
  ["a numeric key column (007 and 7 are one key)", "CREATE TABLE graphrefly_storage (k NUMERIC PRIMARY KEY, v BLOB NOT NULL)"],
  ["a nullable value column", "CREATE TABLE graphrefly_storage (k TEXT PRIMARY KEY, v BLOB)"],
  ["a third column", "CREATE TABLE graphrefly_storage (k TEXT PRIMARY KEY, v BLOB NOT NULL, extra TEXT)"],
  [
    "other column names",
    "CREATE TABLE graphrefly_storage (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
    "INSERT INTO graphrefly_storage VALUES ('Key', x'01')",
  ],
  [
    "a unique index on the values (a put would delete another key)",
    "CREATE TABLE graphrefly_storage (k TEXT PRIMARY KEY, v BLOB NOT NULL); CREATE UNIQUE INDEX one_value ON graphrefly_storage (v)",
  ],
  [
    "a trigger",
    "CREATE TABLE graphrefly_storage (k TEXT PRIMARY KEY, v BLOB NOT NULL); CREATE TRIGGER t AFTER INSERT ON graphrefly_storage BEGIN DELETE FROM graphrefly_storage WHERE k <> NEW.k; END",
  ],
];

describe("sqliteBackend on a graphrefly_storage table it did not create", () => {
  it.each(FOREIGN)("%s: refused at open (corrupt-store), writable or read-only, the file unchanged", (_label, ddl, insert) => {
    const path = databaseWith(ddl, insert);
    const before = sha(path);
    for (const opts of [{}, { readOnly: true }]) {
      const err = storageErrorOf(() => sqliteBackend(path, opts));
      expect(err.code).toBe("corrupt-store");
      expect(err.details).toMatchObject({ path, reason: "foreign-schema" });
    }
    expect(sha(path)).toBe(before);
  });

  it("a view of our name: refused", () => {
    const path = databaseWith("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB NOT NULL); CREATE VIEW graphrefly_storage AS SELECT k, v FROM t", "");
    for (const opts of [{}, { readOnly: true }]) expect(storageErrorOf(() => sqliteBackend(path, opts)).details.reason).toBe("foreign-schema");
  });

  it("our table as the reference writes it, with another program's tables and a plain index beside it: opened, keys kept apart", () => {
    const path = databaseWith(
      "create table GRAPHREFLY_STORAGE (K text primary key, V blob not null); CREATE INDEX by_value ON graphrefly_storage (v); CREATE TABLE users (id INTEGER PRIMARY KEY)",
    );
    const b = sqliteBackend(path);
    b.write("key", Uint8Array.of(2));
    b.write("Key", Uint8Array.of(3));
    expect(b.read("Key")).toEqual(Uint8Array.of(3));
    expect(b.read("key")).toEqual(Uint8Array.of(2));
    expect(b.list()).toEqual(["Key", "key"]);
    b.close();
    const reader = sqliteBackend(path, { readOnly: true });
    expect(reader.list()).toEqual(["Key", "key"]);
    reader.close();
  });
});
