/**
 * Review r309 F1: output that cannot be written (stdout on /dev/full: ENOSPC, as a full disk under a redirect) was
 * an uncaught exception: a stack trace and exit 1, which for verify means "restorable". Now every command prints one
 * line `error ENOSPC: cannot write output: …` and exits 4; a failing stderr leaves the exit code the command's.
 */
import { spawnSync } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, requireBuiltBin, tempDir } from "./fixtures/cli.js";
import { buildStore, damageFrame } from "./fixtures/stores.js";

const tmp = tempDir("r309-output");
let gap = "";
let ok = "";
beforeAll(async () => {
  requireBuiltBin();
  ok = tmp.path("ok.db");
  await buildStore("sqlite", ok, [{ name: "g" }]);
  gap = tmp.path("gap.db");
  await buildStore("sqlite", gap, [{ name: "g" }]);
  damageFrame("sqlite", gap, "g", 5, "delete"); // a gap: verify's verdict is 2, not restorable
});
afterAll(() => tmp.remove());

/** The bin with stdout (or stderr) on /dev/full; the other stream piped. */
function runOnFull(args: readonly string[], full: "stdout" | "stderr"): { code: number | null; text: string } {
  const fd = openSync("/dev/full", "w");
  try {
    const stdio = full === "stdout" ? ["ignore", fd, "pipe"] : ["ignore", "pipe", fd];
    const r = spawnSync(process.execPath, [BIN, ...args], { stdio: stdio as never, encoding: "utf8", timeout: 60_000 });
    if (r.error) throw r.error;
    return { code: r.status, text: (full === "stdout" ? r.stderr : r.stdout) ?? "" };
  } finally {
    closeSync(fd);
  }
}

describe("stdout that cannot be written", () => {
  it("every command prints one error line and exits 4 (never a verdict)", () => {
    for (const args of [
      ["verify", gap],
      ["inspect", gap],
      ["frames", gap, "--graph", "g"],
      ["export", ok, "--graph", "g"],
      ["stats", ok, "--frames", "3"],
      ["--help"],
    ]) {
      const r = runOnFull(args, "stdout");
      expect(r.code, `${args.join(" ")}: ${r.text}`).toBe(4);
      const lines = r.text.split("\n").filter((l) => l !== "");
      expect(lines, args[0]).toEqual([expect.stringMatching(/^error ENOSPC: cannot write output: no space left on device/)]);
    }
  });
});

describe("stderr that cannot be written", () => {
  it("keeps the command's exit code", () => {
    expect(runOnFull(["verify", gap], "stderr").code).toBe(2);
    expect(runOnFull(["verify", tmp.path("missing.db")], "stderr").code).toBe(4);
    expect(runOnFull(["frobnicate"], "stderr").code).toBe(64);
  });
});
