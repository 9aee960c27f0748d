/**
 * A store argument whose `..` follows a symbolic link names two places (design §3.12). Every command refuses it
 * before anything is made, and as the bad argument it is: `error usage`, exit 64, like a file given for a
 * file-backend directory. Before (review r249 F1) `stats` named the store by resolve() without the check and wrote its
 * scratch graph into the text's place (exit 0), and the other commands exited 4 ("any other failure").
 * The compiled bin in child processes, real symbolic links, real SQLite.
 */
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";

const tmp = tempDir("dotdot");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

describe("a store argument through link/..", () => {
  it("is refused by stats, inspect, export and import with exit 64, nothing made at either place", () => {
    const base = tmp.path("case");
    const d = join(base, "d");
    const e = join(base, "e");
    mkdirSync(d, { recursive: true });
    mkdirSync(join(e, "sub"), { recursive: true });
    symlinkSync(join(e, "sub"), join(d, "link"));
    const spelled = `${d}/link/../s.db`; // concatenated: join() would drop the `..` by text
    const snapshot = join(base, "snap.json");
    writeFileSync(snapshot, '{"name":"g","version":1,"nodes":{},"edges":[],"subgraphs":[]}');
    const runs = {
      stats: runCli(["stats", spelled, "--frames", "2", "--batch", "2", "--no-progress"]),
      inspect: runCli(["inspect", spelled]),
      export: runCli(["export", spelled, "--graph", "g", "--out", join(base, "out.json")]),
      import: runCli(["import", snapshot, spelled]),
    };
    for (const [command, r] of Object.entries(runs)) {
      expect({ command, code: r.code }).toEqual({ command, code: 64 });
      expect(r.stderr, command).toMatch(/^error usage: store path .* names two places: .*neither exists yet/);
      expect(r.stderr.split("\n").filter(Boolean), command).toHaveLength(1);
    }
    expect(readdirSync(d)).toEqual(["link"]);
    expect(readdirSync(e)).toEqual(["sub"]);
    expect(existsSync(join(base, "out.json"))).toBe(false);
  }, 60_000);
});
