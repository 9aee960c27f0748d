/**
 * Writer processes on a PostgreSQL store (the compiled backend, no engine), for the tests of the lease across real
 * processes: they are killed -9, frozen with SIGSTOP, and other processes take the store over.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { PostgresLeaseOptions } from "../../src/backend/postgres.js";
import type { TestDatabase } from "./postgres-db.js";
import { eachLine } from "./child-lines.js";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BACKEND = pathToFileURL(`${REPO_ROOT}dist/src/backend/postgres.js`).href;

/**
 * A writer: takes the store (waiting for it as its lease options say), says "acquired <epoch>", then writes
 * `<prefix><n>` = n one after the other and says "ack <n>" once each write resolved. On a failure it says
 * "error <code>" and exits. Its sessions are named by sessionName (application_name).
 */
export const WRITER = `
const { postgresBackend } = await import(process.argv[1]);
const [url, schema, store, holder, prefix, lease] = process.argv.slice(2);
const say = (line) => process.stdout.write(line + "\\n");
try {
  const b = await postgresBackend({ url, schema, store, lease: { holder, ...JSON.parse(lease) } });
  say("acquired " + b.lease.epoch);
  for (let n = 0; ; n++) {
    await b.write(prefix + n, Buffer.from(String(n)));
    say("ack " + n);
  }
} catch (err) {
  say("error " + (err.code ?? err.message));
  process.exit(0);
}
`;

export interface Writer {
  readonly child: ChildProcess;
  readonly lines: string[];
  epoch(): number | undefined;
  acked(): number[];
  error(): string | undefined;
}

/** The application_name of `name`'s sessions on `schema` (a test file's own: files share the server). */
export function sessionName(kind: string, name: string, schema: string): string {
  return `grf-${kind}-${name}-${schema}`;
}

/** `url` with its sessions named `applicationName`, so a test can find them in pg_stat_activity and pg_locks. */
export function namedUrl(url: string, applicationName: string): string {
  const u = new URL(url);
  u.searchParams.set("application_name", applicationName);
  return u.href;
}

/**
 * Starts `script` (WRITER by default) as a child process of `children` (the caller ends them after each test), its
 * sessions named sessionName(kind, holder, db.schema); `kind` "writer" unless given.
 */
export function startWriter(
  children: Set<ChildProcess>,
  db: TestDatabase,
  store: string,
  holder: string,
  prefix: string,
  lease: PostgresLeaseOptions,
  { script = WRITER, kind = "writer" }: { script?: string; kind?: string } = {},
): Writer {
  const url = namedUrl(db.url, sessionName(kind, holder, db.schema));
  const child = spawn(process.execPath, ["--input-type=module", "-e", script, BACKEND, url, db.schema, store, holder, prefix, JSON.stringify(lease)], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.add(child);
  const lines: string[] = [];
  eachLine(child.stdout, (line) => lines.push(line));
  const value = (tag: string) => lines.filter((l) => l.startsWith(`${tag} `)).map((l) => l.slice(tag.length + 1));
  return {
    child,
    lines,
    epoch: () => {
      const e = value("acquired")[0];
      return e === undefined ? undefined : Number(e);
    },
    acked: () => value("ack").map(Number),
    error: () => value("error")[0],
  };
}

/** The store's keys from `prefix` on (to `prefix` + U+FFFF) and their values as text, read straight from the table. */
export async function storedKeys(db: TestDatabase, store: string, prefix: string): Promise<Map<string, string>> {
  const raw = await db.raw();
  const r = await raw.query<{ k: string; v: Buffer }>(
    `SELECT k, v FROM "${db.schema}".graphrefly_storage WHERE store = $1 AND k >= $2 AND k < $3`,
    [store, prefix, `${prefix}\uffff`],
  );
  return new Map(r.rows.map((row) => [row.k, row.v.toString()]));
}

/**
 * SQL: the sessions named in $1 (application_name) that wait for a store's lease, as their last statement says: it
 * read the lease row, or looked at or waited for the holder's liveness lock (fast failover). → one row per session.
 */
export const WAITING_FOR_LEASE_SQL = `SELECT application_name FROM pg_stat_activity WHERE application_name = ANY($1)
  AND (query LIKE '%remaining_ms%' OR query LIKE '%pg_try_advisory_lock_shared%' OR query LIKE '%pg_advisory_lock_shared%')`;
