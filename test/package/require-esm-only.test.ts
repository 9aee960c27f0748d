/**
 * `require("graphrefly-storage")`: the package is ES modules only. With only an "import" condition in `exports`, Node
 * answered require() with ERR_PACKAGE_PATH_NOT_EXPORTED, which names no cause. A "require" condition now loads a tiny
 * CommonJS file (cjs/esm-only.cjs, shipped) that throws an Error saying the package is ESM only and how to load it;
 * the `await import()` it advises works from CommonJS. A real child Node process resolves the package through a
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

it("require() throws an Error that says the package is ESM only and how to load it", () => {
  const out = runCjs(`
    try {
      require("graphrefly-storage");
      console.log(JSON.stringify({ loaded: true }));
    } catch (e) {
      console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message }));
    }
  `);
  const seen = JSON.parse(out) as { name?: string; code?: string; message?: string; loaded?: boolean };
  // Before: { code: "ERR_PACKAGE_PATH_NOT_EXPORTED", message: "No \"exports\" main defined in ..." }.
  expect(seen.code).toBe("ERR_REQUIRE_ESM");
  expect(seen.name).toBe("Error");
  expect(seen.message).toContain("ESM only");
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
    exports: { ".": { require: string } };
    files: string[];
  };
  const target = pkg.exports["."].require;
  expect(target).toBe("./cjs/esm-only.cjs");
  expect(pkg.files).toContain(target.slice(2));
});
