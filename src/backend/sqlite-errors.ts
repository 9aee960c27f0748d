/**
 * How SQLite failures become typed errors: busy means another connection held SQLite's lock past the short busy
 * timeout (a retry may succeed: store-busy; the store lock's own refusal is store-locked, from lock.ts); a full disk,
 * a read-only mount or a permission problem is named by its OS cause, whatever SQLite's own words. Shared by the
 * SQLite backend and the store lock (itself a small SQLite file). Layer 1.
 */
import { StorageError, asStorageError } from "../errors.js";
import { diagnoseOsCause } from "./os-cause.js";

/** Who holds a store. `process` identifies one run of one process (a reused pid is another process). */
export interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly process: string;
  /** ISO time the holder took the lock. */
  readonly since: string;
}

/** True for SQLITE_BUSY and its extended codes: another connection holds the lock. */
export function isSqliteBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_BUSY");
}

export function storeLockedError(path: string, owner: LockOwner | undefined, cause?: unknown): StorageError {
  const who =
    owner === undefined
      ? "another process"
      : `process ${owner.pid} on host ${JSON.stringify(owner.host)} (holding it since ${owner.since})`;
  return new StorageError(
    "store-locked",
    `store ${path} is locked by ${who}: one process writes a store at a time; open it read-only to read it meanwhile`,
    { path, ...(owner ? { pid: owner.pid, host: owner.host, since: owner.since } : {}) },
    cause,
  );
}

/**
 * SQLITE_BUSY on a statement: another connection (a program holding a transaction on the file, another handle of this
 * process) kept SQLite's lock past the busy timeout. Not the store lock (a holder keeps that for its life): the lock
 * comes and goes, so it is store-busy, which callers retry (a tier's flush backs off; a follower polls again).
 */
export function storeBusyError(path: string, context: string, busyTimeoutMs: number, cause: unknown): StorageError {
  return new StorageError(
    "store-busy",
    `${context}: another connection held the database's lock for more than ${busyTimeoutMs} ms (SQLite busy); nothing was changed, try again`,
    { path, sqliteCode: errorCode(cause) ?? "SQLITE_BUSY" },
    cause,
  );
}

/** How long a SQLite statement of ours waits for another connection's lock before failing store-busy (design §3.12). */
export const SQLITE_BUSY_TIMEOUT_MS = 50;

export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** SQLite codes behind which an OS condition (full disk, read-only mount, permissions) may hide. */
const OS_SHAPED = /^SQLITE_(FULL|CANTOPEN|READONLY|IOERR|PERM)/;

/** SQLite's word that the file is damaged, or no database at all: no retry of a write can succeed. */
const DAMAGED = /^SQLITE_(CORRUPT|NOTADB)/;

/**
 * sqliteError for a write (a put, delete or batch of an open store): a database SQLite finds damaged or not a database
 * (SQLITE_CORRUPT and its extended codes, SQLITE_NOTADB: overwritten under the handle, a bad disk) takes no write
 * for good, so it is StorageError("corrupt-store") (`reason: "damaged"`), which a wait for room ends on (write-verdict
 * .ts), where backend-error is a passing failure that it waits through (review r265 F5). An open keeps backend-error
 * with the code (api.md: a path holding garbage), as a read does.
 */
export function sqliteWriteError(err: unknown, context: string, path: string): Error {
  const code = errorCode(err);
  if (code === undefined || !DAMAGED.test(code) || err instanceof StorageError) return sqliteError(err, context, path);
  const message = err instanceof Error ? err.message : String(err);
  return new StorageError("corrupt-store", `${context}: ${message}`, { path, sqliteCode: code, reason: "damaged" }, err);
}

export function sqliteError(err: unknown, context: string, path: string): Error {
  if (isSqliteBusy(err)) return storeBusyError(path, context, SQLITE_BUSY_TIMEOUT_MS, err);
  const code = errorCode(err);
  // A SQLite code is no errno: asStorageError would put it in details.osCode. An OS error met on the way (creating
  // the directory) keeps its errno there, and is no SQLite code.
  const sqliteCode = code?.startsWith("SQLITE_") === true ? code : undefined;
  const cause =
    sqliteCode !== undefined && OS_SHAPED.test(sqliteCode) && path !== "" && path !== ":memory:" ? diagnoseOsCause(path) : undefined;
  const message = err instanceof Error ? err.message : String(err);
  if (cause === undefined) {
    if (sqliteCode === undefined || err instanceof StorageError) return asStorageError(err, context, { path });
    return new StorageError("backend-error", `${context}: ${message}`, { path, sqliteCode }, err);
  }
  return new StorageError(
    "backend-error",
    `${context}: ${cause.osCode} (${cause.meaning}); SQLite said: ${message}`,
    { path, sqliteCode, osCode: cause.osCode },
    err,
  );
}
