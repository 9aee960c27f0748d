/**
 * A SQLite store as another program left it: the backend creates the schema, then raw better-sqlite3 inserts
 * `rows` as given (any types SQLite's dynamic typing lets in: TEXT or INTEGER values, BLOB keys...).
 */
import Database from "better-sqlite3";
import { sqliteBackend } from "../../src/backend/sqlite.js";

export function sqliteStoreWithRows(path: string, rows: ReadonlyArray<readonly [unknown, unknown]>): string {
  sqliteBackend(path).close();
  const db = new Database(path);
  try {
    const insert = db.prepare("INSERT INTO graphrefly_storage (k, v) VALUES (?, ?)");
    for (const [k, v] of rows) insert.run(k, v);
  } finally {
    db.close();
  }
  return path;
}
