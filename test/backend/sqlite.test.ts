import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { sqliteBackend, type SqliteBackend } from "../../src/backend/sqlite.js";
import { backendSuite } from "../conformance/backend-suite.js";
import { killAllStoreChildren, openStoreInChild } from "./store-holder.js";
import { storageErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-sqlite-backend-"));
let counter = 0;
const freshPath = (): string => join(root, `store-${counter++}.db`);
afterEach(killAllStoreChildren);
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The reference implementation's schema, verbatim. */
const REFERENCE_SCHEMA = "CREATE TABLE graphrefly_storage (k TEXT PRIMARY KEY, v BLOB NOT NULL)";

backendSuite<SqliteBackend>({
  name: "sqliteBackend",
  factory: () => sqliteBackend(freshPath()),
  reopen: (b) => sqliteBackend(b.path),
  openReader: (b) => sqliteBackend(b.path, { readOnly: true }),
});


describe("sqliteBackend specifics", () => {
  it("is named sqlite:<path>, uses WAL and declares full support", () => {
    const path = freshPath();
    const b = sqliteBackend(path);
    expect(b.name).toBe(`sqlite:${path}`);
    expect(b.db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(b.supports).toEqual({
      list: true,
      delete: true,
      atomicBatch: true,
      conditionalBatch: true,
      conditionalKeys: true,
      persistent: true,
      durable: true,
      sync: true,
      readPrefix: true,
      sizes: true,
    });
    b.close();
  });

  it("creates a new store with 8 KiB pages; a store made with 4 KiB pages (the reference's default) keeps them", () => {
    const made = sqliteBackend(freshPath());
    made.writeBatch([{ op: "put", key: "k", value: new Uint8Array([1, 2]) }]);
    expect(made.db.pragma("page_size", { simple: true })).toBe(8192);
    made.close();
    const again = sqliteBackend(made.path);
    expect(again.db.pragma("page_size", { simple: true })).toBe(8192);
    expect(again.read("k")).toEqual(new Uint8Array([1, 2]));
    again.close();

    const path = freshPath();
    const reference = new Database(path);
    reference.pragma("journal_mode = WAL");
    reference.exec(REFERENCE_SCHEMA);
    reference.prepare("INSERT INTO graphrefly_storage (k, v) VALUES (?, ?)").run("old", Buffer.from([7]));
    reference.close();
    const opened = sqliteBackend(path);
    expect(opened.db.pragma("page_size", { simple: true })).toBe(4096);
    opened.writeBatch([{ op: "put", key: "new", value: new Uint8Array([8]) }]);
    expect(opened.read("old")).toEqual(new Uint8Array([7]));
    expect(opened.read("new")).toEqual(new Uint8Array([8]));
    opened.close();
  });

  it("applies the synchronous option (default FULL) and reports durability by it", () => {
    const levels = { OFF: 0, NORMAL: 1, FULL: 2, EXTRA: 3 } as const;
    for (const [mode, level] of Object.entries(levels) as [keyof typeof levels, number][]) {
      const b = sqliteBackend(freshPath(), { synchronous: mode });
      expect(b.db.pragma("synchronous", { simple: true })).toBe(level);
      expect(b.supports.durable).toBe(mode === "FULL" || mode === "EXTRA");
      b.close();
    }
    const d = sqliteBackend(freshPath());
    expect(d.db.pragma("synchronous", { simple: true })).toBe(levels.FULL);
    d.close();
    expect(() => sqliteBackend(freshPath(), { synchronous: "FAST" as "FULL" })).toThrow(RangeError);
    expect(() => sqliteBackend(freshPath(), { lock: 1 as unknown as boolean })).toThrow(TypeError);
  });

  it("prepares its statements once, at open", () => {
    const b = sqliteBackend(freshPath());
    const original = b.db.prepare;
    let prepares = 0;
    b.db.prepare = function (this: Database.Database, ...args: Parameters<typeof original>) {
      prepares++;
      return original.apply(this, args);
    } as typeof original;
    for (let i = 0; i < 20; i++) b.write(`k${i}`, Uint8Array.of(i));
    b.read("k1");
    b.read("missing");
    b.readMany(["k1", "k5", "k9", "missing", "k12"]);
    b.readMany(["k1"]);
    b.list();
    b.list("k1");
    b.list("\u{10FFFF}");
    b.delete("k2");
    b.writeBatch([
      { op: "put", key: "x", value: Uint8Array.of(1) },
      { op: "delete", key: "k3" },
    ]);
    b.writeBatch(Array.from({ length: 40 }, (_, i) => ({ op: "delete" as const, key: `k${i}` })));
    expect(prepares).toBe(0);
    b.db.prepare = original;
    b.close();
  });

  it("lists LIKE-hostile and case-variant prefixes literally", () => {
    const b = sqliteBackend(freshPath());
    const keys = ["g/a", "G/a", "g%a", "g_a", "gXa", "g\\a", "g\\%", "g", "h"];
    for (const k of keys) b.write(k, Uint8Array.of(1));
    expect(b.list("G/")).toEqual(["G/a"]);
    expect(b.list("g/")).toEqual(["g/a"]);
    expect(b.list("g%")).toEqual(["g%a"]);
    expect(b.list("g_")).toEqual(["g_a"]);
    expect(b.list("g\\")).toEqual(["g\\%", "g\\a"]);
    expect(b.list("g\\%")).toEqual(["g\\%"]);
    expect(b.list("g")).toEqual(["g", "g%a", "g/a", "gXa", "g\\%", "g\\a", "g_a"]);
    b.close();
  });

  it("commits a batch as one transaction: a failing op leaves nothing of the batch", () => {
    const b = sqliteBackend(freshPath());
    b.write("keep", Uint8Array.of(1));
    // A real SQLite failure on the second op, raised by a trigger.
    b.db.exec(`CREATE TRIGGER reject_boom BEFORE INSERT ON graphrefly_storage WHEN NEW.k = 'boom'
               BEGIN SELECT RAISE(ABORT, 'boom rejected'); END`);
    const err = storageErrorOf(() =>
      b.writeBatch([
        { op: "put", key: "a", value: Uint8Array.of(1) },
        { op: "put", key: "boom", value: Uint8Array.of(2) },
        { op: "delete", key: "keep" },
      ]),
    );
    expect(err.code).toBe("backend-error");
    expect(String(err.details.sqliteCode)).toMatch(/^SQLITE_CONSTRAINT/);
    expect(b.read("a")).toBeUndefined();
    expect(Array.from(b.read("keep") ?? [])).toEqual([1]);
    expect(b.db.inTransaction).toBe(false);
    b.write("after", Uint8Array.of(3));
    expect(b.list()).toEqual(["after", "keep"]);
    b.close();
  });

  it("writes the reference schema and data any plain SQLite client can read", () => {
    const path = freshPath();
    const b = sqliteBackend(path);
    b.write("g/1", Uint8Array.of(1, 2));
    b.write("", new Uint8Array(0));
    b.close();
    const raw = new Database(path, { readonly: true });
    const schema = raw.prepare("SELECT sql FROM sqlite_master WHERE name = 'graphrefly_storage'").pluck().get();
    expect(schema).toBe(REFERENCE_SCHEMA);
    const rows = raw.prepare("SELECT k, v FROM graphrefly_storage ORDER BY k").all() as { k: string; v: Buffer }[];
    expect(rows.map((r) => [r.k, Array.from(r.v)])).toEqual([
      ["", []],
      ["g/1", [1, 2]],
    ]);
    raw.close();
  });

  it("opens a store created by the reference (rollback journal, same schema)", () => {
    const path = freshPath();
    const raw = new Database(path);
    raw.exec(REFERENCE_SCHEMA);
    raw.prepare("INSERT INTO graphrefly_storage (k, v) VALUES (?, ?)").run("snap/g", Buffer.from("{}"));
    raw.close();
    const b = sqliteBackend(path);
    expect(b.list()).toEqual(["snap/g"]);
    expect(Buffer.from(b.read("snap/g") ?? []).toString()).toBe("{}");
    b.close();
  });

  it("returns plain Uint8Array views, not Buffers", () => {
    const b = sqliteBackend(freshPath());
    b.write("k", Uint8Array.of(5));
    const v = b.read("k");
    expect(v?.constructor).toBe(Uint8Array);
    b.close();
  });

  it("wraps open failures as backend-error", () => {
    const notADir = join(root, "plain-file");
    writeFileSync(notADir, "x");
    expect(storageErrorOf(() => sqliteBackend(join(notADir, "x.db"))).code).toBe("backend-error");
    expect(storageErrorOf(() => sqliteBackend(freshPath(), { readOnly: true })).code).toBe("backend-error");
  });
});

describe("sqliteBackend locking", () => {
  it("is shared by the handles of one process and lasts until the last closes", async () => {
    const path = freshPath();
    const a = sqliteBackend(path);
    const b = sqliteBackend(path);
    a.write("a", Uint8Array.of(1));
    b.write("b", Uint8Array.of(2));
    expect(a.list()).toEqual(["a", "b"]);
    a.close();
    expect((await openStoreInChild("sqlite", path)).report.code).toBe("store-locked");
    b.write("c", Uint8Array.of(3));
    b.close();
    const next = await openStoreInChild("sqlite", path);
    expect(next.report).toMatchObject({ code: "acquired", keys: ["a", "b", "c", "from-child"] });
    await next.release();
  });

  it("refuses a store another process holds, naming its pid and host", async () => {
    const path = freshPath();
    const holder = await openStoreInChild("sqlite", path);
    expect(holder.report.code).toBe("acquired");
    const err = storageErrorOf(() => sqliteBackend(path));
    expect(err.code).toBe("store-locked");
    expect(err.details).toMatchObject({ path, pid: holder.pid, host: hostname() });
    expect(err.message).toContain(`process ${holder.pid} on host`);
    await holder.release();
  });

  it("reads through a read-only handle while another process writes; writes there fail typed", async () => {
    const path = freshPath();
    const holder = await openStoreInChild("sqlite", path);
    const r = sqliteBackend(path, { readOnly: true });
    expect(r.list()).toEqual(["from-child"]);
    expect(r.read("from-child")?.length).toBe(1);
    for (const write of [() => r.write("j", Uint8Array.of(2)), () => r.delete("from-child"), () => r.writeBatch([])]) {
      expect(storageErrorOf(write).code).toBe("read-only");
    }
    r.close();
    await holder.release();
  });

  it("leaves no file behind when read-only handles open a store no one writes", () => {
    const dir = mkdtempSync(join(root, "ro-"));
    const path = join(dir, "s.db");
    const w = sqliteBackend(path);
    w.write("k", Uint8Array.of(1));
    w.close();
    const before = readdirSync(dir).sort();
    const r = sqliteBackend(path, { readOnly: true });
    const r2 = sqliteBackend(path, { readOnly: true });
    expect(Array.from(r.read("k") ?? [])).toEqual([1]);
    expect(r2.list()).toEqual(["k"]);
    r.close();
    r2.close();
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(storageErrorOf(() => sqliteBackend(join(dir, "missing.db"), { readOnly: true })).code).toBe("backend-error");
    expect(readdirSync(dir).sort()).toEqual(before);
  });

  it("lets unlocked connections share a store", () => {
    const path = freshPath();
    const a = sqliteBackend(path, { lock: false });
    const b = sqliteBackend(path, { lock: false });
    a.write("a", Uint8Array.of(1));
    b.write("b", Uint8Array.of(2));
    expect(a.list()).toEqual(["a", "b"]);
    a.close();
    b.close();
  });

  it("opens a store once its holder was killed -9", async () => {
    const path = freshPath();
    const holder = await openStoreInChild("sqlite", path);
    expect(storageErrorOf(() => sqliteBackend(path)).code).toBe("store-locked");
    await holder.killHard();
    const b = sqliteBackend(path);
    expect(b.list()).toEqual(["from-child"]);
    b.write("j", Uint8Array.of(2));
    expect(b.list()).toEqual(["from-child", "j"]);
    b.close();
  });
});

describe("sqliteBackend: store location", () => {
  it("creates missing parent directories of a writable store", async () => {
    const { mkdtempSync, existsSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const base = mkdtempSync(join(tmpdir(), "sqlite-parents-"));
    try {
      const path = join(base, "a", "b", "store.db");
      const b = sqliteBackend(path);
      b.write("k", new Uint8Array([1]));
      b.close();
      expect(existsSync(path)).toBe(true);
      const again = sqliteBackend(path);
      expect(Array.from(again.read("k") ?? [])).toEqual([1]);
      again.close();
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
