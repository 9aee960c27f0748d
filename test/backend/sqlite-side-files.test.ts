/**
 * Task 347 (review r342 F1 beyond the CLI): SQLite rolls a hot -journal back at the first read of any connection, a
 * read-only handle's too (read-write at the file level), and a -journal naming a super-journal made that rollback
 * delete the named file as the opening user (a file beside the store here; anywhere in general). A FIFO as a side file
 * blocked the open for good. Both are now refused before any connection opens the store, by every opener
 * (sqliteBackend writable and read-only, the engine's actor, a store lock's own database): corrupt-store with
 * details.reason "super-journal" / "side-not-a-file". A -journal naming none is still rolled back.
 */
import Database from "better-sqlite3";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine } from "../../src/engine/index.js";
import type { StorageError } from "../../src/errors.js";
import { craftSuperJournal, killedMidTransaction } from "../support/sqlite-journal.js";
import { errorOf, storageErrorOf } from "../support/wait.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "grf-sqlite-side-files-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

/** A store `s.db` holding a = 1 and b = 2 (closed: no -wal, no -shm), in a directory of its own, and a victim file beside it. */
function storeWithVictim(): { store: string; victim: string } {
  const dir = join(root, `case-${counter++}`);
  mkdirSync(dir);
  const store = join(dir, "s.db");
  const b = sqliteBackend(store);
  b.write("a", new Uint8Array([1]));
  b.write("b", new Uint8Array([2]));
  b.close();
  const victim = join(dir, "precious");
  writeFileSync(victim, "precious data");
  return { store, victim };
}

function expectRefused(err: StorageError, store: string, victim: string): void {
  expect(err.code).toBe("corrupt-store");
  expect(err.details).toMatchObject({ path: store, file: `${store}-journal`, superJournal: victim, reason: "super-journal" });
  expect(err.message).toContain(store);
  expect(err.message).toContain("remove it");
  expect(readFileSync(victim, "utf8")).toBe("precious data");
  expect(existsSync(`${store}-journal`)).toBe(true); // left as it was, for its owner to look at
}

describe("a -journal naming a super-journal (review r342 F1)", () => {
  it.each([
    ["a writer", {}],
    ["a writer without the lock", { lock: false }],
    ["a read-only handle", { readOnly: true }],
  ] as const)("%s refuses the store, corrupt-store super-journal; the named file is not deleted", (_, opts) => {
    const { store, victim } = storeWithVictim();
    craftSuperJournal(store, victim);
    const listing = readdirSync(dirname(store)).sort();
    expectRefused(storageErrorOf(() => sqliteBackend(store, opts)), store, victim);
    expect(readdirSync(dirname(store)).sort()).toEqual(listing); // nothing made or removed beside the store
  });

  it("the engine's open of the store refuses it: the flush rejects with it, the named file is not deleted", async () => {
    const { store, victim } = storeWithVictim();
    craftSuperJournal(store, victim);
    const engine = openStorageEngine({ threads: 1, onError: () => {} });
    try {
      for (const readOnly of [false, true]) {
        const kv = engine.kv<number>({ kind: "sqlite", path: store, readOnly }, { name: `kv-${readOnly}` });
        const err = (await errorOf(() => (readOnly ? kv.load("a") : (kv.save("c", 3), kv.flush())))) as StorageError;
        expectRefused(err, store, victim);
      }
    } finally {
      await engine.close().catch(() => {});
    }
  }, 60_000);

  it("a store lock's own -journal naming one refuses the writer (its lock database would roll it back)", () => {
    const { store, victim } = storeWithVictim();
    sqliteBackend(store).close(); // the lock database is made
    const lockDb = new Database(`${store}-lock`);
    lockDb.pragma("journal_mode = DELETE");
    lockDb.close();
    craftSuperJournal(`${store}-lock`, victim, 4096);
    const err = storageErrorOf(() => sqliteBackend(store));
    expect(err.code).toBe("corrupt-store");
    expect(err.details).toMatchObject({ path: `${store}-lock`, reason: "super-journal" });
    expect(readFileSync(victim, "utf8")).toBe("precious data");
  });

  it("one put there while a writer holds the store cannot be rolled back by another connection (the checkpointer's case): SQLITE_BUSY", () => {
    const { store, victim } = storeWithVictim();
    const writer = sqliteBackend(store);
    try {
      writer.write("c", new Uint8Array([3]));
      craftSuperJournal(store, victim);
      // The engine's checkpointer opens its connection so, only while the store's writer has it open (its first
      // statement then fails, and it leaves the store to its writer's own checkpoints).
      const other = new Database(store, { fileMustExist: true, timeout: 100 });
      try {
        expect(() => other.prepare("SELECT count(*) FROM graphrefly_storage").get()).toThrow(expect.objectContaining({ code: "SQLITE_BUSY" }));
      } finally {
        other.close();
      }
      expect(readFileSync(victim, "utf8")).toBe("precious data");
    } finally {
      writer.close();
    }
  });

  it("a -journal naming none (a rollback-mode writer killed mid-transaction) is still rolled back, by a writer and by a reader", () => {
    for (const opts of [{}, { readOnly: true }]) {
      const { store } = storeWithVictim();
      killedMidTransaction(store, REPO);
      expect(existsSync(`${store}-journal`)).toBe(true);
      const b = sqliteBackend(store, opts);
      try {
        // The transaction deleted every row: rolled back, both are there.
        expect([...b.list()].sort()).toEqual(["a", "b"]);
        expect(b.read("b")).toEqual(new Uint8Array([2]));
      } finally {
        b.close();
      }
      expect(existsSync(`${store}-journal`)).toBe(false);
    }
  });
});

describe("a side file that is not a regular file", () => {
  /**
   * Opens the store in a child (a FIFO blocked SQLite's open for good: the test's own thread must not be the one
   * blocked), killed by spawnSync's timer if it never ends; its output: the error's code and reason, or "opened".
   */
  function openInChild(store: string, opts: object): { status: number | null; signal: string | null; out: string } {
    const script = `
      const { sqliteBackend } = await import(${JSON.stringify(join(REPO, "dist/src/backend/sqlite.js"))});
      try { sqliteBackend(process.argv[1], JSON.parse(process.argv[2])).close(); console.log("opened"); }
      catch (e) { console.log(JSON.stringify({ code: e.code, reason: e.details?.reason, found: e.details?.found, file: e.details?.file })); }`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script, store, JSON.stringify(opts)], { encoding: "utf8", timeout: 20_000 });
    return { status: r.status, signal: r.signal, out: r.stdout.trim() };
  }

  it.each(["-wal", "-journal", "-shm"])("a FIFO as the store's %s is refused, side-not-a-file, by a reader and a writer: the open does not block", (suffix) => {
    for (const opts of [{ readOnly: true }, {}]) {
      const { store } = storeWithVictim();
      execFileSync("mkfifo", [`${store}${suffix}`]);
      const r = openInChild(store, opts);
      expect(r.signal, "the open blocked on the FIFO").toBeNull();
      expect(JSON.parse(r.out)).toEqual({ code: "corrupt-store", reason: "side-not-a-file", found: "a FIFO", file: `${store}${suffix}` });
    }
  }, 120_000);

  it("a -wal that is a symbolic link is refused, naming it so", () => {
    const { store } = storeWithVictim();
    execFileSync("ln", ["-s", "/dev/zero", `${store}-wal`]);
    const err = storageErrorOf(() => sqliteBackend(store, { readOnly: true }));
    expect(err.code).toBe("corrupt-store");
    expect(err.details).toMatchObject({ path: store, file: `${store}-wal`, found: "a symbolic link", reason: "side-not-a-file" });
  });
});
