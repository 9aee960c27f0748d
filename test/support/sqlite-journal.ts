/**
 * Rollback -journals beside a SQLite database, as tests need them: one crafted to name a super-journal (review r342
 * F1: SQLite's rollback deletes the file it names), and a real hot one (a rollback-mode writer killed mid-transaction).
 */
import { spawnSync } from "node:child_process";
import { statSync, writeFileSync } from "node:fs";
import { expect } from "vitest";

const MAGIC = Buffer.from("d9d505f920a163d7", "hex");

/**
 * Writes `<db>-journal` as a hot rollback journal of `db` (page size `pageSize`, the stores' 8192 by default) holding
 * no page, whose trailer names `superJournal`: the header (magic, record count 0, checksum seed, the database's page
 * count, sector size 512, page size) padded to a sector, then the locking page's number, the name, its length, its
 * checksum and the magic, as SQLite writes a multi-database transaction's journal.
 */
export function craftSuperJournal(db: string, superJournal: string, pageSize = 8192): void {
  const header = Buffer.alloc(512);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(0, 8);
  header.writeUInt32BE(0x2b5e7a11, 12);
  header.writeUInt32BE(Math.ceil(statSync(db).size / pageSize), 16);
  header.writeUInt32BE(512, 20);
  header.writeUInt32BE(pageSize, 24);
  const name = Buffer.from(superJournal);
  const trailer = Buffer.alloc(4 + name.length + 16);
  trailer.writeUInt32BE(Math.floor(0x40000000 / pageSize) + 1, 0);
  name.copy(trailer, 4);
  trailer.writeUInt32BE(name.length, 4 + name.length);
  trailer.writeUInt32BE(name.reduce((sum, b) => (sum + b) >>> 0, 0), 8 + name.length);
  MAGIC.copy(trailer, 12 + name.length);
  writeFileSync(`${db}-journal`, Buffer.concat([header, trailer]));
}

/**
 * Leaves the store `db` with a hot -journal: a child switches it to rollback mode, deletes every row of the store's
 * table in a transaction that spills to the database file (a cache of 2 pages), and is killed mid-transaction.
 * `repo` is the repository's root (the child's better-sqlite3).
 */
export function killedMidTransaction(db: string, repo: string): void {
  const writer = spawnSync(
    process.execPath,
    [
      "-e",
      `const db = new (require("better-sqlite3"))(process.argv[1]);
      db.pragma("journal_mode = DELETE");
      db.pragma("cache_size = 2");
      db.exec("BEGIN IMMEDIATE");
      db.exec("DELETE FROM graphrefly_storage");
      db.exec("CREATE TABLE junk(b BLOB)");
      const add = db.prepare("INSERT INTO junk VALUES (randomblob(4000))");
      for (let i = 0; i < 200; i++) add.run();
      process.kill(process.pid, "SIGKILL");`,
      db,
    ],
    { cwd: repo, encoding: "utf8" },
  );
  expect(writer.signal, writer.stderr).toBe("SIGKILL");
  expect(statSync(`${db}-journal`).size).toBeGreaterThan(0);
}
