/**
 * A SQLite store another process holds locked (review s15c D1): better-sqlite3 waits for a lock synchronously, and
 * with a 5 s busy timeout every flush against the locked file held the calling thread 5 s inside SQLite (an inline
 * tier's main thread: its event loop frozen; the failure reported store-locked, which reads as permanent). Now a
 * statement gives up after a short busy timeout with StorageError("store-busy"), and the tier's retry waits
 * asynchronously. The other process is real (test/support/sqlite-locker.cjs) and lets go only when told, so every
 * step below is ordered by messages, not by time.
 */
import { afterAll, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sqliteKv } from "../../src/tier/factories.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { StorageError } from "../../src/errors.js";
import { lockSqliteFile } from "../support/sqlite-locker.js";
import { storageErrorOf } from "../support/wait.js";

const dir = mkdtempSync(join(tmpdir(), "grf-sqlite-locked-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

it("inline: flushes against a locked file reject store-busy while the lock lasts, then store once it ends", async () => {
  const path = join(dir, "inline.db");
  const errors: Error[] = [];
  const kv = sqliteKv<number>(path, { name: "kv", retry: { initialMs: 5, maxMs: 20 }, onError: (e) => errors.push(e) });
  kv.save("warm", 0);
  await kv.flush();
  const locker = await lockSqliteFile(path);
  try {
    kv.save("k", 1);
    // The other process holds the lock until told: each flush meanwhile fails typed and fast (before: store-locked,
    // each after holding this thread 5 s inside SQLite); this thread's event loop turns between them.
    for (let round = 0; round < 3; round++) {
      const err = await kv.flush().then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).code).toBe("store-busy");
      expect((err as StorageError).details).toMatchObject({ path });
      expect(String((err as StorageError).details.sqliteCode)).toMatch(/^SQLITE_BUSY/);
      await turn();
    }
    // A read-only handle reads the store meanwhile (WAL: readers never wait for the writer's lock).
    const reader = sqliteBackend(path, { readOnly: true });
    expect(reader.read("warm")).toBeDefined();
    reader.close();
    await locker.release();
  } finally {
    locker.kill();
  }
  await kv.flush();
  expect(await kv.load("k")).toBe(1);
  await kv.close();
  // Stored in the file, not only in the tier.
  const check = sqliteBackend(path, { readOnly: true });
  expect(check.read("k")).toBeDefined();
  check.close();
  expect(errors.map((e) => (e as StorageError).code)).toContain("store-busy");
  expect(errors.map((e) => (e as StorageError).code)).not.toContain("store-locked");
}, 60_000);

it("a write straight on the backend against a locked file throws store-busy and changes nothing", async () => {
  const path = join(dir, "backend.db");
  const b = sqliteBackend(path);
  b.write("a", Uint8Array.of(1));
  const locker = await lockSqliteFile(path);
  try {
    for (const write of [() => b.write("b", Uint8Array.of(2)), () => b.writeBatch([{ op: "put", key: "b", value: Uint8Array.of(2) }]), () => b.delete("a")]) {
      expect(storageErrorOf(write).code).toBe("store-busy");
    }
    expect(b.list()).toEqual(["a"]); // reads go on meanwhile
    await locker.release();
  } finally {
    locker.kill();
  }
  b.write("b", Uint8Array.of(2));
  expect(b.list()).toEqual(["a", "b"]);
  b.close();
}, 60_000);
