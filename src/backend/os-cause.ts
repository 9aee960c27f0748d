/**
 * Names the operating-system cause behind a vague storage failure. SQLite reports a full disk as SQLITE_FULL or
 * SQLITE_CANTOPEN and a read-only mount as SQLITE_READONLY; an operator needs ENOSPC / EROFS / EACCES to act.
 * Probing the file system after the failure is cheap (it only runs on the error path).
 * Layer 1.
 */
import { accessSync, closeSync, constants, existsSync, openSync, statfsSync } from "node:fs";
import { dirname } from "node:path";

const MEANING: Readonly<Record<string, string>> = {
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOENT: "no such file or directory",
  ENOTDIR: "a path component is not a directory",
  EMFILE: "too many open files in this process; see ulimit -n",
  ENFILE: "too many open files in the system",
};

export interface OsCause {
  readonly osCode: string;
  readonly meaning: string;
}

function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("E") ? code : undefined;
}

/** The first existing directory at or above `dir` (a store may be created in a directory that does not exist yet). */
function existingAncestor(dir: string): string {
  let d = dir;
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
  return d;
}

/**
 * Why writing `file` (or creating it) fails, as an errno code, or undefined when the file system looks fine
 * (the failure then lies elsewhere, e.g. a corrupt database).
 */
export function diagnoseOsCause(file: string): OsCause | undefined {
  const found = (osCode: string): OsCause => ({ osCode, meaning: MEANING[osCode] ?? osCode });
  const dir = existingAncestor(dirname(file));
  try {
    accessSync(dir, constants.W_OK);
    if (existsSync(file)) accessSync(file, constants.W_OK);
  } catch (err) {
    const code = errnoOf(err);
    if (code !== undefined) return found(code);
  }
  try {
    const fs = statfsSync(dir);
    // A file system reporting no blocks or inodes at all (/proc, some FUSE mounts) is not full: it does not count.
    if (fs.blocks > 0 && fs.bavail === 0) return found("ENOSPC");
    if (fs.files > 0 && fs.ffree === 0) return found("ENOSPC");
  } catch (err) {
    const code = errnoOf(err);
    if (code !== undefined) return found(code);
  }
  // The checks above open nothing. SQLite says "unable to open database file" when the process is out of file
  // descriptors too (a store, its -wal, -shm and lock take four): opening the directory tells. As a directory only,
  // never blocking: a plain open of a FIFO there waited for a writer for good (review r374 L10); one is the cause.
  try {
    closeSync(openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NONBLOCK));
  } catch (err) {
    const code = errnoOf(err);
    if (code === "EMFILE" || code === "ENFILE" || code === "ENOTDIR") return found(code);
  }
  return undefined;
}
