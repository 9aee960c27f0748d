/**
 * Task 375: verify reads a graph twice (the survey, then the fold that finds frames restore refuses), and the fold's
 * failures other than its finding (phase-failed at a frame) were swallowed: verify said clean, exit 0, having read
 * nothing the second time. Now they fail the command with their own code: a side file put there between the two
 * reads of a SQLite store is store-unreadable, and an I/O error there (a file store's baseline made a directory)
 * backend-error, exit 4 both.
 *
 * Real parts: the compiled bin in a child process, SQLite files, a file store. Test seam: fixtures/pause-at-call.mjs
 * counts the child's calls on one path (a SQLite read-only handle's side-file look before each read is an lstat of
 * the -journal; a file store reads the baseline by opening its file); a clean run of the same command gives the count,
 * whose last call is the fold's (the command's last read of it), and the paused run holds the child there while this
 * process acts: after every read of the survey, before the fold reads.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { craftSuperJournal } from "../support/sqlite-journal.js";
import { requireBuiltBin, tempDir, type CliRun } from "./fixtures/cli.js";
import { runCounting, runPlacingAtPause } from "./fixtures/paused-cli.js";
import { buildStore, rollbackStoreBesideVictim } from "./fixtures/stores.js";

const tmp = tempDir("verify-second-pass");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

const HOOK = fileURLToPath(new URL("./fixtures/pause-at-call.mjs", import.meta.url));

/** A rollback-mode store and a file beside it, in a directory of its own (fixtures/stores). */
function newStore(name: string): Promise<{ store: string; victim: string }> {
  return rollbackStoreBesideVictim(tmp.path(name));
}

/** Where the child pauses: the calls of `fn` on `at`. */
interface Seam {
  readonly fn: "lstatSync" | "openSync";
  readonly at: string;
}

/** How many calls of the seam `verify store` makes in a run with nothing placed (which must be clean). */
function callsOfCleanRun(store: string, seam: Seam): number {
  const { run, calls } = runCounting(HOOK, { GRF_PAUSE_FN: seam.fn, GRF_PAUSE_AT: seam.at }, tmp.path("calls"), ["verify", store]);
  expect(run.code, run.stderr).toBe(0);
  expect(run.stdout).toContain("result: clean (exit 0)");
  return calls;
}

/** `verify store`, held at the seam's last call of a clean run (the fold's) while `place` acts; its run. */
async function verifyActingAtFold(store: string, seam: Seam, place: () => void): Promise<CliRun> {
  const calls = callsOfCleanRun(store, seam);
  // One call is the open's alone: the command's reads after it make none, so there is no fold's call to act at.
  expect(calls, `${seam.fn} of ${seam.at} only at the open`).toBeGreaterThan(1);
  const nth = String(calls);
  return runPlacingAtPause(HOOK, { GRF_PAUSE_FN: seam.fn, GRF_PAUSE_AT: seam.at, GRF_PAUSE_NTH: nth }, tmp.path("pause.fifo"), ["verify"], store, place);
}

const PLACED: ReadonlyArray<[string, (store: string, victim: string) => void, string]> = [
  ["a FIFO as the -journal", (store) => execFileSync("mkfifo", ["-m", "0644", `${store}-journal`]), "is a FIFO, not a regular file"],
  ["a -journal naming a super-journal", (store, victim) => craftSuperJournal(store, victim), "names a super-journal"],
];

describe("verify: a side file put there between its survey and its fold", () => {
  it.each(PLACED)("%s is store-unreadable, exit 4 (it said clean, exit 0); nothing deleted", async (label, place, says) => {
    const { store, victim } = await newStore(label.replace(/\W+/g, "-"));
    const r = await verifyActingAtFold(store, { fn: "lstatSync", at: `${store}-journal` }, () => place(store, victim));
    expect(r.code, r.stdout + r.stderr).toBe(4);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^error store-unreadable: [^\n]*\n$/);
    expect(r.stderr).toContain(`cannot read sqlite store ${store}: its -journal`);
    expect(r.stderr).toContain(says);
    expect(readFileSync(victim, "utf8")).toBe("precious data");
  });
});

describe("verify: an I/O error between its survey and its fold", () => {
  it("a file store's baseline made a directory is backend-error, exit 4 (it said clean, exit 0)", async () => {
    const store = tmp.path("file-store");
    await buildStore("file", store, [{ name: "g", frameSeqs: Array.from({ length: 10 }, (_, i) => i + 2) }]);
    const baseline = join(store, "g.bin");
    const r = await verifyActingAtFold(store, { fn: "openSync", at: baseline }, () => {
      renameSync(baseline, `${store}.moved`);
      mkdirSync(baseline);
    });
    expect(r.code, r.stdout + r.stderr).toBe(4);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^error backend-error: [^\n]*\n$/);
    expect(r.stderr).toContain(`file backend read failed at ${baseline}: EISDIR`);
  });
});
