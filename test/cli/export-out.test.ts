/**
 * `export --out` naming the store it reads (the SQLite file, one of its sidecars, a file inside a file-backend store,
 * also through a symbolic link) overwrote the store with the exported JSON, exit 0: a read command destroyed the
 * store it was asked to read. Such an --out is a usage error (exit 64) and nothing is written; other outputs are
 * written whole (temp file + rename).
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { buildStore } from "./fixtures/stores.js";

const tmp = tempDir("export-out");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

/** Every file of the store (SQLite: the database and its sidecars; file: the directory), name → bytes. */
function storeFiles(dir: string, prefix: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir)
      .filter((n) => n.startsWith(prefix))
      .sort()
      .map((n) => [n, readFileSync(join(dir, n)).toString("base64")]),
  );
}

function expectRefused(r: { code: number | null; stdout: string; stderr: string }, what: RegExp): void {
  expect(r.code).toBe(64);
  expect(r.stdout).toBe("");
  expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
  expect(r.stderr).toMatch(/^error usage: --out .* is /);
  expect(r.stderr).toMatch(what);
}

describe("export --out onto the store it reads", () => {
  it("sqlite: the database file, its sidecars, or a link to it are refused; the store is unchanged", async () => {
    const dir = tmp.path("sqlite");
    mkdirSync(dir);
    const path = join(dir, "s.db");
    await buildStore("sqlite", path, [{ name: "g" }]);
    const link = join(tmp.path("elsewhere"));
    symlinkSync(path, link);
    const before = storeFiles(dir, "s.db");
    for (const [out, what] of [
      [path, /the database file/],
      [link, /the database file/],
      [`${path}-wal`, /the -wal file/],
      [`${path}-shm`, /the -shm file/],
      [`${path}-lock`, /the -lock file/],
    ] as const) {
      expectRefused(runCli(["export", path, "--graph", "g", "--out", out]), what);
      expect(storeFiles(dir, "s.db"), out).toEqual(before);
    }
    expect(runCli(["verify", path]).code).toBe(0);
  });

  it("file: the graph's baseline, a new file inside the store, or the directory itself are refused", async () => {
    const dir = tmp.path("file");
    await buildStore("file", dir, [{ name: "g" }]);
    const before = storeFiles(dir, "");
    for (const out of [join(dir, "g.bin"), join(dir, "export.json"), dir]) {
      expectRefused(runCli(["export", dir, "--graph", "g", "--out", out]), /inside the directory/);
      expect(storeFiles(dir, ""), out).toEqual(before);
    }
    expect(runCli(["verify", dir]).code).toBe(0);
  });
});

describe("export --out elsewhere", () => {
  it("writes the file whole, leaves no temporary file, and writes through a symbolic link to its target", async () => {
    const path = tmp.path("s.db");
    await buildStore("sqlite", path, [{ name: "g" }]);
    const outDir = tmp.path("out");
    mkdirSync(outDir);
    const target = join(outDir, "target.json");
    writeFileSync(target, "old contents");
    const link = join(outDir, "link.json");
    symlinkSync(target, link);
    const r = runCli(["export", path, "--graph", "g", "--out", link]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    const doc = JSON.parse(readFileSync(target, "utf8")) as { name: string; nodes: { a: { value: number } } };
    expect(doc).toMatchObject({ name: "g", nodes: { a: { value: 11 } } });
    expect(readdirSync(outDir).sort()).toEqual(["link.json", "target.json"]);
  });
});
