/** Convenience tiers over a backend they own: closing the tier closes the backend. */
import { memoryBackend } from "../backend/memory.js";
import { fileBackend } from "../backend/file.js";
import { sqliteBackend, type SqliteBackendOptions } from "../backend/sqlite.js";
import type { StorageBackend } from "../backend/types.js";
import { snapshotStorage } from "./snapshot.js";
import { appendLogStorage } from "./append-log.js";
import { kvStorage } from "./kv.js";
import { isPermanent } from "./core.js";
import { validateStoreTierOptions, validateTierOptions, type TierKind } from "./options.js";
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

/** What file and SQLite factories take beside the tier's own options (StoreTierOptions, SqliteTierOptions). */
const STORE_KEYS = { file: ["readOnly"], sqlite: ["readOnly", "sqlite"] } as const;

/**
 * Every key of a file or SQLite factory's options is checked before its store is opened (a refused call leaves no
 * file or lock behind); the tier gets its own options, without the store's.
 */
function checked<O>(opts: O | undefined, kind: TierKind, store: "file" | "sqlite"): O | undefined {
  validateStoreTierOptions(opts, store);
  if (opts === undefined) return undefined;
  validateTierOptions(opts, kind, "object", STORE_KEYS[store]);
  const { readOnly: _readOnly, sqlite: _sqlite, ...own } = opts as Record<string, unknown>;
  return own as O;
}

function fileStore(dir: string, opts: StoreTierOptions | undefined): StorageBackend {
  return fileBackend(dir, { readOnly: opts?.readOnly });
}

function sqliteStore(path: string, opts: SqliteTierOptions | undefined): StorageBackend {
  const readOnly = opts?.readOnly;
  const sqlite = opts?.sqlite;
  if (readOnly === undefined) return sqliteBackend(path, sqlite);
  if (sqlite?.readOnly !== undefined && sqlite.readOnly !== readOnly) {
    throw new TypeError(`opts.readOnly (${String(readOnly)}) and opts.sqlite.readOnly (${String(sqlite.readOnly)}) disagree`);
  }
  return sqliteBackend(path, { ...sqlite, readOnly });
}

export function fileSnapshot<T>(dir: string, opts?: SnapshotStorageOptions<T> & StoreTierOptions): SnapshotStorageTier<T> {
  const own = checked(opts, "snapshot", "file");
  return over(fileStore(dir, opts), (b) => snapshotStorage<T>(b, own));
}
export function fileAppendLog<T>(dir: string, opts?: AppendLogStorageOptions<T> & StoreTierOptions): AppendLogStorageTier<T> {
  const own = checked(opts, "append-log", "file");
  return over(fileStore(dir, opts), (b) => appendLogStorage<T>(b, own));
}
export function fileKv<T>(dir: string, opts?: KvStorageOptions<T> & StoreTierOptions): KvStorageTier<T> {
  const own = checked(opts, "kv", "file");
  return over(fileStore(dir, opts), (b) => kvStorage<T>(b, own));
}

export function sqliteSnapshot<T>(path: string, opts?: SnapshotStorageOptions<T> & SqliteTierOptions): SnapshotStorageTier<T> {
  const own = checked(opts, "snapshot", "sqlite");
  return over(sqliteStore(path, opts), (b) => snapshotStorage<T>(b, own));
}
export function sqliteAppendLog<T>(path: string, opts?: AppendLogStorageOptions<T> & SqliteTierOptions): AppendLogStorageTier<T> {
  const own = checked(opts, "append-log", "sqlite");
  return over(sqliteStore(path, opts), (b) => appendLogStorage<T>(b, own));
}
export function sqliteKv<T>(path: string, opts?: KvStorageOptions<T> & SqliteTierOptions): KvStorageTier<T> {
  const own = checked(opts, "kv", "sqlite");
  return over(sqliteStore(path, opts), (b) => kvStorage<T>(b, own));
}
