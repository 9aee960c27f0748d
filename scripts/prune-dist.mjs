#!/usr/bin/env node
/**
 * Deletes compiled output in dist/ whose TypeScript source is gone. tsc writes dist/ but never removes what an
 * earlier build wrote for a file since deleted or renamed, and `files` in package.json ships all of dist/src: a
 * tarball packed from a working clone would carry modules no source builds. Run by `prepack` after the build.
 * Usage: node scripts/prune-dist.mjs [root] (root: the repository, default this script's parent).
 */
import { readdirSync, rmSync, existsSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = process.argv[2] ?? fileURLToPath(new URL("..", import.meta.url));
const dist = join(root, "dist");
/** An output's suffix and the source suffixes tsc builds it from (rootDir is the repository, outDir dist/). */
const OUTPUTS = [
  [".d.ts.map", [".ts"]],
  [".d.cts.map", [".cts"]],
  [".js.map", [".ts"]],
  [".cjs.map", [".cts"]],
  [".d.ts", [".ts"]],
  [".d.cts", [".cts"]],
  [".js", [".ts"]],
  [".cjs", [".cts"]],
];

function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else yield path;
  }
}

let pruned = 0;
if (existsSync(dist)) {
  for (const path of files(dist)) {
    const out = OUTPUTS.find(([suffix]) => path.endsWith(suffix));
    if (out === undefined) continue; // not tsc's output: leave it
    const base = join(root, relative(dist, path.slice(0, -out[0].length)));
    if (out[1].some((ext) => existsSync(base + ext))) continue;
    rmSync(path);
    pruned++;
  }
}
if (pruned > 0) console.log(`prune-dist: removed ${pruned} file(s) of dist/ whose source is gone`);
