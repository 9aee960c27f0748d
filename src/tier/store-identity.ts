/**
 * Which store a tier writes to, told apart across tier objects: two tiers over one store (two engine proxies of
 * one store spec, two inline tiers over one backend or two backends of one file) write the same keys. Graph attach
 * uses it to refuse a second writer of a graph's keys and to find, for compaction, the pairs sharing a WAL
 * (docs/design.md §3.7, §3.10). Layer 2 (tier).
 */
import type { StorageBackend } from "../backend/types.js";
import { storeRealPath } from "../backend/store-place.js";
import { assertOneMeaning } from "../backend/real-path.js";
import { isOnDiskStore } from "../backend/on-disk.js";

/** A tier's store: `id` is equal (===) for tiers over one store; `engineKey` is an engine tier's store key. */
export interface TierStore {
  readonly id: string | object;
  readonly engineKey?: string;
}

type Source = { readonly backend: StorageBackend } | { readonly store: () => TierStore };

/** Registered by the tier factories (inline-surface.ts, the engine's proxies); resolved on first ask. */
const sources = new WeakMap<object, Source>();
const resolved = new WeakMap<object, TierStore>();

/** Notes that inline tier `tier` writes to `backend`. */
export function setTierBackend(tier: object, backend: StorageBackend): void {
  sources.set(tier, { backend });
}

/** Notes an engine tier's store (`store` runs on first ask: resolving a path takes system calls). */
export function setTierStore(tier: object, store: () => TierStore): void {
  sources.set(tier, { store });
}

/**
 * The store `tier` writes to; undefined for a tier no factory of this package made (a hand-written tier, a wrapper
 * object made with Object.create still finds its prototype's).
 */
export function tierStore(tier: object): TierStore | undefined {
  for (let t: object | null = tier; t !== null; t = Object.getPrototypeOf(t) as object | null) {
    const known = resolved.get(t);
    if (known !== undefined) return known;
    const source = sources.get(t);
    if (source === undefined) continue;
    const store = "store" in source ? source.store() : { id: backendStoreId(source.backend) };
    resolved.set(t, store);
    return store;
  }
  return undefined;
}

/**
 * The id of `backend`'s store: for a SQLite file or a file store of this package (never a backend merely named like
 * one), its kind and real path (so two backends opened on one file, or an engine store of it, are one store); for a
 * PostgreSQL store its `storeId` (the engine's store key without `?ro`: inline and engine tiers of it are one
 * store); for anything else (memory, an in-memory SQLite database, a custom backend) the backend object itself. A string id is lasting: another process finds the store
 * by it (the shared-WAL record names stores so, src/persistence/shared-wal-record.ts); an object is this process's.
 */
export function backendStoreId(backend: StorageBackend): string | object {
  return (isOnDiskStore(backend) ? pathStoreId(backend.name) : undefined) ?? postgresId(backend) ?? backend;
}

/** A PostgreSQL backend's `storeId` (src/backend/postgres.ts), told by shape: this layer does not load `pg`. */
function postgresId(backend: StorageBackend): string | undefined {
  const id = (backend as { readonly storeId?: unknown }).storeId;
  return typeof id === "string" && id.startsWith("postgres:") && backend.name.startsWith("postgres") ? id : undefined;
}

/** The id of a store an engine opens from `spec` (a SQLite file or a file store), else undefined. */
export function specStoreId(spec: { readonly kind: string; readonly path?: string; readonly dir?: string }): string | undefined {
  if (spec.kind === "sqlite" && typeof spec.path === "string") return pathStoreId(`sqlite:${spec.path}`);
  if (spec.kind === "file" && typeof spec.dir === "string") return pathStoreId(`file:${spec.dir}`);
  return undefined;
}

/**
 * `sqlite:<real path>` / `file:<real dir>` for a name of that shape (a backend's name), else undefined (also when the
 * path cannot be resolved, a loop of links: the store is then told by its object, as an unknown backend is). A path
 * whose directories are not created yet gets the real path it will have (storeRealPath): an engine tier asks before
 * its actor creates them, the actor after, and both must name one store alike (review r218).
 */
function pathStoreId(name: string): string | undefined {
  try {
    return realPathStoreId(name);
  } catch {
    return undefined;
  }
}

function realPathStoreId(name: string): string | undefined {
  if (name.startsWith("sqlite:")) {
    const path = name.slice("sqlite:".length);
    return path === "" || path === ":memory:" ? undefined : `sqlite:${onePlace(path)}`;
  }
  if (name.startsWith("file:")) {
    const dir = name.slice("file:".length);
    // Its directory may not exist yet (an engine tier asks before its actor creates it): the name it will have.
    return dir === "" ? undefined : `file:${onePlace(dir)}`;
  }
  return undefined;
}

/**
 * The real path of a store path every opener accepts. A `link/..` spelling the kernel and the text take to two places
 * throws (no id), as every opener refuses it (design §3.12): compaction's matcher of such a spec matches nothing, and
 * the engine refuses the job.
 */
function onePlace(path: string): string {
  assertOneMeaning(path, "store path");
  return storeRealPath(path);
}
