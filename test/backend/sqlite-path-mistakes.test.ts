/**
 * Store paths a new user gets wrong (review s14 E), each said plainly:
 * - a directory given as a SQLite store's path (`{ kind: "sqlite", path: "./data" }`). A directory has two or more
 *   links of its own, so the hard-link guard refused it as "has 2 hard links: a SQLite store must have one name …
 *   remove the other links": a wrong diagnosis. Now invalid-argument with reason "directory", writable and
 *   read-only, inline and through the engine; the directory is left as it was.
 * - a read-only handle on a path where no store exists yet (a reader or follower started before its writer): SQLite
 *   said only "unable to open database file". Now backend-error naming the missing file, osCode ENOENT.
 * - a FIFO (or device, socket) given as the path: the FIFO's size 0 read as "not created yet", so the store lock was
 *   taken (a `-lock` file left beside it) and SQLite then failed "disk I/O error", an untyped backend-error (review
 *   r232). Now invalid-argument with reason "not-a-file" before anything is made beside it.
 * - a path on a file system that counts no blocks at all (/proc, some FUSE mounts): the OS-cause probe read its
 *   zero free blocks as a full disk, "ENOSPC (no space left on device)". Now no cause is claimed there.
 */
import { execFileSync } from "node:child_process";
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

describe("SQLite store paths a new user gets wrong", () => {
  it("is refused as a directory, not as a file with hard links (backend and factory, writable and read-only)", () => {
    const dir = freshDir("inline");
    for (const opts of [{}, { readOnly: true }]) {
      expectDirectoryRefusal(storageErrorOf(() => sqliteBackend(dir, opts)), dir);
      expectDirectoryRefusal(storageErrorOf(() => sqliteKv(dir, opts)), dir);
    }
    expect(readdirSync(dir)).toEqual([]); // no lock or journal left inside or beside it
    expect(readdirSync(root).filter((n) => n.startsWith("inline"))).toEqual(["inline"]);
  });

  it("a FIFO as the path is refused as not a regular file, writable and read-only, and nothing is left beside it", () => {
    const dir = freshDir("fifo");
    const fifo = join(dir, "s.db");
    execFileSync("mkfifo", [fifo]);
    for (const opts of [{}, { readOnly: true }]) {
      const err = storageErrorOf(() => sqliteBackend(fifo, opts));
      expect(err.code).toBe("invalid-argument");
      expect(err.details).toMatchObject({ path: fifo, reason: "not-a-file", found: "a FIFO" });
      expect(err.message).toContain("is a FIFO");
    }
    expect(readdirSync(dir)).toEqual(["s.db"]); // no -lock, -journal or -wal beside it
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

  it("a read-only handle where no store exists says the file is missing (osCode ENOENT), and creates nothing", async () => {
    const dir = freshDir("missing");
    const path = join(dir, "app.db");
    const expectMissing = (err: StorageError): void => {
      expect(err.code).toBe("backend-error");
      expect(err.details).toMatchObject({ path, osCode: "ENOENT" });
      expect(err.message).toContain("no such file");
    };
    expectMissing(storageErrorOf(() => sqliteBackend(path, { readOnly: true })));
    expectMissing(storageErrorOf(() => sqliteKv(path, { readOnly: true })));
    const engine = openStorageEngine({ threads: 1 });
    try {
      const err = await errorOf(() => engine.kv({ kind: "sqlite", path, readOnly: true }).load("k"));
      expect(err).toBeInstanceOf(StorageError);
      expectMissing(err as StorageError);
    } finally {
      await engine.close().catch(() => undefined);
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it("a store on a file system that counts no blocks (/proc) is not reported as a full disk", () => {
    const path = `/proc/grf-not-a-store-${process.pid}.db`;
    const err = storageErrorOf(() => sqliteBackend(path));
    expect(err.code).toBe("backend-error");
    expect(err.details.osCode).not.toBe("ENOSPC");
    expect(err.message).not.toContain("no space left");
  });
});
