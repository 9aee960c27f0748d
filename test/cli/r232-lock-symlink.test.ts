/**
 * r232 attack: the store lock is opened by name (src/backend/lock.ts:224 `new Database(lockPath)`), following a
 * symbolic link. A hostile file-store directory whose `.graphrefly.lock` is a link makes a writer (here `compact`,
 * exit 0) write outside the store: a dangling link creates an 8 KiB SQLite file at its target, anywhere the user
 * may write (as root: anywhere); a link to another SQLite database adds the lock's `owner` table to it. The SQLite
 * store's `<file>-lock` is opened the same way. Real file store, the compiled bin.
 */
import Database from "better-sqlite3";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { buildStore } from "./fixtures/stores.js";

const tmp = tempDir("r232-lock-symlink");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

describe("a file store whose lock file is a symbolic link", () => {
  it("dangling: nothing is created at the link's target", async () => {
    const store = tmp.path("dangling");
    await buildStore("file", store, [{ name: "g" }]);
    const outside = tmp.path("outside");
    mkdirSync(outside);
    rmSync(`${store}/.graphrefly.lock`); // the lock file buildStore left: replaced by the link
    symlinkSync(`${outside}/created-by-cli`, `${store}/.graphrefly.lock`);
    const r = runCli(["compact", store, "--graph", "g"]);
    expect(existsSync(`${outside}/created-by-cli`)).toBe(false);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^error corrupt-store: .*\.graphrefly\.lock is a symbolic link/);
  });

  it("to another SQLite database: that database is left byte for byte", async () => {
    const store = tmp.path("to-db");
    await buildStore("file", store, [{ name: "g" }]);
    const victim = tmp.path("victim.db");
    const db = new Database(victim);
    db.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1);");
    db.close();
    const before = readFileSync(victim).toString("base64");
    rmSync(`${store}/.graphrefly.lock`);
    symlinkSync(victim, `${store}/.graphrefly.lock`);
    const r = runCli(["compact", store, "--graph", "g"]);
    expect(readFileSync(victim).toString("base64")).toBe(before);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^error corrupt-store: /);
  });
});

describe("a SQLite store whose <file>-lock is a symbolic link", () => {
  it("dangling: the writer is refused and nothing is created at the target", async () => {
    const store = tmp.path("s.db");
    await buildStore("sqlite", store, [{ name: "g" }]);
    const outside = tmp.path("outside-sqlite");
    mkdirSync(outside);
    rmSync(`${store}-lock`, { force: true });
    symlinkSync(`${outside}/created-by-cli`, `${store}-lock`);
    const r = runCli(["compact", store, "--graph", "g"]);
    expect(existsSync(`${outside}/created-by-cli`)).toBe(false);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^error corrupt-store: .*-lock is a symbolic link/);
  });
});
