/**
 * The SQLite backend's change counter (PRAGMA data_version plus the handle's own commits): followers skip a poll
 * when it did not move, so it must move for every commit, by this handle, another handle or another process, and
 * stay put otherwise. Kv tiers expose it exactly when their backend has one.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { kvStorage } from "../../src/tier/kv.js";
import { killAllStoreChildren, openStoreInChild } from "./store-holder.js";

const root = mkdtempSync(join(tmpdir(), "grf-change-counter-"));
let n = 0;
const fresh = (): string => join(root, `s-${n++}.db`);
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => killAllStoreChildren());

const bytes = Uint8Array.of(1);

describe("sqliteBackend changeCounter", () => {
  it("a read-only handle sees every commit of another handle, and nothing else", () => {
    const path = fresh();
    const writer = sqliteBackend(path);
    writer.write("a", bytes);
    const reader = sqliteBackend(path, { readOnly: true });
    const c0 = reader.changeCounter();
    expect(reader.changeCounter()).toBe(c0);
    reader.read("a");
    reader.list();
    expect(reader.changeCounter(), "reads change nothing").toBe(c0);
    writer.write("b", bytes);
    const c1 = reader.changeCounter();
    expect(c1).not.toBe(c0);
    expect(reader.changeCounter()).toBe(c1);
    writer.delete("a");
    const c2 = reader.changeCounter();
    expect(c2).not.toBe(c1);
    writer.writeBatch([
      { op: "put", key: "c", value: bytes },
      { op: "delete", key: "b" },
    ]);
    expect(reader.changeCounter()).not.toBe(c2);
    reader.close();
    writer.close();
  });

  it("a handle's own commits move its counter too (data_version alone would not)", () => {
    const b = sqliteBackend(fresh());
    const c0 = b.changeCounter();
    b.write("a", bytes);
    const c1 = b.changeCounter();
    expect(c1).not.toBe(c0);
    expect(b.changeCounter()).toBe(c1);
    b.writeBatch([]);
    expect(b.changeCounter(), "an empty batch commits nothing").toBe(c1);
    b.delete("a");
    expect(b.changeCounter()).not.toBe(c1);
    b.close();
  });

  it("moves when another process commits", async () => {
    const path = fresh();
    sqliteBackend(path).close();
    const reader = sqliteBackend(path, { readOnly: true });
    const c0 = reader.changeCounter();
    const child = await openStoreInChild("sqlite", path); // writes "from-child", then holds the store
    expect(child.report.code).toBe("acquired");
    expect(reader.changeCounter()).not.toBe(c0);
    expect(reader.list()).toEqual(["from-child"]);
    await child.release();
    reader.close();
  });
});

describe("kv tier changeCounter", () => {
  it("is there exactly when the backend has one, and follows it", async () => {
    const path = fresh();
    const writer = kvStorage<number>(sqliteBackend(path));
    const backend = sqliteBackend(path, { readOnly: true });
    const reader = kvStorage<number>(backend);
    expect(typeof reader.changeCounter).toBe("function");
    const c0 = await reader.changeCounter!();
    expect(await reader.changeCounter!()).toBe(c0);
    writer.save("k", 1);
    await writer.flush();
    expect(await reader.changeCounter!()).not.toBe(c0);
    await Promise.all([reader.close(), writer.close()]);
    backend.close();
    expect(kvStorage(memoryBackend()).changeCounter).toBeUndefined();
    expect(kvStorage(fileBackend(join(root, "file-store"), { readOnly: true })).changeCounter).toBeUndefined();
  });
});
