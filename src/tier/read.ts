import { compareKeys } from "../backend/keys.js";
import type { MaybePromise, StorageBackend } from "../backend/types.js";
import { isPromiseLike } from "./maybe.js";

/** Applies `f` now for a sync value, after resolution for a promise (keeps sync backends zero-microtask). */
function then<A, B>(v: MaybePromise<A>, f: (a: A) => B): MaybePromise<B> {
  return isPromiseLike(v) ? Promise.resolve(v).then(f) : f(v);
}

/** Reads a value; a 0-byte value counts as absent (docs/protocol.md §3). Sync for sync backends. */
export function readValue(backend: StorageBackend, key: string): MaybePromise<Uint8Array | undefined> {
  return then(backend.read(key), (bytes) => (bytes === undefined || bytes.byteLength === 0 ? undefined : bytes));
}

/** Keys that literally start with `prefix`, sorted by code point whatever order the backend returned. Sync for sync backends. */
export function listSorted(backend: StorageBackend, prefix?: string): MaybePromise<string[]> {
  if (!backend.list) return [];
  return then(backend.list(prefix), (keys) => {
    const out = prefix ? keys.filter((k) => k.startsWith(prefix)) : [...keys];
    return out.sort(compareKeys);
  });
}
