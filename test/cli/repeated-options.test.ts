/**
 * Task 323 (closing note 24, open item 3): an option given twice (`--graph a --graph b`) silently took the last
 * value, so a script that appended a flag read another graph than the one it named first. It is now a usage error
 * (exit 64) naming the option and both values; compact's `--forget-store`, which collects its values, still repeats.
 */
import { describe, expect, it } from "vitest";
import { runCli } from "./fixtures/cli.js";
import { cliGraphStore } from "../support/cli-graph-store.js";

const fixture = cliGraphStore("repeated-options");

describe("an option given twice", () => {
  it("is a usage error naming it, for value options (either spelling) and flags alike", () => {
    const cases: Array<[string[], RegExp]> = [
      [["export", fixture.store, "--graph", "g", "--graph", "h"], /^error usage: option '--graph <name>' given twice \("g", then "h"\): give it once\n$/],
      [["export", fixture.store, "--graph=g", "--graph=g"], /^error usage: option '--graph <name>' given twice \("g", then "g"\): give it once\n$/],
      [["frames", fixture.store, "--graph", "g", "--limit", "1", "--limit", "2"], /^error usage: option '--limit <n>' given twice \("1", then "2"\): give it once\n$/],
      [["verify", fixture.store, "--json", "--json"], /^error usage: option '--json' given twice: give it once\n$/],
      [["verify", fixture.store, "--backend", "sqlite", "--backend", "file"], /^error usage: option '--backend <kind>' given twice \("sqlite", then "file"\): give it once\n$/],
    ];
    for (const [args, line] of cases) {
      const r = runCli(args);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(64);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(line);
    }
  });

  it("once each is as before, and --forget-store still collects every value", () => {
    expect(runCli(["export", fixture.store, "--graph", "g"]).code).toBe(0);
    // Ids the store does not record: compact names both in its refusal (exit 64), so both were taken.
    const r = runCli(["compact", fixture.store, "--graph", "g", "--forget-store", "x1", "--forget-store", "x2"]);
    expect(r.code, r.stderr).toBe(64);
    expect(r.stderr).toMatch(/x1/);
    expect(r.stderr).toMatch(/x2/);
  });
});
