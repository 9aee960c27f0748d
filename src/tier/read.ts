import { compareKeys } from "../backend/keys.js";
import type { StorageBackend } from "../backend/types.js";

/** Reads a value; a 0-byte value counts as absent (protocol §3). */
export async function readValue(backend: StorageBackend, key: string): Promise<Uint8Array | undefined> {
  const bytes = await backend.read(key);
  return bytes === undefined || bytes.byteLength === 0 ? undefined : bytes;
}

/** Keys that literally start with `prefix`, sorted by code point whatever order the backend returned. */
export async function listSorted(backend: StorageBackend, prefix?: string): Promise<string[]> {
  if (!backend.list) return [];
  const keys = await backend.list(prefix);
  const out = prefix ? keys.filter((k) => k.startsWith(prefix)) : [...keys];
  return out.sort(compareKeys);
}
