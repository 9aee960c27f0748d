/**
 * Opening a store from a path: SQLite file or file-backend directory, detected from the path or forced with
 * `--backend`. Read commands open stores read-only, without the lock, so they work on a live store: SQLite inside
 * one read transaction (one point in time), file stores through the stored-graph reader (which starts over when a
 * compaction moves the baseline). Other commands take the store lock like any writer.
 */
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { fileBackend, type FileBackend } from "../backend/file.js";
import { sqliteBackend, type SqliteBackend } from "../backend/sqlite.js";
import { CliError } from "./errors.js";

export type StoreKind = "sqlite" | "file";

/** "read": must exist, never modified; "modify": must exist; "create": may be created (import, stats). */
export type OpenMode = "read" | "modify" | "create";
export const STORE_KINDS: readonly StoreKind[] = ["sqlite", "file"];

/** The synchronous surface both store kinds share. */
export type CliBackend = SqliteBackend | FileBackend;

export interface OpenedStore {
  readonly kind: StoreKind;
  /** Absolute path. */
  readonly path: string;
  readonly backend: CliBackend;
  close(): void;
}

export interface OpenStoreOptions {
  /** Forced kind (`--backend`); otherwise detected. */
  readonly kind?: StoreKind;
  readonly mode: OpenMode;
}

const SQLITE_SUFFIX = /\.(db|sqlite|sqlite3)$/i;

export function detectStoreKind(path: string, forced: StoreKind | undefined, mode: OpenMode): StoreKind {
  if (!existsSync(path)) {
    if (mode !== "create") throw new CliError("store-not-found", `${path} does not exist`);
    if (forced !== undefined) return forced;
    if (SQLITE_SUFFIX.test(path)) return "sqlite";
    throw new CliError("usage", `cannot tell which kind of store ${path} should be: pass --backend sqlite|file`);
  }
  const isDir = statSync(path).isDirectory();
  const kind = forced ?? (isDir ? "file" : "sqlite");
  if (kind === "file" && !isDir) throw new CliError("usage", `${path} is a file, not a file-backend directory`);
  if (kind === "sqlite" && isDir) throw new CliError("usage", `${path} is a directory, not a SQLite file`);
  return kind;
}

export function openStore(path: string, opts: OpenStoreOptions): OpenedStore {
  const abs = resolve(path);
  const kind = detectStoreKind(abs, opts.kind, opts.mode);
  if (kind === "file") {
    // Read commands take no lock, so they work on the live store of a running writer (every write is a rename).
    const backend = fileBackend(abs, opts.mode === "read" ? { readOnly: true } : {});
    return { kind, path: abs, backend, close: () => backend.close() };
  }
  const backend = sqliteBackend(abs, opts.mode === "read" ? { readOnly: true } : {});
  if (opts.mode === "read") backend.db.exec("BEGIN");
  return {
    kind,
    path: abs,
    backend,
    close: () => {
      if (backend.db.inTransaction) backend.db.exec("COMMIT");
      backend.close();
    },
  };
}

/** Runs `body` with the store open and always closes it. */
export async function withStore<T>(path: string, opts: OpenStoreOptions, body: (store: OpenedStore) => Promise<T> | T): Promise<T> {
  const store = openStore(path, opts);
  try {
    return await body(store);
  } finally {
    store.close();
  }
}
