/**
 * Reading a SQLite store the user cannot write to (another user's store, a read-only mount, a backup on read-only
 * media). A reader of a WAL-mode database needs its -shm file: when there is none and it cannot be created (the
 * directory is not writable), SQLite cannot read at all, and this build of better-sqlite3 takes no URI filenames
 * (`?immutable=1` would be part of the name). Such a store is read from a private copy of the database file and its
 * -wal (and a -journal), in a temp directory removed afterwards. The copy is one point in time:
 * - no -shm means no connection has the store open (every WAL connection opens it, and the last one to close removes
 *   it), so at the start no writer is live;
 * - a writer may start during the copy: every file is read twice, before and after all were copied, and the copy is
 *   kept only when both reads of every file are byte-identical (and the same files exist). Timestamps cannot tell it:
 *   they move by the kernel's clock tick, and a page rewritten within one keeps the file's size and times.
 * A -shm that exists but cannot be read is a store a writer may have open: refused (`store-unreadable`), as is a copy
 * that changed three times in a row or does not fit in the temp directory.
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { accessSync, closeSync, constants, existsSync, mkdtempSync, openSync, readSync, rmSync, statfsSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { realFilePath } from "../backend/real-path.js";
import { sqliteBackend, type SqliteBackend } from "../backend/sqlite.js";
import { StorageError } from "../errors.js";
import { CliError } from "./errors.js";
import { formatBytes, printNote } from "./output.js";

/** The files of a store copied, after the database file's name (SQLite names its side files so). */
const COPIED_SUFFIXES = ["", "-wal", "-journal"] as const;
/** Attempts before a store that changes under every copy is refused. */
const COPY_ATTEMPTS = 3;
/** Room left free in the temp directory beyond the copy (SQLite's -shm of the copy, its checkpoint). */
const TEMP_MARGIN = 1 << 20;
const CHUNK = 1 << 20;

/** Why a read-only open failed, when it is this module's case: "copy" or the refusal; undefined otherwise. */
function unsharedReason(path: string, err: unknown): "copy" | CliError | undefined {
  if (!(err instanceof StorageError) || err.code !== "backend-error") return undefined;
  const sqliteCode = err.details.sqliteCode;
  if (typeof sqliteCode !== "string" || !/^SQLITE_(CANTOPEN|READONLY)/.test(sqliteCode)) return undefined;
  let real: string;
  try {
    real = realFilePath(path);
    accessSync(real, constants.R_OK);
  } catch {
    return undefined; // the database file itself cannot be read: the open's own error says so
  }
  const shm = `${real}-shm`;
  if (existsSync(shm)) {
    if (readable(shm)) return undefined; // SQLite reads through a -shm it may only read: another failure
    return new CliError(
      "store-unreadable",
      `${path} cannot be read by this user: its -shm file exists but is not readable (a writer may have the store open, and SQLite needs that file to read it); run as a user who can read ${basename(shm)}, or copy the store while no writer has it open`,
    );
  }
  // No -shm: SQLite must create it, and could not. Only an unwritable directory is this case.
  return canCreateIn(dirname(real)) ? undefined : "copy";
}

function readable(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

function canCreateIn(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface PrivateCopy {
  /** The copy's database file (same base name as the store's). */
  readonly path: string;
  /** The files copied (the database file's name, and its -wal / -journal when they were there). */
  readonly files: readonly string[];
  readonly bytes: number;
  remove(): void;
}

/**
 * A read-only handle of the SQLite store at `path`: the store itself when SQLite can read it in place, else a private
 * copy (see above), whose `remove` the caller calls after closing the handle. A note on stderr says a copy is read.
 * A store that changed under each of three copies, when it can still not be read in place, is `store-unreadable`.
 */
export function openSqliteReader(path: string): { backend: SqliteBackend; copy: PrivateCopy | undefined } {
  for (let attempt = 1; ; attempt++) {
    let err: unknown;
    try {
      return { backend: sqliteBackend(path, { readOnly: true }), copy: undefined };
    } catch (e) {
      err = e;
    }
    const reason = unsharedReason(path, err);
    if (reason === undefined) throw err;
    if (reason !== "copy") throw reason;
    const copy = copyOnce(path, realFilePath(path));
    if (copy !== undefined) {
      try {
        const backend = sqliteBackend(copy.path, { readOnly: true });
        printNote(
          `note: ${path}: this user cannot create the -shm file SQLite needs to read it in place (a read-only directory or file system): reading a private copy of ${copy.files.join(", ")} (${formatBytes(copy.bytes)}; nothing had the store open, nothing changed during the copy) in ${dirname(copy.path)}, removed afterwards`,
        );
        return { backend, copy };
      } catch (e) {
        copy.remove();
        throw e;
      }
    }
    // A writer started during the copy: it may now have a -shm SQLite can read through, so the store is tried again.
    if (attempt === COPY_ATTEMPTS) {
      throw new CliError(
        "store-unreadable",
        `${path} changed while it was being copied, ${COPY_ATTEMPTS} times (a writer has it open, and this user cannot create the -shm file a reader beside it needs); try again, or run as a user who can write its directory`,
      );
    }
  }
}

/** One copy, or undefined when a file changed meanwhile (the copy is removed). */
function copyOnce(path: string, real: string): PrivateCopy | undefined {
  const sources = COPIED_SUFFIXES.map((s) => real + s).filter((f) => existsSync(f));
  const bytes = sources.reduce((n, f) => n + sizeOf(f), 0);
  assertRoom(path, bytes);
  const dir = mkdtempSync(join(tmpdir(), "graphrefly-storage-read-"));
  const remove = removeOnExit(dir);
  try {
    const first = sources.map((f) => copyFile(path, f, join(dir, basename(f))));
    // Again, after every file was copied: any write between the two reads of a file shows. A file gone meanwhile (a
    // writer's close removes the -wal) is a change too.
    const again = COPIED_SUFFIXES.map((s) => real + s).filter((f) => existsSync(f));
    const same = again.length === sources.length && again.every((f, i) => f === sources[i] && hashFile(path, f) === first[i]);
    if (same) return { path: join(dir, basename(real)), files: sources.map((f) => basename(f)), bytes, remove };
  } catch (err) {
    if (!(err instanceof Gone)) {
      remove();
      throw err;
    }
  }
  remove();
  return undefined;
}

/** A file's size; 0 once it is gone (the copy then finds it gone and starts over). */
function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function assertRoom(path: string, bytes: number): void {
  let free: number;
  try {
    const fs = statfsSync(tmpdir());
    free = fs.bavail * fs.bsize;
  } catch {
    return; // not told: the copy's own write says ENOSPC if it comes to that
  }
  if (free < bytes + TEMP_MARGIN) {
    throw new CliError(
      "store-unreadable",
      `${path} can only be read from a copy (this user cannot create the -shm file SQLite needs beside it), and the copy (${formatBytes(bytes)}) does not fit in ${tmpdir()} (${formatBytes(free)} free): set TMPDIR to a directory with room`,
    );
  }
}

/** A file listed for the copy was gone when read: the store changed. */
class Gone extends Error {}

/** Copies `from` to `to`, returning the SHA-256 of what was read. A file that cannot be read is `store-unreadable`. */
function copyFile(path: string, from: string, to: string): string {
  const out = openSync(to, "wx", 0o600);
  try {
    return readChunks(path, from, (chunk) => {
      for (let off = 0; off < chunk.length; ) off += writeSync(out, chunk, off);
    });
  } finally {
    closeSync(out);
  }
}

function hashFile(path: string, file: string): string {
  return readChunks(path, file, () => undefined);
}

function readChunks(path: string, file: string, each: (chunk: Buffer) => void): string {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    if (code === "ENOENT") throw new Gone();
    throw new CliError("store-unreadable", `${path} can only be read from a copy (this user cannot create the -shm file SQLite needs beside it), and ${basename(file)} cannot be read: ${code}`);
  }
  try {
    const hash = createHash("sha256");
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      const chunk = buf.subarray(0, n);
      hash.update(chunk);
      each(chunk);
    }
    return hash.digest("hex");
  } finally {
    closeSync(fd);
  }
}

/**
 * Removes `dir` now (the returned function) or when the process ends first: an exit (`| head` ends the CLI with
 * process.exit, past every finally) or SIGINT / SIGTERM / SIGHUP, after which the signal is raised again. A copy of
 * another user's data is not left in the temp directory.
 */
function removeOnExit(dir: string): () => void {
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    rmSync(dir, { recursive: true, force: true });
    process.off("exit", remove);
    for (const s of SIGNALS) process.off(s, onSignal);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    remove();
    process.kill(process.pid, signal);
  };
  process.on("exit", remove);
  for (const s of SIGNALS) process.on(s, onSignal);
  return remove;
}

const SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
