/**
 * A writer's reopen of a store it held (the engine's actor replacing a lost one: watchdog, crash) must not create the
 * store. A store moved aside meanwhile (maintenance, a backup tool) may come back with its very lock (task 280), and
 * an open that made its directory, database file or lock anew left an empty store at the path: the original could
 * not be moved back (ENOTEMPTY), and the tenure check stopped the writer for a store that would have healed (review
 * r287 F2). So a reopen first looks, creating nothing:
 * - the lock's directory is there without the lock, and it positively shows the hold gone: the directory is another
 *   one than the lost writer's (removed and made again: its identity travels with the tenure, `carryTenure`), a file
 *   store's directory (the store itself) is there, or a SQLite database file is at its path (its lock removed, or
 *   another store made there): another writer could have held the store since: not-owner, reason "held-meanwhile"
 *   (final, as the tenure check's own refusal). A SQLite store's database and lock both missing from its unchanged
 *   directory (the files moved aside, the directory shared: review r298 F1) is the case below;
 * - the store (a file store's directory, a SQLite database file) is not at its path: backend-error, reason
 *   "store-moved", a failure that may pass: the engine tries the open again at the store's next operation.
 * Then the open runs without making anything missing (no mkdir; SQLite's fileMustExist). Layer 1.
 */
import { lstatSync, statSync, type Stats } from "node:fs";
import { dirname } from "node:path";
import { StorageError } from "../errors.js";
import { dirDiffers, dirIdAt, parseDirId } from "./store-place.js";

/**
 * A writer handle's lock directory identity (store-place.ts DirId, as text), kept beside its tenure: the engine hands
 * the tenure's id to the actor that replaces a lost one, and this travels with it to that actor's reopen.
 */
const lockDirs = new WeakMap<object, string>();

/** Records the identity of the lock's directory `backend` opened its store in (a writer's open, with its tenure). */
export function setLockDir(backend: object, lockDir: string | undefined): void {
  if (lockDir !== undefined) lockDirs.set(backend, lockDir);
}

const CARRIED = "\u0000dir=";

/** The text an engine keeps of a writer's hold: its tenure id, and its lock directory's identity when known. */
export function carryTenure(backend: object, id: string): string {
  const dir = lockDirs.get(backend);
  return dir === undefined ? id : `${id}${CARRIED}${dir}`;
}

/** carryTenure's text taken apart: the hold's id (what tenure.ts compares) and the lock directory's identity. */
export function carriedTenure(text: string): { readonly hold: string; readonly lockDir: string | undefined } {
  const at = text.lastIndexOf(CARRIED);
  return at < 0 ? { hold: text, lockDir: undefined } : { hold: text.slice(0, at), lockDir: text.slice(at + CARRIED.length) };
}

const errnoCode = (err: unknown): string | undefined => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
};

function look(path: string, follow: boolean): Stats | string {
  try {
    return follow ? statSync(path) : lstatSync(path);
  } catch (err) {
    return errnoCode(err) ?? "EIO";
  }
}

export interface ReopenedStore {
  readonly kind: "file" | "sqlite";
  /** The file store's directory, or the SQLite database file. */
  readonly path: string;
  /** The store's lock file; undefined for a store opened without one (nothing to tell its hold by). */
  readonly lockPath: string | undefined;
  /** The lock directory's identity when the lost writer opened the store (carriedTenure); undefined when not known. */
  readonly lockDir?: string | undefined;
}

/** Throws when the store a writer held is not where it was (see the module comment); creates nothing. */
export function assertReopenable(store: ReopenedStore): void {
  const name = `${store.kind === "file" ? "file" : "sqlite"} store ${store.path}`;
  const at = store.kind === "file" ? { dir: store.path } : { path: store.path };
  if (store.lockPath !== undefined) {
    const lockDir = look(dirname(store.lockPath), true);
    if (typeof lockDir !== "string" && lockDir.isDirectory() && look(store.lockPath, false) === "ENOENT" && holdGone(store)) {
      throw new StorageError(
        "not-owner",
        `${name}: its lock file ${store.lockPath} is gone from a directory that is there (the store removed and made again, or its lock removed), so another writer could have held it since this engine's actor for it was lost; nothing was created there, and its tiers write no more: open them again (and restore) to continue`,
        { ...at, reason: "held-meanwhile", file: "lock", osCode: "ENOENT" },
      );
    }
  }
  const found = look(store.path, true);
  const missing = typeof found === "string" ? found : store.kind === "file" && !found.isDirectory() ? "ENOTDIR" : undefined;
  if (missing === undefined) return;
  throw new StorageError(
    "backend-error",
    `${name}: it is not at its path now (moved aside or removed) while its engine reopened it after a lost worker; a reopen never creates a store it held, so nothing is written until it is back (put it back: the next operation opens it again)`,
    { ...at, reason: "store-moved", file: store.kind === "file" ? "lock" : "database", osCode: missing },
  );
}

/**
 * With the lock missing from a directory that is there: whether that positively shows the hold gone (see the module
 * comment). Not when a SQLite store's database file is missing too from the very directory the lost writer opened it
 * in: its files moved aside may come back.
 */
function holdGone(store: ReopenedStore): boolean {
  if (store.lockPath === undefined) return false;
  const then = store.lockDir === undefined ? undefined : parseDirId(store.lockDir);
  const now = dirIdAt(dirname(store.lockPath));
  if (then !== undefined && now !== undefined && dirDiffers(now, then)) return true;
  if (store.kind === "file") return true;
  return typeof look(store.path, true) !== "string";
}
