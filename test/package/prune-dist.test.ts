/**
 * `npm pack` runs prepack (build, then scripts/prune-dist.mjs). tsc never deletes what an earlier build wrote for a
 * source since removed, and package.json's `files` ships all of dist/src, so without the prune a tarball packed from
 * a working clone carried modules no source builds (it did: dist/src/codec/checked.js, dist/src/backend/sqlite-place.js).
 * The prune runs here on a scratch repository: stale outputs go, outputs with a source and files tsc did not write stay.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";

const SCRIPT = fileURLToPath(new URL("../../scripts/prune-dist.mjs", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "grf-prune-dist-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function touch(path: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), "");
}

it("deletes dist/ outputs whose source is gone and keeps the rest", () => {
  const kept = [
    "dist/src/codec/json.js", "dist/src/codec/json.js.map", "dist/src/codec/json.d.ts",
    "dist/workers/load-entry.cjs", "dist/workers/load-entry.cjs.map", "dist/workers/load-entry.d.cts",
    "dist/src/notes.txt",
  ];
  const stale = [
    "dist/src/codec/checked.js", "dist/src/codec/checked.js.map", "dist/src/codec/checked.d.ts",
    "dist/src/backend/sqlite-place.js", "dist/workers/old-entry.cjs", "dist/workers/old-entry.d.cts",
  ];
  for (const source of ["src/codec/json.ts", "workers/load-entry.cts"]) touch(source);
  for (const path of [...kept, ...stale]) touch(path);
  const out = execFileSync(process.execPath, [SCRIPT, root], { encoding: "utf8" });
  expect(out).toContain(`removed ${stale.length} file(s)`);
  expect(stale.filter((p) => existsSync(join(root, p)))).toEqual([]);
  expect(kept.filter((p) => !existsSync(join(root, p)))).toEqual([]);
});
