/** Large batches on the SQLite backend: runs of puts go as multi-row INSERTs, which must keep op order. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { BatchOp } from "../../src/backend/types.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";

const root = mkdtempSync(join(tmpdir(), "grf-sqlite-batch-"));
let counter = 0;
const freshPath = (): string => join(root, `store-${counter++}.db`);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const put = (key: string, byte: number): BatchOp => ({ op: "put", key, value: Uint8Array.of(byte) });

function contents(b: ReturnType<typeof sqliteBackend>): Record<string, number[]> {
  return Object.fromEntries(b.list().map((k) => [k, Array.from(b.read(k) ?? [])]));
}

describe("sqliteBackend large batches", () => {
  it("applies long runs of puts, repeated keys and deletes between them in op order", () => {
    const b = sqliteBackend(freshPath());
    b.write("old", Uint8Array.of(9));
    const ops: BatchOp[] = [];
    const model = new Map<string, number>([["old", 9]]);
    const apply = (op: BatchOp): void => {
      ops.push(op);
      if (op.op === "put") model.set(op.key, op.value[0]!);
      else model.delete(op.key);
    };
    // Runs of every length around the statement's row count, keys repeated inside a run and across runs.
    let n = 0;
    for (const run of [1, 31, 32, 33, 64, 65, 100, 7]) {
      for (let i = 0; i < run; i++) apply(put(`k${(n++ * 7) % 90}`, n % 256));
      apply({ op: "delete", key: `k${n % 90}` });
    }
    apply({ op: "delete", key: "old" });
    for (let i = 0; i < 40; i++) apply(put(i % 2 === 0 ? "old" : `k${i}`, i));
    b.writeBatch(ops);
    const expected = Object.fromEntries([...model].sort(([a], [c]) => (a < c ? -1 : 1)).map(([k, v]) => [k, [v]]));
    expect(contents(b)).toEqual(expected);
    b.close();
  });

  it("leaves nothing of a long batch when a row inside a multi-row insert fails", () => {
    const b = sqliteBackend(freshPath());
    b.write("keep", Uint8Array.of(1));
    b.db.exec(`CREATE TRIGGER reject_boom BEFORE INSERT ON graphrefly_storage WHEN NEW.k = 'boom'
               BEGIN SELECT RAISE(ABORT, 'boom rejected'); END`);
    const ops: BatchOp[] = [];
    for (let i = 0; i < 100; i++) ops.push(put(i === 40 ? "boom" : `k${i}`, i));
    ops.push({ op: "delete", key: "keep" });
    expect(() => b.writeBatch(ops)).toThrow(/boom rejected/);
    expect(b.list()).toEqual(["keep"]);
    expect(b.db.inTransaction).toBe(false);
    b.close();
  });
});
