/**
 * Review r349 (task 352), the file backend's smaller findings. Real file stores, real files put there as another
 * program would.
 * M2: a leftover temp file the writer could not remove (a directory named like one; another user's in a sticky
 *     directory) made the first write's sweep throw, and every write of the store failed for good (EISDIR, EPERM). The
 *     sweep is best effort now; what it cannot remove stays, never a key.
 * L1: a key's file under another spelling than the key's own (`caf%C3%A9.bin`): list() gave the key, read() missed it
 *     and delete() left it listed; a WAL frame so named looked to a restore like a frame that vanished. list() now
 *     refuses it (corrupt-store, reason non-canonical-name, naming the file); where the key's own name opens the same
 *     file (a file system that folds case), the key is listed.
 * Minor: a key's file larger than one buffer (8 GiB, sparse) read as backend-error with `osCode` ERR_OUT_OF_RANGE,
 *     Node's range error given as an OS code; now backend-error, reason too-large, with its size and the limit.
 */
import { constants as bufferConstants } from "node:buffer";
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, ftruncateSync, linkSync, mkdirSync, mkdtempSync, openSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { decodeFileNameToKey, encodeKeyToFileName, isCanonicalFileName } from "../../src/backend/file-names.js";
import { attachA, backendPair } from "../support/graph-a-pair.js";
import { restoredA } from "../support/restored-a.js";
import { storageErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "r349-file-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let stores = 0;
const freshDir = (): string => {
  const dir = join(root, `store-${stores++}`);
  mkdirSync(dir);
  return dir;
};
const one = (v: number): Uint8Array => Uint8Array.of(v);

describe("M2: the first write's sweep of leftover temp files is best effort", () => {
  it("a directory named like a temp file stays, a removable temp file goes, and every write goes on", () => {
    const dead = spawnSync(process.execPath, ["-e", ""]).pid as number;
    const dir = freshDir();
    mkdirSync(join(dir, `.tmp-${dead}-0-0`));
    writeFileSync(join(dir, `.tmp-${dead}-0-1`), "stale");
    const b = fileBackend(dir);
    try {
      b.write("k", one(1)); // before: backend-error EISDIR, at this and every later write
      b.writeBatch([{ op: "put", key: "k2", value: one(2) }]);
      expect(b.writeBatchIf({ key: "k3", value: undefined }, [{ op: "put", key: "k3", value: one(3) }])).toBe(true);
      b.delete("k2");
      expect(b.list()).toEqual(["k", "k3"]);
      expect(readdirSync(dir).filter((n) => n.startsWith(".tmp-"))).toEqual([`.tmp-${dead}-0-0`]);
    } finally {
      b.close();
    }
    // A later handle's sweep meets it again: its writes go on too.
    const again = fileBackend(dir);
    try {
      again.write("k", one(4));
      expect(Array.from(again.read("k")!)).toEqual([4]);
    } finally {
      again.close();
    }
  });
});

describe("L1: a key's file under another spelling than the key's own", () => {
  it("list refuses it naming the file; read and delete of the key go by its own name; a prefix it misses lists", () => {
    const dir = freshDir();
    const foreign = join(dir, "caf%C3%A9.bin");
    writeFileSync(foreign, "foreign");
    const b = fileBackend(dir);
    try {
      b.write("other", one(1));
      // Before: ["café", "other"], while read("café") missed and delete("café") left it listed.
      expect(storageErrorOf(() => b.list())).toMatchObject({
        code: "corrupt-store",
        details: { reason: "non-canonical-name", key: "café", path: foreign, expected: "caf%c3%a9.bin" },
      });
      expect(storageErrorOf(() => b.list("caf"))).toMatchObject({ code: "corrupt-store", details: { path: foreign } });
      expect(b.list("oth")).toEqual(["other"]);
      expect(b.read("café")).toBeUndefined();
      b.delete("café");
      expect(existsSync(foreign)).toBe(true); // not the key's file: left alone
      b.write("café", one(2));
      expect(Array.from(b.read("café")!)).toEqual([2]);
      expect(storageErrorOf(() => b.list()).details).toMatchObject({ path: foreign }); // still there beside it
      rmSync(foreign);
      expect(b.list()).toEqual(["café", "other"]);
    } finally {
      b.close();
    }
  });

  it("every non-canonical spelling of the vectors' decode table is refused; names that are no key are skipped", () => {
    for (const [file, key] of [
      ["abc%5.bin", "abc%5"], // a `%` kept literally: the key's own name is abc%255.bin
      ["caf%C3%A9.bin", "café"],
      ["%41b.bin", "Ab"], // an escape of a byte the encoder keeps
    ] as const) {
      const dir = freshDir();
      writeFileSync(join(dir, file), "x");
      for (const skipped of ["foo.txt", "foo", "café.bin", ".bin", ".tmp-1-0-0"]) writeFileSync(join(dir, skipped), "x");
      const b = fileBackend(dir, { readOnly: true });
      try {
        expect(decodeFileNameToKey(file)).toBe(key);
        expect(storageErrorOf(() => b.list()).details).toMatchObject({ reason: "non-canonical-name", key, expected: encodeKeyToFileName(key) });
        rmSync(join(dir, file));
        expect(b.list()).toEqual([]);
      } finally {
        b.close();
      }
    }
  });

  it("one file under the key's own name and another (as a file system that folds case shows it) is listed once", () => {
    const dir = freshDir();
    const b = fileBackend(dir);
    try {
      b.write("café", one(7));
      linkSync(join(dir, "caf%c3%a9.bin"), join(dir, "caf%C3%A9.bin")); // the same file, as the other spelling
      expect(b.list()).toEqual(["café"]);
      expect(Array.from(b.read("café")!)).toEqual([7]);
    } finally {
      b.close();
    }
  });

  it("isCanonicalFileName is exactly: the name encodeKeyToFileName gives the key the name decodes to", () => {
    const chars = ["a", "Z", "0", "-", "_", "%", "2", "e", "E", "c", "3", "A", "9", "f", "F", "5", "."];
    let checked = 0;
    const wrong: string[] = [];
    // Every stem of up to 4 of these characters (88,741 names), each that decodes to a key.
    const visit = (stem: string): void => {
      const name = `${stem}.bin`;
      const key = decodeFileNameToKey(name);
      if (key !== undefined) {
        checked++;
        if (isCanonicalFileName(name) !== (encodeKeyToFileName(key) === name)) wrong.push(name);
      }
      if (stem.length < 4) for (const c of chars) visit(stem + c);
    };
    visit("");
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(10_000);
  });

  it("a WAL frame under another spelling: a restore fails corrupt-store naming it, not a frame that vanished", async () => {
    const dir = freshDir();
    const b = fileBackend(dir);
    try {
      const { g, h } = attachA(backendPair(b));
      for (const v of ["one", "two", "three"]) {
        g.set("a", v);
        await h.flush();
      }
      await h.dispose();
      expect(await restoredA(b)).toBe("three");
      const frames = readdirSync(dir).filter((n) => n.startsWith("g%2fwal%2f")).sort();
      expect(frames.length).toBeGreaterThan(0);
      const last = frames[frames.length - 1]!;
      const renamed = last.replace(/%2f/g, "%2F");
      renameSync(join(dir, last), join(dir, renamed));
      // Before: the frame was listed, its read missed, and the restore went on without it ("two").
      expect(await restoredA(b)).toBe("corrupt-store");
      expect(storageErrorOf(() => b.list("g/wal/")).details).toMatchObject({ reason: "non-canonical-name", path: join(dir, renamed) });
    } finally {
      b.close();
    }
  });

  it("a stray file with raw characters the encoder never writes (a sync tool's conflict copy) is no key: list and restore go on (review r359 M1)", async () => {
    const dir = freshDir();
    const b = fileBackend(dir);
    try {
      const { g, h } = attachA(backendPair(b));
      for (const v of ["one", "two"]) {
        g.set("a", v);
        await h.flush();
      }
      await h.dispose();
      const listed = b.list();
      const frame = readdirSync(dir).filter((n) => n.startsWith("g%2fwal%2f")).sort()[0]!;
      for (const stray of [frame.replace(".bin", " (conflicted copy).bin"), "k (1).bin", "a.b.bin"]) writeFileSync(join(dir, stray), "x");
      // Before: each made list() of every prefix covering its name throw non-canonical-name, and the restore fail.
      expect(b.list()).toEqual(listed);
      expect(b.list("g/wal/")).toEqual(listed.filter((k) => k.startsWith("g/wal/")));
      expect(b.read("k (1)")).toBeUndefined();
      expect(await restoredA(b)).toBe("two");
    } finally {
      b.close();
    }
  });
});

describe("a key's file larger than one read returns", () => {
  it("read is backend-error, reason too-large, with its size and the limit; readPrefix and sizes still answer", () => {
    const dir = freshDir();
    const size = bufferConstants.MAX_LENGTH + 1;
    const fd = openSync(join(dir, "big.bin"), "w");
    ftruncateSync(fd, size); // sparse: no disk used
    closeSync(fd);
    const b = fileBackend(dir, { readOnly: true });
    try {
      // Before: backend-error with details.osCode "ERR_OUT_OF_RANGE", Node's own code, not an OS one.
      const err = storageErrorOf(() => b.read("big"));
      expect(err).toMatchObject({ code: "backend-error", details: { reason: "too-large", key: "big", size, limit: bufferConstants.MAX_LENGTH } });
      expect(err.details).not.toHaveProperty("osCode");
      expect(storageErrorOf(() => b.readMany(["big"])).details).toMatchObject({ reason: "too-large" });
      expect(b.readPrefix("big", 4)).toEqual(new Uint8Array(4));
      expect(b.sizes(["big"])).toEqual([size]);
    } finally {
      b.close();
    }
  });
});
