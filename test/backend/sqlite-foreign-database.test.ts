/**
 * A writable open of another program's SQLite database (review F5). The backend switched it to WAL, created its table
 * in it and left a -lock file beside it before anyone knew it was no store, so the CLI's `compact` changed a file it
 * then refused, and `import` wrote into any database. Now a database that holds anything and no table of ours is
 * refused (invalid-argument, details.reason "not-a-store") with the file, its journal mode and its directory as they
 * were. A new path, an empty file and a database holding nothing still become stores.
 */
import Database from "better-sqlite3";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { storageErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-sqlite-foreign-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

/** A directory of its own holding `app.db`, another program's database in `journal` mode. */
function appDatabase(journal: "delete" | "wal"): string {
  const dir = join(root, `case-${counter++}`);
  mkdirSync(dir);
  const path = join(dir, "app.db");
  const db = new Database(path);
  db.pragma(`journal_mode = ${journal}`);
  db.exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('ann'), ('bob')");
  db.close();
  return path;
}

/** What must not change: the file's bytes, its journal mode, its tables, the files beside it. */
function facts(path: string): { sha: string; journal: unknown; tables: string[]; dir: string[] } {
  const sha = createHash("sha256").update(readFileSync(path)).digest("hex");
  const dir = readdirSync(join(path, "..")).sort();
  const db = new Database(path, { readonly: true });
  try {
    const journal = db.pragma("journal_mode", { simple: true });
    const tables = db.prepare<[], string>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
    return { sha, journal, tables, dir };
  } finally {
    db.close();
  }
}


describe("sqliteBackend on a database that is not a store", () => {
  it.each(["delete", "wal"] as const)("%s journal: refused (not-a-store), writable or read-only, with nothing changed", (journal) => {
    const path = appDatabase(journal);
    const before = facts(path);
    for (const opts of [{}, { lock: false }, { readOnly: true }]) {
      const err = storageErrorOf(() => sqliteBackend(path, opts));
      expect(err.code).toBe("invalid-argument");
      expect(err.details).toMatchObject({ path, reason: "not-a-store" });
    }
    expect(facts(path)).toEqual(before);
  });

  it("an empty file, and a database holding nothing, become stores", () => {
    const dir = join(root, `case-${counter++}`);
    mkdirSync(dir);
    const empty = join(dir, "empty.db");
    writeFileSync(empty, "");
    const blank = join(dir, "blank.db");
    const db = new Database(blank);
    db.pragma("user_version = 7"); // a header, no schema
    db.close();
    for (const path of [empty, blank]) {
      const b = sqliteBackend(path);
      b.write("k", Uint8Array.of(1));
      expect(b.db.pragma("journal_mode", { simple: true })).toBe("wal");
      b.close();
      const reader = sqliteBackend(path, { readOnly: true });
      expect(reader.read("k")).toEqual(Uint8Array.of(1));
      reader.close();
    }
  });

  it("a store is reopened as before, and a new path becomes one", () => {
    const path = join(root, `new-${counter++}`, "store.db");
    const b = sqliteBackend(path);
    b.write("k", Uint8Array.of(9));
    b.close();
    const again = sqliteBackend(path);
    expect(again.read("k")).toEqual(Uint8Array.of(9));
    again.close();
  });
});
