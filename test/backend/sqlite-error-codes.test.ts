/**
 * `details.osCode` is an errno and `details.sqliteCode` a SQLite code, never the other's (task 174). A SQLite
 * failure with no OS cause behind it put its SQLite code in `osCode` too (`osCode: "SQLITE_NOTADB"` for a file that
 * is not a database), and an OS error met on the way (creating the store's directory) was reported as a SQLite code
 * (`sqliteCode: "ENOTDIR"`): a program branching on `osCode` (ENOSPC, EACCES …) read SQLite's words as the OS's.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { StorageError } from "../../src/errors.js";

const dir = mkdtempSync(join(tmpdir(), "grf-sqlite-error-codes-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function openError(path: string): StorageError {
  let thrown: unknown;
  try {
    sqliteBackend(path).close();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(StorageError);
  return thrown as StorageError;
}

it("a file that is not a database: sqliteCode SQLITE_NOTADB, no osCode", () => {
  const path = join(dir, "junk.db");
  writeFileSync(path, Buffer.alloc(8192, 0x5a));
  const err = openError(path);
  expect(err.code).toBe("backend-error");
  expect(err.details.sqliteCode).toBe("SQLITE_NOTADB");
  expect(err.details).not.toHaveProperty("osCode");
});

it("a store whose directory cannot be made (a file on the way): osCode ENOTDIR, no sqliteCode", () => {
  const file = join(dir, "a-file");
  writeFileSync(file, "not a directory");
  const err = openError(join(file, "sub", "app.db"));
  expect(err.code).toBe("backend-error");
  expect(err.details.osCode).toBe("ENOTDIR");
  expect(err.details).not.toHaveProperty("sqliteCode");
});
