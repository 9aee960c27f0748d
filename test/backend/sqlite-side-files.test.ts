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
import { asNobody } from "../support/as-nobody.js";
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

/** storeWithVictim, switched to rollback mode (as another program can). */
function rollbackModeStore(): { store: string; victim: string } {
  const made = storeWithVictim();
  const other = new Database(made.store);
  other.pragma("journal_mode = DELETE");
  other.close();
  return made;
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
    // Review r353 F4: the refusal names the store (details.path) and the lock database, and says removing a lock
    // database's -journal loses nothing (it advised restoring the store from a backup).
    expect(err.details).toMatchObject({ path: store, lockDatabase: `${store}-lock`, file: `${store}-lock-journal`, reason: "super-journal" });
    expect(err.message).toContain(`of store ${store}`);
    expect(err.message).toContain("removing it is harmless");
    expect(err.message).not.toContain("backup");
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

/**
 * Review r353 F1: on a store in rollback (DELETE) mode, SQLite looks for a hot journal at the start of every read
 * transaction, not only at the open: a -journal naming a super-journal put there after a read-only handle opened was
 * rolled back at its next read, deleting the named file. A read-only handle looks at the side files before each one.
 */
describe("a -journal naming a super-journal put there after a read-only open (review r353 F1)", () => {
  it("a read-only handle's next read refuses it, corrupt-store super-journal; the named file is not deleted", async () => {
    const { store, victim } = rollbackModeStore();
    const r = sqliteBackend(store, { readOnly: true });
    try {
      expect(r.read("a")).toEqual(new Uint8Array([1]));
      craftSuperJournal(store, victim);
      const refused = storageErrorOf(() => r.read("b"));
      expectRefused(refused, store, victim);
      // Review r374 L5: an open handle's refusal says the read, not an open, was refused.
      expect(refused.message).toContain(`cannot read sqlite store ${store}: its -journal`);
      expect(refused.message).toContain("a side file put there since the open; nothing was read:");
      expectRefused(storageErrorOf(() => r.list()), store, victim);
      expectRefused((await errorOf(() => r.readConsistent(async () => r.read("b")))) as StorageError, store, victim);
      rmSync(`${store}-journal`);
      expect(r.read("b")).toEqual(new Uint8Array([2])); // the handle reads again once it is gone
    } finally {
      r.close();
    }
    expect(readFileSync(victim, "utf8")).toBe("precious data");
  });

  it("the engine's read-only tier's next load refuses it; the named file is not deleted", async () => {
    const { store, victim } = storeWithVictim();
    const writer = openStorageEngine({ threads: 1, onError: () => {} });
    const w = writer.kv<number>({ kind: "sqlite", path: store }, { name: "kv" });
    w.save("a", 1);
    w.save("b", 2);
    await w.flush();
    await writer.close();
    const other = new Database(store);
    other.pragma("journal_mode = DELETE");
    other.close();
    const engine = openStorageEngine({ threads: 1, onError: () => {} });
    try {
      const kv = engine.kv<number>({ kind: "sqlite", path: store, readOnly: true }, { name: "kv" });
      expect(await kv.load("a")).toBe(1);
      craftSuperJournal(store, victim);
      expectRefused((await errorOf(() => kv.load("b"))) as StorageError, store, victim);
    } finally {
      await engine.close().catch(() => {});
    }
  }, 60_000);
});

/**
 * Task 366: on a store not in WAL mode SQLite looks for a -wal at each read transaction and opens one found there
 * (with its -shm); a FIFO there that this user cannot open read-write it opens read-only, which blocks until a writer
 * comes: a FIFO put there after a read-only handle opened hung its next read for good. The handle looks at every side
 * file before each read transaction, and refuses it as its open does.
 */
describe("a FIFO as the -wal or -shm put there after a read-only open (task 366)", () => {
  it.each(["-wal", "-shm"])("the next read refuses a FIFO as %s, side-not-a-file, and does not block; it reads again once it is gone", (suffix) => {
    const { store } = rollbackModeStore();
    // The reader makes the FIFO itself, mode 0444: it cannot open it read-write (root could: as nobody then), so SQLite
    // opens it read-only. For the -shm, a -wal SQLite opens first (not empty: an empty one counts as none).
    const script = `
      const { execFileSync } = await import("node:child_process");
      const { rmSync, writeFileSync } = await import("node:fs");
      const { sqliteBackend } = await import(${JSON.stringify(join(REPO, "dist/src/backend/sqlite.js"))});
      const [store, suffix] = process.argv.slice(1);
      const r = sqliteBackend(store, { readOnly: true });
      const out = { first: r.read("a")[0] };
      if (suffix === "-shm") writeFileSync(store + "-wal", Buffer.alloc(4096));
      execFileSync("mkfifo", ["-m", "0444", store + suffix]);
      try { r.read("b"); out.refused = "read"; }
      catch (e) { out.refused = { code: e.code, reason: e.details?.reason, found: e.details?.found, file: e.details?.file }; }
      rmSync(store + suffix);
      out.again = r.read("b")[0];
      r.close();
      console.log(JSON.stringify(out));`;
    const r = spawnSync(...asNobody(root, [process.execPath, "--input-type=module", "-e", script, store, suffix]), { encoding: "utf8", timeout: 20_000 });
    expect(r.signal, "the read blocked on the FIFO").toBeNull();
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({
      first: 1,
      refused: { code: "corrupt-store", reason: "side-not-a-file", found: "a FIFO", file: `${store}${suffix}` },
      again: 2,
    });
  });
});

/**
 * Review r374: looking at three side files before every read tripled a read's cost (an lstat each: on a live store the
 * -wal and -shm are there). A connection that has read in WAL mode keeps its -wal and -shm open and never looks for a
 * -journal, so the handle stops looking once its connection is in WAL mode. Here the proof that it may: FIFOs at all
 * three paths after its first read (made as nobody, mode 0444: SQLite could open them only read-only, which blocks)
 * while its writer commits, and the read-only handle still reads, the writer's new row too.
 */
describe("a read-only handle in WAL mode (review r374)", () => {
  it("reads on, without blocking, with FIFOs put at its -journal, -wal and -shm after its first read", () => {
    const { store } = storeWithVictim();
    const script = `
      const { execFileSync } = await import("node:child_process");
      const { rmSync } = await import("node:fs");
      const { sqliteBackend } = await import(${JSON.stringify(join(REPO, "dist/src/backend/sqlite.js"))});
      const store = process.argv[1];
      const w = sqliteBackend(store);
      const r = sqliteBackend(store, { readOnly: true });
      const out = { first: r.read("a")[0] };
      for (const suffix of ["-journal", "-wal", "-shm"]) { rmSync(store + suffix, { force: true }); execFileSync("mkfifo", ["-m", "0444", store + suffix]); }
      w.write("c", new Uint8Array([3]));
      out.after = [r.read("b")[0], r.read("c")[0]];
      out.consistent = await r.readConsistent(async () => r.list().sort());
      r.close();
      console.log(JSON.stringify(out));
      process.exit(0); // the writer's close would checkpoint into, and remove, what is now a FIFO: not this test's`;
    const r = spawnSync(...asNobody(root, [process.execPath, "--input-type=module", "-e", script, store]), { encoding: "utf8", timeout: 20_000 });
    expect(r.signal, "a read blocked on a FIFO").toBeNull();
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({ first: 1, after: [2, 3], consistent: ["a", "b", "c"] });
  });
});

describe("a -journal this user cannot read (review r353 F3)", () => {
  it("is refused naming it, corrupt-store side-unreadable (SQLite failed SQLITE_CANTOPEN naming no file)", () => {
    const { store } = storeWithVictim();
    const dir = dirname(store);
    execFileSync("chmod", ["711", root]);
    execFileSync("chmod", ["777", dir]);
    execFileSync("chmod", ["666", store]);
    writeFileSync(`${store}-journal`, Buffer.alloc(0));
    execFileSync("chmod", ["000", `${store}-journal`]);
    // As nobody (root reads a mode 000 file), for a writer and a reader.
    const script = `
      const { sqliteBackend } = await import(${JSON.stringify(join(REPO, "dist/src/backend/sqlite.js"))});
      const out = [];
      for (const opts of [{}, { readOnly: true }]) {
        try { sqliteBackend(process.argv[1], opts).close(); out.push("opened"); }
        catch (e) { out.push({ code: e.code, details: e.details, message: e.message }); }
      }
      console.log(JSON.stringify(out));`;
    const r = spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "--input-type=module", "-e", script, store], {
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(r.stderr).toBe("");
    const out = JSON.parse(r.stdout) as Array<{ code: string; details: Record<string, unknown>; message: string }>;
    expect(out).toHaveLength(2);
    for (const err of out) {
      expect(err.code).toBe("corrupt-store");
      expect(err.details).toEqual({ path: store, file: `${store}-journal`, errno: "EACCES", reason: "side-unreadable" });
      expect(err.message).toContain(`${store}-journal`);
      expect(err.message).toContain("cannot be read by this user");
    }
  });
});
