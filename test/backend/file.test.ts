import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir, hostname } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { fileBackend, type FileBackend } from "../../src/backend/file.js";
import { decodeFileNameToKey, encodeKeyToFileName } from "../../src/backend/file-names.js";
import { LOCK_FILE_NAME } from "../../src/backend/lock.js";
import { StorageError } from "../../src/errors.js";
import { backendSuite } from "../conformance/backend-suite.js";
import { killAllHolders, probeLockInChild } from "./lock-child.js";
import { killAllStoreChildren, openStoreInChild } from "./store-holder.js";

interface FileNameVectors {
  encode: { key: string; file: string }[];
  decode: { file: string; key: string | null }[];
}

const vectors = JSON.parse(
  readFileSync(new URL("../vectors/file-names.json", import.meta.url), "utf8"),
) as FileNameVectors;

const root = mkdtempSync(join(tmpdir(), "grf-file-backend-"));
let counter = 0;
const freshDir = (): string => join(root, `store-${counter++}`);
afterEach(async () => {
  await killAllHolders();
  await killAllStoreChildren();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

backendSuite<FileBackend>({
  name: "fileBackend",
  factory: () => fileBackend(freshDir()),
  reopen: (b) => fileBackend(b.dir),
  openReader: (b) => fileBackend(b.dir, { readOnly: true }),
});

/** Entries that are store content, not the lock's sidecar files. */
function contentNames(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => !n.startsWith(LOCK_FILE_NAME))
    .sort();
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StorageError);
    return (err as StorageError).code;
  }
  return undefined;
}

describe("file names (parity vectors)", () => {
  it("encodes every vector key to its file name", () => {
    for (const { key, file } of vectors.encode) expect(encodeKeyToFileName(key)).toBe(file);
  });

  it("decodes every vector file name (both tables) to its key or to 'not a key'", () => {
    for (const { key, file } of vectors.encode) expect(decodeFileNameToKey(file)).toBe(key);
    for (const { key, file } of vectors.decode) expect(decodeFileNameToKey(file)).toBe(key ?? undefined);
  });

  it("writes exactly the vector file names to disk", () => {
    const b = fileBackend(freshDir());
    for (const { key } of vectors.encode) b.write(key, Uint8Array.of(1));
    expect(contentNames(b.dir)).toEqual(vectors.encode.map((v) => v.file).sort());
    b.close();
  });

  it("lists foreign files the vectors decode to a key under its own name; refuses another spelling (review r349 L1)", () => {
    const dir = freshDir();
    mkdirSync(dir);
    // A key's own name, a hidden key file, and the vector names that are no key (or the empty key: not listed).
    writeFileSync(join(dir, "caf%c3%a9.bin"), "x");
    writeFileSync(join(dir, ".secret.bin"), "x");
    const others = vectors.decode.filter((v) => v.key !== null && v.key !== "" && encodeKeyToFileName(v.key) !== v.file);
    for (const { file } of vectors.decode) if (!others.some((o) => o.file === file)) writeFileSync(join(dir, file), "x");
    const b = fileBackend(dir);
    expect(b.list()).toEqual(["café"]);
    // The decode table's other spellings (a literal `%`, uppercase hex) name a key that read() never finds there.
    expect(others.length).toBeGreaterThan(0);
    for (const { file, key } of others) {
      writeFileSync(join(dir, file), "x");
      expect(codeOf(() => b.list())).toBe("corrupt-store");
      expect(b.read(key!)).toEqual(key === "café" ? Uint8Array.of(0x78) : undefined);
      rmSync(join(dir, file));
    }
    b.close();
  });

  it("round-trips arbitrary well-formed keys through encode/decode (property)", () => {
    const key = fc.oneof(fc.string({ unit: "grapheme" }), fc.string({ unit: "binary" }));
    fc.assert(
      fc.property(key, (k) => {
        const name = encodeKeyToFileName(k);
        expect(name).toMatch(/^[A-Za-z0-9_%-]*\.bin$/);
        expect(decodeFileNameToKey(name)).toBe(k);
        // Uppercase escapes name the same key.
        expect(decodeFileNameToKey(name.slice(0, -4).replace(/%[0-9a-f]{2}/g, (m) => m.toUpperCase()) + ".bin")).toBe(k);
      }),
      { numRuns: 500 },
    );
  });

  it("rejects lone surrogates instead of writing U+FFFD", () => {
    expect(codeOf(() => encodeKeyToFileName("\ud800"))).toBe("invalid-key");
  });

  it("does not take names with escapes that are not UTF-8 as keys", () => {
    expect(decodeFileNameToKey("%ff.bin")).toBeUndefined();
    expect(decodeFileNameToKey("%ed%a0%80.bin")).toBeUndefined(); // an encoded surrogate
    expect(decodeFileNameToKey("%c3.bin")).toBeUndefined();
  });
});

describe("fileBackend specifics", () => {
  it("is named file:<absolute dir> and declares non-atomic durable batches", () => {
    const dir = freshDir();
    const b = fileBackend(dir);
    expect(b.name).toBe(`file:${dir}`);
    expect(b.supports).toEqual({
      list: true,
      delete: true,
      atomicBatch: false,
      conditionalBatch: true,
      conditionalKeys: true,
      persistent: true,
      durable: true,
      sync: true,
      listsEmptyKey: false,
      readPrefix: true,
      sizes: true,
    });
    b.close();
  });

  it("never touches paths outside its directory, whatever the key", () => {
    const outer = join(root, `hostile-${counter++}`);
    const dir = join(outer, "store");
    const hostile = ["../x", "/etc/passwd", "a\0b", "..", ".", "../../escape", "..\\x", "sub/dir/file", "~", "%2e%2e"];
    const b = fileBackend(dir);
    hostile.forEach((k, i) => b.write(k, Uint8Array.of(i)));
    expect(readdirSync(outer)).toEqual(["store"]);
    const names = contentNames(dir);
    expect(names).toEqual(hostile.map((k) => encodeKeyToFileName(k)).sort());
    for (const n of names) expect(statSync(join(dir, n)).isFile()).toBe(true);
    hostile.forEach((k, i) => expect(Array.from(b.read(k) ?? [])).toEqual([i]));
    expect([...b.list()].sort()).toEqual([...hostile].sort());
    for (const k of hostile) b.delete(k);
    expect(contentNames(dir)).toEqual([]);
    expect(readdirSync(outer)).toEqual(["store"]);
    b.close();
  });

  it("rejects keys whose file name would exceed 255 bytes with invalid-key", () => {
    const dir = freshDir();
    const b = fileBackend(dir);
    const huge = "k".repeat(10_000);
    expect(codeOf(() => b.write(huge, Uint8Array.of(1)))).toBe("invalid-key");
    expect(codeOf(() => b.read(huge))).toBe("invalid-key");
    expect(codeOf(() => b.delete(huge))).toBe("invalid-key");
    expect(codeOf(() => b.writeBatch([{ op: "put", key: huge, value: Uint8Array.of(1) }]))).toBe("invalid-key");
    // The limit is on the encoded name: 251 safe characters + ".bin" fit, 252 do not; "é" costs 6.
    b.write("k".repeat(251), Uint8Array.of(2));
    expect(codeOf(() => b.write("k".repeat(252), Uint8Array.of(1)))).toBe("invalid-key");
    expect(codeOf(() => b.write("é".repeat(42), Uint8Array.of(1)))).toBe("invalid-key");
    expect(b.list()).toEqual(["k".repeat(251)]);
    b.close();
  });

  it("treats a missing directory as empty; a locking backend creates it (nested) at open, an unlocked one at its first write", () => {
    const parent = join(root, `nested-${counter++}`);
    const dir = join(parent, "a", "b");
    const unlocked = fileBackend(dir, { lock: false });
    expect(unlocked.read("k")).toBeUndefined();
    expect(unlocked.list()).toEqual([]);
    unlocked.delete("k");
    expect(existsSync(parent)).toBe(false);
    unlocked.close();
    const b = fileBackend(dir);
    expect(contentNames(dir)).toEqual([]);
    expect(b.list()).toEqual([]);
    b.write("k", Uint8Array.of(1));
    expect(contentNames(dir)).toEqual(["k.bin"]);
    b.close();
  });

  it("ignores temp, hidden and non-.bin files, and sweeps its leftover temp files on the first write", () => {
    const dir = freshDir();
    mkdirSync(dir);
    const leftovers = [".tmp-999999-0-1", `.tmp-${process.pid}-0-7`];
    const foreign = [".tmpABCDEF", ".k.bin.0123456789abcdef.tmp", "notes.txt", "noext"];
    for (const n of [...leftovers, ...foreign]) writeFileSync(join(dir, n), "junk");
    mkdirSync(join(dir, "sub.bin"));
    writeFileSync(join(dir, "real.bin"), "r");
    const b = fileBackend(dir);
    expect(b.list()).toEqual(["real"]);
    b.write("k", Uint8Array.of(1));
    expect(contentNames(dir)).toEqual([...foreign, "k.bin", "real.bin", "sub.bin"].sort());
    b.close();
  });

  it("without the lock sweeps only temp files of processes that are gone", () => {
    const dead = spawnSync(process.execPath, ["-e", ""]).pid as number;
    const dir = freshDir();
    mkdirSync(dir);
    const mine = `.tmp-${process.pid}-0-3`;
    writeFileSync(join(dir, mine), "in flight");
    writeFileSync(join(dir, `.tmp-${dead}-0-3`), "stale");
    const b = fileBackend(dir, { lock: false });
    b.write("k", Uint8Array.of(1));
    expect(contentNames(dir)).toEqual([mine, "k.bin"].sort());
    expect(existsSync(join(dir, LOCK_FILE_NAME))).toBe(false);
    b.close();
  });

  it("wraps file system failures as backend-error with the OS code", () => {
    const dir = freshDir();
    const b = fileBackend(dir);
    b.write("k", Uint8Array.of(1));
    mkdirSync(join(dir, "adir.bin"));
    let err: unknown;
    try {
      b.read("adir");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("backend-error");
    expect((err as StorageError).details.osCode).toBe("EISDIR");
    expect(codeOf(() => b.write("adir", Uint8Array.of(1)))).toBe("backend-error");
    // The failed write's temp file was removed.
    expect(contentNames(dir)).toEqual(["adir.bin", "k.bin"]);
    b.close();

    const file = join(root, `plain-file-${counter++}`);
    writeFileSync(file, "not a directory");
    expect(codeOf(() => fileBackend(file))).toBe("backend-error");
    const unlocked = fileBackend(file, { lock: false });
    expect(codeOf(() => unlocked.write("k", Uint8Array.of(1)))).toBe("backend-error");
  });

  it("leaves nothing behind when a batch fails midway through its temp files", () => {
    const dir = freshDir();
    const b = fileBackend(dir);
    b.write("keep", Uint8Array.of(1));
    mkdirSync(join(dir, "blocked.bin"));
    expect(
      codeOf(() =>
        b.writeBatch([
          { op: "put", key: "a", value: Uint8Array.of(1) },
          { op: "put", key: "blocked", value: Uint8Array.of(2) },
        ]),
      ),
    ).toBe("backend-error");
    // "a" was renamed before "blocked" failed (not atomic), but no temp file survives.
    expect(contentNames(dir).filter((n) => n.startsWith("."))).toEqual([]);
    expect(Array.from(b.read("a") ?? [])).toEqual([1]);
    expect(Array.from(b.read("keep") ?? [])).toEqual([1]);
    b.close();
  });

  it("validates its arguments", () => {
    expect(() => fileBackend("")).toThrow(TypeError);
    expect(() => fileBackend(freshDir(), { lock: "yes" as unknown as boolean })).toThrow(TypeError);
  });
});

describe("fileBackend single-writer lock", () => {
  it("is shared by the handles of one process and lasts until the last closes", async () => {
    const dir = freshDir();
    const a = fileBackend(dir);
    const b = fileBackend(dir);
    a.write("a", Uint8Array.of(1));
    b.write("b", Uint8Array.of(2));
    expect(a.list()).toEqual(["a", "b"]);
    a.close();
    expect((await openStoreInChild("file", dir)).report.code).toBe("store-locked");
    b.write("c", Uint8Array.of(3));
    b.close();
    const next = await openStoreInChild("file", dir);
    expect(next.report).toMatchObject({ code: "acquired", keys: ["a", "b", "c", "from-child"] });
    await next.release();
  });

  it("refuses a directory another process holds, naming its pid and host", async () => {
    const dir = freshDir();
    const holder = await openStoreInChild("file", dir);
    expect(holder.report.code).toBe("acquired");
    let err: unknown;
    try {
      fileBackend(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("store-locked");
    expect((err as StorageError).details).toMatchObject({ path: dir, pid: holder.pid, host: hostname() });
    expect((err as StorageError).message).toContain(`process ${holder.pid} on host`);
    await holder.release();
    const b = fileBackend(dir);
    expect(b.list()).toEqual(["from-child"]);
    b.close();
  });

  it("locks a missing directory at open: a writer in another process cannot start on it meanwhile", async () => {
    // Two writers on a new store: one that read an empty store must never be overtaken by another that writes
    // before it, so the lock is taken (and the directory created) when the first opens.
    const dir = freshDir();
    const a = fileBackend(dir);
    expect(a.list()).toEqual([]);
    const other = await openStoreInChild("file", dir);
    expect(other.report).toMatchObject({ code: "store-locked", details: { pid: process.pid } });
    a.write("k", Uint8Array.of(1));
    a.close();
    expect(await probeLockInChild(join(dir, LOCK_FILE_NAME), "rollback")).toBe("acquired");
  });

  it("lets unlocked backends share a directory", () => {
    const dir = freshDir();
    const a = fileBackend(dir, { lock: false });
    const b = fileBackend(dir, { lock: false });
    a.write("a", Uint8Array.of(1));
    b.write("b", Uint8Array.of(2));
    expect(a.list()).toEqual(["a", "b"]);
    a.close();
    b.close();
  });

  it("refuses a directory another process holds, and is free again once that process is killed -9", async () => {
    const dir = freshDir();
    mkdirSync(dir);
    const holder = await openStoreInChild("file", dir);
    expect(holder.report.code).toBe("acquired");
    expect(codeOf(() => fileBackend(dir))).toBe("store-locked");
    await holder.killHard();
    const b = fileBackend(dir);
    b.write("k", Uint8Array.of(1));
    expect(b.list()).toEqual(["from-child", "k"]);
    b.close();
  });
});
