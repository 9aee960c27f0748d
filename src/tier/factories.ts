/** Convenience tiers over a backend they own: closing the tier closes the backend. */
import { memoryBackend } from "../backend/memory.js";
import { fileBackend } from "../backend/file.js";
import { sqliteBackend, type SqliteBackendOptions } from "../backend/sqlite.js";
import type { StorageBackend } from "../backend/types.js";
import { snapshotStorage } from "./snapshot.js";
import { appendLogStorage } from "./append-log.js";
import { kvStorage } from "./kv.js";
import { isPermanent } from "./core.js";
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

export function fileSnapshot<T>(dir: string, opts?: SnapshotStorageOptions<T>): SnapshotStorageTier<T> {
  const b = fileBackend(dir);
  return owning(snapshotStorage<T>(b, opts), b);
}
export function fileAppendLog<T>(dir: string, opts?: AppendLogStorageOptions<T>): AppendLogStorageTier<T> {
  const b = fileBackend(dir);
  return owning(appendLogStorage<T>(b, opts), b);
}
export function fileKv<T>(dir: string, opts?: KvStorageOptions<T>): KvStorageTier<T> {
  const b = fileBackend(dir);
  return owning(kvStorage<T>(b, opts), b);
}

export function sqliteSnapshot<T>(
  path: string,
  opts?: SnapshotStorageOptions<T> & { sqlite?: SqliteBackendOptions },
): SnapshotStorageTier<T> {
  const b = sqliteBackend(path, opts?.sqlite);
  return owning(snapshotStorage<T>(b, opts), b);
}
export function sqliteAppendLog<T>(
  path: string,
  opts?: AppendLogStorageOptions<T> & { sqlite?: SqliteBackendOptions },
): AppendLogStorageTier<T> {
  const b = sqliteBackend(path, opts?.sqlite);
  return owning(appendLogStorage<T>(b, opts), b);
}
export function sqliteKv<T>(path: string, opts?: KvStorageOptions<T> & { sqlite?: SqliteBackendOptions }): KvStorageTier<T> {
  const b = sqliteBackend(path, opts?.sqlite);
  return owning(kvStorage<T>(b, opts), b);
}
