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

/**
 * A PostgreSQL store's identity, `postgres:user@host:port/database/schema.table/store`: the parts that select it,
 * never the password, with node-postgres's defaults filled in (host localhost, port 5432, database the user), so an
 * inline backend and an engine store spec of one store get one id (graph attach tells stores apart by it:
 * src/tier/store-identity.ts). Hosts are compared as written: `localhost` and `127.0.0.1` are two ids.
 */
export function postgresStoreId(
  input: { readonly url: string } | { readonly connection: { user?: string; host?: string; port?: number; database?: string; connectionString?: string } },
  schema: string,
  table: string,
  store: string,
): string {
  let user: string;
  let host: string;
  let port: string;
  let database: string;
  const url = "url" in input ? input.url : input.connection.connectionString;
  const u = url === undefined ? undefined : URL.canParse(url) ? new URL(url) : undefined;
  if (u !== undefined) {
    const q = u.searchParams;
    user = decode(u.username) || q.get("user") || "";
    host = u.hostname || q.get("host") || "localhost";
    port = u.port || q.get("port") || "5432";
    database = decode(u.pathname.slice(1)) || q.get("database") || user;
  } else {
    const c = "connection" in input ? input.connection : {}; // a URL that does not parse was refused where it was given
    user = c.user ?? "";
    host = c.host ?? "localhost";
    port = String(c.port ?? 5432);
    database = c.database ?? user;
  }
  const at = [user, host, port, database, schema, table, store].map(encodeURIComponent);
  return `postgres:${at[0]}@${at[1]}:${at[2]}/${at[3]}/${at[4]}.${at[5]}/${at[6]}`;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
