/**
 * Review r309 F6: an `export --out` killed mid-write left its hidden temp file (`.NAME.tmp-…`, as big as the export)
 * beside the target for good. The next export to that target removes the temp files of this host whose process is
 * gone; a live process's (an export running now) and other targets' are left alone.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempPrefix } from "../../src/cli/out-file.js";
import { runCli } from "./fixtures/cli.js";
import { cliGraphStore } from "../support/cli-graph-store.js";

const fixture = cliGraphStore("r309-temp-leftovers");
const tmp = fixture.tmp;

/** The pid of a process that ran and ended (so none of this host has it, barring reuse within the test). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", ""]);
  expect(r.status).toBe(0);
  return r.pid!;
}

describe("export --out after a killed run", () => {
  it("removes the killed run's temp file, keeps a live run's and another target's", () => {
    const dir = tmp.path("out");
    mkdirSync(dir);
    const out = join(dir, "shop.json");
    const dead = `${tempPrefix(out, deadPid())}abc123`;
    const live = `${tempPrefix(out, process.pid)}abc124`; // this test process: alive
    const other = `${tempPrefix(join(dir, "other.json"), deadPid())}abc125`;
    for (const name of [dead, live, other]) writeFileSync(join(dir, name), "half an export");
    const r = runCli(["export", fixture.store, "--graph", "g", "--out", out]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(out, "utf8")).toMatch(/^\{"edges":/);
    expect(readdirSync(dir).sort()).toEqual([live, other, "shop.json"].sort());
  });
});
