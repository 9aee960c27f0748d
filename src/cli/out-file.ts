/**
 * Output files of read commands (`export --out`): never one of the store's own files, and written whole or not at
 * all. An `--out` naming the SQLite file read (or a file inside a file-backend store) overwrote it with JSON: a read
 * command destroyed the store it was asked to read.
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import {
  closeSync,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  openSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
  type Stats,
} from "node:fs";
import { hostname } from "node:os";
import { basename, dirname, join, sep } from "node:path";
import { realFilePath } from "../backend/lock.js";
import { CliError } from "./errors.js";
import type { PathStoreKind } from "./store.js";

/** Files SQLite and the lock keep beside a database: its journals, shared memory and our writer lock. */
const SQLITE_SIDECARS = ["", "-wal", "-shm", "-journal", "-lock"];

/**
 * Throws CliError `usage` when `out` is (after every symbolic link) the store itself, one of a SQLite store's
 * sidecar files, a hard link to the database file, or anything inside a file-backend store's directory. `store` is
 * the existing store's path and `kind` its kind. An `out` whose directory does not exist is left to the write.
 */
export function assertOutsideStore(out: string, store: string, kind: PathStoreKind): void {
  let target: string;
  try {
    target = realFilePath(out);
  } catch {
    return; // its directory is missing (or unreadable): the write fails and says so
  }
  const real = realFilePath(store);
  const refuse = (what: string): never => {
    throw new CliError("usage", `--out ${out} is ${what} of the store ${store}: writing it would destroy the store; pick a file outside it`);
  };
  if (kind === "file") {
    if (target === real || target.startsWith(real.endsWith(sep) ? real : real + sep)) refuse("inside the directory");
    return;
  }
  for (const suffix of SQLITE_SIDECARS) {
    // SQLite names its journals after the name it was opened by, the lock after the real file: both are the store's.
    const names = [real + suffix, realFilePath(store + suffix)];
    if (names.includes(target)) refuse(suffix === "" ? "the database file" : `the ${suffix} file`);
  }
  if (sameFile(target, real)) refuse("a hard link to the database file");
}

/** What `path` names after every symbolic link: nothing yet, a regular file, a directory, or anything else. */
function existingKind(path: string): "none" | "file" | "directory" | "special" {
  let st: Stats;
  try {
    st = statSync(path);
  } catch {
    return "none"; // not there yet (or unreachable: the write says why)
  }
  return st.isFile() ? "file" : st.isDirectory() ? "directory" : "special";
}

function sameFile(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false; // `a` does not exist yet
  }
}

/**
 * Writes `text` to `path` through a temporary file in the same directory, fsynced, then renamed over it: a reader
 * never sees half a file and a failed write leaves the old one. A symbolic link at `path` is kept: its target is
 * what is replaced, as a plain write would have written it. An existing `path` that is not a regular file (a FIFO,
 * `/dev/stdout`, a terminal, a device) is written into, as a shell's `>` would: the rename replaced it with a
 * regular file (as root, `--out /dev/null` replaced the device node). A directory is CliError `usage`.
 * The rename replaces the path, as every whole-file write does: the new file keeps the old one's owner, group and
 * mode, but another hard link to the old file keeps the old bytes.
 */
export function writeFileWhole(path: string, text: string): void {
  const kind = existingKind(path);
  if (kind === "directory") throw new CliError("usage", `--out ${path} is a directory; name a file`);
  if (kind === "special") {
    // Nothing to keep whole: a stream or device takes the bytes as they come. Opened by the name given, so the
    // kernel resolves /dev/stdout (→ /proc/self/fd/1) as a shell would.
    writeFileSync(path, text, { flag: "w" });
    return;
  }
  const target = realFilePath(path);
  removeDeadTemps(target);
  const temp = join(dirname(target), `${tempPrefix(target, process.pid)}${Date.now().toString(36)}`);
  const old = kind === "file" ? statSync(target) : undefined;
  // Over an existing file the temp file starts private and takes the old file's owner and mode before it is
  // renamed: it got the umask's 0644, so a 0600 private export became world-readable, and a root run made a user's
  // file root's (review r309 F2).
  const fd = openSync(temp, "wx", old === undefined ? 0o666 : 0o600);
  try {
    try {
      if (old !== undefined) keepOwnerAndMode(fd, old);
      const bytes = Buffer.from(text, "utf8");
      for (let at = 0; at < bytes.byteLength; ) at += writeSync(fd, bytes, at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, target);
  } catch (err) {
    try {
      unlinkSync(temp);
    } catch {
      // already renamed or never created
    }
    throw err;
  }
}

/**
 * Gives the open temp file `fd` the owner, group and mode of the file it replaces. The owner first: a chown clears
 * set-user-ID bits, which the chmod then restores. A chown this process may not make (not root, another owner) is
 * skipped, as `cp -p` does: the file is then ours, with the old mode.
 */
function keepOwnerAndMode(fd: number, old: Stats): void {
  const now = fstatSync(fd);
  if (now.uid !== old.uid || now.gid !== old.gid) {
    try {
      fchownSync(fd, old.uid, old.gid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EPERM") throw err;
    }
  }
  fchmodSync(fd, old.mode & 0o7777);
}

/**
 * The temp file name's start for `target` written by process `pid` of this host: `.NAME.tmp-HOST-PID-`, HOST a
 * short hash of the host name (a directory shared over the network may hold another host's temps, whose pids say
 * nothing here). Exported for the tests that make a killed run's leftovers.
 */
export function tempPrefix(target: string, pid: number): string {
  const host = createHash("sha256").update(hostname()).digest("hex").slice(0, 8);
  return `.${basename(target)}.tmp-${host}-${pid}-`;
}

/**
 * Removes temp files a killed run of this host left beside `target` (review r309 F6: they stayed for good, each as
 * big as its export): those whose process is gone. A live pid's (another export running now, or a pid reused since)
 * is left alone; so are another host's and other names'. Best effort: a file that cannot be removed stays.
 */
function removeDeadTemps(target: string): void {
  const start = tempPrefix(target, 0).slice(0, -"0-".length);
  let names: string[];
  try {
    names = readdirSync(dirname(target));
  } catch {
    return; // the write says why the directory is unusable
  }
  for (const name of names) {
    if (!name.startsWith(start)) continue;
    const match = /^(\d+)-[0-9a-z]+$/.exec(name.slice(start.length));
    if (match === null || processAlive(Number(match[1]))) continue;
    try {
      unlinkSync(join(dirname(target), name));
    } catch {
      // gone already (another run removed it) or not ours to remove
    }
  }
}

/** Whether process `pid` of this host exists: signal 0 checks without sending (EPERM: it exists, not ours). */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ESRCH";
  }
}
