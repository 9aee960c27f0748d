/**
 * A file store whose directory holds, under a key's file name, something that is not a regular file: a FIFO (read()
 * blocked forever in open/read), a symbolic link to /dev/zero (read() never ended). Each read is a typed
 * StorageError("corrupt-store") naming what was found. Reads run in a child process (the built dist/), so a read
 * that blocks is killed instead of blocking the test run.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { storageErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-file-special-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const FILE_JS = new URL("../../dist/src/backend/file.js", import.meta.url).href;
let n = 0;

/** A store holding key "ok" (a regular file) and, under key "k", what `make` puts at its path. */
function storeWith(make: (path: string) => void): string {
  const dir = join(root, `store-${n++}`);
  const b = fileBackend(dir);
  b.write("ok", Uint8Array.of(1, 2, 3));
  b.close();
  make(join(dir, "k.bin"));
  return dir;
}

/** Runs `call` ("read" or "readPrefix") on key "k" of a read-only handle in a child; what it printed, or how it died. */
function childRead(dir: string, call: "read" | "readPrefix" | "readMany"): { out: string; signal: NodeJS.Signals | null } {
  const invoke = call === "read" ? 'b.read("k")' : call === "readPrefix" ? 'b.readPrefix("k", 4096)' : 'b.readMany(["ok", "k"])';
  const script = `import { fileBackend } from ${JSON.stringify(FILE_JS)};
    const b = fileBackend(${JSON.stringify(dir)}, { readOnly: true });
    try { ${invoke}; console.log("returned"); }
    catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, found: e.details?.found, key: e.details?.key, message: e.message })); }`;
  // The timeout only guards against the blocking read this test is about; nothing here measures time.
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 20_000, killSignal: "SIGKILL" });
  return { out: r.stdout.trim(), signal: r.signal };
}

describe("file backend: a key's file that is not a regular file", () => {
  it.each(["read", "readPrefix", "readMany"] as const)("a FIFO: %s answers with corrupt-store instead of blocking", (call) => {
    const dir = storeWith((p) => execFileSync("mkfifo", [p]));
    const r = childRead(dir, call);
    expect(r.signal, "the read blocked on the FIFO and was killed").toBeNull();
    expect(JSON.parse(r.out)).toMatchObject({ name: "StorageError", code: "corrupt-store", found: "a FIFO", key: "k" });
  });

  it("a symbolic link to /dev/zero: corrupt-store (a link is never followed) instead of reading without end", () => {
    const dir = storeWith((p) => symlinkSync("/dev/zero", p));
    const r = childRead(dir, "read");
    expect(r.signal).toBeNull();
    expect(JSON.parse(r.out)).toMatchObject({ code: "corrupt-store", found: "a symbolic link" });
  });

  it("regular files still read as before; a symbolic link to one is corrupt-store (r232); a directory is still backend-error EISDIR", () => {
    const dir = storeWith((p) => mkdirSync(p));
    const b = fileBackend(dir, { readOnly: true });
    try {
      expect(() => b.read("k")).toThrow(expect.objectContaining({ code: "backend-error", details: expect.objectContaining({ osCode: "EISDIR" }) as unknown }));
      expect(b.read("ok")).toEqual(Uint8Array.of(1, 2, 3));
      expect(b.readPrefix("ok", 2)).toEqual(Uint8Array.of(1, 2));
      expect(b.read("missing")).toBeUndefined();
    } finally {
      b.close();
    }
    const outside = join(root, `outside-${n++}`);
    writeFileSync(outside, "linked");
    symlinkSync(outside, join(dir, "linked.bin"));
    const c = fileBackend(dir, { readOnly: true });
    try {
      // Followed, a link made read commands print any file the user may read (review r232).
      expect(storageErrorOf(() => c.read("linked"))).toMatchObject({ code: "corrupt-store", details: { key: "linked", found: "a symbolic link" } });
    } finally {
      c.close();
    }
  });
});

describe("file backend: sizes agrees with read on entries that are not regular files", () => {
  it.each([
    ["a FIFO", (p: string) => execFileSync("mkfifo", [p]), { code: "corrupt-store", details: { key: "k", found: "a FIFO" } }],
    ["a link to /dev/zero", (p: string) => symlinkSync("/dev/zero", p), { code: "corrupt-store", details: { key: "k", found: "a symbolic link" } }],
    ["a dangling link", (p: string) => symlinkSync(join(root, "nowhere"), p), { code: "corrupt-store", details: { key: "k", found: "a symbolic link" } }],
    ["a directory", (p: string) => mkdirSync(p), { code: "backend-error", details: { osCode: "EISDIR" } }],
  ] as const)("%s: sizes throws what read throws (a stat, nothing blocks)", (_, make, expected) => {
    const dir = storeWith(make);
    const b = fileBackend(dir, { readOnly: true });
    try {
      expect(storageErrorOf(() => b.read("k"))).toMatchObject(expected);
      expect(storageErrorOf(() => b.sizes(["ok", "k"]))).toMatchObject(expected);
      expect(b.sizes(["ok", "missing"])).toEqual([3, undefined]);
    } finally {
      b.close();
    }
  });

  it("a link to a file is not that file's size: corrupt-store, as its read (r232)", () => {
    const dir = storeWith((p) => writeFileSync(p, "k"));
    const outside = join(root, `outside-${n++}`);
    writeFileSync(outside, "linked");
    symlinkSync(outside, join(dir, "linked.bin"));
    const b = fileBackend(dir, { readOnly: true });
    try {
      expect(b.sizes(["k", "ok"])).toEqual([1, 3]);
      expect(storageErrorOf(() => b.sizes(["linked"]))).toMatchObject({ code: "corrupt-store", details: { found: "a symbolic link" } });
    } finally {
      b.close();
    }
  });
});

describe("file backend: list agrees with read on entries that are not regular files", () => {
  it.each([
    ["a FIFO", (p: string) => execFileSync("mkfifo", [p])],
    ["a symbolic link", (p: string) => symlinkSync("/dev/null", p)],
    ["a symbolic link", (p: string) => symlinkSync(join(root, "nowhere"), p)],
  ] as const)("%s named like a key: list throws read's corrupt-store naming the file", (found, make) => {
    const dir = storeWith(make);
    const b = fileBackend(dir, { readOnly: true });
    try {
      const readErr = storageErrorOf(() => b.read("k"));
      expect(readErr).toMatchObject({ code: "corrupt-store", details: { key: "k", found } });
      for (const prefix of [undefined, "", "k"]) {
        const err = storageErrorOf(() => b.list(prefix));
        expect(err).toMatchObject({ code: "corrupt-store", details: { key: "k", found, path: join(dir, "k.bin") } });
        expect(err.message).toMatch(/k\.bin \(key "k"\) is .*, not a file: another program put it there; nothing was listed/);
      }
      // A prefix the odd file's key does not match lists as before.
      expect(b.list("o")).toEqual(["ok"]);
    } finally {
      b.close();
    }
  });

  it("a link to a file or a directory is listed as read sees it: corrupt-store naming the link (r232)", () => {
    for (const target of [join(root, `target-${n++}`), join(root, `outside-${n++}`)]) {
      if (target.includes("target-")) mkdirSync(target);
      else writeFileSync(target, "linked");
      const dir = storeWith((p) => writeFileSync(p, "k"));
      symlinkSync(target, join(dir, "linked.bin"));
      const b = fileBackend(dir, { readOnly: true });
      try {
        expect(storageErrorOf(() => b.list())).toMatchObject({ code: "corrupt-store", details: { key: "linked", found: "a symbolic link" } });
        expect(storageErrorOf(() => b.read("linked"))).toMatchObject({ code: "corrupt-store", details: { key: "linked", found: "a symbolic link" } });
        expect(b.list("o")).toEqual(["ok"]);
      } finally {
        b.close();
      }
    }
    const b = fileBackend(storeWith((p) => writeFileSync(p, "k")), { readOnly: true });
    try {
      expect(b.list()).toEqual(["k", "ok"]);
    } finally {
      b.close();
    }
  });
});
