/**
 * Task 224: a store path with `link/..` names the link target's parent, as the kernel (and SQLite) take it; the
 * backends resolved parts of the open by text (resolve() drops `dir/..`). A writable SQLite store created its missing
 * directory beside the link instead of where SQLite opens the file (the open failed "unable to open database file");
 * its store-moved check stat'ed the text's file (nothing there: nothing was checked, a removed database file went
 * unseen). Since task 246 a path whose `..` the kernel and the text take to two places is refused by every opener
 * (design §3.12; test/backend/dotdot-one-store): what is opened through a link's `..` is the place both agree on.
 * Real files, real symbolic links.
 */
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { realFilePath, storeRealPath } from "../../src/backend/real-path.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { StorageError } from "../../src/errors.js";

const root = realpathSync(mkdtempSync(join(tmpdir(), "grf-dotdot-open-")));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** `<case>/x/link -> <case>/y/sub`: `<case>/x/link/..` is `<case>/y` for the kernel, `<case>/x` for resolve(). */
function linkedPlace(): { x: string; y: string; viaDots: (rest: string) => string } {
  const base = join(root, `c${++n}`);
  const x = join(base, "x");
  const y = join(base, "y");
  mkdirSync(x, { recursive: true });
  mkdirSync(join(y, "sub"), { recursive: true });
  symlinkSync(join(y, "sub"), join(x, "link"));
  // Concatenated, not joined: join() would drop the `..` by text too.
  return { x, y, viaDots: (rest) => `${join(x, "link")}/../${rest}` };
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("a SQLite store opened through link/..", () => {
  it("is refused where the kernel and the text differ, before its missing directory is made anywhere", () => {
    const { x, y, viaDots } = linkedPlace();
    expect(() => sqliteBackend(viaDots("new/s.db"))).toThrow(expect.objectContaining({ code: "invalid-argument" }));
    expect(existsSync(join(y, "new"))).toBe(false);
    expect(existsSync(join(x, "new"))).toBe(false);
  });

  it("notices its database file removed, opened through a link's `..` both readings agree on", () => {
    const { y } = linkedPlace();
    symlinkSync(join(y, "sub"), join(y, "near")); // y/near/.. is y for the kernel and the text
    const b = sqliteBackend(`${y}/near/../s.db`);
    try {
      b.write("a", bytes("1"));
      unlinkSync(join(y, "s.db"));
      let err: unknown;
      try {
        b.write("b", bytes("2"));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StorageError);
      expect(err).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "database" } });
    } finally {
      b.close();
    }
  });
});

describe("a file store opened through link/..", () => {
  // Refused where the two readings differ (task 246, design §3.12): neither place is made or written.
  it("is refused where the kernel and the text differ", () => {
    const { x, y, viaDots } = linkedPlace();
    expect(() => fileBackend(viaDots("fstore"))).toThrow(expect.objectContaining({ code: "invalid-argument" }));
    expect(existsSync(join(x, "fstore"))).toBe(false);
    expect(existsSync(join(y, "fstore"))).toBe(false);
  });

  it("keeps its resolve() name where `..` follows no link", () => {
    const { x } = linkedPlace();
    const b = fileBackend(`${x}/plain/../fstore`);
    try {
      expect(b.dir).toBe(join(x, "fstore"));
    } finally {
      b.close();
    }
  });
});

describe("realFilePath and storeRealPath (one function, two meanings of a missing directory)", () => {
  it("agree where the directory exists; only storeRealPath answers for a missing one", () => {
    const { y, viaDots } = linkedPlace();
    expect(realFilePath(viaDots("f.db"))).toBe(join(y, "f.db"));
    expect(storeRealPath(viaDots("f.db"))).toBe(join(y, "f.db"));
    expect(storeRealPath(viaDots("m/n/../f.db"))).toBe(join(y, "m", "f.db"));
    expect(() => realFilePath(viaDots("m/f.db"))).toThrow(expect.objectContaining({ code: "ENOENT" }));
  });

  it("follow a dangling link to where the file will be created", () => {
    const { x, y } = linkedPlace();
    symlinkSync(join(y, "later", "f.db"), join(x, "dangling"));
    expect(storeRealPath(join(x, "dangling"))).toBe(join(y, "later", "f.db"));
    expect(() => realFilePath(join(x, "dangling"))).toThrow(expect.objectContaining({ code: "ENOENT" }));
    mkdirSync(join(y, "later"));
    expect(realFilePath(join(x, "dangling"))).toBe(join(y, "later", "f.db"));
  });
});
