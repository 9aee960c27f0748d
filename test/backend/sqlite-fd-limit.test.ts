/**
 * A process out of file descriptors (task 174). Each SQLite store holds four (the database, its -wal and -shm, the
 * lock), so a process opening many stores under its `ulimit -n` meets the limit; SQLite then says only "unable to
 * open database file", and the StorageError named no cause (`osCode` held the SQLite code SQLITE_CANTOPEN), as if the
 * file or directory were at fault. Now `details.osCode` is EMFILE. A real child process under a real limit.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { assertBuilt } from "../reliability/fixtures/crash-harness.js";

const dir = mkdtempSync(join(tmpdir(), "grf-sqlite-fd-limit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it("opening SQLite stores past the process's file descriptor limit fails backend-error naming EMFILE", () => {
  assertBuilt();
  const backendUrl = new URL("../../dist/src/backend/sqlite.js", import.meta.url).href;
  // Opens stores until one fails (the limit is low, so a few dozen do), then prints that failure.
  const script = `
    const { sqliteBackend } = await import(${JSON.stringify(backendUrl)});
    const open = [];
    let failure;
    for (let i = 0; i < 10000 && failure === undefined; i++) {
      try { open.push(sqliteBackend(${JSON.stringify(dir)} + "/s" + i + ".db")); }
      catch (err) { failure = { opened: i, name: err.name, code: err.code, details: err.details, message: err.message }; }
    }
    for (const b of open) b.close();
    console.log(JSON.stringify(failure ?? null));`;
  const out = execFileSync("sh", ["-c", `ulimit -n 128 && exec "${process.execPath}" --input-type=module -e '${script.replace(/'/g, "'\\''")}'`], {
    encoding: "utf8",
  });
  const failure = JSON.parse(out.trim().split("\n").at(-1)!) as {
    opened: number;
    name: string;
    code: string;
    details: Record<string, unknown>;
    message: string;
  } | null;
  expect(failure).not.toBeNull();
  expect(failure!.opened).toBeGreaterThan(0);
  expect(failure).toMatchObject({ name: "StorageError", code: "backend-error", details: { osCode: "EMFILE" } });
  expect(failure!.message).toMatch(/EMFILE/);
});
