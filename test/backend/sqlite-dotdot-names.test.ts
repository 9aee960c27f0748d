/**
 * A store path with `link/..` names the link target's parent, as the kernel and SQLite resolve it, so its writer
 * lock is the store's: the lock's path was resolved by text (`resolve` drops `dir/..`), and a second writer was
 * admitted through such a path beside a live one (review). Since task 246 such a path, whose text and kernel
 * meanings differ, is refused outright (design §3.12): the second writer still never gets in. Real parts: SQLite
 * files, a child process holding one.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { sqliteLockPath } from "../../src/backend/lock.js";
import { killAllStoreChildren, openStoreInChild } from "./store-holder.js";

const root = mkdtempSync(join(tmpdir(), "grf-dotdot-names-"));
afterEach(async () => {
  await killAllStoreChildren();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

it("a writer through link/.. of a store another process holds is refused, and shares its lock path", async () => {
  // root/x/link -> root/y/sub: root/x/link/../s.db is root/y/s.db for the kernel and SQLite.
  const x = join(root, "x");
  const y = join(root, "y");
  mkdirSync(x);
  mkdirSync(join(y, "sub"), { recursive: true });
  symlinkSync(join(y, "sub"), join(x, "link"));
  const viaDots = `${join(x, "link")}/../s.db`; // the .. kept literally
  const real = join(y, "s.db");
  expect(sqliteLockPath(viaDots)).toBe(sqliteLockPath(real));
  const holder = await openStoreInChild("sqlite", real);
  expect(holder.report.code).toBe("acquired");
  let err: unknown;
  try {
    const b = sqliteBackend(viaDots);
    b.close();
  } catch (e) {
    err = e;
  }
  await holder.release();
  expect(err).toMatchObject({ code: "invalid-argument", details: { reason: "ambiguous-dotdot", kernelPath: real } });
});

it("in one process, a relative and an absolute name of a store share one lock and one store", () => {
  const d = join(root, "rel");
  mkdirSync(d);
  const cwd = process.cwd();
  process.chdir(d);
  try {
    const a = sqliteBackend("r.db");
    const b = sqliteBackend(join(d, "r.db"));
    a.write("k", new TextEncoder().encode("1"));
    expect(b.read("k")).toEqual(new TextEncoder().encode("1"));
    expect(sqliteLockPath("r.db")).toBe(sqliteLockPath(join(d, "r.db")));
    a.close();
    b.close();
  } finally {
    process.chdir(cwd);
  }
});
