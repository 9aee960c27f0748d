/**
 * A store moved aside (maintenance, a backup tool) and back while an engine writes to it: the setup of the tests of
 * a store away and its worker lost meanwhile (reopen-moved-aside, reopen-keeps-writes, sqlite-files-aside-reopen).
 * What is moved, how the store is named at its place, and how it is read back past the engine.
 */
import { existsSync, renameSync } from "node:fs";
import { join } from "node:path";
import { fileBackend } from "../../src/backend/file.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import type { StoreSpec } from "../../src/engine/protocol.js";
import { outcome } from "./settled.js";

/** A store kind whose whole directory `d` is what moves: its spec, and a read-only backend of it for reading back. */
export interface AsideCase {
  readonly kind: "file" | "sqlite";
  spec(d: string): StoreSpec;
  open(d: string): StorageBackend;
}

export const ASIDE_CASES: readonly AsideCase[] = [
  { kind: "file", spec: (d) => ({ kind: "file", dir: d }), open: (d) => fileBackend(d, { readOnly: true }) },
  { kind: "sqlite", spec: (d) => ({ kind: "sqlite", path: join(d, "s.db") }), open: (d) => sqliteBackend(join(d, "s.db"), { readOnly: true }) },
];

/** A SQLite store "s.db"'s files: what is moved when its directory stays (a shared data directory). */
export const SQLITE_STORE_FILES = ["s.db", "s.db-wal", "s.db-shm", "s.db-lock"];

/** Moves the files of `names` that exist from `from` to `to` (same file system: a rename); returns their names. */
export function moveFiles(from: string, to: string, names: readonly string[] = SQLITE_STORE_FILES): string[] {
  const moved = names.filter((f) => existsSync(join(from, f)));
  for (const f of moved) renameSync(join(from, f), join(to, f));
  return moved;
}

/** Reads the store back through a backend of its own, closed after (the engine keeps its own open meanwhile). */
export async function readBack<T>(open: () => StorageBackend, fn: (b: StorageBackend) => Promise<T>): Promise<T> {
  const b = open();
  try {
    return await fn(b);
  } finally {
    await b.close?.();
  }
}

/**
 * Flushes until the store is found back (a flush may still meet it away: the reopen is tried at each operation, and
 * the pair's loss check reads it again on its own timer), at most `tries` more times; the last outcome.
 */
export async function flushedBack(flush: () => Promise<unknown>, tries = 100): Promise<string> {
  let back = await outcome(flush());
  for (let i = 0; i < tries && back === "rejected backend-error"; i++) back = await outcome(flush());
  return back;
}
