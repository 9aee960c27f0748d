/**
 * readConsistent on a read-only SQLite handle: the reads made inside it see the store as it was when the call began
 * (one read transaction on the WAL), whatever another handle commits meanwhile; nested calls share it; after the
 * last call ends the handle reads the store as it is, and the writer's WAL can be checkpointed again; a read
 * transaction opened on the connection before the call is joined and left to its opener. A writer's handle refuses
 * it; a store not in WAL mode reads as usual (a read transaction would hold its writer off).
 */
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { sqliteBackend, type SqliteBackend } from "../../src/backend/sqlite.js";
import { StorageError } from "../../src/errors.js";
import { errorOf } from "../support/wait.js";

const dir = mkdtempSync(join(tmpdir(), "grf-sqlite-consistent-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const opened: SqliteBackend[] = [];
afterEach(() => {
  for (const b of opened.splice(0).reverse()) b.close();
});
let n = 0;
function pair(): { writer: SqliteBackend; reader: SqliteBackend } {
  const path = join(dir, `store-${n++}.db`);
  const writer = sqliteBackend(path);
  opened.push(writer);
  writer.write("seed", Uint8Array.of(0)); // the reader opens an existing store
  const reader = sqliteBackend(path, { readOnly: true });
  opened.push(reader);
  return { writer, reader };
}
const b = (x: number): Uint8Array => Uint8Array.of(x);

describe("sqliteBackend readConsistent", () => {
  it("reads at one point in time while a writer commits, nested calls included; after it, the store as it is", async () => {
    const { writer, reader } = pair();
    writer.writeBatch([
      { op: "put", key: "k", value: b(1) },
      { op: "put", key: "old", value: b(2) },
    ]);
    const seen = await reader.readConsistent(async () => {
      // A compaction-like commit before the first read inside: the point in time is the call's, not the read's.
      writer.writeBatch([
        { op: "put", key: "k", value: b(3) },
        { op: "delete", key: "old" },
        { op: "put", key: "new", value: b(4) },
      ]);
      await new Promise((r) => setImmediate(r));
      const inner = await reader.readConsistent(async () => reader.readMany(["k", "old", "new"]));
      return { first: reader.read("k"), inner, list: reader.list(), prefix: reader.readPrefix("k", 10) };
    });
    expect(seen).toEqual({ first: b(1), inner: [b(1), b(2), undefined], list: ["k", "old", "seed"], prefix: b(1) });
    expect(reader.readMany(["k", "old", "new"])).toEqual([b(3), undefined, b(4)]);
    expect(reader.db.inTransaction).toBe(false);
  });

  it("the change counter inside stays where the point in time is; after it, it moves", async () => {
    const { writer, reader } = pair();
    const before = reader.changeCounter();
    const inside = await reader.readConsistent(async () => {
      writer.write("k", b(1));
      return reader.changeCounter();
    });
    expect(inside).toBe(before);
    expect(reader.changeCounter()).not.toBe(before);
  });

  it("ends its transaction when fn throws: the error is fn's, later reads see the store as it is", async () => {
    const { writer, reader } = pair();
    const boom = new Error("boom");
    const err = await errorOf(() =>
      reader.readConsistent(async () => {
        reader.read("seed");
        writer.write("k", b(7));
        throw boom;
      }),
    );
    expect(err).toBe(boom);
    expect(reader.db.inTransaction).toBe(false);
    expect(reader.read("k")).toEqual(b(7));
  });

  it("a read transaction already open on the connection is joined and left open: reads after the call stay at its time (task 386)", async () => {
    // The CLI's read commands begin theirs at the open (a tool may, on `db`): the first readConsistent committed it,
    // so every read after it saw a later store than the reads before.
    for (const readFirst of [true, false]) {
      const { writer, reader } = pair();
      writer.write("k", b(1));
      reader.db.exec("BEGIN");
      const before = readFirst ? reader.read("k") : undefined;
      writer.write("k", b(2));
      const inside = await reader.readConsistent(async () => {
        writer.write("k", b(3));
        return reader.read("k");
      });
      writer.write("k", b(4));
      // Not read yet: the point in time is the call's start, as for a transaction of its own.
      expect({ before, inside }).toEqual(readFirst ? { before: b(1), inside: b(1) } : { before: undefined, inside: b(2) });
      expect(reader.db.inTransaction).toBe(true);
      expect(reader.read("k")).toEqual(inside);
      reader.db.exec("COMMIT");
      expect(reader.read("k")).toEqual(b(4));
    }
  });

  it("a writer's handle refuses it; a non-function is a TypeError; a closed handle says closed", async () => {
    const { writer, reader } = pair();
    expect(await errorOf(() => writer.readConsistent(async () => 1))).toMatchObject({ code: "invalid-argument" });
    expect(await errorOf(() => reader.readConsistent(1 as unknown as () => Promise<number>))).toBeInstanceOf(TypeError);
    reader.close();
    const closed = await errorOf(() => reader.readConsistent(async () => 1));
    expect(closed).toBeInstanceOf(StorageError);
    expect(closed).toMatchObject({ code: "closed" });
  });

  it("a store in rollback-journal mode: reads run as usual, the writer is never held off", async () => {
    const path = join(dir, `journal-${n++}.db`);
    const raw = new Database(path);
    raw.exec("CREATE TABLE graphrefly_storage (k TEXT PRIMARY KEY, v BLOB NOT NULL)");
    raw.prepare("INSERT INTO graphrefly_storage (k, v) VALUES (?, ?)").run("k", Buffer.from([1]));
    const reader = sqliteBackend(path, { readOnly: true });
    opened.push(reader);
    const seen = await reader.readConsistent(async () => {
      const first = reader.read("k");
      // With a read transaction open in rollback mode this commit would fail with SQLITE_BUSY.
      raw.prepare("INSERT OR REPLACE INTO graphrefly_storage (k, v) VALUES (?, ?)").run("k", Buffer.from([2]));
      return { first, inTransaction: reader.db.inTransaction, second: reader.read("k") };
    });
    raw.close();
    expect(seen).toEqual({ first: b(1), inTransaction: false, second: b(2) });
  });
});
