/**
 * Task 368: a child the kill -9 suites killed left what it had made in its temp directory (an empty SQLite etilqs_
 * file, opened and not yet unlinked at the kill) in the machine's /tmp. The harness now gives each child a TMPDIR of
 * its own and removes it once the child has ended.
 */
import { existsSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { killAllChildren, startChild } from "./fixtures/crash-harness.js";

afterAll(() => killAllChildren());

describe("crash-harness children", () => {
  it("a child killed -9 leaves nothing in a temp directory: its TMPDIR, the harness's, is removed once it ended", async () => {
    const child = startChild("temp-dir-child.mjs", {});
    const { dir } = await child.waitFor("temp");
    expect(existsSync(String(dir))).toBe(true);
    await child.kill();
    expect(existsSync(String(dir)), String(dir)).toBe(false);
  });
});
