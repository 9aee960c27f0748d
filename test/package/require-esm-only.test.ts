/**
 * `require("graphrefly-storage")`: the package is ES modules only. On Node 20.19+ and 22.12+ require() loads an ES
 * module, and the "module-sync" condition names the package's entry (review r298 F2: before it, the "require"
 * condition answered those Nodes with an Error saying require() cannot load the package). Node 20.12 to 20.18 know no
 * "module-sync" and take the "require" condition: a tiny CommonJS file (cjs/esm-only.cjs, shipped) that throws an
 * Error saying the package is ESM only, which versions cannot require() it, and how to load it; the
 * `await import()` it advises works from CommonJS. A real child Node process resolves the package through a
 * scratch project's node_modules (a link to this repository: no pack, no install). Needs dist/ for the import.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "grf-require-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

beforeAll(() => {
  mkdirSync(join(scratch, "node_modules"));
  symlinkSync(REPO, join(scratch, "node_modules", "graphrefly-storage"), "dir");
  // A CommonJS project, as `npm init -y` makes one.
  writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "cjs-consumer", private: true }));
});

/** Runs `source` as a CommonJS script in the scratch project; returns what it printed. */
function runCjs(source: string): string {
  writeFileSync(join(scratch, "main.cjs"), source);
  return execFileSync(process.execPath, ["main.cjs"], { cwd: scratch, encoding: "utf8" });
}

it("require() loads the package on a Node that can require() an ES module (20.19+, 22.12+: this one)", () => {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  const requireEsm = (major === 20 && minor >= 19) || (major === 22 && minor >= 12) || major >= 23;
  expect(requireEsm).toBe(true); // the project's Node (v20.20); an older one is the case below
  const out = runCjs(`
    try {
      const m = require("graphrefly-storage");
      console.log(JSON.stringify({ loaded: typeof m.openStorageEngine + " " + typeof m.createGraph }));
    } catch (e) {
      console.log(JSON.stringify({ code: e.code, message: e.message }));
    }
  `);
  // Before (review r298 F2): { code: "ERR_REQUIRE_ESM", message: "... cannot be loaded with require() ..." }.
  expect(JSON.parse(out)).toEqual({ loaded: "function function" });
});

it("on Node 20.12 to 20.18 (no module-sync condition) require() throws an Error naming those versions and how to load it", () => {
  // What such a Node resolves require() to: the file the "require" condition names, loaded here directly.
  const out = runCjs(`
    try {
      require(${JSON.stringify(join(REPO, "cjs", "esm-only.cjs"))});
      console.log(JSON.stringify({ loaded: true }));
    } catch (e) {
      console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message }));
    }
  `);
  const seen = JSON.parse(out) as { name?: string; code?: string; message?: string; loaded?: boolean };
  expect(seen.code).toBe("ERR_REQUIRE_ESM");
  expect(seen.name).toBe("Error");
  expect(seen.message).toContain("ESM only");
  expect(seen.message).toContain("20.12 to 20.18");
  expect(seen.message).toContain('await import("graphrefly-storage")');
});

it("the import the message advises loads the package from CommonJS", () => {
  const out = runCjs(`
    import("graphrefly-storage").then(
      (m) => console.log(typeof m.openStorageEngine + " " + typeof m.createGraph),
      (e) => console.log("failed " + e.message),
    );
  `);
  expect(out.trim()).toBe("function function");
});

it("the file the require condition names is shipped (package.json files)", () => {
  const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
    exports: { ".": Record<string, string> };
    files: string[];
  };
  const target = pkg.exports["."].require;
  expect(target).toBe("./cjs/esm-only.cjs");
  // Node takes the first condition it knows: "module-sync" (20.19+, 22.12+) must come before "require".
  const conditions = Object.keys(pkg.exports["."]);
  expect(conditions.indexOf("module-sync")).toBeGreaterThanOrEqual(0);
  expect(conditions.indexOf("module-sync")).toBeLessThan(conditions.indexOf("require"));
  expect(pkg.exports["."]["module-sync"]).toBe(pkg.exports["."].import);
  expect(pkg.files).toContain(target?.slice(2));
});
