/**
 * Whether this process still has a descriptor on a lock file that is no longer the one at its path: the store lock or
 * a file store's check lock removed (or replaced) while a handle of an older hold kept its connection, maybe inside a
 * conditional batch. A take after such a removal makes new lock files, and a handle on them would run its batches
 * beside the old handle's: nothing on the new files excludes a lock on the old ones (review r376 H1: both lock files
 * removed during a batch, a thread of the same process opening a new handle). So the take looks at /proc/self/fd.
 *
 * Descriptors are only looked at (fstat, readlink, and stat through /proc/self/fd/N), never opened: closing a descriptor
 * of a file drops every POSIX lock this process holds on it (lock-open.ts). Each is first fstat'ed by its number, and
 * only a regular file on the device of the lock files now at their paths is read by name: a server's thousands of
 * sockets and pipes cost one fstat each, not a readlink and its walk of /proc (task 385: with 5,000 sockets open, a
 * writer's open took 154-214 ms before, 70-122 ms after, on a loaded machine). The fstat asks the descriptor's file
 * system (on NFS a file open for writing is flushed first, FUSE asks its daemon): the cost of a regular file
 * elsewhere. Without /proc nothing can be told, and nothing is refused: the residual is documented (design §3.13). Other processes' descriptors are not seen: a handle of
 * another process whose lock file is gone ends its writes at its next look (store-moved, task 174), but a batch it
 * has under way at the removal is not stopped. Layer 1.
 */
import { fstatSync, readdirSync, readlinkSync, statSync, type BigIntStats } from "node:fs";
import { sameLockFile, type LockFileId } from "./lock-open.js";

/** The kernel's mark on a /proc/self/fd link whose file was removed. */
const DELETED = " (deleted)";

/** A lock file to look for: its real path, and the file that counts (undefined: nothing at the path counts). */
export interface WatchedLockFile {
  readonly path: string;
  readonly current: LockFileId | undefined;
}

/**
 * How many descriptors this process has on the file `id` reached by the real path `path` (removed or not), undefined
 * when /proc cannot tell. Each handle's connection to a lock database has its own (SQLite's unix VFS opens one per
 * connection), so more than the caller's own means another handle of this process is open on it.
 */
export function descriptorsOn(path: string, id: LockFileId): number | undefined {
  let count = 0;
  const found = eachDescriptor([{ path, current: id }], (_, stats) => {
    if (sameLockFile(stats, id)) count++;
    return false;
  });
  return found === null ? undefined : count;
}

/**
 * The first of `files` this process has a descriptor on that is not the file that counts at its path (removed, or
 * another file there now), undefined when there is none or /proc cannot tell.
 */
export function olderLockFileHeld(files: readonly WatchedLockFile[]): WatchedLockFile | undefined {
  const found = eachDescriptor(files, (file, stats) => !sameLockFile(stats, file.current));
  return found ?? undefined;
}

/**
 * Calls `stop` with each of this process's descriptors on one of `files` (by name, removed or not) and the file's
 * stat, until it says true: that file, undefined when none did, null when /proc cannot be read.
 */
function eachDescriptor(
  files: readonly WatchedLockFile[],
  stop: (file: WatchedLockFile, stats: BigIntStats) => boolean,
): WatchedLockFile | undefined | null {
  let fds: string[];
  try {
    fds = readdirSync("/proc/self/fd");
  } catch {
    return null;
  }
  // The devices the lock files are on (a file's, not its directory's: overlayfs gives a file its layer's device).
  // None known (no file at any path): every regular file is looked at.
  const devices = new Set(files.flatMap((f) => (f.current === undefined ? [] : [Number(f.current.dev)])));
  for (const fd of fds) {
    if (!mayBeLockFile(Number(fd), devices)) continue;
    const link = `/proc/self/fd/${fd}`;
    const target = readTarget(link);
    if (target === undefined) continue;
    const name = target.endsWith(DELETED) ? target.slice(0, -DELETED.length) : target;
    const file = files.find((f) => f.path === name);
    if (file === undefined) continue;
    let stats: BigIntStats;
    try {
      stats = statSync(link, { bigint: true });
    } catch {
      continue; // closed meanwhile
    }
    // The descriptor may have been closed and its number reused between the two looks: only the same name counts.
    if (readTarget(link) !== target) continue;
    if (stop(file, stats)) return file;
  }
  return undefined;
}

/**
 * Whether descriptor `fd` may be on a lock file: a regular file on one of `devices` (any, when empty). A descriptor
 * closed meanwhile (this scan's own readdir's among them) is not; one fstat cannot tell is looked at by name.
 */
function mayBeLockFile(fd: number, devices: ReadonlySet<number>): boolean {
  let stats;
  try {
    stats = fstatSync(fd);
  } catch (err) {
    return (err as { code?: unknown } | null)?.code !== "EBADF";
  }
  return stats.isFile() && (devices.size === 0 || devices.has(stats.dev));
}

function readTarget(link: string): string | undefined {
  try {
    return readlinkSync(link);
  } catch {
    return undefined; // closed meanwhile (this scan's own readdir descriptor among them)
  }
}
