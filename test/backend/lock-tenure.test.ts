/**
 * The store lock's holds and the hold before each (backend/tenure.ts, design §3.17): who held the store before this
 * process must never be lost, whichever handle of the process asks and however its open went.
 *
 * Review r203 (95f37bb): a try whose own row committed, but whose check (BEGIN + SELECT) then met a write in progress
 * on the lock database ("writing"), was tried again; the next try found the row it committed itself, took the join
 * path and reported `before` = this process. The hold before it (another process's, released) was lost, so an engine
 * replacing a lost actor (src/engine/actor.ts) concluded nobody held the store meanwhile. The write in progress is a
 * second real SQLite connection to the lock database taking BEGIN EXCLUSIVE right after our commit and ending it at
 * our first ROLLBACK: a hook on better-sqlite3's exec only times it, deterministically.
 *
 * Older (also r203): a handle joining its process's hold reported `after` = this process, though the hold was taken
 * over another process's; and a hold was named by its process alone, so a process's second hold (taken back after
 * another process held the store) looked like its first. Holds are now named by process and `since`, and the lock's
 * row keeps the hold before it (`prev`), which lock databases written before gain on their next take.
 *
 * Real parts: SQLite files, a second connection, another process (the compiled package: `npm run build` first).
 */
import Database from "better-sqlite3";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { processIdentity, sqliteLockPath } from "../../src/backend/lock.js";
import { fileBackend } from "../../src/backend/file.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { writerTenure } from "../../src/backend/tenure.js";

const dir = mkdtempSync(join(tmpdir(), "lock-tenure-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const OTHER = "otherhost/4242/99";
const OLD_SCHEMA = "CREATE TABLE IF NOT EXISTS owner (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER, host TEXT, process TEXT, since TEXT)";
/** The row write of versions before `prev`: what another process running one of them commits. */
const OLD_ROW = "INSERT OR REPLACE INTO owner (id, pid, host, process, since) VALUES (1, 4242, 'otherhost', ?, ?)";

/** The process a hold id names (before its `@since`; ids before the fix were the process alone). */
function processOf(hold: string | undefined): string | undefined {
  return hold?.split("@")[0];
}

/** A store whose lock's row says another process held it since `since` and let it go. */
function heldBefore(name: string, since: string): string {
  const path = join(dir, name);
  sqliteBackend(path).close(); // the store and its lock database exist
  const seed = new Database(sqliteLockPath(path));
  seed.prepare(OLD_ROW).run(OTHER, since);
  seed.close();
  return path;
}

describe("a store lock taken over another process's released hold", () => {
  it.each([false, true])("names that hold as `after` (a write in progress on the lock database after our commit: %s)", (race) => {
    const since = new Date().toISOString();
    const path = heldBefore(`race-${String(race)}.db`, since);
    const lockPath = sqliteLockPath(path);
    const exec = Database.prototype.exec;
    let writer: Database.Database | undefined;
    let armed = race;
    let raced = false;
    Database.prototype.exec = function (this: Database.Database, sql: string) {
      const out = exec.call(this, sql) as Database.Database;
      if (this.name === lockPath && armed) {
        if (sql === "COMMIT") {
          writer = new Database(lockPath, { timeout: 0 });
          exec.call(writer, "BEGIN EXCLUSIVE"); // a write in progress: readers are refused until it ends
        } else if (sql === "ROLLBACK" && writer !== undefined) {
          exec.call(writer, "ROLLBACK");
          writer.close();
          writer = undefined;
          armed = false;
          raced = true;
        }
      }
      return out;
    } as typeof exec;
    try {
      const b = sqliteBackend(path);
      try {
        expect(raced).toBe(race); // the check met the write, when armed
        expect(processIdentity()).not.toBe(OTHER);
        const tenure = writerTenure(b);
        expect(processOf(tenure?.after)).toBe(OTHER); // the defect: this process, once the check met the write
        expect(tenure?.after).toBe(`${OTHER}@${since}`);
        expect(tenure?.id.startsWith(`${processIdentity()}@`)).toBe(true);
      } finally {
        b.close();
      }
    } finally {
      Database.prototype.exec = exec;
      writer?.close();
    }
  });

  it("takes it at a `since` after that hold's, whatever the clock says (another host's clock ahead)", () => {
    const ahead = new Date(Date.now() + 3_600_000).toISOString();
    const path = heldBefore("ahead.db", ahead);
    const b = sqliteBackend(path);
    try {
      const expected = new Date(Date.parse(ahead) + 1).toISOString();
      expect(writerTenure(b)).toEqual({ id: `${processIdentity()}@${expected}`, after: `${OTHER}@${ahead}` });
    } finally {
      b.close();
    }
  });
});

describe("handles joining this process's hold taken over another process's", () => {
  it("name the same hold and the one before it as the first handle does (SQLite)", () => {
    const since = new Date().toISOString();
    const path = heldBefore("join.db", since);
    const first = sqliteBackend(path);
    const second = sqliteBackend(path);
    try {
      expect(processOf(writerTenure(second)?.after)).toBe(OTHER); // the defect: this process, for a joining handle
      expect(writerTenure(first)?.after).toBe(`${OTHER}@${since}`);
      expect(writerTenure(second)).toEqual(writerTenure(first));
    } finally {
      second.close();
      first.close();
    }
    // Every handle closed and nobody else took it: opened again, it is the same hold (joined), after the same one.
    const again = sqliteBackend(path);
    try {
      expect(writerTenure(again)?.after).toBe(`${OTHER}@${since}`);
    } finally {
      again.close();
    }
  });

  it("name the same hold and the one before it as the first handle does (file store)", () => {
    const store = join(dir, "join-fs");
    fileBackend(store).close();
    const since = new Date().toISOString();
    const seed = new Database(join(store, ".graphrefly.lock"));
    seed.prepare(OLD_ROW).run(OTHER, since);
    seed.close();
    const first = fileBackend(store);
    const second = fileBackend(store);
    try {
      expect(processOf(writerTenure(second)?.after)).toBe(OTHER);
      expect(writerTenure(first)?.after).toBe(`${OTHER}@${since}`);
      expect(writerTenure(second)).toEqual(writerTenure(first));
    } finally {
      second.close();
      first.close();
    }
  });
});

const run = promisify(execFile);
const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ENTRY = new URL("../../dist/src/backend/sqlite.js", import.meta.url).href;
const TENURE = new URL("../../dist/src/backend/tenure.js", import.meta.url).href;

/** Another process opens the SQLite store at `path`, closes it and says its hold. */
async function otherProcessHolds(path: string): Promise<{ id: string; after?: string }> {
  const script = `
const [entry, tenure, path] = process.argv.slice(1);
const { sqliteBackend } = await import(entry);
const { writerTenure } = await import(tenure);
const b = sqliteBackend(path);
process.stdout.write(JSON.stringify(writerTenure(b)));
b.close();
`;
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script, ENTRY, TENURE, path], { cwd: REPO_ROOT, encoding: "utf8" });
  return JSON.parse(stdout) as { id: string; after?: string };
}

describe("a process taking its store back after another process held it", () => {
  it("holds it anew: the new hold follows the other process's, not this process's first", async () => {
    const path = join(dir, "back.db");
    const first = sqliteBackend(path);
    const mine = writerTenure(first);
    first.close();
    expect(mine?.after).toBeUndefined(); // a new store: nobody held it before
    const other = await otherProcessHolds(path);
    expect(other.after).toBe(mine?.id);
    const again = sqliteBackend(path);
    const kept = sqliteBackend(path); // a second handle of the new hold
    try {
      const now = writerTenure(again);
      expect(now?.after).toBe(other.id);
      expect(now?.id).not.toBe(mine?.id);
      expect(writerTenure(kept)).toEqual(now);
      // What an engine's revived actor asks (actor.ts, tenure.ts followsHold): does this hold continue from the
      // first one (the same hold, or right after it)? No: the other process held the store in between.
      expect([now?.id, now?.after]).not.toContain(mine?.id);
    } finally {
      kept.close();
      again.close();
    }
  }, 60_000);
});

describe("a lock database written by a version before `prev`", () => {
  it("still opens, names the old row's hold as `after`, and keeps taking rows an older version writes", () => {
    const path = join(dir, "old.db");
    sqliteBackend(path).close();
    const lockPath = sqliteLockPath(path);
    // The lock database as the older versions made it: no `prev` column, another process's row.
    rmSync(lockPath);
    const since = new Date().toISOString();
    const old = new Database(lockPath);
    old.exec(OLD_SCHEMA);
    old.prepare(OLD_ROW).run(OTHER, since);
    old.close();
    const b = sqliteBackend(path);
    let mine: string | undefined;
    try {
      mine = writerTenure(b)?.id;
      expect(writerTenure(b)?.after).toBe(`${OTHER}@${since}`);
    } finally {
      b.close();
    }
    // An older version in another process takes it next (its row write, without `prev`), then this one again.
    const later = new Date(Date.now() + 1).toISOString();
    const older = new Database(lockPath);
    older.prepare(OLD_ROW).run(OTHER, later);
    older.close();
    const again = sqliteBackend(path);
    try {
      expect(writerTenure(again)?.after).toBe(`${OTHER}@${later}`);
      expect(writerTenure(again)?.id).not.toBe(mine);
    } finally {
      again.close();
    }
  });
});
