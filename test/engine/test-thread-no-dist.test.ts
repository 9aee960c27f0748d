/**
 * No test file (nor test support module) loads the compiled engine (dist/src/engine/rpc.js) on the test thread
 * through what it imports. dist/src/engine/rpc.js replaces comlink's process-wide "throw" handler with one that builds dist's error
 * classes, so once a test thread had loaded it (importing a constant from a worker entry such as
 * fixtures/flush-gate-worker.mjs did), an error coming back through a comlink call of src's engine was dist's
 * StorageError, not src's: `instanceof StorageError` failed at random, depending on which copy installed its handler
 * last (task 299). Worker entries load dist/ on purpose (piscina runs them as plain ESM): tests name them by URL and
 * take their shared constants from fixtures/probe-messages.mjs, which imports nothing.
 *
 * Reads the sources: every relative import (static or `import("...")`) of a test-side `.ts` file, followed through
 * the plain `.mjs`/`.js`/`.cjs` modules it reaches, dist's own included (a fixture may take a pure helper from dist,
 * as graph-crash-model.mjs does its prng: harmless, it never reaches rpc.js).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { expect, it } from "vitest";

const REPO = resolve(import.meta.dirname, "../..");
const TEST = join(REPO, "test");
/** The compiled module that replaces comlink's process-wide handlers (its src twin is what the tests load). */
const DIST_RPC = join(REPO, "dist", "src", "engine", "rpc.js");

function filesUnder(dir: string, keep: (name: string) => boolean): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && keep(e.name))
    .map((e) => join(e.parentPath, e.name));
}

/** The relative module specifiers `source` imports (static imports, re-exports, and `import("...")` of a literal). */
function relativeImports(source: string): string[] {
  const found: string[] = [];
  for (const m of source.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+["']([^"']+)["']|(?:^|\n)\s*import\s+["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec !== undefined && spec.startsWith(".")) found.push(spec);
  }
  return found;
}

/** The chain of plain modules from `file` to dist's rpc.js, or undefined when it is not reached. */
function distChain(file: string, seen = new Set<string>()): string[] | undefined {
  if (seen.has(file)) return undefined;
  seen.add(file);
  for (const spec of relativeImports(readFileSync(file, "utf8"))) {
    const target = resolve(dirname(file), spec);
    if (target === DIST_RPC) return [relative(REPO, target)];
    // A .ts file (or the .js name of a .ts source, not on disk) is scanned as a test file of its own.
    if (!/\.(mjs|cjs|js)$/.test(target) || !existsSync(target)) continue;
    const rest = distChain(target, seen);
    if (rest !== undefined) return [relative(REPO, target), ...rest];
  }
  return undefined;
}

it("no test-thread module reaches dist's rpc.js through its imports (worker entries are named by URL, never imported)", () => {
  expect(existsSync(DIST_RPC)).toBe(true); // built (npm run build): dist's own imports are followed
  const testFiles = filesUnder(TEST, (n) => n.endsWith(".ts") && !n.endsWith(".d.ts"));
  expect(testFiles.length).toBeGreaterThan(100);
  const reaching = testFiles
    .map((f) => ({ file: relative(REPO, f), chain: distChain(f) }))
    .filter((r) => r.chain !== undefined)
    .map((r) => `${r.file} -> ${r.chain!.join(" -> ")}`);
  expect(reaching).toEqual([]);
});
