/**
 * PostgreSQL stores in the engine: the key that tells two specs name the same store (so one engine gives a store one
 * actor), the spec as reported to users (no password), and opening the backend inside the actor.
 */
import { refuseUnknownKeys } from "../base/options.js";
import { isRecord } from "../base/records.js";
import { postgresBackend, reopenPostgresBackend } from "../backend/postgres.js";
import { redactUrl } from "../backend/postgres-errors.js";
import { tableNames } from "../backend/postgres-schema.js";
import { parsePostgresUrl, postgresStoreId } from "../backend/postgres-url.js";
import { POSTGRES_LEASE_OPTIONS } from "../backend/postgres-lease.js";
import type { StorageBackend } from "../backend/types.js";
import type { PostgresStoreSpec, StoreSpec } from "./protocol.js";

/**
 * `postgres:user@host:port/database/schema.table/store` (+ `?ro` for a read-only handle): built from the parts that
 * select the store, never the password, with node-postgres's defaults filled in so that equal stores get equal keys
 * (the inline backend's `storeId` is the same, read-only or not: src/backend/postgres-url.ts).
 */
export function postgresStoreKey(spec: PostgresStoreSpec): string {
  if (typeof spec.url !== "string" || spec.url.length === 0) throw new TypeError("store.url must be a non-empty string");
  parsePostgresUrl(spec.url, "store.url");
  if (typeof spec.store !== "string" || spec.store.length === 0) throw new TypeError("store.store must be a non-empty string");
  const names = tableNames(spec.schema, spec.table);
  return `${postgresStoreId({ url: spec.url }, names.schema, names.table, spec.store)}${spec.readOnly === true ? "?ro" : ""}`;
}

export const POSTGRES_STORE_FIELDS = ["url", "store", "schema", "table", "readOnly", "lease", "statementTimeoutMs", "connectTimeoutMs"] as const;

/** The spec the actor gets: checked here, so a bad one fails in the caller's thread; only known fields cross. */
export function normalisePostgres(spec: PostgresStoreSpec): PostgresStoreSpec {
  postgresStoreKey(spec);
  if (spec.readOnly !== undefined && typeof spec.readOnly !== "boolean") throw new TypeError("store.readOnly must be a boolean");
  // Checked here too: the backend's refusal would come from the actor, at the first operation.
  if (spec.lease !== undefined) {
    if (!isRecord(spec.lease)) throw new TypeError("store.lease must be an object");
    refuseUnknownKeys(spec.lease, POSTGRES_LEASE_OPTIONS, "a postgres store's lease", "store.lease.");
  }
  const out: Record<string, unknown> = { kind: "postgres" };
  for (const k of POSTGRES_STORE_FIELDS) if (spec[k] !== undefined) out[k] = spec[k];
  return out as unknown as PostgresStoreSpec;
}

/** The spec as the engine shows it (stats, onError, messages): a PostgreSQL URL loses its password. */
export function publicStoreSpec(spec: StoreSpec): StoreSpec {
  return spec.kind === "postgres" ? { ...spec, url: redactUrl(spec.url) } : spec;
}

/**
 * Opens the store's backend in the actor: a writer takes the store's lease (see docs/postgres.md). `reopen`: the actor
 * replaces a lost one that held the store: no table is created (backend/postgres.ts reopenPostgresBackend).
 */
export function openPostgresStore(spec: PostgresStoreSpec, reopen = false): Promise<StorageBackend> {
  const { kind: _kind, ...options } = spec;
  return (reopen ? reopenPostgresBackend : postgresBackend)(options);
}
