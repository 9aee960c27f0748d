/**
 * Review r249 F2-F4 on the store path check (assertOneMeaning, design §3.12). It compared the real paths of the text's
 * and the kernel's meaning of a path with `..`, and let the path through whenever one of them could not be resolved:
 * past the kernel's 40 links (ELOOP) the engine named the text's place and sqliteBackend failed with an untyped
 * TypeError; past PATH_MAX (ENAMETOOLONG) fileBackend created the text's place, while the kernel's `..` is elsewhere.
 * Such a path is now decided without realpath: a `..` after a symbolic link (or a file) is refused, typed. And a
 * refusal says which of its two places exists (a store made through the spelling before a component became a link
 * is at one of them). Real files, real symbolic links, real SQLite.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { storeKey } from "../../src/engine/engine.js";
import { StorageError } from "../../src/errors.js";

const root = realpathSync(mkdtempSync(join(tmpdir(), "grf-dotdot-unres-")));
// rm(1), not rmSync: the PATH_MAX case leaves a tree deeper than one path can name (rm walks it with openat).
afterAll(() => void execFileSync("rm", ["-rf", root]));
let n = 0;

function layout(): { d: string; e: string } {
  const base = join(root, `c${n++}`);
  const d = join(base, "d");
  const e = join(base, "e");
  mkdirSync(d, { recursive: true });
  mkdirSync(join(e, "sub"), { recursive: true });
  return { d, e };
}

/** What `open` threw (undefined: it opened, and what it opened is closed). */
function refusal(open: () => { close(): unknown } | string): unknown {
  try {
    const opened = open();
    if (typeof opened !== "string") opened.close();
    return undefined;
  } catch (err) {
    return err;
  }
}

function shape(err: unknown): unknown {
  if (!(err instanceof StorageError)) return { typed: false, got: err === undefined ? "accepted" : String(err) };
  return { code: err.code, reason: err.details.reason };
}

const AMBIGUOUS = { code: "invalid-argument", reason: "ambiguous-dotdot" };

describe("a `..` whose kernel meaning cannot be resolved is refused, typed, before anything is made", () => {
  it("after a chain of links longer than the kernel follows (ELOOP): engine, SQLite and file backends", () => {
    const { d, e } = layout();
    for (let i = 1; i < 50; i++) symlinkSync(join(d, `l${i + 1}`), join(d, `l${i}`));
    symlinkSync(join(e, "sub"), join(d, "l50"));
    const spelled = `${d}/l1/../s.db`; // concatenated: join() would drop the `..` by text
    expect(shape(refusal(() => storeKey({ kind: "sqlite", path: spelled })))).toEqual(AMBIGUOUS);
    expect(shape(refusal(() => sqliteBackend(spelled)))).toEqual(AMBIGUOUS);
    expect(shape(refusal(() => fileBackend(`${d}/l1/../store`)))).toEqual(AMBIGUOUS);
    const err = refusal(() => sqliteBackend(spelled)) as StorageError;
    expect(err.details).toMatchObject({ path: spelled, textPath: join(d, "s.db"), component: join(d, "l1"), existing: [] });
    expect(readdirSync(d).filter((f) => !f.startsWith("l"))).toEqual([]);
    expect(readdirSync(e)).toEqual(["sub"]);
  });

  it("after a link whose target's real path is past PATH_MAX (ENAMETOOLONG): nothing made at the text's place", () => {
    const { d, e } = layout();
    const seg = "x".repeat(200);
    const half = Array.from({ length: 11 }, () => seg).join("/"); // 2,210 characters: each syscall stays below PATH_MAX
    const here = process.cwd();
    try {
      process.chdir(join(e, "sub"));
      mkdirSync(half, { recursive: true });
      process.chdir(half);
      mkdirSync(`${half}/leaf`, { recursive: true });
      symlinkSync(`${half}/leaf`, "s2"); // relative: its target's real path is over 4,400 characters
    } finally {
      process.chdir(here);
    }
    symlinkSync(`${e}/sub/${half}/s2`, join(d, "link"));
    expect(shape(refusal(() => fileBackend(`${d}/link/../store`)))).toEqual(AMBIGUOUS);
    expect(shape(refusal(() => storeKey({ kind: "file", dir: `${d}/link/../store` })))).toEqual(AMBIGUOUS);
    expect(existsSync(join(d, "store"))).toBe(false);
  });

  it("after a file (the kernel stops there, the text goes on): refused; a `..` after a directory not made yet opens", () => {
    const { d } = layout();
    writeFileSync(join(d, "f"), "x");
    expect(shape(refusal(() => sqliteBackend(`${d}/f/../s.db`)))).toEqual(AMBIGUOUS);
    expect(existsSync(join(d, "s.db"))).toBe(false);
    // Both meanings resolve here (the missing directory is made plain): accepted as before.
    const b = fileBackend(`${d}/new/../store`);
    b.write("k", Uint8Array.of(1));
    b.close();
    const again = fileBackend(join(d, "store"));
    expect(again.read("k")).toEqual(Uint8Array.of(1));
    again.close();
  });
});

describe("the refusal says which of the two places exists", () => {
  it("a store made through `<d>/a/../s.db` before `a` became a link: only the text's place holds it", () => {
    const { d, e } = layout();
    mkdirSync(join(d, "a"));
    sqliteBackend(`${d}/a/../s.db`).close(); // accepted: `a` is a plain directory, the store is <d>/s.db
    rmSync(join(d, "a"), { recursive: true });
    symlinkSync(join(e, "sub"), join(d, "a"));
    const err = refusal(() => sqliteBackend(`${d}/a/../s.db`)) as StorageError;
    expect(shape(err)).toEqual(AMBIGUOUS);
    expect(err.details).toMatchObject({ kernelPath: join(e, "s.db"), textPath: join(d, "s.db"), existing: [join(d, "s.db")] });
    expect(err.message).toContain(`only ${join(d, "s.db")} exists`);
    expect(existsSync(join(e, "s.db"))).toBe(false);
  });

  it("neither place made yet, or both there", () => {
    const { d, e } = layout();
    symlinkSync(join(e, "sub"), join(d, "link"));
    const none = refusal(() => sqliteBackend(`${d}/link/../s.db`)) as StorageError;
    expect(none.details).toMatchObject({ existing: [] });
    expect(none.message).toContain("neither exists yet");
    sqliteBackend(join(d, "s.db")).close();
    sqliteBackend(join(e, "s.db")).close();
    const both = refusal(() => sqliteBackend(`${d}/link/../s.db`)) as StorageError;
    expect(both.details).toMatchObject({ existing: [join(e, "s.db"), join(d, "s.db")] });
    expect(both.message).toContain("both exist");
  });
});
