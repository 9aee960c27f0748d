/**
 * What a SQLite file must be before the SQLite backend uses it: a store (our one table, exactly as we create it), or a
 * new, empty database. Checked at every open, before anything of the file is changed: `CREATE TABLE IF NOT EXISTS`
 * alone would keep a foreign table of our name (no primary key: duplicate keys; a NOCASE key: `key` overwrites
 * `Key`) and would turn another program's database into a store. Layer 1.
 */
import type Database from "better-sqlite3";
import { StorageError } from "../errors.js";

export const STORE_TABLE = "graphrefly_storage";
/** The table as graphrefly-storage and the reference implementation create it. */
export const STORE_TABLE_SQL = `CREATE TABLE ${STORE_TABLE} (k TEXT PRIMARY KEY, v BLOB NOT NULL)`;

/** "store": our table, as we create it; "new": a database holding nothing yet (it becomes a store). */
export type SqliteFileKind = "store" | "new";

interface SchemaRow {
  type: string;
  name: string;
  tbl_name: string;
  sql: string | null;
}

interface ColumnRow {
  name: string;
  type: string;
  notnull: number;
  pk: number;
  hidden: number;
}

interface IndexRow {
  name: string;
  unique: number;
  origin: string;
  partial: number;
}

interface IndexColumnRow {
  name: string | null;
  coll: string | null;
}

/**
 * Classifies the database open on `db`. Throws StorageError("invalid-argument", details.reason "not-a-store") for a
 * database holding other things and no table of ours, and StorageError("corrupt-store", details.reason
 * "foreign-schema") for a table of our name that is not ours.
 */
export function checkStoreSchema(db: Database.Database, path: string): SqliteFileKind {
  const objects = db.prepare<[], SchemaRow>("SELECT type, name, tbl_name, sql FROM main.sqlite_master").all();
  if (objects.length === 0) return "new";
  // SQLite names are case-insensitive: GRAPHREFLY_STORAGE is the table our statements would use.
  const ours = (name: string): boolean => name.toLowerCase() === STORE_TABLE;
  const table = objects.find((o) => ours(o.name));
  if (table === undefined) {
    throw new StorageError(
      "invalid-argument",
      `${path} is a SQLite database but not a graphrefly-storage store (it has no ${STORE_TABLE} table): nothing was changed. ` +
        `Give the path of a store or a new file; to keep a store in this database deliberately, create the table first: ${STORE_TABLE_SQL}`,
      { path, reason: "not-a-store" },
    );
  }
  const foreign = (why: string): StorageError =>
    new StorageError(
      "corrupt-store",
      `${path}: its ${STORE_TABLE} table is not the one graphrefly-storage creates (${why}); expected ${STORE_TABLE_SQL}. Nothing was changed`,
      { path, reason: "foreign-schema", found: table.sql ?? table.type },
    );
  if (table.type !== "table" || table.sql === null || !/^CREATE\s+TABLE\b/i.test(table.sql)) throw foreign(`it is a ${table.type}, not a plain table`);
  // A column's collation is not reported by any pragma: any COLLATE in the definition other than BINARY is refused.
  for (const m of table.sql.matchAll(/\bCOLLATE\s+["'`[]?(\w+)/gi)) {
    if (m[1]!.toUpperCase() !== "BINARY") throw foreign(`COLLATE ${m[1]!}: keys must compare byte by byte`);
  }
  const columns = db.prepare<[string], ColumnRow>('SELECT name, type, "notnull", pk, hidden FROM pragma_table_xinfo(?)').all(table.name);
  const key = columns.find((c) => c.name.toLowerCase() === "k");
  const value = columns.find((c) => c.name.toLowerCase() === "v");
  if (columns.length !== 2 || key === undefined || value === undefined || columns.some((c) => c.hidden !== 0)) {
    throw foreign(`columns ${columns.map((c) => c.name).join(", ")}`);
  }
  if (key.type.toUpperCase() !== "TEXT" || key.pk !== 1) throw foreign("its key column k is not TEXT PRIMARY KEY");
  if (value.type.toUpperCase() !== "BLOB" || value.notnull !== 1 || value.pk !== 0) throw foreign("its value column v is not BLOB NOT NULL");
  // The primary key must be k alone, compared byte by byte; any other unique index would make INSERT OR REPLACE
  // delete other keys' rows.
  let primary = false;
  for (const index of db.prepare<[string], IndexRow>('SELECT name, "unique", origin, partial FROM pragma_index_list(?)').all(table.name)) {
    if (index.unique === 0) continue;
    if (index.origin !== "pk" || index.partial !== 0) throw foreign(`unique index ${index.name}`);
    const keyColumns = db.prepare<[string], IndexColumnRow>("SELECT name, coll FROM pragma_index_xinfo(?) WHERE key = 1").all(index.name);
    if (keyColumns.length !== 1 || keyColumns[0]!.name?.toLowerCase() !== "k" || keyColumns[0]!.coll?.toUpperCase() !== "BINARY") {
      throw foreign("its primary key is not k compared byte by byte");
    }
    primary = true;
  }
  if (!primary) throw foreign("no primary key on k");
  const trigger = objects.find((o) => o.type === "trigger" && ours(o.tbl_name));
  if (trigger !== undefined) throw foreign(`trigger ${trigger.name}`);
  return "store";
}
