/**
 * Review s15r2 G1: SqliteStore.close released the store lock (a native close of the lock database) after leaving the
 * native gate, so a worker's termination could land inside that call and abort the process (native-gate.ts). The
 * gate here only records whether a call is inside it; better-sqlite3's own close is wrapped to note that, and runs.
 */
import { afterEach, expect, it } from "vitest";
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setNativeGate } from "../../src/backend/native-gate.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";

const dir = mkdtempSync(join(tmpdir(), "close-gate-"));
const realClose = Database.prototype.close;
afterEach(() => {
  Database.prototype.close = realClose;
  setNativeGate(undefined);
  rmSync(dir, { recursive: true, force: true });
});

it("close() closes the store and its lock database inside the native gate", () => {
  const b = sqliteBackend(join(dir, "s.db"));
  let inside = false;
  setNativeGate({ enter: () => void (inside = true), leave: () => void (inside = false) });
  const closes: Array<{ name: string; inside: boolean }> = [];
  Database.prototype.close = function (this: Database.Database) {
    closes.push({ name: this.name.replace(/.*\//, ""), inside });
    return realClose.call(this);
  };
  b.close();
  expect(closes).toEqual([
    { name: "s.db", inside: true },
    { name: "s.db-lock", inside: true },
  ]);
});
