/**
 * The real path of a store's file or directory: what the kernel (and SQLite) reach through a path, every symbolic link
 * resolved. Not path.resolve(): it drops `dir/..` by text, while the kernel takes `link/..` as the link target's
 * parent, so a store opened as `<dir>/link/../app.db` is where the link's target's parent is, not `<dir>/app.db`.
 * Layer 1 (backend): used by the store lock's name, the writer turn's key, the store-moved check and store identity;
 * assertOneMeaning is the check every opener makes of a store path (backends, engine, CLI, store identity).
 */
import { existsSync, lstatSync, readlinkSync, realpathSync } from "node:fs";
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
 * message ("SQLite store path"). The refusal says which of the two places exists (a store made through the spelling
 * before a component became a link is at one of them). When either meaning cannot be resolved (a chain of links past
 * the kernel's limit, a real path past PATH_MAX, no permission), the `..`s are checked one by one instead (oneMeaningByLinks).
 */
export function assertOneMeaning(path: string, what: string): void {
  if (!path.split("/").includes("..")) return; // without `..`, text and kernel agree (links are followed alike)
  let byText: string;
  let byKernel: string;
  try {
    byText = storeRealPath(resolve(path));
    byKernel = storeRealPath(path);
  } catch {
    // Not left to the open (review r249 F2/F3): the text's meaning may resolve and be opened while the kernel's
    // cannot, so it is decided without realpath.
    oneMeaningByLinks(path, what);
    return;
  }
  if (byText === byKernel) return;
  const existing = [byKernel, byText].filter((p) => existsSync(p));
  const found =
    existing.length === 0
      ? "neither exists yet"
      : existing.length === 2
        ? "both exist"
        : `only ${existing[0]} exists (a store made through this path before a component became a link is there)`;
  throw new StorageError(
    "invalid-argument",
    `${what} ${path} names two places: a ".." after a symbolic link leads the system (and SQLite) to ${byKernel}, ` +
      `but ${byText} read as text; ${found}; give the store's path without ".." (${byKernel} or ${byText})`,
    { path, reason: "ambiguous-dotdot", kernelPath: byKernel, textPath: byText, existing },
  );
}

/**
 * The check of a path neither meaning of which could be resolved whole: each `..`, read left to right, cancels by text
 * the component before it; it means the same to the kernel when that component is a plain directory or is missing (the
 * writer creates it as a directory). So is every `..` before it, so the text's prefix up to that component names the
 * same entry for both and lstat() tells which it is. A link there (its target's parent may be elsewhere), a file (the
 * kernel stops: ENOTDIR) or an entry lstat() cannot look at is refused: one spelling, not two places.
 */
function oneMeaningByLinks(path: string, what: string): void {
  const kept: string[] = [];
  for (const part of absolutePath(path).split("/")) {
    if (part === "" || part === ".") continue;
    if (part !== "..") {
      kept.push(part);
      continue;
    }
    if (kept.length === 0) continue; // `/..` is `/` to both
    const before = `/${kept.join("/")}`;
    let entry: string;
    try {
      const st = lstatSync(before);
      if (st.isDirectory()) entry = "directory";
      else entry = st.isSymbolicLink() ? "symbolic link" : "file";
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      if (code === "ENOENT") entry = "missing";
      else entry = code;
    }
    if (entry !== "directory" && entry !== "missing") {
      const why =
        entry === "symbolic link"
          ? `the system cannot resolve where the symbolic link ${before} leads, so the ".." after it may be elsewhere than`
          : entry === "file"
            ? `${before} is not a directory: the system cannot go through it to its ".." and reach`
            : `${before} cannot be looked at (${entry}), so its ".." may be elsewhere than`;
      const textPath = textMeaning(path);
      const existing = existsSync(textPath) ? [textPath] : [];
      throw new StorageError(
        "invalid-argument",
        `${what} ${path} names two places: ${why} ${textPath}, the path read as text (${existing.length > 0 ? "it exists" : "nothing is there"}); ` +
          `give the store's path without ".."`,
        { path, reason: "ambiguous-dotdot", textPath, existing, component: before, entry },
      );
    }
    kept.pop();
  }
}

/** The place the text of `path` names: its real path when that resolves, else resolve()'s. */
function textMeaning(path: string): string {
  try {
    return storeRealPath(resolve(path));
  } catch {
    return resolve(path);
  }
}
