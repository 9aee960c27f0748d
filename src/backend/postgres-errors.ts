/**
 * Where a PostgreSQL backend connects, said without its password, and its failures as typed errors that name the
 * cause and never carry the password (not in the message, the details, the cause, nor the stack). Layer 1.
 */
import type { ClientConfig } from "pg";
import { StorageError, type ErrorDetails } from "../errors.js";

/** The connection as given: a URL, or node-postgres client settings. */
export type ConnectionInput = { readonly url: string } | { readonly connection: ClientConfig };

export interface Target {
  /** `postgres://user@host:port/database`, no password, no query string. */
  readonly display: string;
  /** Strings to blank out of anything we report. */
  readonly secrets: readonly string[];
}

const REDACTED = "[password hidden]";

function addSecret(secrets: string[], s: unknown): void {
  if (typeof s !== "string" || s.length === 0) return;
  secrets.push(s);
  for (const form of [encodeURIComponent(s), safeDecode(s)]) if (form !== s) secrets.push(form);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function describeTarget(input: ConnectionInput): Target {
  const secrets: string[] = [];
  if ("url" in input) {
    let url: URL | undefined;
    try {
      url = new URL(input.url);
    } catch {
      url = undefined;
    }
    if (url === undefined) {
      // Nothing reliable to show, and the string may hold a password anywhere: show none of it.
      addSecret(secrets, input.url);
      return { display: "postgres (unparsable URL)", secrets };
    }
    addSecret(secrets, url.password);
    addSecret(secrets, url.searchParams.get("password"));
    const user = url.username ? `${safeDecode(url.username)}@` : "";
    const host = url.host || url.searchParams.get("host") || "localhost";
    return { display: `${url.protocol}//${user}${host}${url.pathname}`, secrets };
  }
  const c = input.connection;
  addSecret(secrets, c.password);
  if (typeof c.connectionString === "string") {
    const fromString = describeTarget({ url: c.connectionString });
    secrets.push(...fromString.secrets);
    return { display: fromString.display, secrets };
  }
  const user = c.user ? `${c.user}@` : "";
  return { display: `postgres://${user}${c.host ?? "localhost"}:${c.port ?? 5432}/${c.database ?? c.user ?? ""}`, secrets };
}

/**
 * `url` with its password removed (from the user part and from a `password` query parameter), other settings
 * kept; an unparsable URL is not shown at all, since a password may sit anywhere in it.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "postgres (unparsable URL)";
  }
  parsed.password = "";
  parsed.searchParams.delete("password");
  return parsed.href;
}

export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  // Longest first, so a secret containing a shorter one is hidden whole.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(s).join(REDACTED);
  return out;
}

/** SQLSTATE classes and codes worth naming in words. */
const PG_MEANING: Readonly<Record<string, string>> = {
  "28P01": "authentication failed",
  "28000": "authentication failed",
  "3D000": "the database does not exist",
  "57014": "statement timeout (or canceled)",
  "53300": "too many connections",
  "25006": "the session is read-only",
  "42501": "insufficient privilege",
  // pg_terminate_backend sends the same code as a shutdown.
  "57P01": "the server ended the session (an administrator terminated it, or the server is shutting down)",
  "57P03": "the server is starting up or shutting down",
  "08006": "the connection failed",
};

const OS_MEANING: Readonly<Record<string, string>> = {
  ECONNREFUSED: "connection refused: no server listens there",
  ENOTFOUND: "unknown host",
  EAI_AGAIN: "host name lookup failed",
  ETIMEDOUT: "connection timed out",
  EHOSTUNREACH: "host unreachable",
  ECONNRESET: "connection reset by the server",
  EPIPE: "connection closed by the server",
};

// Five digits or capitals, and no SQLSTATE class starts with E: an errno name of five letters (EPIPE) is not one.
const SQLSTATE = /^(?!E)[0-9A-Z]{5}$/;

/** The SQLSTATE of a server error, or undefined. */
export function pgCodeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && SQLSTATE.test(code) ? code : undefined;
}

/**
 * True when `err` may have broken the connection or never had one (no SQLSTATE: a socket or driver failure;
 * class 08: connection exception; 57P: the server shut down or is starting): the session is not to be reused, and
 * the same call may succeed on a new connection. Other server errors leave the session usable.
 */
export function isConnectionFailure(err: unknown): boolean {
  const code = pgCodeOf(err);
  return code === undefined || code.startsWith("08") || code.startsWith("57P");
}

/**
 * A request that is part of opening (a new connection's session setup, prepareSession, within what remained of the
 * connect timeout; the schema check at open) got no answer in time: its connection is dropped. Transient, as the
 * driver's own connect timeout: a server that answers again is used again.
 */
export class UnansweredError extends Error {
  constructor(
    /** What went unanswered, e.g. "its session setup". */
    what: string,
    readonly timeoutMs: number,
  ) {
    super(`timeout expired: the server accepted the connection but did not answer ${what} within ${timeoutMs} ms (connectTimeoutMs)`);
    this.name = "UnansweredError";
  }
}

/** Socket failures a restarting server or a network cut causes; an unknown host (ENOTFOUND) is an answer, not one. */
const TRANSIENT_OS_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
]);

/** node-postgres's own words (no code) for a connection it lost or could not finish opening. */
const TRANSIENT_DRIVER_MESSAGE = /^(Connection terminated|timeout expired$|Query read timeout$|Client has encountered a connection error)/;

/**
 * True only for a failure that waiting may mend: the server restarting or not yet accepting (class 08, 57P01-03,
 * 53300 too many connections), a refused, reset or timed-out socket, a temporary name lookup failure, or the driver
 * reporting a lost connection. A wrong host, a wrong or missing password, a refused schema or any of this package's
 * own errors is final: a writer waiting for the store (lease.waitMs) reports it at once instead of at the end of its
 * wait. Narrower on purpose than isConnectionFailure, which decides whether a session may be reused.
 */
export function isTransientOutage(err: unknown): boolean {
  if (err instanceof StorageError || err === null || typeof err !== "object") return false;
  // Node reports a host with several addresses, all of them failing, as one AggregateError.
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.every(isTransientOutage);
  if (err instanceof UnansweredError) return true;
  const pgCode = pgCodeOf(err);
  // 08P01 is a protocol violation (a pooler refusing our startup parameters, say): the same answer every time.
  if (pgCode !== undefined) return (pgCode.startsWith("08") && pgCode !== "08P01") || pgCode === "57P01" || pgCode === "57P02" || pgCode === "57P03" || pgCode === "53300";
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code === "string") return TRANSIENT_OS_CODES.has(code);
  return typeof message === "string" && TRANSIENT_DRIVER_MESSAGE.test(message);
}

/** A copy of `err` fit to keep as a cause: same name, code and SQLSTATE, message and stack redacted. */
function redactedCause(err: unknown, secrets: readonly string[]): Error {
  const src = err as { name?: unknown; message?: unknown; code?: unknown; stack?: unknown } | null;
  const copy = new Error(redact(typeof src?.message === "string" ? src.message : String(err), secrets));
  if (typeof src?.name === "string") copy.name = src.name;
  if (typeof src?.code === "string") (copy as Error & { code: string }).code = src.code;
  copy.stack = typeof src?.stack === "string" ? redact(src.stack, secrets) : copy.stack;
  return copy;
}

/**
 * A connection pooler refusing the session settings every connection sends at its start (PgBouncer answers the
 * startup packet with 08P01 "unsupported startup parameter: …"). The words alone read like a bug of ours or of the
 * driver; the cause is the pooler, which the lease and the settle of a write in doubt cannot work through (one server
 * session per client connection is assumed: docs/postgres.md, "Connection poolers"), so the message says so.
 */
function poolerHint(pgCode: string | undefined, said: string): string {
  if (pgCode !== "08P01" || !/unsupported startup parameter/i.test(said)) return "";
  return (
    ". This looks like a connection pooler (such as PgBouncer) between this process and PostgreSQL: poolers are not" +
    " supported, connect to the server directly (docs/postgres.md, \"Connection poolers\")"
  );
}

/**
 * Wraps a driver or server failure as StorageError("backend-error") (typed errors pass through), naming the cause:
 * `details.pgCode` (SQLSTATE) or `details.osCode` (errno), and the meaning in words in the message.
 */
export function pgError(err: unknown, context: string, target: Target, details: ErrorDetails = {}): Error {
  if (err instanceof StorageError) return err;
  const src = err as { message?: unknown; code?: unknown } | null;
  const pgCode = pgCodeOf(err);
  const osCode = pgCode === undefined && typeof src?.code === "string" ? src.code : undefined;
  const meaning = pgCode !== undefined ? PG_MEANING[pgCode] : osCode !== undefined ? OS_MEANING[osCode] : undefined;
  const said = typeof src?.message === "string" ? src.message : String(err);
  const message = redact(`${context} (${target.display}): ${meaning ? `${meaning}: ` : ""}${said}${poolerHint(pgCode, said)}`, target.secrets);
  return new StorageError(
    "backend-error",
    message,
    { ...details, server: target.display, ...(pgCode ? { pgCode } : {}), ...(osCode ? { osCode } : {}) },
    redactedCause(err, target.secrets),
  );
}
