/**
 * One file per key in a directory. Every write is durable before it returns: temp file, fsync,
 * rename over the target, fsync of the directory. Synchronous on purpose: it runs inside the
 * worker that owns the store, where blocking I/O costs the main thread nothing.
 */
import { Buffer, constants as bufferConstants } from "node:buffer";
import type { BigIntStats, Stats } from "node:fs";
import {
  closeSync,
  constants,
  existsSync,
  fsyncSync,
  mkdirSync,
  fstatSync,
  linkSync,
  lstatSync,
  openSync,
  readSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { threadId } from "node:worker_threads";
import { refuseUnknownKeys } from "../base/options.js";
import { KERNEL_THREAD_ID, processThreadEnded } from "../base/kernel-thread.js";
import { isRecord } from "../base/records.js";
import { StorageError, asStorageError } from "../errors.js";
import { CheckLock, checkLockSide, olderHoldError } from "./file-check-lock.js";
import { fileKind } from "./file-kind.js";
import { fileFault } from "./file-faults.js";
import { decodeFileNameToKey, encodeKeyToFileName, isCanonicalFileName, usesKeyAlphabet } from "./file-names.js";
import { assertBytes, assertKeyArray, assertPrefixLength, assertValidBatch, assertValidKey, sortKeys } from "./keys.js";
import { acquireStoreLock, dirLockPath, lockTenure, type StoreLock } from "./lock.js";
import { StorePlace } from "./store-place.js";
import { assertOneMeaning } from "./real-path.js";
import { setWriterTenure } from "./tenure.js";
import { readOnlyError } from "./read-only.js";
import { claimsOnly, expectedList, holdsAll } from "./conditional.js";
import { markOnDiskStore } from "./on-disk.js";
import { assertReopenable } from "./reopen.js";
import type { BackendSupports, BatchOp, ExpectedValue, SyncStorageBackend } from "./types.js";

export interface FileBackendOptions {
  /**
   * Hold the store's single-writer lock (default true; other handles of this process share it). Without it,
   * concurrent writers are unsafe.
   */
  readonly lock?: boolean;
  /**
   * Read only, without the lock: works while another process writes (every write is an atomic rename), refuses
   * writes with StorageError("read-only"), and never creates the directory.
   */
  readonly readOnly?: boolean;
  /**
   * Called after each file a batch writes (temp file + fsync, ~1 ms on a disk): an owner watching its thread for
   * hangs (the engine's watchdog) sees a long synchronous batch as progress, not as a blocked thread.
   */
  readonly onProgress?: () => void;
}

/** A file backend (synchronous, every optional method present). */
export interface FileBackend extends SyncStorageBackend {
  /** Absolute directory of the store. */
  readonly dir: string;
  readonly readOnly: boolean;
}

/** Longest file name (in bytes) that Linux file systems (ext4, xfs, btrfs, tmpfs) accept. */
const MAX_FILE_NAME_BYTES = 255;

const TEMP_PREFIX = ".tmp-";
/**
 * `.tmp-<pid>-<threadId>-<counter>[-<kernel thread id>]`: unique across processes and worker threads. The kernel's
 * id of the writing thread (Linux) tells a dead thread's leftovers from a live thread's temp files (`threadGone`).
 */
const TEMP_NAME = /^\.tmp-(\d+)-(\d+)-\d+(?:-(\d+))?$/;
const UNDO_PREFIX = ".undo-";
/**
 * `.undo-<pid>-<threadId>-<counter>-<kernel thread id or nothing>-<inode>-<key's file name>`: a key's name a failed
 * claim's undo moved aside (`undoClaim`), a file in the store directory (a rename in one directory needs no new inode,
 * unlike a directory of its own). Its owner is told alive or ended as a temp file's is; `<inode>` is the claim's own
 * link's (its temp file's), so whoever settles it (`settleAside`: the undo, its retry, a sweep) tells the claim's own
 * link (removed, never put back) from another writer's file (put back). A dot name: never a key, never listed.
 */
const ASIDE_NAME = /^\.undo-(\d+)-(\d+)-\d+-(\d*)-(\d+)-(.+)$/;
let tempCounter = 0;

/**
 * Whether the thread `tid` (from a temp or undo name) of the running process `pid` has ended; false when that cannot be
 * told (no thread id in the name, no usable procfs: without it a live thread's temp files are kept).
 */
function threadGone(pid: number, tid: string | undefined): boolean {
  return tid !== undefined && processThreadEnded(pid, Number(tid));
}
/** This thread's kernel id as a name suffix (`-<tid>`), empty when procfs cannot tell it (base/kernel-thread.ts). */
const KERNEL_SUFFIX = KERNEL_THREAD_ID === undefined ? "" : `-${KERNEL_THREAD_ID}`;
/** This thread's kernel id in an aside's name, empty when procfs cannot tell it (the name keeps its dashes). */
const KERNEL_PART = KERNEL_THREAD_ID === undefined ? "" : String(KERNEL_THREAD_ID);

/** How long settleBatches waits at most for a batch's temp files (a thread terminated mid-batch leaves them). */
const SETTLE_WAIT_MS = 5_000;

const SUPPORTS: BackendSupports = Object.freeze({
  list: true,
  delete: true,
  // Renames of a batch are not one atomic step: a crash may leave a prefix of the batch applied.
  atomicBatch: false,
  conditionalBatch: true,
  conditionalKeys: true,
  persistent: true,
  durable: true,
  sync: true,
  listsEmptyKey: false,
  readPrefix: true,
  sizes: true,
});

/** A batch staged by `stage`: its ops (a key's ops next to each other as one), their paths and temp files. */
interface Staged {
  readonly ops: readonly BatchOp[];
  readonly paths: readonly string[];
  /** Each put's temp file until it is renamed or linked into place (undefined: a delete, or consumed). */
  readonly temps: (string | undefined)[];
}

function errnoCode(err: unknown): unknown {
  return (err as { code?: unknown } | null)?.code;
}

function fsyncDir(path: string): void {
  // Never blocking: a plain open of a FIFO put there in the directory's place waits for a writer for good (review
  // r374 L10). What is not a directory is named, as the kernel's ENOTDIR (the caller's backend-error gives osCode).
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NONBLOCK);
  } catch (err) {
    if (errnoCode(err) === "ENOTDIR") throw notADirectory(path, err);
    throw err;
  }
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The ENOTDIR of a directory's open, saying what is there instead. */
function notADirectory(path: string, err: unknown): NodeJS.ErrnoException {
  const st = lstatSync(path, { throwIfNoEntry: false });
  const found = st === undefined ? "gone" : st.isFile() ? "a regular file" : fileKind(st);
  return Object.assign(new Error(`${path} is ${found}, not a directory (another program put it there): its entries cannot be made durable`, { cause: err }), {
    code: "ENOTDIR",
    syscall: "open",
    path,
  });
}

/**
 * Puts another writer's file moved aside by a claim's undo back at its key's name, unless the name is taken: link(2)
 * never replaces, so a write that landed there since (newer) is kept and the moved file dropped. Gone already (another
 * sweep put it back): nothing to do. Where the link finds no room (ENOSPC: a file system that counts links against its
 * inodes, tmpfs; EMLINK), the moved file is renamed back if the name is free: a write landing between that look and
 * the rename is replaced by the older file (the narrow window design §3.13 names), rather than the older one lost.
 */
function putBack(moved: string, path: string): void {
  try {
    fileFault("undo-restore", path);
    linkSync(moved, path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === "ENOENT") return;
    if (code === "ENOSPC" || code === "EMLINK") {
      if (!entryExists(path)) {
        renameSync(moved, path);
        return;
      }
    } else if (code !== "EEXIST") throw err;
  }
  unlinkIfPresent(moved);
}

/** Whether a directory entry is at `path` (lstat: a dangling link is an entry). */
function entryExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return false;
    throw err;
  }
}

function unlinkIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if (errnoCode(err) !== "ENOENT") throw err;
  }
}

/** Removes temp files after a failure; the original error is the one worth reporting. */
function discardTemps(paths: readonly (string | undefined)[]): void {
  for (const p of paths) {
    if (p === undefined) continue;
    try {
      unlinkSync(p);
    } catch {
      // Best effort: a leftover temp file is ignored by list and swept by the next writer.
    }
  }
}

/** Creates `dir` (recursively) and makes each new directory entry durable by fsyncing its parent. */
function mkdirDurable(dir: string): void {
  const first = mkdirSync(dir, { recursive: true });
  if (first === undefined) return;
  for (let p = dir; ; p = dirname(p)) {
    fsyncDir(dirname(p));
    if (p === first || dirname(p) === p) break;
  }
}

/** StorageError `corrupt-store` for a key whose file is not a regular file: no write of this backend makes one. */
function notAFile(path: string, key: string, stats: Stats, dir: string, what: "read" | "listed" = "read"): StorageError {
  const found = fileKind(stats);
  return new StorageError(
    "corrupt-store",
    `file backend: ${path} (key ${JSON.stringify(key)}) is ${found}, not a file: another program put it there; nothing was ${what}`,
    { dir, key, found, path },
  );
}

/** The most bytes one read returns: the largest buffer this Node.js makes (4 GiB on Node 20, 64-bit). */
const MAX_READ_BYTES = bufferConstants.MAX_LENGTH;

/**
 * StorageError `backend-error` (`details.reason` "too-large", `size`, `limit`) for a key's file larger than one buffer
 * holds: reading it failed with Node's own range error, given as an OS code (`osCode` ERR_OUT_OF_RANGE; review r349).
 * readPrefix of it reads up to the limit.
 */
function tooLarge(path: string, key: string, size: number, dir: string): StorageError {
  return new StorageError(
    "backend-error",
    `file backend: ${path} (key ${JSON.stringify(key)}) holds ${size} bytes, more than one read returns here (${MAX_READ_BYTES} bytes, the largest buffer of this Node.js); nothing was read (readPrefix reads the first bytes of it)`,
    { dir, key, path, size, limit: MAX_READ_BYTES, reason: "too-large" },
  );
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === "EPERM";
  }
}

class FileStore implements FileBackend {
  readonly name: string;
  readonly supports = SUPPORTS;
  private lock: StoreLock | undefined;
  /** The lock file as taken, checked before each write (store-place.ts); undefined without a lock. */
  private place: StorePlace | undefined;
  /** Why this handle writes no more: its lock file was found positively gone or replaced (StorePlace.lockGone). */
  private lost: StorageError | undefined;
  /** Directory exists, lock held (if asked) and leftover temp files swept. */
  private ready = false;
  private closed = false;
  /** Taken by conditional batches only (writeBatchIf), opened at the first. */
  private check: CheckLock | undefined;
  /** The file system refused a hard link (EPERM, ENOTSUP): conditional batches are checked and renamed. */
  private noLinks = false;
  /** Asides (full paths) an undo of this handle left unsettled (in doubt): settled at its next operation. */
  private readonly asides = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly useLock: boolean,
    readonly readOnly: boolean,
    private readonly onProgress: (() => void) | undefined,
    /** A writer's reopen of a store it held (reopen.ts): nothing missing is created, the directory least of all. */
    private readonly mustExist = false,
  ) {
    this.name = "file:" + dir;
    markOnDiskStore(this);
    // A writer locks at open, creating a missing directory: a writer that read an empty store and took the lock
    // only at its first write could overwrite what another writer stored in between.
    if (useLock) {
      try {
        if (mustExist) assertReopenable({ kind: "file", path: dir, lockPath: dirLockPath(dir) });
        else mkdirDurable(dir);
      } catch (err) {
        throw asStorageError(err, `cannot create store directory ${dir}`, { dir });
      }
      // The check lock's file is made here, by the store's first open handle, never by a later open (file-check-lock.ts).
      this.lock = acquireStoreLock(dirLockPath(dir), dir, checkLockSide(dir));
      const older = olderHoldError(dir, this.lock.side);
      if (older !== undefined) {
        this.lock.release();
        throw older;
      }
      setWriterTenure(this, lockTenure(this.lock));
      this.place = StorePlace.fileStore(dir, this.lock.path);
    }
  }

  readMany(keys: readonly string[]): Array<Uint8Array | undefined> {
    this.ensureOpen();
    assertKeyArray(keys);
    return keys.map((key) => this.read(key));
  }

  read(key: string): Uint8Array | undefined {
    this.ensureOpen();
    return this.readUpTo(this.pathFor(key), key, Number.POSITIVE_INFINITY);
  }

  /** One stat per key (a write replaces a file whole, by rename): a miss, else the file's size. */
  sizes(keys: readonly string[]): Array<number | undefined> {
    this.ensureOpen();
    assertKeyArray(keys);
    return keys.map((key) => {
      const path = this.pathFor(key);
      let stats: Stats;
      try {
        stats = lstatSync(path); // a link is not followed, as read does not
      } catch (err) {
        if (errnoCode(err) === "ENOENT") return undefined;
        throw asStorageError(err, `file backend stat failed at ${path}`, { dir: this.dir });
      }
      // Not a regular file (a FIFO, a device, a directory another program put there): read says what it is.
      return stats.isFile() ? stats.size : this.read(key)?.byteLength;
    });
  }

  readPrefix(key: string, maxBytes: number): Uint8Array | undefined {
    this.ensureOpen();
    const path = this.pathFor(key);
    assertPrefixLength(maxBytes);
    return this.readUpTo(path, key, maxBytes);
  }

  /**
   * The first `maxBytes` of the value of `key`, stored at `path` (all of it for Infinity). Opened non-blocking and checked by fstat:
   * a FIFO or a device (a symbolic link to /dev/zero) named like a key would block a read forever or never end; it
   * is StorageError `corrupt-store`, as another program's record is. Same system calls as
   * readFileSync (open, fstat, read, close).
   */
  private readUpTo(path: string, key: string, maxBytes: number): Uint8Array | undefined {
    let fd: number;
    try {
      // O_NOFOLLOW: a link named like a key made read commands print the file it points to (review r232).
      fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return undefined;
      if (errnoCode(err) === "ELOOP") throw notAFile(path, key, lstatSync(path), this.dir);
      throw asStorageError(err, `file backend read failed at ${path}`, { dir: this.dir });
    }
    try {
      const stats = fstatSync(fd);
      // A directory fails the read below with EISDIR (backend-error), as a write over it does.
      if (!stats.isFile() && !stats.isDirectory()) throw notAFile(path, key, stats, this.dir);
      const size = Math.min(maxBytes, stats.size);
      if (size > MAX_READ_BYTES) throw tooLarge(path, key, stats.size, this.dir);
      // Writes replace a file by rename, so the open file keeps the size fstat saw. Unpooled: the bytes own their
      // buffer (an engine may transfer it to another thread).
      const out = new Uint8Array(Buffer.allocUnsafeSlow(size).buffer);
      let got = 0;
      while (got < out.byteLength) {
        const n = readSync(fd, out, got, out.byteLength - got, got);
        if (n === 0) break;
        got += n;
      }
      return got === out.byteLength ? out : out.subarray(0, got);
    } catch (err) {
      throw asStorageError(err, `file backend read failed at ${path}`, { dir: this.dir });
    } finally {
      closeSync(fd);
    }
  }

  write(key: string, bytes: Uint8Array): void {
    this.ensureOpen();
    if (this.readOnly) throw readOnlyError(this.name);
    this.ensureLockInPlace();
    const path = this.pathFor(key);
    assertBytes(bytes);
    try {
      fileFault("write", this.dir);
      this.prepareForWrite();
      const temp = this.writeTemp(bytes);
      try {
        renameSync(temp, path);
      } catch (err) {
        discardTemps([temp]);
        throw err;
      }
      fsyncDir(this.dir);
    } catch (err) {
      throw asStorageError(err, `file backend write failed at ${path}`, { dir: this.dir });
    }
  }

  delete(key: string): void {
    this.ensureOpen();
    if (this.readOnly) throw readOnlyError(this.name);
    this.ensureLockInPlace();
    const path = this.pathFor(key);
    try {
      fileFault("write", this.dir);
      // Deleting from a store that does not exist yet must not create it.
      if (!this.ready) {
        if (!existsSync(this.dir)) return;
        this.prepareForWrite();
      }
      try {
        unlinkSync(path);
      } catch (err) {
        if (errnoCode(err) === "ENOENT") return;
        throw err;
      }
      fsyncDir(this.dir);
    } catch (err) {
      throw asStorageError(err, `file backend delete failed at ${path}`, { dir: this.dir });
    }
  }

  list(prefix?: string): readonly string[] {
    this.ensureOpen();
    if (prefix !== undefined) assertValidKey(prefix, "prefix");
    let entries;
    try {
      entries = readdirSync(this.dir, { withFileTypes: true });
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return [];
      throw asStorageError(err, `file backend list failed at ${this.dir}`, { dir: this.dir });
    }
    // A Set: two spellings of one key (`%c3` and `%C3`) must not list it twice.
    const keys = new Set<string>();
    for (const entry of entries) {
      const fileName = entry.name;
      // Dot files (temp files, the lock) are never keys. ".bin" holds the empty key, which read() serves but list()
      // hides, as both reference implementations do.
      if (fileName.startsWith(".")) continue;
      if (entry.isDirectory()) continue;
      const key = decodeFileNameToKey(fileName);
      if (key === undefined || (prefix !== undefined && !key.startsWith(prefix))) continue;
      // Another spelling in the key alphabet is refused (isKeysOwnFile); a name with other raw characters is no key.
      if (!isCanonicalFileName(fileName) && (!usesKeyAlphabet(fileName) || !this.isKeysOwnFile(fileName, key))) continue;
      if (entry.isFile() || this.listable(join(this.dir, fileName), key)) keys.add(key);
    }
    return sortKeys(keys);
  }

  /**
   * A file named like a key under another spelling than the key's own (`caf%C3%A9.bin` for `caf%c3%a9.bin`, an escape
   * of a byte the encoder keeps, a `%` kept literally: the decode is lenient, as the references'). Read, write and
   * delete go by the key's own name, so listing its key offered a key that read() misses and delete() leaves listed,
   * and a restore listing a WAL frame so named took it for a frame that vanished (review r349 L1). It is another
   * program's file, refused (corrupt-store naming it) as a link there is; where the key's own name opens this very
   * entry (a file system that folds case), it is the key's file: true, listed. False: gone meanwhile.
   */
  private isKeysOwnFile(fileName: string, key: string): boolean {
    const path = join(this.dir, fileName);
    const own = encodeKeyToFileName(key);
    const look = (p: string): BigIntStats | undefined => {
      try {
        return lstatSync(p, { bigint: true });
      } catch (err) {
        if (errnoCode(err) === "ENOENT") return undefined;
        throw asStorageError(err, `file backend list failed at ${p}`, { dir: this.dir });
      }
    };
    const at = look(path);
    if (at === undefined) return false; // gone since the directory was read
    const byOwnName = look(join(this.dir, own));
    if (byOwnName !== undefined && at.dev === byOwnName.dev && at.ino === byOwnName.ino) return true;
    throw new StorageError(
      "corrupt-store",
      `file backend: ${path} is named like key ${JSON.stringify(key)}, whose file name is ${own}: another program put it there (read and delete of that key never find it), so it is not listed; rename it to ${own} to store it under that key, or remove it`,
      { dir: this.dir, key, path, expected: own, reason: "non-canonical-name" },
    );
  }

  /**
   * Whether a key's entry that is not a regular file is listed: list offers exactly the keys read() serves. A directory
   * is not; a symbolic link (never followed: read opens O_NOFOLLOW), FIFO, device or socket (read: corrupt-store)
   * throws the same typed error naming the file, so an
   * export or verify reports it instead of skipping a key the store holds (a restore that lists frames would see
   * a gap, or miss a tail frame, without a word).
   */
  private listable(path: string, key: string): boolean {
    let stats: Stats;
    try {
      stats = lstatSync(path);
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return false;
      throw asStorageError(err, `file backend list failed at ${path}`, { dir: this.dir });
    }
    if (stats.isFile()) return true;
    if (stats.isDirectory()) return false;
    throw notAFile(path, key, stats, this.dir, "listed");
  }

  /**
   * A batch writes every put to a temp file before it renames the first into place, so a temp file seen now is a
   * put of a batch under way not yet visible: waits until those seen at the call are gone (renamed or discarded).
   * Later batches are not waited for, so a writer that never pauses cannot starve the caller. Temps of a process no
   * longer running are a crash's leftovers; a thread that died mid-batch leaves its own: at most SETTLE_WAIT_MS.
   */
  async settleBatches(): Promise<void> {
    this.ensureOpen();
    let waiting = this.liveTemps();
    const deadline = performance.now() + SETTLE_WAIT_MS;
    while (waiting.size > 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1));
      const now = this.liveTemps();
      waiting = new Set([...waiting].filter((t) => now.has(t)));
    }
  }

  /**
   * Temp file names in the directory whose writing thread still runs. Not an undo's asides: they are no batch under
   * way (an undo left in doubt keeps one until its thread's next operation), and waiting for them stalled every call
   * its whole bound for as long as such a thread lived (review r229).
   */
  private liveTemps(): Set<string> {
    const out = new Set<string>();
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return out;
      throw asStorageError(err, `file backend list failed at ${this.dir}`, { dir: this.dir });
    }
    for (const name of names) {
      const m = TEMP_NAME.exec(name);
      if (m === null) continue;
      const pid = Number(m[1]);
      if (isProcessAlive(pid) && !threadGone(pid, m[3])) out.add(name);
    }
    return out;
  }

  /**
   * Puts are written to temp files and fsynced first, then renames/unlinks run in op order, then
   * one directory fsync makes them durable together. Not atomic (supports.atomicBatch = false):
   * a crash during the rename phase can leave a prefix of the batch applied. Every op is applied at
   * its own place, a key the batch writes more than once too (an engine's flush group joins many
   * flushes' batches, a key saved between them among them): writing such a key once, at its last op,
   * renamed later keys' files before the first op of it, a state no prefix of the batch has (review
   * r188: a shared-WAL record after the frames it names). Only a key's ops next to each other are
   * written once (the last of them): no other rename falls between them, so each state is a prefix's.
   */
  writeBatch(ops: readonly BatchOp[]): void {
    this.ensureOpen();
    if (this.readOnly) throw readOnlyError(this.name);
    assertValidBatch(ops);
    const staged = this.stage(ops);
    if (staged !== undefined) this.apply(staged);
  }

  /**
   * A batch's puts written to fsynced temp files, before any of them is renamed into place; undefined for an empty
   * batch. Every key is checked, even one a later op of it replaces.
   */
  private stage(ops: readonly BatchOp[]): Staged | undefined {
    for (const op of ops) this.pathFor(op.key);
    ops = lastOfEachRun(ops);
    const paths = ops.map((op) => this.pathFor(op.key));
    if (ops.length === 0) return undefined;
    this.ensureLockInPlace();
    const temps: (string | undefined)[] = [];
    try {
      fileFault("write", this.dir);
      this.prepareForWrite();
      for (const op of ops) {
        temps.push(op.op === "put" ? this.writeTemp(op.value) : undefined);
        this.onProgress?.();
      }
    } catch (err) {
      discardTemps(temps);
      throw asStorageError(err, `file backend batch failed in ${this.dir}`, { dir: this.dir });
    }
    return { ops, paths, temps };
  }

  /** Renames (unlinks) a staged batch's ops in order, then one directory fsync; its temp files are gone after. */
  private apply({ ops, paths, temps }: Staged): void {
    try {
      ops.forEach((op, i) => {
        const temp = temps[i];
        const path = paths[i] as string;
        if (temp === undefined) unlinkIfPresent(path);
        else renameSync(temp, path);
        temps[i] = undefined;
      });
      fsyncDir(this.dir);
    } catch (err) {
      discardTemps(temps);
      throw asStorageError(err, `file backend batch failed in ${this.dir}`, { dir: this.dir });
    }
  }

  /**
   * Checked and applied under the store's check lock (file-check-lock.ts), which every conditional batch of every
   * handle of the store takes, in any thread or process: no other conditional batch runs between the check and the
   * renames. The puts are written to fsynced temp files before, so the lock covers only reads, renames and one
   * directory fsync. Not atomic against a crash (as writeBatch), nor against a plain writeBatch or write of the same key, which takes
   * no lock. A batch of only new keys (`claimsOnly`) is linked (`claim`).
   */
  writeBatchIf(expected: ExpectedValue | readonly ExpectedValue[], ops: readonly BatchOp[]): boolean {
    this.ensureOpen();
    if (this.readOnly) throw readOnlyError(this.name);
    const list = expectedList(expected);
    assertValidBatch(ops);
    const claims = !this.noLinks && claimsOnly(list, ops);
    // A claim of a key taken already fails here, before its temp files are written (a missing file is one open call).
    // Other batches are checked under the lock only: an array read twice would cost as much as its write.
    if (claims && !holdsAll(list, (key) => this.read(key))) return false;
    const staged = this.stage(ops);
    if (staged === undefined) return holdsAll(list, (key) => this.read(key)); // an empty batch answers the check alone
    try {
      return this.checkLock().run(() => {
        // The store lock was looked at before the temp files were written (stage); the wait for the check lock may
        // have lasted a second, another process may have taken the store meanwhile (its lock removed): looked at again.
        this.ensureLockInPlace();
        return claims ? this.claim(staged, list) : this.checkedApply(staged, list);
      });
    } finally {
      discardTemps(staged.temps);
    }
  }

  /** Under the check lock: applies a staged batch if every expected key holds its value. */
  private checkedApply(staged: Staged, list: readonly ExpectedValue[]): boolean {
    if (!holdsAll(list, (key) => this.read(key))) return false;
    fileFault("apply", this.dir);
    this.apply(staged);
    return true;
  }

  /**
   * A batch of puts of distinct keys, each expected to hold no value (`claimsOnly`): each key is linked to its fsynced
   * temp file in op order (link(2) fails with EEXIST when the name exists, atomically, also against a writer that takes
   * no check lock), then one directory fsync. Whatever fails after a link was made, the links made are undone (they
   * held nothing before: unlinked, the directory fsynced), so a batch answered false or failed stored none of its keys
   * and its retry may claim the same keys; where the undo itself fails, the error says `inDoubt: true` (some keys may
   * be stored). A file system without hard links (EPERM, ENOTSUP) is checked and renamed instead, as every later
   * conditional batch of the handle is. Not atomic against a crash, as writeBatch.
   *
   * link(2) may make the entry and still answer an error (NFS: the reply to a LINK is lost, the retransmitted LINK
   * answers EEXIST, or EIO, after the first one landed). So after a failed link the name is looked at: the temp
   * file's own inode there is this batch's link (EEXIST: made, the claim goes on; another error: undone with the
   * others), another file or none is not; where that cannot be told, the batch is in doubt.
   */
  private claim(staged: Staged, list: readonly ExpectedValue[]): boolean {
    const { paths, temps } = staged;
    const made: number[] = [];
    try {
      for (let i = 0; i < paths.length; i++) {
        const temp = temps[i] as string;
        const path = paths[i] as string;
        try {
          fileFault("link", path);
          linkSync(temp, path);
        } catch (err) {
          let landed: boolean;
          try {
            landed = this.isLinkOf(path, temp);
          } catch (statErr) {
            try {
              this.undoClaims(made, paths, temps, err);
            } catch {
              // In doubt either way: the error below names every file, this one too.
            }
            throw this.inDoubt(err, statErr, [...made.map((j) => paths[j] as string), path]);
          }
          const code = errnoCode(err);
          if (landed) {
            made.push(i);
            if (code === "EEXIST") continue; // this batch's own link, answered twice: it is made
            throw err; // undone below with the others
          }
          if (code === "EEXIST") {
            this.undoClaims(made, paths, temps, err);
            return false;
          }
          if (code === "EPERM" || code === "ENOTSUP" || code === "EOPNOTSUPP") {
            this.undoClaims(made, paths, temps, err);
            this.noLinks = true;
            return this.checkedApply(staged, list);
          }
          throw err;
        }
        made.push(i);
      }
      fileFault("fsync-dir", this.dir);
      fsyncDir(this.dir);
    } catch (err) {
      if (err instanceof StorageError) throw err; // the undo's in-doubt error, or checkedApply's own
      this.undoClaims(made, paths, temps, err);
      throw asStorageError(err, `file backend batch failed in ${this.dir}`, { dir: this.dir });
    }
    return true;
  }

  /**
   * Whether the entry `path` is a link of the file `temp` (one inode). No entry, or another file (a plain write's
   * rename: it takes no check lock), is false; a failed stat throws.
   */
  private isLinkOf(path: string, temp: string): boolean {
    fileFault("same-file", path);
    let at: BigIntStats;
    try {
      at = lstatSync(path, { bigint: true });
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return false;
      throw err;
    }
    const ours = lstatSync(temp, { bigint: true });
    return at.ino === ours.ino && at.dev === ours.dev;
  }

  /**
   * Removes the keys a failed claim linked (`made`: indexes into paths and temps; they held nothing before) and makes
   * that durable; in doubt if it cannot (every key is tried; the first failure is the one reported). Only this batch's
   * own links are removed: a name holding another file (a plain write renamed onto it since: it takes no check lock) is
   * that writer's. Looking at the name and then unlinking it left a window in which such a write landed and was
   * unlinked, acknowledged and lost; so each name is first moved aside (`undoClaim`), and what was moved is settled.
   */
  private undoClaims(made: readonly number[], paths: readonly string[], temps: readonly (string | undefined)[], cause: unknown): void {
    if (made.length === 0) return;
    let failed: { err: unknown } | undefined;
    for (const i of made) {
      try {
        this.undoClaim(paths[i] as string, temps[i] as string);
      } catch (err) {
        failed ??= { err };
      }
    }
    try {
      if (failed !== undefined) throw failed.err;
      fileFault("undo-fsync-dir", this.dir);
      fsyncDir(this.dir);
    } catch (err) {
      throw this.inDoubt(cause, err, made.map((i) => paths[i] as string));
    }
  }

  /**
   * Moves the name `path` aside (rename(2), atomic: a write landing after it takes the empty name and is not touched)
   * to a unique dot name in the store directory that carries the inode of `temp` (the claim's own link's), then
   * settles it (`settleAside`). If the aside cannot be made (ENOSPC: a directory that must grow on a full disk; a name
   * too long for the key's file name and the aside's prefix), the undo looks at the name and unlinks its own link
   * (the old way, with its narrow window: design §3.13). An aside that fails to settle stays, this handle's to settle
   * at its next operation (or a sweep's, if the thread ends), and the error goes up (the batch is in doubt).
   */
  private undoClaim(path: string, temp: string): void {
    const ino = lstatSync(temp, { bigint: true }).ino;
    const aside = join(this.dir, `${UNDO_PREFIX}${process.pid}-${threadId}-${tempCounter++}-${KERNEL_PART}-${ino}-${basename(path)}`);
    if (Buffer.byteLength(basename(aside)) > MAX_FILE_NAME_BYTES) return this.lookThenUnlink(path, temp);
    try {
      fileFault("undo-unlink", path);
      renameSync(path, aside);
    } catch (err) {
      const code = errnoCode(err);
      if (code === "ENOENT") return; // removed meanwhile (a plain delete): nothing of this batch is there
      if (code === "ENOSPC" || code === "EDQUOT") return this.lookThenUnlink(path, temp);
      throw err;
    }
    this.asides.add(aside);
    this.settleAside(aside);
    this.asides.delete(aside);
  }

  /** The undo of one key without an aside: unlinks the name if it holds the claim's own link (`temp`'s inode). */
  private lookThenUnlink(path: string, temp: string): void {
    if (!this.isLinkOf(path, temp)) return;
    fileFault("undo-own", path);
    unlinkIfPresent(path);
  }

  /**
   * Settles a key's name an undo moved aside (`aside`, named by ASIDE_NAME). The file there is the claim's own link
   * when its inode is the one in the name (the aside keeps its inode, which no other file can take while it exists):
   * removed, never put back, whenever and by whomever this runs (the claim failed, or its thread ended unanswered; a
   * later handle may have claimed, written and deleted the key since: review r229). Another inode is another writer's
   * file, which landed on the name before the undo moved it: put back where the name is free (`putBack`). Gone: settled
   * already. Whether the directory changed.
   */
  private settleAside(aside: string): boolean {
    const m = ASIDE_NAME.exec(basename(aside));
    // Only a key's file name is moved aside: anything else is not this store's to put back or remove.
    if (m === null || decodeFileNameToKey(m[5] as string) === undefined) return false;
    const path = join(this.dir, m[5] as string);
    let at: BigIntStats;
    try {
      fileFault("same-file", path);
      at = lstatSync(aside, { bigint: true });
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return false;
      throw err;
    }
    if (at.ino === BigInt(m[4] as string)) {
      fileFault("undo-own", path);
      unlinkIfPresent(aside);
    } else {
      putBack(aside, path);
    }
    return true;
  }

  /** Settles what this handle's undo left aside in doubt; what fails again stays for the next operation. */
  private retryAsides(): void {
    let changed = false;
    for (const aside of [...this.asides]) {
      try {
        changed = this.settleAside(aside) || changed;
        this.asides.delete(aside);
      } catch {
        // Still in doubt: tried again at the next operation, or by a sweep once this thread has ended.
      }
    }
    try {
      if (changed) fsyncDir(this.dir);
    } catch {
      // Not durable yet: a crash brings the aside back, and a sweep settles it the same way.
    }
  }

  /**
   * backend-error with `inDoubt: true`: a claim failed (`cause`), and undoing its links, or telling whether a failed
   * link was made, failed too (`undoErr`).
   */
  private inDoubt(cause: unknown, undoErr: unknown, paths: readonly string[]): StorageError {
    const why = (e: unknown): string => (e instanceof Error ? e.message : String(e));
    const osCode = errnoCode(cause);
    const undoOsCode = errnoCode(undoErr);
    return new StorageError(
      "backend-error",
      `file backend batch failed in ${this.dir} (${why(cause)}) after linking some of its keys, and removing them or telling whether they are there failed (${why(undoErr)}): they may be stored`,
      {
        dir: this.dir,
        inDoubt: true,
        files: paths.map((p) => basename(p)),
        ...(typeof osCode === "string" ? { osCode } : {}),
        ...(typeof undoOsCode === "string" ? { undoOsCode } : {}),
      },
      cause,
    );
  }

  private checkLock(): CheckLock {
    return (this.check ??= new CheckLock(this.dir, this.lock === undefined ? undefined : { made: this.lock.side }));
  }

  close(): void {
    if (this.closed) return;
    if (this.asides.size > 0) this.retryAsides();
    this.closed = true;
    this.check?.close();
    this.check = undefined;
    this.lock?.release();
    this.lock = undefined;
  }

  /**
   * Refuses to write once the lock file is not the one taken (removed, replaced, or the directory swapped for
   * another): another process could hold the store now, and a write by path would land beside its writes.
   */
  private ensureLockInPlace(): void {
    if (this.lost !== undefined) throw this.lost;
    const moved = this.place?.moved();
    if (moved === undefined) return;
    // For good (finalError) only when the lock is positively gone or replaced (StorePlace.lockGone): another writer
    // may have taken the store meanwhile, and a directory made again is an empty store with nothing of this writer's
    // under what it would write next; its tiers stop retrying and a waiter hears it (review r265 F6). A directory
    // moved aside (missing, or a file in its place) may come back with this very lock: that failure may pass, and
    // the writes resume once it is back (task 280).
    if (this.place!.lockGone()) throw (this.lost = this.place!.error(moved));
    throw this.place!.error(moved);
  }

  /** Set once the lock file was found positively gone or replaced: every later write throws it (the same object). */
  get finalError(): StorageError | undefined {
    return this.lost;
  }

  private ensureOpen(): void {
    if (this.closed) throw new StorageError("closed", `${this.name} backend is closed`);
    if (this.asides.size > 0) this.retryAsides();
  }

  /** The shared key rule is applied by encodeKeyToFileName (through pathFor); the length rule is this backend's. */
  checkKey(key: string): void {
    this.pathFor(key);
  }

  private pathFor(key: string): string {
    const fileName = encodeKeyToFileName(key);
    if (fileName.length > MAX_FILE_NAME_BYTES) {
      throw new StorageError(
        "invalid-key",
        `key too long for the file backend: its file name would be ${fileName.length} bytes (max ${MAX_FILE_NAME_BYTES})`,
        { keyLength: key.length, fileNameBytes: fileName.length },
      );
    }
    return join(this.dir, fileName);
  }

  private prepareForWrite(): void {
    if (this.ready) return;
    mkdirDurable(this.dir);
    this.sweepTemps();
    this.ready = true;
  }

  /**
   * Removes temp files a crashed writer left behind. Under the lock no other process can be writing, so theirs are
   * stale, and so are this thread's (its batches run synchronously, none is under way now) and those of this
   * process's threads that ended (a worker terminated mid-batch); another thread of this process shares the lock and
   * may be writing its temp files this moment (two handles' first writes at once: the sweep of one removed a temp
   * file the other then renamed, ENOENT), so a live thread's stay, and so does a thread's whose end cannot be told
   * (no procfs) until a later process sweeps them. Without the lock: only those of processes or threads that ended.
   * An undo's asides under the same owner rules are settled (`settleAside`), not removed.
   *
   * Cleanup, best effort (as `discardTemps`): the write goes on whatever this cannot remove or read. A temp file's
   * name this user may not remove (another user's file in a sticky directory: EPERM; a directory named like a temp
   * file: EISDIR; a read-only mount) failed every write of the store for good (review r349 M2); it stays, as does
   * everything when the directory cannot be listed (a directory this user may write but not read). What stays is a
   * dot name: never a key (list skips it; no key's file name starts with a dot but the empty key's `.bin`, which no
   * temp name is), never read; a reader's settleBatches waits for it only while its process runs.
   */
  private sweepTemps(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return; // nothing swept: a later handle's first write tries again
    }
    let settled = false;
    for (const fileName of names) {
      const temp = TEMP_NAME.exec(fileName);
      const aside = temp === null ? ASIDE_NAME.exec(fileName) : null;
      const m = temp ?? aside;
      if (m === null) continue;
      const pid = Number(m[1]);
      const mine = pid === process.pid;
      const tid = m[3] === "" ? undefined : m[3];
      const stale =
        this.lock === undefined
          ? (!mine && !isProcessAlive(pid)) || threadGone(pid, tid)
          : !mine || Number(m[2]) === threadId || threadGone(pid, tid);
      if (!stale) continue;
      try {
        if (temp !== null) {
          unlinkIfPresent(join(this.dir, fileName));
        } else {
          // An undo cut short (a crash, an ended thread, an undo in doubt): settled as the undo would have (`settleAside`).
          settled = this.settleAside(join(this.dir, fileName)) || settled;
        }
      } catch {
        // Left for a later sweep (see above): this write goes on.
      }
    }
    if (settled) fsyncDir(this.dir);
  }

  /** Writes `bytes` to a fresh temp file in the store directory and fsyncs it. */
  private writeTemp(bytes: Uint8Array): string {
    const temp = join(this.dir, `${TEMP_PREFIX}${process.pid}-${threadId}-${tempCounter++}${KERNEL_SUFFIX}`);
    const fd = openSync(temp, "wx");
    try {
      for (let off = 0; off < bytes.byteLength; ) off += writeSync(fd, bytes, off, bytes.byteLength - off);
      fsyncSync(fd);
    } catch (err) {
      closeSync(fd);
      discardTemps([temp]);
      throw err;
    }
    closeSync(fd);
    return temp;
  }
}

/**
 * Opens the file store in `dir`. A locking backend (the default) creates the directory and takes the lock now; an
 * unlocked one creates it on its first write. Throws StorageError("store-locked") if another writer holds it.
 */
export function fileBackend(dir: string, opts: FileBackendOptions = {}): FileBackend {
  return openFileBackend(dir, opts, false);
}

/**
 * fileBackend() for a writer reopening a store it held (the engine's actor replacing a lost one): the directory and
 * its lock must be there (reopen.ts), nothing is created. Internal: not exported by the package.
 */
export function reopenFileBackend(dir: string, opts: FileBackendOptions = {}): FileBackend {
  return openFileBackend(dir, opts, true);
}

function openFileBackend(dir: string, opts: FileBackendOptions, mustExist: boolean): FileBackend {
  if (typeof dir !== "string" || dir === "") throw new TypeError("dir must be a non-empty string");
  if (!isRecord(opts as unknown)) throw new TypeError("fileBackend options must be an object");
  refuseUnknownKeys(opts, ["lock", "readOnly", "onProgress"], "fileBackend");
  const readOnly = opts.readOnly ?? false;
  if (typeof readOnly !== "boolean") throw new TypeError("opts.readOnly must be a boolean");
  const lock = opts.lock ?? !readOnly;
  if (typeof lock !== "boolean") throw new TypeError("opts.lock must be a boolean");
  if (opts.onProgress !== undefined && typeof opts.onProgress !== "function") throw new TypeError("opts.onProgress must be a function");
  // A `link/..` the kernel takes elsewhere than the text is refused (design §3.12): what is left names one directory
  // read either way, so resolve() names it as the engine (storeKey, normalise) and the CLI do.
  assertOneMeaning(dir, "file store directory");
  return new FileStore(resolve(dir), lock && !readOnly, readOnly, opts.onProgress, mustExist);
}

/** The last op of each run of one key's ops next to each other, in order; `ops` itself when no key follows itself. */
function lastOfEachRun(ops: readonly BatchOp[]): readonly BatchOp[] {
  let runs = false;
  for (let i = 1; i < ops.length && !runs; i++) runs = ops[i]!.key === ops[i - 1]!.key;
  if (!runs) return ops;
  return ops.filter((op, i) => i === ops.length - 1 || ops[i + 1]!.key !== op.key);
}
