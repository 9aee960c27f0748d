/**
 * Backends whose name is the path of a store on disk (a SQLite file, a file store): that path, resolved, is the
 * store's lasting identity (src/tier/store-identity.ts). A name alone proves nothing: a memory or custom backend may
 * be named anything, even "file:/…", and must not be taken for the file's store. Layer 1 (backend).
 */
const onDisk = new WeakSet<object>();

/** Marks `backend` (made by this package's SQLite or file backend) as naming its store's path. */
export function markOnDiskStore(backend: object): void {
  onDisk.add(backend);
}

/** Whether `backend` was made by this package's SQLite or file backend. */
export function isOnDiskStore(backend: object): boolean {
  return onDisk.has(backend);
}
