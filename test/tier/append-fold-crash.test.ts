/**
 * kill -9 inside an append-log merge (compact()) or overwrite flush, segments layout, file store (review r349 H1, H4).
 * The file store applies a batch one rename or unlink at a time, so a process killed in one leaves a prefix of it.
 * A child (fixtures/append-fold-crash-child.mjs) sets the store up, then runs the batch and SIGKILLs itself before its
 * n-th rename or unlink, for every n until the batch gets through: each prefix must read as the state before the
 * batch or after it (design §3.11), and a writer reopening the store appends and compacts on from there. Before the
 * fix a merge killed between its base's rename and its last segment's unlink read every entry twice, and an
 * overwrite of base [a] + segment [b] killed before the segment's unlink read [c, b]. An overwrite of two chunks
 * (a failed flush's chunk [c] and [d] appended since) reads [a, b] or [c, d] at every kill, and when it gets through
 * leaves its fold beside the old base and the emptied segment, until the next overwrite or merge (review r373).
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { assertBuilt, tempDir } from "../reliability/fixtures/crash-harness.js";

const CHILD = fileURLToPath(new URL("./fixtures/append-fold-crash-child.mjs", import.meta.url));
const tmp = tempDir("append-fold-crash");
afterAll(() => tmp.remove());

/** Runs the child killed at the kill-th step; true when the batch got through (no step left to kill at). */
type ChildMode = "append" | "overwrite" | "overwrite-chunks";

function runChild(dir: string, mode: ChildMode, kill: number): boolean {
  const r = spawnSync(process.execPath, [CHILD, JSON.stringify({ dir, mode, kill })], { encoding: "utf8", timeout: 60_000 });
  expect(r.stdout, `child (kill at ${kill}) got through its setup: ${r.stderr}`).toContain("ready");
  if (r.stdout.includes("done")) return true;
  expect(r.signal, `child (kill at ${kill}) was killed: ${r.stderr}`).toBe("SIGKILL");
  return false;
}

async function entriesOf(dir: string, mode: "append" | "overwrite", readOnly: boolean): Promise<unknown[]> {
  const log = appendLogStorage<unknown>(fileBackend(dir, { readOnly }), { name: "log", mode });
  try {
    return (await log.loadEntries()).entries;
  } finally {
    await log.close();
  }
}

const storedNames = (dir: string): string[] => readdirSync(dir).filter((n) => !n.startsWith(".")).sort();

describe("kill -9 inside an append-log merge or overwrite (file store)", () => {
  assertBuilt();

  it("compact(): every prefix of the merge reads each acknowledged entry once; the next writer merges on", async () => {
    const all = [{ i: 0 }, { i: 1 }, { i: 2 }];
    let kills = 0;
    for (let kill = 1; ; kill++) {
      expect(kill, "the merge batch ends").toBeLessThan(64);
      const dir = join(tmp.dir, `append-${kill}`);
      const done = runChild(dir, "append", kill);
      expect(await entriesOf(dir, "append", true), `killed at step ${kill}`).toEqual(all);
      // A writer reopening the store appends after them and its merge leaves the reference layout: one base value.
      const log = appendLogStorage<unknown>(fileBackend(dir), { name: "log" });
      log.appendEntries([{ i: 3 }]);
      await log.compact();
      await log.close();
      expect(await entriesOf(dir, "append", true), `killed at step ${kill}, then merged`).toEqual([...all, { i: 3 }]);
      expect(storedNames(dir), `killed at step ${kill}, then merged`).toEqual(["log.bin"]);
      if (done) break;
      kills++;
    }
    expect(kills).toBeGreaterThan(3); // the batch has several steps, each killed at once
  }, 120_000);

  const overwrites = [
    // One chunk: the base alone once through; 5 steps (fold, segment emptied, base, fold deleted, segment deleted).
    { mode: "overwrite", what: "an overwrite", written: [{ v: "c" }], files: 1, steps: 5 },
    // Two chunks: the fold kept, the old base and the emptied segment beside it; 2 steps (fold, segment emptied).
    { mode: "overwrite-chunks", what: "an overwrite of two chunks", written: [{ v: "c" }, { v: "d" }], files: 3, steps: 2 },
  ] as const;
  for (const { mode, what, written, files, steps } of overwrites) {
    it(`${what} over a base and a segment reads the old content or the new, never a mix`, async () => {
      let kills = 0;
      let sawNew = false;
      for (let kill = 1; ; kill++) {
        expect(kill, "the overwrite batch ends").toBeLessThan(64);
        const dir = join(tmp.dir, `${mode}-${kill}`);
        const done = runChild(dir, mode, kill);
        const got = await entriesOf(dir, "overwrite", true);
        expect([[{ v: "a" }, { v: "b" }], written], `killed at step ${kill}: ${JSON.stringify(got)}`).toContainEqual(got);
        if (JSON.stringify(got) === JSON.stringify(written)) sawNew = true;
        else expect(sawNew, `killed at step ${kill}: the old content after the new`).toBe(false);
        if (done) expect(storedNames(dir), "the batch got through").toHaveLength(files);
        const log = appendLogStorage<unknown>(fileBackend(dir), { name: "log", mode: "overwrite" });
        log.appendEntries([{ v: "e" }]);
        await log.flush();
        await log.close();
        expect(await entriesOf(dir, "overwrite", true), `killed at step ${kill}, then overwritten`).toEqual([{ v: "e" }]);
        expect(storedNames(dir)).toEqual(["log.bin"]);
        if (done) break;
        kills++;
      }
      expect(sawNew).toBe(true);
      expect(kills).toBe(steps); // killed at each of the batch's steps
    }, 120_000);
  }
});
