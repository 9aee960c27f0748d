/**
 * Export's reader on a file store whose writer is renaming a batch into place (docs/design.md §3.16): a file
 * store's batch writes every put to a temp file, then renames them one by one, so a listing made between two
 * renames holds a wave in part (here `b` without the `sum` it derived in the same wave). The fold must give a state
 * the writer had: the reader waits for the batch under way and starts over when the wave it ended on grew.
 * live-store.test.ts met this at random (sum one wave behind); here the mid-rename state is made on disk.
 */
import { renameSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { foldStoredGraph } from "../../src/persistence/fold.js";
import { backendSource } from "../../src/persistence/stored-graph.js";
import { requireBuiltBin, tempDir } from "./fixtures/cli.js";
import { walFiles, killedWriterStoreEndingInSum } from "./fixtures/writer-store.js";

const tmp = tempDir("partial-batch");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

/** A stopped writer's file store whose last frame is a wave's `sum` (a crash's partial batch dropped). */
async function storeEndingInSum(name: string): Promise<string> {
  const dir = tmp.path(name);
  expect((await killedWriterStoreEndingInSum(dir)).length).toBeGreaterThanOrEqual(2);
  return dir;
}

/** The last frame moved back to a temp file of this (running) process: the batch's last rename not yet done. */
function midRename(dir: string): { finish(): void } {
  const last = walFiles(dir).pop()!;
  const temp = join(dir, `.tmp-${process.pid}-0-999999`);
  renameSync(join(dir, last), temp);
  let done = false;
  return {
    finish() {
      if (!done) renameSync(temp, join(dir, last));
      done = true;
    },
  };
}

async function exportFold(dir: string, onStart: () => void) {
  const backend = fileBackend(dir, { readOnly: true });
  try {
    const { fold } = await foldStoredGraph(backendSource(backend), "g", { onStart });
    const nodes = fold.snapshot.nodes as Record<string, { value?: number }>;
    return { seq: fold.seq, a: nodes.a?.value ?? 0, b: nodes.b?.value ?? 0, sum: nodes.sum?.value };
  } finally {
    backend.close();
  }
}

describe("export of a file store listed while a batch's renames are under way", () => {
  it("the batch finishes right after the listing: the read starts over and gives the whole wave", { timeout: 60_000 }, async () => {
    const dir = await storeEndingInSum("after-listing");
    const batch = midRename(dir);
    // onStart runs after the WAL was listed without the wave's last frame; the rename lands before the read ends.
    const got = await exportFold(dir, () => batch.finish());
    expect(got.sum).toBe(got.a + got.b);
    const whole = await exportFold(dir, () => {});
    expect(got).toEqual(whole);
  });

  it("the batch is still renaming when the read ends: the reader waits for it", { timeout: 60_000 }, async () => {
    const dir = await storeEndingInSum("still-renaming");
    const batch = midRename(dir);
    // Renamed on a later turn, most often while the reader waits for the temp file (either way the wave is whole).
    const got = await exportFold(dir, () => void setTimeout(() => batch.finish(), 20));
    expect(got.sum).toBe(got.a + got.b);
    const whole = await exportFold(dir, () => {});
    expect(got).toEqual(whole);
  });
});
