/**
 * Fault injection for the file store's tests: the failures of link(2), unlink(2) and a directory fsync that a test
 * cannot make the kernel produce on demand (EIO, ENOSPC) at the exact step it means. The store calls `fileFault`
 * before each such step; a hook a test set throws there as the system call would. Not exported from the package;
 * without a hook a step costs one check. Layer 1.
 *
 * A hook lives in one thread, so a test cannot set one in an engine's worker. For those, the test-only environment
 * variable GRAPHREFLY_TEST_FILE_WRITE_FAULT (`WRITE_FAULT_ENV`) names a suffix: while a file named the store's
 * directory plus that suffix exists beside it, each write, delete and batch of the store fails with EIO at its
 * "write" step, before it touches the directory. A passing failure that leaves the directory and its lock in place
 * (moving the directory aside reads as a removed store, whose writes end for good). Read once, when this module
 * loads in a thread (a worker copies process.env when it is made, so a test sets it before the engine starts);
 * unset, as in production, no hook is installed and nothing more is paid. A hook a test sets replaces it.
 */
import { existsSync } from "node:fs";


/**
 * A step of a conditional batch: a claim's link of a key, its directory fsync, the undo of its links ("undo-unlink":
 * the key's name is moved aside, thrown as the rename's error; "undo-own": it held the batch's own link, before that
 * is removed; "undo-restore": it held another writer's file, thrown as the link(2) that puts it back; each with the
 * key's path, also when a retry or a sweep settles an aside); "same-file": a claim looks at a file to tell whether it
 * is its own link (after a failed link, the key's name; in an undo, the file moved aside: with the key's path);
 * "apply": a checked batch's check passed, under the check lock, before its renames (a test stops a
 * thread there); "check-busy": a try for the check lock found it held, before the pause (outside the native call),
 * with the lock's path; "check-try": a try for the check lock begins, its connection open, with the lock's path (a
 * test replaces the file there); "write": a write, delete or batch (conditional too) begins, once each, with the
 * store's directory; "lock-open": SQLite opened a lock database (the store lock, a file store's check lock: lock-open.ts),
 * before the look that tells it is the file looked at, and "lock-opened": that look passed, before any statement, each
 * with the lock's path (a test removes the file there).
 */
export type FileStep =
  | "link"
  | "fsync-dir"
  | "undo-unlink"
  | "undo-own"
  | "undo-restore"
  | "undo-fsync-dir"
  | "same-file"
  | "apply"
  | "check-busy"
  | "check-try"
  | "write"
  | "lock-open"
  | "lock-opened";

export type FileFaultHook = (step: FileStep, path: string) => void;

/** The test-only switch the header describes; its value is the marker file's suffix. */
export const WRITE_FAULT_ENV = "GRAPHREFLY_TEST_FILE_WRITE_FAULT";

let hook: FileFaultHook | undefined = markerHook(process.env[WRITE_FAULT_ENV]);

/** Fails a store's "write" step with EIO while its marker (`<dir><suffix>`) exists; undefined without a suffix. */
function markerHook(suffix: string | undefined): FileFaultHook | undefined {
  if (suffix === undefined || suffix === "") return undefined;
  return (step, path) => {
    if (step === "write" && existsSync(path + suffix)) throw errnoError("EIO", "write", path);
  };
}

/** Sets (or, with undefined, clears) this thread's hook. */
export function setFileFaultHook(h: FileFaultHook | undefined): void {
  hook = h;
}

export function fileFault(step: FileStep, path: string): void {
  if (hook !== undefined) hook(step, path);
}

/** An error shaped as Node's fs errors are (`code` an errno name), for a hook to throw. */
export function errnoError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected failure, ${syscall} '${path}'`), { code, syscall, path });
}
