/**
 * CLI commands pointed at a SQLite file that is not a graphrefly store, another program's database (review F5).
 * `compact` failed (graph-not-found) after it had switched the database to WAL, created the store table in it and left
 * a -lock file; `import` wrote a graph into it. Both are now refused at open (exit 4, invalid-argument) and leave the
 * database byte for byte as it was, with nothing beside it; read commands fail and change nothing too.
 */
import Database from "better-sqlite3";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";

const tmp = tempDir("foreign-sqlite");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

/** Another program's database, alone in a directory of its own. */
function foreignDb(): string {
  const dir = tmp.path("app");
  mkdirSync(dir);
  const path = join(dir, "app.db");
  const db = new Database(path);
  db.exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('ann'), ('bob')");
  db.close();
  return path;
}

/** The database's bytes and the files beside it. */
function facts(path: string): { sha: string; dir: string[] } {
  return { sha: createHash("sha256").update(readFileSync(path)).digest("hex"), dir: readdirSync(dirname(path)).sort() };
}

describe("the CLI on a SQLite database that is not a store", () => {
  it("read commands fail and leave it untouched", () => {
    const path = foreignDb();
    const before = facts(path);
    for (const args of [["inspect", path], ["verify", path], ["export", path, "--graph", "users"], ["frames", path, "--graph", "users"]]) {
      const r = runCli(args);
      expect(r.code, `${args[0]!}: ${r.stderr}`).not.toBe(0);
    }
    expect(facts(path)).toEqual(before);
  });

  it("compact: refused at open (exit 4, invalid-argument), the database as it was", () => {
    const path = foreignDb();
    const before = facts(path);
    const r = runCli(["compact", path, "--graph", "users"]);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/^error invalid-argument: .*not a graphrefly-storage store/);
    expect(facts(path)).toEqual(before);
  });

  it("import into it: refused (exit 4, invalid-argument), the database as it was", () => {
    const path = foreignDb();
    const before = facts(path);
    const snap = join(dirname(path), "..", `${Date.now()}-snap.json`);
    writeFileSync(snap, JSON.stringify({ name: "g", version: 1, nodes: {}, edges: [], subgraphs: [] }));
    const r = runCli(["import", snap, path]);
    expect(r.code, r.stdout + r.stderr).toBe(4);
    expect(r.stderr).toMatch(/^error invalid-argument: .*not a graphrefly-storage store/);
    expect(facts(path)).toEqual(before);
  });
});
