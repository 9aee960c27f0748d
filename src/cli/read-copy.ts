/**
 * Reading a SQLite store the user cannot write to (another user's store, a read-only mount, a backup on read-only
 * media). A reader of a WAL-mode database needs its -shm file: when there is none and it cannot be created (the
 * directory is not writable), SQLite cannot read at all, and this build of better-sqlite3 takes no URI filenames
 * (`?immutable=1` would be part of the name). Such a store is read from a private copy of the database file and its
 * -wal (and a -journal), in a temp directory removed afterwards. The copy is one point in time:
 * - no -shm when checked: no connection had the store open then (every WAL connection opens it, and the last one to
 *   close removes it);
 * - a writer may start during the copy: every file is read twice, before and after all were copied, and the copy is
 *   kept only when both reads of every file are byte-identical (and the same files exist). Timestamps cannot tell it:
 *   they move by the kernel's clock tick, and a page rewritten within one keeps the file's size and times.
 * Each file is opened without following a symbolic link and must be a regular file, read up to the size it had when
 * opened (a -wal linked to /dev/zero filled the temp directory). A -shm that exists but cannot be read is a store a
 * writer may have open: refused (`store-unreadable`), as is a copy that changed three times in a row or does not fit
 * in the temp directory.
 * The copy's directory is named after this host and process: a run killed before it removed its copy (kill -9) left
 * it for good, as big as the store; each copy first removes this user's copies whose process is gone.
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  fstatSync,
  lstatSync,
  mkdtempSync,
  openSync,
  read,
  readdirSync,
  rmSync,
  statfsSync,
  writeSync,
  type Stats,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { promisify } from "node:util";
import { realFilePath } from "../backend/real-path.js";
import { readOnlySqliteBackend, sqliteBackend, type SqliteBackend } from "../backend/sqlite.js";
import { isSideFileRefusal } from "../backend/sqlite-side-files.js";
import { StorageError, type ErrorDetails } from "../errors.js";
import { CliError } from "./errors.js";
import { processAlive, tempPrefix } from "./out-file.js";
import { formatBytes, printNote } from "./output.js";

/** The files of a store copied, after the database file's name (SQLite names its side files so). */
const COPIED_SUFFIXES = ["", "-wal", "-journal"] as const;
/** Attempts before a store that changes under every copy is refused. */
const COPY_ATTEMPTS = 3;
/** Room left free in the temp directory beyond the copy (SQLite's -shm of the copy). */
const TEMP_MARGIN = 1 << 20;
const CHUNK = 1 << 20;
/** The name the copies' directories start from (then host, pid and mkdtemp's six characters). */
const COPY_NAME = "graphrefly-storage-read";

const readAsync = promisify(read);

/** Why a read-only open failed, when it is this module's case: "copy" or the refusal; undefined otherwise. */
function unsharedReason(path: string, err: unknown): "copy" | CliError | undefined {
  if (!(err instanceof StorageError) || err.code !== "backend-error") return undefined;
  const sqliteCode = err.details.sqliteCode;
  // IOERR_DELETE: a user who may write the database file but not its directory rolled a hot -journal back and could
  // not delete it (review r336 F2).
  if (typeof sqliteCode !== "string" || !/^SQLITE_(CANTOPEN|READONLY|IOERR_DELETE)/.test(sqliteCode)) return undefined;
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
  /** `err` (a StorageError naming the copy's files) naming the store's instead: the copy is gone once reported. */
  named(err: unknown): unknown;
}

export interface ReaderOptions {
  /**
   * The command that then writes into the store (`stats`): a store only a copy could be read from is refused at
   * once, not copied whole to fail the write after.
   */
  readonly writes?: string;
}

/**
 * A read-only handle of the SQLite store at `path`: the store itself when SQLite can read it in place, else a private
 * copy (see above) opened read-only (read-write, query-only, when a -journal must be rolled back in it), whose `remove`
 * the caller calls after closing the handle. A note on stderr says a copy is read. A store that changed under each of
 * three copies, when it can still not be read in place, is `store-unreadable`.
 */
export async function openSqliteReader(path: string, opts: ReaderOptions = {}): Promise<{ backend: SqliteBackend; copy: PrivateCopy | undefined }> {
  try {
    return await openReader(path, opts);
  } finally {
    if (signalsHeard) {
      // A signal that came during the copy is handled here (its listener runs only when the event loop polls: the read
      // after is synchronous and would run whole first); then a signal kills at once, as during an in-place read, and
      // the next copy's removeDeadCopies removes what it leaves (review r336 F1). Two immediates: one alone may run in
      // the check phase right after the poll that resumed this function, before the loop polls (reads the signal).
      await new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
      stopSignals();
    }
  }
}

async function openReader(path: string, opts: ReaderOptions): Promise<{ backend: SqliteBackend; copy: PrivateCopy | undefined }> {
  for (let attempt = 1; ; attempt++) {
    let err: unknown;
    try {
      return { backend: sqliteBackend(path, { readOnly: true }), copy: undefined };
    } catch (e) {
      err = sideFileRefusal(e);
      if (err instanceof CliError) throw err;
    }
    const reason = unsharedReason(path, err);
    if (reason === undefined) throw err;
    if (reason !== "copy") throw reason;
    if (opts.writes !== undefined) {
      throw new CliError(
        "store-unreadable",
        `${path} cannot be written by this user (${opts.writes} writes into the store, and SQLite cannot even create the -shm file it needs beside it: a read-only directory or file system); run as a user who can write its directory`,
      );
    }
    const copy = await copyOnce(path, realFilePath(path));
    if (copy !== undefined) {
      try {
        // Read-only: a read-write connection's close checkpointed the copy's -wal into it (writes, temp space). But a
        // -journal copied is hot (no connection had the store open): SQLite reads only after rolling it back, which a
        // read-only connection cannot; that writes the private copy alone (a -journal naming a super-journal is refused
        // by the open first, as in place: its rollback would delete that file, wherever it is, r342 F1), within the
        // room counted for it (r336 F2).
        const journal = copy.files.some((f) => f.endsWith("-journal"));
        const backend = journal ? sqliteBackend(copy.path, { readOnly: true }) : readOnlySqliteBackend(copy.path);
        const why = journal
          ? "cannot roll back its -journal as SQLite must to read it in place"
          : "cannot create the -shm file SQLite needs to read it in place";
        printNote(
          `note: ${path}: this user ${why} (a read-only directory or file system): reading a private copy of ${copy.files.join(", ")} (${formatBytes(copy.bytes)}; no -shm when checked, every file read twice with the same bytes) in ${dirname(copy.path)}, removed afterwards`,
        );
        return { backend, copy };
      } catch (e) {
        copy.remove();
        throw sideFileRefusal(copy.named(e));
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

/**
 * A refusal of the store's side files by the backend (sqlite-side-files.ts: a -journal naming a super-journal, whose
 * rollback would delete that file as this user; a -journal, -wal or -shm that is not a regular file, which SQLite's
 * open would block on) as a read command says it: `store-unreadable`, whether at the open or at a read after it (the
 * read-only handle looks again before each). Any other error as it is.
 */
export function sideFileRefusal(err: unknown): unknown {
  return isSideFileRefusal(err) ? new CliError("store-unreadable", err.message) : err;
}

/** A store file opened for one read: its descriptor and what fstat said then. */
interface Source {
  readonly file: string;
  readonly fd: number;
  readonly st: Stats;
}

/** One copy, or undefined when a file changed meanwhile (the copy is removed). */
async function copyOnce(path: string, real: string): Promise<PrivateCopy | undefined> {
  let sources: Source[] = [];
  let dir: string | undefined;
  try {
    sources = openSources(path, real);
    const bytes = sources.reduce((n, s) => n + s.st.size, 0);
    removeDeadCopies(); // first: a dead run's copy may be what fills the temp directory (review r336 F3)
    assertRoom(path, bytes);
    dir = makeCopyDir(path);
    const first: string[] = [];
    for (const s of sources) first.push(await copyFile(path, s, join(dir, basename(s.file))));
    closeAll(sources);
    // Again, after every file was copied: any write between the two reads of a file shows. A file gone meanwhile (a
    // writer's close removes the -wal) is a change too.
    sources = openSources(path, real);
    const names = sources.map((s) => s.file);
    let same = names.length === first.length;
    for (let i = 0; same && i < sources.length; i++) same = (await readSource(path, sources[i]!, () => undefined)) === first[i];
    if (same) {
      const copyDir = dir;
      const copyPath = join(copyDir, basename(real));
      return {
        path: copyPath,
        files: names.map((f) => basename(f)),
        bytes,
        remove: () => removeCopy(copyDir),
        named: (err) => namingStore(err, copyPath, path),
      };
    }
  } catch (err) {
    if (dir !== undefined) removeCopy(dir);
    if (!(err instanceof Changed)) throw err;
    return undefined;
  } finally {
    closeAll(sources);
  }
  removeCopy(dir);
  return undefined;
}

/**
 * The store's files there now, each opened without following a symbolic link and without blocking (a FIFO), and
 * checked to be a regular file: anything else is `store-unreadable`. A file gone is left out (the caller compares).
 */
function openSources(path: string, real: string): Source[] {
  const out: Source[] = [];
  try {
    for (const suffix of COPIED_SUFFIXES) {
      const file = real + suffix;
      let fd: number;
      try {
        fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? "error";
        if (code === "ENOENT") continue;
        const why = code === "ELOOP" ? "is a symbolic link" : `cannot be read: ${code}`;
        throw new CliError("store-unreadable", `${copyOnly(path)}, and ${basename(file)} ${why}`);
      }
      const st = fstatSync(fd);
      out.push({ file, fd, st });
      if (!st.isFile()) throw new CliError("store-unreadable", `${copyOnly(path)}, and ${basename(file)} is not a regular file`);
    }
    return out;
  } catch (err) {
    closeAll(out);
    throw err;
  }
}

function closeAll(sources: readonly Source[]): void {
  for (const s of sources) {
    try {
      closeSync(s.fd);
    } catch {
      // closed already
    }
  }
  (sources as Source[]).length = 0;
}

function copyOnly(path: string): string {
  return `${path} can only be read from a copy (this user cannot create the -shm file SQLite needs beside it)`;
}

function assertRoom(path: string, bytes: number): void {
  let free: number;
  try {
    const fs = statfsSync(tmpdir());
    free = fs.bavail * fs.bsize;
  } catch {
    return; // not told: the copy's own write says so if it comes to that
  }
  if (free < bytes + TEMP_MARGIN) {
    throw new CliError(
      "store-unreadable",
      `${copyOnly(path)}, and the copy (${formatBytes(bytes)}) does not fit in ${tmpdir()} (${formatBytes(free)} free): set TMPDIR to a directory with room`,
    );
  }
}

/** A write into the temp directory failed (ENOSPC past the room check, EDQUOT, EFBIG under a file size limit). */
function tempFailure(path: string, err: unknown): CliError {
  const code = (err as NodeJS.ErrnoException).code ?? "error";
  return new CliError("store-unreadable", `${copyOnly(path)}, and the copy could not be written in ${tmpdir()} (${code}): set TMPDIR to a directory with room`);
}

/** A file changed while it was read (grew, shrank, went): the copy starts over. */
class Changed extends Error {}

/** Copies `from` to `to`, returning the SHA-256 of what was read. */
async function copyFile(path: string, from: Source, to: string): Promise<string> {
  let out: number;
  try {
    out = openSync(to, "wx", 0o600);
  } catch (err) {
    throw tempFailure(path, err);
  }
  try {
    return await readSource(path, from, (chunk) => {
      try {
        for (let off = 0; off < chunk.length; ) off += writeSync(out, chunk, off);
      } catch (err) {
        throw tempFailure(path, err);
      }
    });
  } finally {
    closeSync(out);
  }
}

/**
 * Reads `source` up to the size fstat gave when it was opened (a file that grew past it, or ends before it, is
 * Changed), each chunk given to `each`; returns the SHA-256 of the bytes. Asynchronous: a signal is handled between
 * chunks, not once the whole store is copied.
 */
async function readSource(path: string, source: Source, each: (chunk: Buffer) => void): Promise<string> {
  const hash = createHash("sha256");
  const buf = Buffer.allocUnsafe(CHUNK);
  const size = source.st.size;
  for (let at = 0; ; ) {
    let n: number;
    try {
      n = (await readAsync(source.fd, buf, 0, Math.min(CHUNK, Math.max(size - at, 1)), at)).bytesRead;
    } catch (err) {
      throw new CliError("store-unreadable", `${copyOnly(path)}, and ${basename(source.file)} cannot be read: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
    }
    if (at === size) {
      if (n > 0) throw new Changed(); // grew since it was opened
      return hash.digest("hex");
    }
    if (n === 0) throw new Changed(); // ends before its size
    const chunk = buf.subarray(0, n);
    hash.update(chunk);
    each(chunk);
    at += n;
  }
}

/** The start of this host's copy directories' names; with `pid`, that process's. */
function copyPrefix(pid: number): string {
  return tempPrefix(COPY_NAME, pid).slice(1); // not hidden: a user looking at TMPDIR sees what it is
}

function makeCopyDir(path: string): string {
  let dir: string;
  try {
    dir = mkdtempSync(join(tmpdir(), copyPrefix(process.pid)));
  } catch (err) {
    throw tempFailure(path, err);
  }
  track(dir);
  return dir;
}

/**
 * Removes this user's copy directories in the temp directory whose process (of this host) is gone: a run killed
 * before it removed its copy. A live pid's is left alone, as are another host's and another user's. Best effort.
 * The pid check assumes one pid namespace per host name (as out-file.ts's tempPrefix does): containers sharing a
 * host name and a temp directory, each with its own pids, could remove each other's live copies.
 */
function removeDeadCopies(): void {
  const start = copyPrefix(0).slice(0, -"0-".length);
  const uid = process.getuid?.();
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return; // the copy's own mkdtemp says why the directory is unusable
  }
  for (const name of names) {
    if (!name.startsWith(start)) continue;
    const match = /^(\d+)-[A-Za-z0-9]{6}$/.exec(name.slice(start.length));
    if (match === null || processAlive(Number(match[1]))) continue;
    const dir = join(tmpdir(), name);
    try {
      const st = lstatSync(dir);
      if (st.isDirectory() && (uid === undefined || st.uid === uid)) rmSync(dir, { recursive: true, force: true });
    } catch {
      // gone already (another run removed it) or not ours to remove
    }
  }
}

/**
 * The copies this process made and has not removed: removed on exit (`| head` ends the CLI with process.exit, past
 * every finally) and, while openSqliteReader runs, on SIGINT / SIGTERM / SIGHUP, after which the signal is raised
 * again (the process ends with its status). The signal listeners are removed only once openSqliteReader let the event
 * loop turn (a signal that came before was handled); a signal later kills at once, and a copy it (or a kill -9) leaves
 * is the next copy's removeDeadCopies'.
 */
const live = new Set<string>();
const SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
let exitHeard = false;
let signalsHeard = false;

function track(dir: string): void {
  live.add(dir);
  if (!exitHeard) {
    exitHeard = true;
    process.on("exit", removeLive);
  }
  if (signalsHeard) return;
  signalsHeard = true;
  for (const s of SIGNALS) process.on(s, onSignal);
}

function stopSignals(): void {
  signalsHeard = false;
  for (const s of SIGNALS) process.off(s, onSignal);
}

function onSignal(signal: NodeJS.Signals): void {
  removeLive();
  stopSignals();
  process.kill(process.pid, signal);
}

function removeLive(): void {
  for (const dir of [...live]) removeCopy(dir);
}

function removeCopy(dir: string | undefined): void {
  if (dir === undefined || !live.delete(dir)) return;
  rmSync(dir, { recursive: true, force: true });
}

/** `err` with `copyPath` (and its side files) named as the store's `path`, in its message and details. */
function namingStore(err: unknown, copyPath: string, path: string): unknown {
  if (!(err instanceof StorageError)) return err;
  const swap = (s: string): string => s.replaceAll(copyPath, path);
  if (!err.message.includes(copyPath) && !Object.values(err.details).some((v) => typeof v === "string" && v.includes(copyPath))) return err;
  const details: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(err.details)) details[k] = typeof v === "string" ? swap(v) : v;
  const named = new StorageError(err.code, swap(err.message), details as ErrorDetails, err.cause);
  return named;
}
