/**
 * Task 366 (review r353, the CLI's refused read): a read command refuses a store whose side files are hostile before
 * SQLite opens it, as `store-unreadable` (exit 4, docs/api.md). One put there between the CLI's open and its reads is
 * refused by the read-only handle's look before each read (sqlite-side-files.ts), and that refusal surfaced as the
 * library's `corrupt-store`: now the same `store-unreadable` line, with the refusal's message, and exit 4.
 *
 * Real parts: the compiled bin in a child process, SQLite files. Test seam: fixtures/pause-at-begin.mjs, preloaded
 * into the child, holds it at its read transaction's BEGIN (after the open, before the first read) until this process
 * has placed the side file.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { craftSuperJournal } from "../support/sqlite-journal.js";
import { requireBuiltBin, tempDir, type CliRun } from "./fixtures/cli.js";
import { runPlacingAtPause } from "./fixtures/paused-cli.js";
import { rollbackStoreBesideVictim } from "./fixtures/stores.js";

const tmp = tempDir("side-file-mid-read");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

const HOOK = fileURLToPath(new URL("./fixtures/pause-at-begin.mjs", import.meta.url));
const READS: ReadonlyArray<readonly string[]> = [["inspect"], ["verify"], ["export", "--graph", "g"], ["frames", "--graph", "g"]];

/** A rollback-mode store and a file beside it, in a directory of its own (fixtures/stores). */
function newStore(name: string): Promise<{ store: string; victim: string }> {
  return rollbackStoreBesideVictim(tmp.path(name));
}

/** Runs the bin with `args` over `store`, held at its BEGIN while `place` puts a side file there; its run. */
function runPlacingAtBegin(args: readonly string[], store: string, place: () => void): Promise<CliRun> {
  return runPlacingAtPause(HOOK, {}, tmp.path("pause.fifo"), args, store, place);
}

describe("a side file put there after a read command's open", () => {
  it.each(READS)("%s: a -journal naming a super-journal is store-unreadable with the refusal's message, exit 4; nothing deleted", async (...args) => {
    const { store, victim } = await newStore(`super-${args[0]}`);
    const r = await runPlacingAtBegin(args, store, () => craftSuperJournal(store, victim));
    expect(r.code, r.stderr).toBe(4);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^error store-unreadable: [^\n]*\n$/);
    expect(r.stderr).toContain(`cannot read sqlite store ${store}: its -journal ${store}-journal names a super-journal`);
    expect(readFileSync(victim, "utf8")).toBe("precious data");
    expect(existsSync(`${store}-journal`)).toBe(true); // left for its owner to look at
  });

  it.each(READS)("%s: a FIFO as the -journal is store-unreadable with the refusal's message, exit 4", async (...args) => {
    const { store } = await newStore(`fifo-${args[0]}`);
    const r = await runPlacingAtBegin(args, store, () => execFileSync("mkfifo", ["-m", "0644", `${store}-journal`]));
    expect(r.code, r.stderr).toBe(4);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^error store-unreadable: [^\n]*\n$/);
    expect(r.stderr).toContain(`cannot read sqlite store ${store}: its -journal file ${store}-journal is a FIFO, not a regular file`);
    expect(r.stderr).toContain("a side file put there since the open; nothing was read: remove it and read again");
  });
});
