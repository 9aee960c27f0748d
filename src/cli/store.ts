/**
 * Opening a store from a path: SQLite file or file-backend directory, detected from the path or forced with
 * `--backend`; or a store in a PostgreSQL database, named by a URL `postgres://user@host/db?store=NAME` (optional
 * `&schema=` and `&table=`). Read commands open stores read-only, without the lock, so they work on a live store:
 * SQLite and PostgreSQL at one point in time from the command's first read to its last (SQLite: the read transaction
 * begun at the open, which the reader's readConsistent joins and leaves open; PostgreSQL: the whole command inside
 * the handle's readConsistent, whose REPEATABLE READ transaction the reader's calls nest into; a PostgreSQL read-only
 * handle takes no lease), so a command that reads a graph twice (verify) reads one state twice. File stores have no
 * point in time: the stored-graph reader starts each read over when a compaction moves the baseline, so each read
 * of a graph is a state the writer had, but two reads (two passes, two graphs) may be two states. Other commands
 * take the store like any writer (the lock, or the PostgreSQL lease).
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { fileBackend, type FileBackend } from "../backend/file.js";
import { decodeFileNameToKey, FILE_SUFFIX } from "../backend/file-names.js";
import { LOCK_FILE_NAME } from "../backend/lock.js";
import { postgresBackend, readConsistentUntimed, type PostgresBackend } from "../backend/postgres.js";
import { redact } from "../backend/postgres-errors.js";
import { sqliteBackend, type SqliteBackend } from "../backend/sqlite.js";
import { assertOneMeaning } from "../backend/real-path.js";
import { asStorageError } from "../errors.js";
import { CliError } from "./errors.js";
import { openSqliteReader, sideFileRefusal } from "./read-copy.js";

export type StoreKind = "sqlite" | "file" | "postgres";

/** "read": must exist, never modified; "modify": must exist; "create": may be created (import, stats). */
export type OpenMode = "read" | "modify" | "create";
/** Stores named by a path; `--backend` chooses between them. A PostgreSQL store is named by its URL. */
export type PathStoreKind = Exclude<StoreKind, "postgres">;
export const STORE_KINDS: readonly PathStoreKind[] = ["sqlite", "file"];

export type CliBackend = SqliteBackend | FileBackend | PostgresBackend;

export interface OpenedStore {
  readonly kind: StoreKind;
  /** What output names the store by: the absolute path, or the PostgreSQL server and store without the password. */
  readonly path: string;
  readonly backend: CliBackend;
  close(): void | Promise<void>;
  /** An error met reading the store, naming the store where it named the private copy read instead (read-copy.ts). */
  named?(err: unknown): unknown;
}

export interface OpenStoreOptions {
  /** Forced kind (`--backend`); otherwise detected. */
  readonly kind?: PathStoreKind;
  readonly mode: OpenMode;
  /** A read before this command writes into the store (stats): no private copy of a store this user cannot write. */
  readonly writesAfter?: string;
}

const SQLITE_SUFFIX = /\.(db|sqlite|sqlite3)$/i;

export function detectStoreKind(path: string, forced: PathStoreKind | undefined, mode: OpenMode): PathStoreKind {
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
  if (kind === "file" && mode !== "create" && !looksLikeFileStore(path)) {
    // `verify /etc` (or an empty directory, or one named x.db) said "no graphs; result: clean (exit 0)": a
    // verdict on a store that is not there (review r309 F5). compact would have made it one.
    throw new CliError("store-not-found", `${path} is not a store: a directory with no store lock file (${LOCK_FILE_NAME}) and no stored keys`);
  }
  return kind;
}

/**
 * Whether directory `dir` is a file-backend store: it holds the lock file every writer of this package makes at open
 * (and leaves: an empty store keeps it), or a file named as a stored key (a store another implementation wrote).
 * A directory that cannot be listed is left to the backend, which says why.
 */
function looksLikeFileStore(dir: string): boolean {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return true;
  }
  return names.some((n) => n === LOCK_FILE_NAME || ((n === FILE_SUFFIX || !n.startsWith(".")) && decodeFileNameToKey(n) !== undefined));
}

const POSTGRES_URL = /^postgres(ql)?:\/\//i;

/** True when a store argument names a PostgreSQL store (a `postgres://` or `postgresql://` URL). */
export function isPostgresStore(arg: string): boolean {
  return POSTGRES_URL.test(arg);
}

export interface PostgresTarget {
  /** The connection URL, without the store options. */
  readonly url: string;
  readonly store: string;
  readonly schema: string | undefined;
  readonly table: string | undefined;
}

/** Splits `postgres://…?store=NAME[&schema=S][&table=T]` into the connection URL and the store's options. */
export function postgresTarget(arg: string): PostgresTarget {
  let url: URL;
  try {
    url = new URL(arg);
  } catch {
    // Not repeated: it may hold a password.
    throw new CliError("usage", "the PostgreSQL store URL does not parse (percent-encode special characters)");
  }
  const store = url.searchParams.get("store");
  if (store === null || store === "") throw new CliError("usage", "a PostgreSQL store URL names its store: postgres://…?store=NAME");
  const schema = url.searchParams.get("schema") ?? undefined;
  const table = url.searchParams.get("table") ?? undefined;
  for (const option of ["store", "schema", "table"]) url.searchParams.delete(option);
  return { url: url.href, store, schema, table };
}

/** Removes the passwords of PostgreSQL URLs among `args` from `text` (the CLI's last guard on what it prints). */
export function hidePasswords(text: string, args: readonly string[]): string {
  const secrets: string[] = [];
  for (const arg of args) {
    if (!isPostgresStore(arg)) continue;
    try {
      const url = new URL(arg);
      for (const s of [url.password, url.searchParams.get("password") ?? ""]) if (s !== "") secrets.push(s, decodeURIComponent(s));
    } catch {
      secrets.push(arg); // unparsable: nothing of it is safe to show
    }
  }
  return redact(text, secrets);
}

async function openPostgresStore(arg: string, opts: OpenStoreOptions): Promise<OpenedStore> {
  const { url, store, schema, table } = postgresTarget(arg);
  const backend = await postgresBackend({ url, store, schema, table, readOnly: opts.mode === "read" });
  return { kind: "postgres", path: backend.name, backend, close: () => backend.close() };
}

/**
 * A SQLite or file store argument as the absolute path the CLI names and opens it by. `<d>/link/../x` is refused as
 * the library refuses it (design §3.12): resolve() would name another store than the kernel's, the one an inline
 * SQLite handle of the same argument opens. Every command takes a store path through here (openStore, stats, export).
 */
export function localStorePath(path: string): string {
  assertOneMeaning(path, "store path");
  return resolve(path);
}

export async function openStore(path: string, opts: OpenStoreOptions): Promise<OpenedStore> {
  if (isPostgresStore(path)) return openPostgresStore(path, opts);
  const abs = localStorePath(path);
  const kind = detectStoreKind(abs, opts.kind, opts.mode);
  if (kind === "file") {
    // Read commands take no lock, so they work on the live store of a running writer (every write is a rename).
    const backend = fileBackend(abs, opts.mode === "read" ? { readOnly: true } : {});
    return { kind, path: abs, backend, close: () => backend.close() };
  }
  // A store this user cannot write to may be read from a private copy (read-copy.ts), removed at close.
  const { backend, copy } =
    opts.mode === "read" ? await openSqliteReader(abs, opts.writesAfter === undefined ? {} : { writes: opts.writesAfter }) : { backend: sqliteBackend(abs), copy: undefined };
  // The command's one point in time, to its close: the reader's readConsistent joins it and never ends it.
  if (opts.mode === "read") backend.db.exec("BEGIN");
  return {
    kind,
    path: abs,
    backend,
    close: () => {
      try {
        if (backend.db.inTransaction) backend.db.exec("COMMIT");
        backend.close();
      } finally {
        copy?.remove();
      }
    },
    ...(copy === undefined ? {} : { named: (err: unknown) => copy.named(err) }),
  };
}

/** Runs `body` with the store open and always closes it. */
export async function withStore<T>(path: string, opts: OpenStoreOptions, body: (store: OpenedStore) => Promise<T> | T): Promise<T> {
  let store: OpenedStore | undefined;
  try {
    store = await openStore(path, opts);
    const opened = store;
    try {
      // A SQLite store's point in time is its open's read transaction (openStore); a PostgreSQL store's is this one.
      const pg = opts.mode === "read" && opened.kind === "postgres" ? (opened.backend as PostgresBackend) : undefined;
      // Untimed: a command paused by its consumer (a slow pipe, a stopped terminal) is not ended by the server.
      return await (pg === undefined ? body(opened) : readConsistentUntimed(pg, async () => body(opened)));
    } finally {
      await store.close();
    }
  } catch (err) {
    const named = store?.named?.(err) ?? err;
    // A side file put there after the open is refused at the next read as at the open (review r353: it said corrupt-store).
    throw typedDriverError(opts.mode === "read" ? sideFileRefusal(named) : named, store?.path ?? path);
  }
}

/**
 * The SQLite driver's own error (better-sqlite3's SqliteError: `SQLITE_CORRUPT` on a damaged page, met by a read
 * no backend method wraps, as the corrupt-row scan) as StorageError `backend-error`, the cause kept: verify, inspect
 * and frames printed `error SQLITE_CORRUPT` where export printed `backend-error` for the same store (review r309 F8).
 */
function typedDriverError(err: unknown, where: string): unknown {
  const driver = err instanceof Error && err.name === "SqliteError" && typeof (err as { code?: unknown }).code === "string";
  return driver ? asStorageError(err, `sqlite read failed (${where})`, { path: where }) : err;
}
