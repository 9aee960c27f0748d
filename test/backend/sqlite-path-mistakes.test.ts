/**
 * A directory given as a SQLite store's path (a new user's `{ kind: "sqlite", path: "./data" }`). A directory has two
 * or more links of its own, so the hard-link guard refused it as "has 2 hard links: a SQLite store must have one
 * name … remove the other links" (review s14 E): a wrong diagnosis. Now invalid-argument with reason "directory",
 * saying so, writable and read-only, inline and through the engine; the directory is left as it was.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { sqliteKv } from "../../src/tier/factories.js";
import { errorOf, storageErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-sqlite-path-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function freshDir(name: string): string {
  const dir = join(root, name);
  mkdirSync(dir);
  return dir;
}

function expectDirectoryRefusal(err: StorageError, dir: string): void {
  expect(err.code).toBe("invalid-argument");
  expect(err.details).toMatchObject({ path: dir, reason: "directory" });
  expect(err.message).toContain("is a directory");
  expect(err.message).not.toContain("hard link");
}

describe("a directory as a SQLite store's path", () => {
  it("is refused as a directory, not as a file with hard links (backend and factory, writable and read-only)", () => {
    const dir = freshDir("inline");
    for (const opts of [{}, { readOnly: true }]) {
      expectDirectoryRefusal(storageErrorOf(() => sqliteBackend(dir, opts)), dir);
      expectDirectoryRefusal(storageErrorOf(() => sqliteKv(dir, opts)), dir);
    }
    expect(readdirSync(dir)).toEqual([]); // no lock or journal left inside or beside it
    expect(readdirSync(root).filter((n) => n.startsWith("inline"))).toEqual(["inline"]);
  });

  it("through the engine: the tier's flush rejects with the same refusal, and onError hears it", async () => {
    const dir = freshDir("engine");
    const heard: unknown[] = [];
    const engine = openStorageEngine({ threads: 1, onError: (err) => heard.push(err) });
    try {
      const kv = engine.kv({ kind: "sqlite", path: dir });
      const err = await errorOf(() => kv.flush());
      expect(err).toBeInstanceOf(StorageError);
      expectDirectoryRefusal(err as StorageError, dir);
      expect(heard.some((e) => e instanceof StorageError && e.details.reason === "directory")).toBe(true);
    } finally {
      await engine.close().catch(() => undefined);
    }
    expect(readdirSync(dir)).toEqual([]);
  });
});
