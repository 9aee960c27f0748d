/** Convenience tiers over a backend they own: closing the tier closes the backend. */
import { memoryBackend } from "../backend/memory.js";
import { fileBackend } from "../backend/file.js";
import { sqliteBackend, type SqliteBackendOptions } from "../backend/sqlite.js";
import type { StorageBackend } from "../backend/types.js";
import { snapshotStorage } from "./snapshot.js";
import { appendLogStorage } from "./append-log.js";
import { kvStorage } from "./kv.js";
import { isPermanent } from "./core.js";
import { validateStoreTierOptions } from "./options.js";
import type {
  AppendLogStorageOptions,
  AppendLogStorageTier,
  BaseStorageTier,
  KvStorageOptions,
  KvStorageTier,
  SnapshotStorageOptions,
  SnapshotStorageTier,
} from "./types.js";

function owning<Tier extends BaseStorageTier>(tier: Tier, backend: StorageBackend): Tier {
  const closeTier = tier.close.bind(tier);
  return Object.assign(tier, {
    async close(): Promise<void> {
      try {
        await closeTier();
      } catch (err) {
        // A refusal reported at close still closed the tier; a failed write left it open, so its backend stays.
        if (isPermanent(err)) await backend.close?.();
        throw err;
      }
      await backend.close?.();
    },
  });
}

export const memorySnapshot = <T>(opts?: SnapshotStorageOptions<T>): SnapshotStorageTier<T> =>
  snapshotStorage<T>(memoryBackend(), opts);
export const memoryAppendLog = <T>(opts?: AppendLogStorageOptions<T>): AppendLogStorageTier<T> =>
  appendLogStorage<T>(memoryBackend(), opts);
export const memoryKv = <T>(opts?: KvStorageOptions<T>): KvStorageTier<T> => kvStorage<T>(memoryBackend(), opts);

/** What the file and SQLite factories take beside the tier's own options. */
export interface StoreTierOptions {
  /**
   * Open the store read-only (the backends' `readOnly`): no lock, works while another process writes, and the tier
   * refuses writes when they are offered with StorageError("read-only").
   */
  readonly readOnly?: boolean;
}

/** `sqlite` passes SqliteBackendOptions through (its `readOnly` must agree with the top-level one). */
export type SqliteTierOptions = StoreTierOptions & { readonly sqlite?: SqliteBackendOptions };

/**
 * Builds a tier over a backend opened for it. A tier that cannot be built (bad options) closes the backend again: a
 * failed call keeps no lock or connection, so the next call starts afresh.
 */
function over<Tier extends BaseStorageTier>(backend: StorageBackend, make: (b: StorageBackend) => Tier): Tier {
  let tier: Tier;
  try {
    tier = make(backend);
  } catch (err) {
    closeQuietly(backend);
    throw err;
  }
  return owning(tier, backend);
}

/** Closes a backend whose tier could not be built: the construction error is the one to report. */
function closeQuietly(backend: StorageBackend): void {
  try {
    Promise.resolve(backend.close?.()).catch(() => undefined);
  } catch {
    // A synchronous close that throws has nothing more to release.
  }
}

function fileStore(dir: string, opts: StoreTierOptions | undefined): StorageBackend {
  validateStoreTierOptions(opts, "file");
  return fileBackend(dir, { readOnly: opts?.readOnly });
}

function sqliteStore(path: string, opts: SqliteTierOptions | undefined): StorageBackend {
  validateStoreTierOptions(opts, "sqlite");
  const readOnly = opts?.readOnly;
  const sqlite = opts?.sqlite;
  if (readOnly === undefined) return sqliteBackend(path, sqlite);
  if (sqlite?.readOnly !== undefined && sqlite.readOnly !== readOnly) {
    throw new TypeError(`opts.readOnly (${String(readOnly)}) and opts.sqlite.readOnly (${String(sqlite.readOnly)}) disagree`);
  }
  return sqliteBackend(path, { ...sqlite, readOnly });
}

export function fileSnapshot<T>(dir: string, opts?: SnapshotStorageOptions<T> & StoreTierOptions): SnapshotStorageTier<T> {
  return over(fileStore(dir, opts), (b) => snapshotStorage<T>(b, opts));
}
export function fileAppendLog<T>(dir: string, opts?: AppendLogStorageOptions<T> & StoreTierOptions): AppendLogStorageTier<T> {
  return over(fileStore(dir, opts), (b) => appendLogStorage<T>(b, opts));
}
export function fileKv<T>(dir: string, opts?: KvStorageOptions<T> & StoreTierOptions): KvStorageTier<T> {
  return over(fileStore(dir, opts), (b) => kvStorage<T>(b, opts));
}

export function sqliteSnapshot<T>(path: string, opts?: SnapshotStorageOptions<T> & SqliteTierOptions): SnapshotStorageTier<T> {
  return over(sqliteStore(path, opts), (b) => snapshotStorage<T>(b, opts));
}
export function sqliteAppendLog<T>(path: string, opts?: AppendLogStorageOptions<T> & SqliteTierOptions): AppendLogStorageTier<T> {
  return over(sqliteStore(path, opts), (b) => appendLogStorage<T>(b, opts));
}
export function sqliteKv<T>(path: string, opts?: KvStorageOptions<T> & SqliteTierOptions): KvStorageTier<T> {
  return over(sqliteStore(path, opts), (b) => kvStorage<T>(b, opts));
}
