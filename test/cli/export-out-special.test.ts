/**
 * `export --out` naming something that is not a regular file. The output was written to a temporary file and renamed
 * over the name given, so a FIFO (or a link to one) was replaced by a regular file, its reader never got a byte, and
 * run as root `--out /dev/null` replaced the device node itself; an existing directory failed with a raw EISDIR from
 * the rename. Now a FIFO or device is written into, as a shell's `>` would, and a directory is a usage error.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { lstatSync, mkdirSync, readdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, requireBuiltBin, tempDir } from "./fixtures/cli.js";
import { buildStore } from "./fixtures/stores.js";

const tmp = tempDir("export-out-special");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

/** A process reading `fifo` to its end; resolves with what it read. */
function readFifo(fifo: string): { child: ChildProcess; text: Promise<string> } {
  const child = spawn(process.execPath, ["-e", "process.stdout.write(require('fs').readFileSync(process.argv[1]))", fifo]);
  let out = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
  const text = new Promise<string>((resolve) => child.on("close", () => resolve(out)));
  return { child, text };
}

/** Runs the bin without blocking this thread (the FIFO's reader is a child of this process too). */
function runCliAsync(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args]);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

describe("export --out onto something that is not a regular file", () => {
  it.each([
    ["a FIFO", false],
    ["a symbolic link to a FIFO", true],
  ])("%s: written into, still a FIFO, its reader gets the snapshot", async (_label, viaLink) => {
    const store = tmp.path("s.db");
    await buildStore("sqlite", store, [{ name: "g" }]);
    const dir = tmp.path("out");
    mkdirSync(dir);
    const fifo = join(dir, "pipe");
    execFileSync("mkfifo", [fifo]);
    const out = viaLink ? join(dir, "link") : fifo;
    if (viaLink) symlinkSync(fifo, out);
    const expected = (await runCliAsync(["export", store, "--graph", "g"])).stdout;
    const reader = readFifo(fifo);
    try {
      const r = await runCliAsync(["export", store, "--graph", "g", "--out", out]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(lstatSync(fifo).isFIFO()).toBe(true);
      expect(await reader.text).toBe(expected);
      // No temporary file left beside it.
      expect(readdirSync(dir).sort()).toEqual(viaLink ? ["link", "pipe"] : ["pipe"]);
    } finally {
      reader.child.kill("SIGKILL"); // before the fix nothing ever opened the FIFO for writing: the reader waits
    }
  });

  it("an existing directory: usage error (exit 64), one line, the directory as it was", async () => {
    const store = tmp.path("s.db");
    await buildStore("sqlite", store, [{ name: "g" }]);
    const dir = tmp.path("outdir");
    mkdirSync(dir);
    const r = await runCliAsync(["export", store, "--graph", "g", "--out", dir]);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe("");
    expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toMatch(/^error usage: --out .* is a directory/);
    expect(lstatSync(dir).isDirectory()).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
    expect(readdirSync(join(dir, ".."))).not.toContainEqual(expect.stringMatching(/\.tmp-/));
  });
});
