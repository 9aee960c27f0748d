/**
 * Review r309 F5: `verify` of a directory that is no store (an empty directory, one with other files, one named
 * x.db) said `no graphs; result: clean (exit 0)`, a verdict on a store that is not there, and `compact` would have
 * made it one. Such a directory is `store-not-found` (exit 4); an empty store this package made (its lock file
 * left) still verifies clean.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { openBackend } from "./fixtures/stores.js";

const tmp = tempDir("r309-not-a-store");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

describe("a directory that is no store", () => {
  it("is store-not-found (exit 4) for verify, inspect and compact, which leave it as it was", () => {
    const empty = tmp.path("empty");
    const named = tmp.path("x.db");
    const other = tmp.path("other");
    for (const d of [empty, named, other]) mkdirSync(d);
    writeFileSync(join(other, "notes.txt"), "not a key\n");
    for (const dir of [empty, named, other]) {
      const before = readdirSync(dir);
      for (const args of [["verify", dir], ["inspect", dir], ["compact", dir, "--graph", "g"]]) {
        const r = runCli(args);
        expect(r.code, `${args.join(" ")}: ${r.stdout}${r.stderr}`).toBe(4);
        expect(r.stdout).toBe("");
        expect(r.stderr).toMatch(/^error store-not-found: .* is not a store/);
      }
      expect(readdirSync(dir)).toEqual(before);
    }
  });
});

describe("an empty store this package made", () => {
  it("still verifies clean", () => {
    const dir = tmp.path("store");
    openBackend("file", dir).close(); // a writer's open leaves the lock file
    expect(existsSync(join(dir, ".graphrefly.lock"))).toBe(true);
    const r = runCli(["verify", dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/result: clean \(exit 0\)/);
  });
});
