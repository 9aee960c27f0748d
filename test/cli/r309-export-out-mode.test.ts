/**
 * Review r309 F2: `export --out` over an existing file replaced it with a new 0644 file owned by whoever ran it (a
 * 0600 private export became world-readable; root writing over a user's file made it root's), and `--out -` made a
 * file named `-`. The new file now takes the old one's owner, group and mode; `-` is stdout.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, runCli } from "./fixtures/cli.js";
import { cliGraphStore } from "../support/cli-graph-store.js";

const fixture = cliGraphStore("r309-out-mode");
const tmp = fixture.tmp;

describe("export --out over an existing file", () => {
  it("keeps its mode (0600 stays private, 0640 stays 0640)", () => {
    for (const mode of [0o600, 0o640]) {
      const out = tmp.path("private.json");
      writeFileSync(out, "old secret\n");
      chmodSync(out, mode);
      const r = runCli(["export", fixture.store, "--graph", "g", "--out", out]);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(out, "utf8")).toMatch(/^\{"edges":/);
      expect((statSync(out).mode & 0o7777).toString(8)).toBe(mode.toString(8));
    }
  });

  it("keeps its owner and group when the writer may set them (these tests run as root)", () => {
    const out = tmp.path("users.json");
    writeFileSync(out, "old\n");
    chownSync(out, 65534, 65534);
    chmodSync(out, 0o644);
    const r = runCli(["export", fixture.store, "--graph", "g", "--out", out]);
    expect(r.code, r.stderr).toBe(0);
    const st = statSync(out);
    const expected = process.getuid?.() === 0 ? [65534, 65534] : [process.getuid?.(), process.getgid?.()];
    expect([st.uid, st.gid]).toEqual(expected);
    expect(readFileSync(out, "utf8")).toMatch(/^\{"edges":/);
  });
});

describe("export --out -", () => {
  it("writes the JSON to stdout and makes no file named -", () => {
    const cwd = tmp.path("cwd");
    mkdirSync(cwd);
    const r = spawnSync(process.execPath, [BIN, "export", fixture.store, "--graph", "g", "--out", "-"], { cwd, encoding: "utf8", timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(runCli(["export", fixture.store, "--graph", "g"]).stdout);
    expect(existsSync(join(cwd, "-"))).toBe(false);
  });
});
