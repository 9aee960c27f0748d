/**
 * Failures end as one stderr line `error <code>: <message>` and a documented non-zero exit code: a store held by
 * a running writer (exit 3), a missing store or graph (4), a bad command line (64).
 */
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { KINDS, buildStore, openBackend, storePath } from "./fixtures/stores.js";

const tmp = tempDir("errors");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

function expectOneErrorLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.split("\n").filter((l) => l !== "");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

describe.each(KINDS)("a store held by a running writer (%s)", (kind) => {
  it("read commands work on the live store and leave nothing behind; writing commands say who holds it (exit 3)", async () => {
    const path = storePath(kind, tmp.path("live"));
    await buildStore(kind, path, [{ name: "g" }]);
    const writer = openBackend(kind, path); // this test process is the writer holding the lock
    const parent = kind === "sqlite" ? dirname(path) : path;
    try {
      writer.write("extra", Uint8Array.of(1)); // written by the live writer after the store was built
      const before = readdirSync(parent).sort();
      for (const args of [
        ["inspect", path],
        ["verify", path],
        ["frames", path, "--graph", "g"],
        ["export", path, "--graph", "g"],
      ]) {
        const r = runCli(args);
        expect(r.code, `${args[0]}: ${r.stderr}`).toBe(0);
        expect(r.stdout.length, args[0]).toBeGreaterThan(0);
      }
      expect(readdirSync(parent).sort()).toEqual(before);
      for (const args of [
        ["compact", path, "--graph", "g"],
        ["stats", path, "--frames", "10"],
      ]) {
        const r = runCli(args);
        expect(r.code, args[0]).toBe(3);
        expect(r.stdout).toBe("");
        expectOneErrorLine(r.stderr, new RegExp(`^error store-locked: store .* is locked by process ${process.pid} on host `));
      }
    } finally {
      writer.close();
    }
    // Released: the writing command now works.
    expect(runCli(["compact", path, "--graph", "g"]).code).toBe(0);
  });
});

describe("missing things", () => {
  it("a store path that does not exist: exit 4, store-not-found", () => {
    const path = tmp.path("nothing.db");
    const r = runCli(["inspect", path]);
    expect(r.code).toBe(4);
    expectOneErrorLine(r.stderr, new RegExp(`^error store-not-found: .*nothing\\.db does not exist$`));
  });

  it.each(KINDS)("a graph the %s store does not hold: exit 4, graph-not-found", async (kind) => {
    const path = storePath(kind, tmp.path("nograph"));
    await buildStore(kind, path, [{ name: "g" }]);
    const r = runCli(["frames", path, "--graph", "nope"]);
    expect(r.code).toBe(4);
    expectOneErrorLine(r.stderr, /^error graph-not-found: no graph "nope" in /);
  });

  it("a file that is not a SQLite database: exit 4 with the backend's code", () => {
    const path = tmp.path("junk.db");
    writeFileSync(path, "this is not a database, just some bytes that are long enough to have a header".repeat(2));
    const r = runCli(["inspect", path]);
    expect(r.code).toBe(4);
    expectOneErrorLine(r.stderr, /^error backend-error: .*not a database/);
  });

  it("an import file that does not exist: exit 4 with the system error code", () => {
    const r = runCli(["import", tmp.path("missing.json"), tmp.path("s.db")]);
    expect(r.code).toBe(4);
    expectOneErrorLine(r.stderr, /^error ENOENT: no such file or directory, open '.*missing\.json'$/);
  });

  it("--backend that contradicts the path is a usage error", () => {
    const dir = tmp.path("dir");
    mkdirSync(dir);
    const r = runCli(["inspect", dir, "--backend", "sqlite"]);
    expect(r.code).toBe(64);
    expectOneErrorLine(r.stderr, /^error usage: .* is a directory, not a SQLite file$/);
  });
});

describe("command line", () => {
  it.each([
    [["inspect"], /^error usage: missing required argument 'store'$/],
    [["frames", "x.db"], /^error usage: required option '--graph <name>' not specified$/],
    [["frames", "x.db", "--graph", "g", "--limit", "-1"], /^error usage: option '--limit <n>' argument '-1' is invalid\. must be a non-negative integer$/],
    [["inspect", "x.db", "--backend", "redis"], /^error usage: option '--backend <kind>' argument 'redis' is invalid\./],
    [["explode"], /^error usage: unknown command 'explode' \(Did you mean export\?\)$/],
  ])("%j → exit 64 and one line", (args, pattern) => {
    const r = runCli(args);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe("");
    expectOneErrorLine(r.stderr, pattern);
  });

  it("--help and --version exit 0 and print to stdout", () => {
    const help = runCli(["--help"]);
    expect(help.code).toBe(0);
    for (const cmd of ["inspect", "verify", "frames", "stats"]) expect(help.stdout).toContain(cmd);
    const version = runCli(["--version"]);
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});
