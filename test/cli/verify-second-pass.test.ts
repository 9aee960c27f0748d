/**
 * Task 375: verify reads a graph twice (the survey, then the fold that finds frames restore refuses), and the fold's
 * failures other than its finding (phase-failed at a frame) were swallowed: a side file put there between the two
 * reads was refused at the second, and verify said clean, exit 0, having read nothing that time. Now that refusal is
 * store-unreadable, exit 4, as at any other read.
 *
 * Real parts: the compiled bin in a child process, SQLite files. Test seam: fixtures/pause-at-look.mjs counts the
 * child's looks at the store's -journal (the read-only handle's side-file look before each read); a clean run of the
 * same command gives the count, whose last look is the fold's (the command's last read), and the paused run holds the
 * child there while this process places the side file: after every read of the survey, before any of the fold's.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { craftSuperJournal } from "../support/sqlite-journal.js";
import { BIN, requireBuiltBin, tempDir } from "./fixtures/cli.js";
import { runPlacingAtPause } from "./fixtures/paused-cli.js";
import { buildStore } from "./fixtures/stores.js";

const tmp = tempDir("verify-second-pass");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

const HOOK = fileURLToPath(new URL("./fixtures/pause-at-look.mjs", import.meta.url));

/** A store "s.db" of graph "g" (a baseline and frames 2..11), closed, in a directory of its own, and a file beside it. */
async function newStore(name: string): Promise<{ store: string; victim: string }> {
  const dir = tmp.path(name);
  mkdirSync(dir);
  const store = join(dir, "s.db");
  await buildStore("sqlite", store, [{ name: "g", frameSeqs: Array.from({ length: 10 }, (_, i) => i + 2) }]);
  const victim = join(dir, "precious");
  writeFileSync(victim, "precious data");
  return { store, victim };
}

/** How many times `verify store` looks at its -journal in a run with nothing placed (which must be clean). */
function looksOfCleanRun(store: string): number {
  const countFile = tmp.path("looks");
  const r = spawnSync(process.execPath, ["--import", HOOK, BIN, "verify", store], {
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, GRF_PAUSE_AT: `${store}-journal`, GRF_PAUSE_COUNT: countFile },
  });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout).toContain("result: clean (exit 0)");
  return Number(readFileSync(countFile, "utf8"));
}

const PLACED: ReadonlyArray<[string, (store: string, victim: string) => void, string]> = [
  ["a FIFO as the -journal", (store) => execFileSync("mkfifo", ["-m", "0644", `${store}-journal`]), "is a FIFO, not a regular file"],
  ["a -journal naming a super-journal", (store, victim) => craftSuperJournal(store, victim), "names a super-journal"],
];

describe("verify: a side file put there between its survey and its fold", () => {
  it.each(PLACED)("%s is store-unreadable, exit 4 (it said clean, exit 0); nothing deleted", async (label, place, says) => {
    const { store, victim } = await newStore(label.replace(/\W+/g, "-"));
    const looks = looksOfCleanRun(store);
    const r = await runPlacingAtPause(HOOK, { GRF_PAUSE_AT: `${store}-journal`, GRF_PAUSE_NTH: String(looks) }, tmp.path("pause.fifo"), ["verify"], store, () =>
      place(store, victim),
    );
    expect(r.code, r.stdout + r.stderr).toBe(4);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^error store-unreadable: [^\n]*\n$/);
    expect(r.stderr).toContain(`cannot open sqlite store ${store}: its -journal`);
    expect(r.stderr).toContain(says);
    expect(readFileSync(victim, "utf8")).toBe("precious data");
  });
});
