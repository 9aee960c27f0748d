/**
 * Review r359 H2 (task 364): a check lock connection SQLite failed otherwise than busy (the review's
 * SQLITE_IOERR_FSTAT: its file deleted under it) was kept, and every later conditional batch of that handle failed
 * until the handle was closed. Now a try failing so closes the connection, and the next batch opens the path afresh.
 * The failure here is a real one of the connection alone: its descriptor closed behind SQLite's back (the file at the
 * path stays fine), in a child process of its own (fixtures/file-check-dead-fd.mjs, dist/: build first), so no other
 * file of the test runner takes that descriptor's number.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";

const CHILD = fileURLToPath(new URL("./fixtures/file-check-dead-fd.mjs", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "file-check-dead-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it("a batch whose check lock connection failed (its descriptor gone) fails typed, and the next batch opens afresh and applies", () => {
  const out = JSON.parse(execFileSync(process.execPath, [CHILD, join(root, "store")], { encoding: "utf8" })) as {
    fds: number;
    answers: unknown[];
    n: number[];
  };
  // Before: the second and third batches failed as the first did (SQLITE_IOERR_LOCK), n stayed [1].
  expect(out).toEqual({
    fds: 1,
    answers: [true, { code: "backend-error", sqliteCode: "SQLITE_IOERR_LOCK" }, true, true],
    n: [3],
  });
});
