/**
 * Two copies of the package in one process (a user's two versions in node_modules sharing one comlink): comlink's
 * error handler is one per thread, and each copy's engine replaced it, so after the second copy loaded, an error
 * from the first copy's engine coming back through a comlink call (a job's) was made with the second copy's
 * classes: `err instanceof RestoreError` failed against the first copy's class. Now each copy tags the errors it
 * sends and hands another copy's to that copy's handler (src/engine/rpc.ts).
 *
 * Real parts: the second copy is the compiled package copied to a temporary folder (its node_modules a link to this
 * repository's, so both copies share one comlink); each engine runs its own worker thread. `npm run build` first.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, expect, it } from "vitest";
import { compactGraphInEngine, openStorageEngine, RestoreError, type StorageEngine } from "../../src/index.js";

const REPO = resolve(import.meta.dirname, "../..");
const root = mkdtempSync(join(tmpdir(), "grf-two-copies-"));
const engines: StorageEngine[] = [];
afterAll(async () => {
  for (const e of engines) await e.close().catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
});

interface Copy {
  openStorageEngine: typeof openStorageEngine;
  compactGraphInEngine: typeof compactGraphInEngine;
  RestoreError: typeof RestoreError;
}

/** The compiled package copied beside this one, loaded on this thread after the sources (its handler is the last). */
async function secondCopy(): Promise<Copy> {
  const pkg = join(root, "copy");
  mkdirSync(join(pkg, "dist"), { recursive: true });
  cpSync(join(REPO, "package.json"), join(pkg, "package.json"));
  cpSync(join(REPO, "dist", "src"), join(pkg, "dist", "src"), { recursive: true });
  cpSync(join(REPO, "dist", "workers"), join(pkg, "dist", "workers"), { recursive: true });
  symlinkSync(join(REPO, "node_modules"), join(pkg, "node_modules"), "dir");
  return (await import(pathToFileURL(join(pkg, "dist", "src", "index.js")).href)) as Copy;
}

/** A job in `engine`'s worker that fails with a RestoreError (a graph with no baseline), as the caller receives it. */
async function jobError(engine: StorageEngine, compact: typeof compactGraphInEngine, name: string): Promise<unknown> {
  const store = { kind: "sqlite" as const, path: join(root, `${name}.db`) };
  const kv = engine.kv<number>(store);
  kv.save("k", 1);
  await kv.flush();
  return compact(engine, store, "g").then(
    () => undefined,
    (e: unknown) => e,
  );
}

it("an error from each copy's engine job is an instance of that copy's class, whichever copy loaded last", async () => {
  const copy = await secondCopy();
  expect(copy.RestoreError).not.toBe(RestoreError); // two copies indeed
  const ours = openStorageEngine({ threads: 1 });
  engines.push(ours);
  const theirs = copy.openStorageEngine({ threads: 1 });
  engines.push(theirs);

  const fromOurs = await jobError(ours, compactGraphInEngine, "ours");
  expect(fromOurs).toMatchObject({ name: "RestoreError", code: "baseline-missing" });
  // Before: the copy loaded last made it with its classes.
  expect(fromOurs).toBeInstanceOf(RestoreError);

  const fromTheirs = await jobError(theirs, copy.compactGraphInEngine, "theirs");
  expect(fromTheirs).toMatchObject({ name: "RestoreError", code: "baseline-missing" });
  expect(fromTheirs).toBeInstanceOf(copy.RestoreError);
}, 60_000);
