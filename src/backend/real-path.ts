/**
 * The real path of a store's file or directory: what the kernel (and SQLite) reach through a path, every symbolic link
 * resolved. Not path.resolve(): it drops `dir/..` by text, while the kernel takes `link/..` as the link target's
 * parent, so a store opened as `<dir>/link/../app.db` is where the link's target's parent is, not `<dir>/app.db`.
 * Layer 1 (backend): used by the store lock's name, the writer turn's key, the store-moved check and store identity;
 * assertOneMeaning is the check every opener makes of a store path (backends, engine, CLI, store identity).
 */
import { readlinkSync, realpathSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { StorageError } from "../errors.js";

/** Symbolic links followed before giving up (Linux's own limit). */
const MAX_LINK_HOPS = 40;

/** `path` made absolute by text concatenation, not resolve(): its `.` and `..` are left for the kernel to take. */
export function absolutePath(path: string): string {
  return isAbsolute(path) ? path : `${process.cwd()}/${path}`;
}

/**
 * What a missing directory on the way means: "must-exist", the path names a file that may not be created yet, but its
 * directory must be there (else ENOENT is thrown, as opening the file would); "created-later", the writer will create
 * the missing directories, as plain directories, so the missing part is appended to the real path of the part that
 * exists (its `..` taken by text: nothing there is a link; the existing part's `..` is the kernel's).
 */
export type MissingDirs = "must-exist" | "created-later";

/**
 * `path` with every symbolic link resolved, for a file (or directory) that need not exist yet: the deepest part that
 * exists is resolved by the kernel (realpath(3)), a dangling link is followed to where it leads (the file is created
 * there), and the rest is appended. Throws what the system says for anything but a missing entry (ELOOP, EACCES,
 * ENOTDIR), and ENOENT for a missing directory when `missing` is "must-exist".
 */
export function realPath(path: string, missing: MissingDirs): string {
  const dirReal = (dir: string): string => (missing === "must-exist" ? realpathSync.native(dir) : realPath(dir, missing));
  let p = absolutePath(path);
  for (let hop = 0; hop < MAX_LINK_HOPS; hop++) {
    try {
      return realpathSync.native(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    let target: string | undefined;
    try {
      target = readlinkSync(p);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "EINVAL") throw err;
    }
    if (target === undefined) {
      // Not there (or not a link): its directory's real path and its name. The root always exists, so this ends.
      const parent = dirname(p);
      return parent === p ? p : join(dirReal(parent), basename(p));
    }
    p = isAbsolute(target) ? target : `${dirReal(dirname(p))}/${target}`;
  }
  throw Object.assign(new Error(`too many levels of symbolic links: ${path}`), { code: "ELOOP" });
}

/**
 * The real path of a file whose directory exists (the file may not yet): a SQLite database, its sidecars, an output
 * file. Throws ENOENT when the directory is missing.
 */
export function realFilePath(path: string): string {
  return realPath(path, "must-exist");
}

/**
 * The real path a store at `path` has, or will have once its writer creates the directories missing on the way. So
 * the name is the same whether it is asked before the store's directory is created or after (the shared-WAL floors
 * name a store so from the main thread at attach and from the store's actor at a fold: review r218, where the main
 * thread's ask threw on the missing directory and fell back to another name).
 */
export function storeRealPath(path: string): string {
  return realPath(path, "created-later");
}

/**
 * Refuses a store path whose `..` the text and the kernel take to different places: `<d>/link/../app.db` is
 * `<d>/app.db` to path.resolve() (the engine's and the CLI's store keys) but the link target's parent's `app.db` to the
 * kernel and SQLite, so one spelling would be two stores (two writers; after an upgrade, an empty store opened in place
 * of the one written before). Every opener calls this before anything is made (design §3.12): a path it accepts names
 * one place however it is read, so naming it by resolve() or by its real path finds the same store. `what` starts the
 * message ("SQLite store path"). A path the kernel cannot resolve (a loop of links, no permission) is let through:
 * the open reports what the system says.
 */
export function assertOneMeaning(path: string, what: string): void {
  if (!path.split("/").includes("..")) return; // without `..`, text and kernel agree (links are followed alike)
  let byText: string;
  let byKernel: string;
  try {
    byText = storeRealPath(resolve(path));
    byKernel = storeRealPath(path);
  } catch {
    return;
  }
  if (byText === byKernel) return;
  throw new StorageError(
    "invalid-argument",
    `${what} ${path} names two places: a ".." after a symbolic link leads the system (and SQLite) to ${byKernel}, ` +
      `but ${byText} read as text; give the store's path without ".." (${byKernel} or ${byText})`,
    { path, reason: "ambiguous-dotdot", kernelPath: byKernel, textPath: byText },
  );
}
