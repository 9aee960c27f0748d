/**
 * Whether a store's files are still where its writer opened them.
 *
 * A SQLite connection writes through the file descriptors it opened. When the database file (or its -wal, or the
 * store lock) is removed, renamed, or replaced by another file while the handle is open, SQLite in WAL mode goes on
 * committing into the orphaned files without a word: every commit succeeds, none of it is at the store's path, and it
 * is gone once the process ends (the -wal removed: at the next crash). A flush acknowledged then would be a lie. So
 * after each commit the handle compares the files at its paths with the ones it opened (device and inode: one stat
 * each). A file store writes by path, so only its lock matters: removed (or its directory replaced), another process
 * could take the store and write beside this one; a file writer checks it before each write.
 */
import { realpathSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { StorageError } from "../errors.js";
import { absolutePath } from "./real-path.js";

/** Which of a store's files is no longer the one its handle writes through. */
export type MovedFile = "database" | "wal" | "lock";

interface FileId {
  readonly dev: number;
  readonly ino: number;
}

/** Why nothing is at a path (the stat's own error): ENOENT, or ENOTDIR when a directory on the way is a file now. */
type Missing = NodeJS.ErrnoException;

/**
 * The identity of the file at `path`, or why nothing is there; undefined when it cannot be told (e.g. EACCES on a
 * directory: the files are likely still there, and writes through the open descriptors still reach them, so this is
 * no evidence of a move). A stat on the error path only, so the error object costs nothing while all is well.
 */
function idAt(path: string): FileId | Missing | undefined {
  try {
    const st = statSync(path, { throwIfNoEntry: false });
    if (st !== undefined) return { dev: st.dev, ino: st.ino };
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ENOTDIR" ? (err as Missing) : undefined;
  }
  try {
    statSync(path); // again, for the OS's own error (the cause the caller reports)
    return undefined; // back meanwhile: cannot tell
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ENOENT" || code === "ENOTDIR" ? (err as Missing) : undefined;
  }
}

/**
 * `path` with its symbolic links resolved, or `path` itself when it cannot be (then SQLite could not have either). The
 * kernel's realpath (`.native`): Node's own drops `link/..` by text before it looks, and SQLite takes it as the kernel
 * does (the link target's parent).
 */
function realPathOr(path: string): string {
  try {
    return realpathSync.native(path);
  } catch {
    return path;
  }
}

function isId(id: FileId | Missing | undefined): id is FileId {
  return id !== undefined && !(id instanceof Error);
}

function differs(now: FileId | Missing | undefined, then: FileId): boolean {
  return now !== undefined && (!isId(now) || now.dev !== then.dev || now.ino !== then.ino);
}

/**
 * A directory's identity: device, inode and birth time (ext4 may give a removed directory's inode to one made right
 * after; the birth time tells them apart where the file system keeps one, and is 0 on both where it does not).
 */
export interface DirId {
  readonly dev: number;
  readonly ino: number;
  readonly birth: number;
}

/** The identity of the directory at `path`; undefined when it is not a directory or cannot be told. */
export function dirIdAt(path: string): DirId | undefined {
  try {
    const st = statSync(path, { throwIfNoEntry: false });
    return st?.isDirectory() === true ? { dev: st.dev, ino: st.ino, birth: st.birthtimeMs } : undefined;
  } catch {
    return undefined;
  }
}

/** Whether two directory identities name different directories. */
export function dirDiffers(a: DirId, b: DirId): boolean {
  return a.dev !== b.dev || a.ino !== b.ino || a.birth !== b.birth;
}

/** The text form of a DirId (carried in a writer's tenure to its reopen: tenure.ts, reopen.ts). */
export function dirIdText(id: DirId): string {
  return `${id.dev}:${id.ino}:${id.birth}`;
}

export function parseDirId(text: string): DirId | undefined {
  const m = /^(\d+):(\d+):(\d+(?:\.\d+)?)$/.exec(text);
  return m === null ? undefined : { dev: Number(m[1]), ino: Number(m[2]), birth: Number(m[3]) };
}

export class StorePlace {
  /**
   * The lock's directory as the store opened: for a SQLite store the database file's directory, shared (not the
   * store's own), so its files moved aside leave it there unchanged; made again, it is another directory.
   */
  readonly lockDir: DirId | undefined;

  /** The -wal file's identity: SQLite creates it at the first write of a new store, so it is taken at the first check. */
  private wal: FileId | undefined;
  /**
   * `path` made absolute as the store opened (SQLite resolves its files so, and a later chdir must not move them), by
   * text concatenation: resolve() would drop `link/..` by text, a file the kernel (and SQLite) does not open.
   */
  private readonly at: string;
  /**
   * The -wal's path: beside the database file's real path, where SQLite puts it for a store opened through a symbolic
   * link (beside the link nothing is ever found, and a removed -wal went unseen: review r178 of d33cbae).
   */
  private readonly walPath: string;

  private constructor(
    /** The SQLite database file, or the file store's directory. */
    private readonly path: string,
    /** The database file's identity; undefined for a file store (written by path: only its lock is checked). */
    private readonly db: FileId | undefined,
    private readonly lockPath: string | undefined,
    private readonly lock: FileId | undefined,
  ) {
    this.at = absolutePath(path);
    this.walPath = `${realPathOr(this.at)}-wal`;
    this.lockDir = lockPath === undefined ? undefined : dirIdAt(dirname(lockPath));
  }

  /**
   * The identities of a SQLite store's files just opened (its database file, the lock file if it holds one);
   * undefined when the database file cannot be told (then nothing is checked).
   */
  static sqlite(path: string, lockPath: string | undefined): StorePlace | undefined {
    const db = idAt(absolutePath(path));
    if (!isId(db)) return undefined;
    const lock = lockPath === undefined ? undefined : idAt(lockPath);
    return new StorePlace(path, db, lockPath, isId(lock) ? lock : undefined);
  }

  /** The lock file of a file store just locked; undefined when it cannot be told. */
  static fileStore(dir: string, lockPath: string): StorePlace | undefined {
    const lock = idAt(lockPath);
    return isId(lock) ? new StorePlace(dir, undefined, lockPath, lock) : undefined;
  }

  /** The database file's identity as the store opened (a SQLite store's; undefined for a file store). */
  get databaseId(): { readonly dev: number; readonly ino: number } | undefined {
    return this.db;
  }

  /** The first file no longer the one this handle opened, or undefined when all are in place (or cannot be told). */
  moved(): MovedFile | undefined {
    if (this.db !== undefined) {
      if (differs(idAt(this.at), this.db)) return "database";
      const wal = idAt(this.walPath);
      if (this.wal === undefined) {
        if (isId(wal)) this.wal = wal;
      } else if (differs(wal, this.wal)) {
        return "wal";
      }
    }
    if (this.lock !== undefined && this.lockPath !== undefined && differs(idAt(this.lockPath), this.lock)) return "lock";
    return undefined;
  }

  /**
   * Whether the lock file is positively gone or replaced, so this handle's writes end for good. Only what shows it:
   * - another file at the lock's path (a different identity);
   * - the lock missing from its directory, and that directory is another one than at open (removed and made again:
   *   an empty store under no lock of this writer);
   * - the lock missing from its unchanged directory while something is at the store's path: a file store's lock
   *   directory is the store itself (its lock removed); a SQLite database file at its path (the lock removed alone, or
   *   another store made there since).
   * Not final: the directory path itself missing (ENOENT) or not a directory (ENOTDIR), and a SQLite store's database
   * and lock both missing from an unchanged directory (its files moved aside, as a single-file database is: its
   * directory is shared): nobody can have written a store there, and the very files may come back (review r298 F1:
   * they were declared gone for good, and stayed so once moved back). Ask it whichever file moved() named: a store
   * removed and made again moves its database file too, and moved() names that one first.
   */
  lockGone(): boolean {
    if (this.lock === undefined || this.lockPath === undefined) return false;
    const now = idAt(this.lockPath);
    if (isId(now)) return differs(now, this.lock);
    if (now === undefined || now.code !== "ENOENT") return false;
    const dir = dirIdAt(dirname(this.lockPath));
    if (dir === undefined) return false;
    if (this.lockDir !== undefined && dirDiffers(dir, this.lockDir)) return this.stillMissing();
    if (this.db !== undefined && !isId(idAt(this.at))) return false;
    return this.stillMissing();
  }

  /** Asked again, the lock is still missing (not a directory moved back meanwhile), or another file is there. */
  private stillMissing(): boolean {
    if (this.lock === undefined || this.lockPath === undefined) return false;
    const again = idAt(this.lockPath);
    return isId(again) ? differs(again, this.lock) : again !== undefined && again.code === "ENOENT";
  }

  error(file: MovedFile): StorageError {
    const which = file === "database" ? this.at : file === "wal" ? this.walPath : (this.lockPath ?? this.at);
    const now = idAt(which);
    const gone = now instanceof Error ? now : undefined;
    const what =
      file === "lock"
        ? "its lock file was removed or replaced (another process could now take the store: a second writer)"
        : `its ${file === "database" ? "database" : "-wal"} file was ${gone === undefined ? "replaced" : "removed"} while the store was open, so its writes no longer reach the file at that path`;
    const store = this.db === undefined ? `file store ${this.path}` : `sqlite store ${this.path}`;
    return new StorageError(
      "backend-error",
      `${store}: ${what}; nothing written now is acknowledged (${file === "lock" ? "close the store and open it again: it takes the lock anew, or is told who holds it" : "put the file back, or close the store and open it again"})`,
      { ...(this.db === undefined ? { dir: this.path } : { path: this.path }), reason: "store-moved", file, ...(gone?.code === undefined ? {} : { osCode: gone.code }) },
      gone,
    );
  }
}

/** Kept here for its importers (store identity, tests): the function lives in real-path.ts. */
export { storeRealPath } from "./real-path.js";
