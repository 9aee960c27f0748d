/**
 * Task 348: the tests that mount a small tmpfs for real ENOSPC and EROFS passed only as root (mount: must be
 * superuser), so a contributor's `npm test` failed them. They now run, as another user, in a child Vitest inside a
 * user namespace where that user may mount (test/support/tmpfs.ts, describeWithTmpfs). CI runs as root, where they
 * mount directly: this runs two of them as another user, so the way an ordinary user runs them is tested too.
 *
 * As root, "another user" is nobody (uid 65534); otherwise it is this user, and the check is the same. Either way
 * the kernel must let that user make a user namespace (the run says so when it does not).
 */
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runChildVitest } from "../support/child-vitest.js";
import { IN_USER_NAMESPACE } from "../support/tmpfs.js";

const NOBODY = 65534;
const ROOT = process.getuid?.() === 0;
const home = mkdtempSync(join(tmpdir(), "grf-another-user-"));
if (ROOT) chownSync(home, NOBODY, NOBODY);
afterAll(() => rmSync(home, { recursive: true, force: true }));

/** A full disk, and a read-only mount made writable again, each under SQLite, inline and through the engine's worker. */
const FILES = ["../backend/sqlite-faults.test.ts", "./worker-open-retry.test.ts"].map((f) => new URL(f, import.meta.url).href);
const DESCRIBES = ["sqliteBackend: the OS cause behind SQLite's words", "an engine store whose open failed opens again at the next operation"];

describe("the tests that mount a tmpfs, as a user who may not mount", () => {
  it("pass, each describe as one test run in a user namespace", { timeout: 300_000 }, async () => {
    const run = await runChildVitest({
      files: FILES,
      ...(ROOT ? { as: { uid: NOBODY, gid: NOBODY } } : {}),
      env: { HOME: home },
      timeoutMs: 240_000,
    });
    expect({ code: run.code, signal: run.signal, error: run.error, timedOutAfterMs: run.timedOutAfterMs }, run.output).toEqual({ code: 0, signal: null, error: undefined, timedOutAfterMs: undefined });
    const tests = (run.files ?? []).flatMap((f) => f.tests);
    const inNamespace = tests.filter((t) => t.title.endsWith(IN_USER_NAMESPACE));
    expect(inNamespace.map((t) => [t.title, t.status]).sort(), run.output).toEqual(DESCRIBES.map((d) => [`${d} ${IN_USER_NAMESPACE}`, "passed"]).sort());
    expect(tests.filter((t) => t.status !== "passed").map((t) => t.fullName), run.output).toEqual([]);
  });
});
