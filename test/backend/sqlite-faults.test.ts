/**
 * What the SQLite backend reports when the store or the disk is not what it expects: rows another program wrote
 * with the wrong types, a full disk, a read-only mount. Real file systems: a small tmpfs mounted for the test (as
 * root, or as another user in a user namespace: test/support/tmpfs.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { sqliteStoreWithRows } from "../support/foreign-rows.js";
import { describeWithTmpfs, tmpfsRoot } from "../support/tmpfs.js";
import { storageErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-sqlite-faults-"));
const disks = tmpfsRoot("sqlite-faults");
afterAll(() => {
  disks.remove();
  rmSync(root, { recursive: true, force: true });
});


describe("sqliteBackend: foreign and corrupted rows", () => {
  const storeWithRows = (rows: Array<[unknown, unknown]>): string =>
    sqliteStoreWithRows(join(root, `foreign-${Math.random().toString(36).slice(2)}.db`), rows);

  it("refuses a TEXT or INTEGER value with corrupt-store naming the key, instead of reading it as absent", () => {
    const path = storeWithRows([
      ["text", "not bytes"],
      ["int", 42],
      ["ok", Buffer.from([1, 2])],
    ]);
    const b = sqliteBackend(path);
    expect(b.list()).toEqual(["int", "ok", "text"]);
    const text = storageErrorOf(() => b.read("text"));
    expect(text.code).toBe("corrupt-store");
    expect(text.details).toMatchObject({ key: "text", found: "a value of type TEXT" });
    const int = storageErrorOf(() => b.read("int"));
    expect(int.code).toBe("corrupt-store");
    expect(int.details).toMatchObject({ key: "int", found: "a value of type a number" });
    expect(Array.from(b.read("ok") ?? [])).toEqual([1, 2]);
    b.close();
  });

  it("reads many keys around foreign rows as read reads each: a bad value asked for is corrupt-store, one not asked for is no matter", () => {
    const rows: Array<[unknown, unknown]> = [];
    for (let i = 0; i < 20; i++) rows.push([`f/${String(i).padStart(2, "0")}`, Buffer.from([i])]);
    rows.push(["f/05x", "not bytes"], ["f/07", 7], [12, Buffer.from([9])], [Buffer.from("f/08x"), Buffer.from([9])]);
    const b = sqliteBackend(storeWithRows(rows.filter(([k]) => k !== "f/07")));
    const good = Array.from({ length: 20 }, (_, i) => `f/${String(i).padStart(2, "0")}`).filter((k) => k !== "f/07");
    // The scan passes a TEXT value, an INTEGER key and a BLOB key between the keys asked for.
    expect(b.readMany(good).map((v) => v?.[0])).toEqual(good.map((k) => Number(k.slice(2))));
    const err = storageErrorOf(() => b.readMany([...good, "f/05x"]));
    expect(err.code).toBe("corrupt-store");
    expect(err.details).toMatchObject({ key: "f/05x", found: "a value of type TEXT" });
    b.close();
    const c = sqliteBackend(storeWithRows([...rows.filter(([k]) => k !== "f/07"), ["f/07", 7]]));
    expect(storageErrorOf(() => c.readMany(["f/06", "f/07", "f/08", "f/09", "f/10"])).details).toMatchObject({ key: "f/07", found: "a value of type a number" });
    c.close();
  });

  it("tells sizes around foreign rows as read reads each: a bad value asked for is corrupt-store, one not asked for is no matter", () => {
    const rows: Array<[unknown, unknown]> = [];
    for (let i = 0; i < 20; i++) rows.push([`f/${String(i).padStart(2, "0")}`, Buffer.alloc(i)]);
    rows.push(["f/05x", "not bytes"], ["f/07x", 7], [12, Buffer.from([9])], [Buffer.from("f/08x"), Buffer.from([9])]);
    const b = sqliteBackend(storeWithRows(rows));
    const good = Array.from({ length: 20 }, (_, i) => `f/${String(i).padStart(2, "0")}`);
    // One scan of the range passes a TEXT value, an INTEGER value, an INTEGER key and a BLOB key.
    expect(b.sizes(good)).toEqual(good.map((_, i) => i));
    expect(storageErrorOf(() => b.sizes([...good, "f/05x"])).details).toMatchObject({ key: "f/05x", found: "a value of type TEXT" });
    // Few keys: each alone.
    expect(storageErrorOf(() => b.sizes(["f/06", "f/07x"])).details).toMatchObject({ key: "f/07x", found: "a value of type a number" });
    b.close();
  });

  it("refuses a BLOB key when listing, with corrupt-store naming it in hex", () => {
    const path = storeWithRows([
      [Buffer.from("blobkey"), Buffer.from([1])],
      ["ok", Buffer.from([2])],
    ]);
    const b = sqliteBackend(path);
    const err = storageErrorOf(() => b.list());
    expect(err.code).toBe("corrupt-store");
    expect(err.details.key).toBe(`0x${Buffer.from("blobkey").toString("hex")}`);
    // A prefix scan over TEXT keys never meets it (SQLite sorts BLOBs after all TEXT).
    expect(b.list("o")).toEqual(["ok"]);
    b.close();
  });
});

describeWithTmpfs(import.meta.url, "sqliteBackend: the OS cause behind SQLite's words", () => {
  it("names ENOSPC when a new store is opened on a full disk", () => {
    const disk = disks.mount("full-open", 256);
    disk.fill();
    const dir = disk.dir;
    const err = storageErrorOf(() => sqliteBackend(join(dir, "new.db")));
    expect(err.code).toBe("backend-error");
    expect(err.details.osCode).toBe("ENOSPC");
    expect(err.message).toContain("ENOSPC");
  });

  it("names ENOSPC when a write fails on a full disk, and writes again once space is freed", () => {
    const disk = disks.mount("full-write", 1024);
    const dir = disk.dir;
    const b = sqliteBackend(join(dir, "s.db"));
    b.write("a", Uint8Array.of(1));
    disk.fill();
    const err = storageErrorOf(() => b.writeBatch(Array.from({ length: 64 }, (_, i) => ({ op: "put" as const, key: `k${i}`, value: new Uint8Array(8192) }))));
    expect(err.details.osCode).toBe("ENOSPC");
    disk.free();
    b.write("b", Uint8Array.of(2));
    expect(b.list()).toEqual(["a", "b"]);
    b.close();
  });

  it("names EROFS when a store is opened for writing on a read-only mount", () => {
    const dir = disks.mount("ro", 256, { readOnly: true }).dir;
    const err = storageErrorOf(() => sqliteBackend(join(dir, "s.db")));
    expect(err.details.osCode).toBe("EROFS");
    expect(err.message).toContain("read-only file system");
  });
});
