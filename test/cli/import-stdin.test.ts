/**
 * Task 323 (closing note 24, open item 3): `import -` read a file named `-` (ENOENT), so `export | import` did not
 * work. `-` is now stdin: the pipeline copies a graph between stores, through a real shell pipe between two CLI
 * processes; bad input on stdin is refused naming "stdin", and a file named `-` is still `./-`.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, runCli } from "./fixtures/cli.js";
import { cliGraphStore } from "../support/cli-graph-store.js";

const fixture = cliGraphStore("import-stdin");

describe("import -", () => {
  it("imports what export prints into it through a pipe", () => {
    const target = fixture.tmp.path("copy.db");
    // "$0" is the bin, "$1" the source store, "$2" the target: no quoting of paths inside the script.
    const r = spawnSync(
      "sh",
      ["-c", `"${process.execPath}" "$0" export "$1" --graph g | "${process.execPath}" "$0" import - "$2" --json`, BIN, fixture.store, target],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ graph: "g", baselineSeq: 1, supersededFrames: 0 });
    expect(runCli(["export", target, "--graph", "g"]).stdout).toBe(runCli(["export", fixture.store, "--graph", "g"]).stdout);
  });

  it("refuses input on stdin that is no snapshot, naming stdin, and creates no store", () => {
    const target = fixture.tmp.path("bad.db");
    const r = runCli(["import", "-", target], "{not json");
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/^error invalid-input: stdin: /);
    expect(existsSync(target)).toBe(false);
  });

  it("says stdin is empty when nothing was piped in (task 333, review r330), and creates no store", () => {
    const target = fixture.tmp.path("empty.db");
    const r = runCli(["import", "-", target], "");
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toBe("error invalid-input: stdin is empty: pipe a snapshot in (graphrefly-storage export STORE --graph NAME | graphrefly-storage import - NEW.db)\n");
    expect(existsSync(target)).toBe(false);
  });

  it("reads a file named - when given as ./-", () => {
    const cwd = fixture.tmp.path("cwd");
    mkdirSync(cwd);
    writeFileSync(join(cwd, "-"), runCli(["export", fixture.store, "--graph", "g"]).stdout);
    const r = spawnSync(process.execPath, [BIN, "import", "./-", "t.db"], { cwd, encoding: "utf8", timeout: 60_000, input: "" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^imported graph "g" as baseline seq 1/);
  });
});
