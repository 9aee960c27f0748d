/**
 * A PostgreSQL URL is parsed where it is given, inline backend and engine spec alike: one that does not parse is
 * StorageError("invalid-argument") at once (docs/api.md error codes), not backend-error ENOTFOUND after node-postgres
 * took it for a host name and a DNS lookup failed.
 */
import { StorageError } from "../errors.js";

/** `option` names it in the message (`url`, `store.url`); the text itself is never repeated (it may hold a password). */
export function parsePostgresUrl(url: string, option: string): URL {
  try {
    return new URL(url);
  } catch {
    throw new StorageError("invalid-argument", `${option} is not a valid postgres:// URL`, { option: "url" });
  }
}
