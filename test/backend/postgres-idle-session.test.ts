/**
 * Server settings that end a session rather than fail one statement (idle_session_timeout, transaction_timeout), set
 * on the role the backend logs in as, as an administrator would: they end none of the backend's data sessions (task
 * 384; the lease's session: postgres-fast-failover.test.ts). Before, an idle writer's data session was ended by the
 * server, and a write sent as it ended (its process busy at that moment, or the write crossing the server's close on
 * the wire) failed in doubt with nothing stored; a reader's read failed the same way.
 */
import { spawnSync } from "node:child_process";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { postgresBackend, type PostgresBackend } from "../../src/backend/postgres.js";
import { useTestDatabase, type TestDatabase } from "../support/postgres-db.js";
import { namedUrl, sessionName, storedKeys } from "../support/postgres-writer-child.js";
import { until } from "../support/wait.js";

const database = useTestDatabase();
const timeouts = { timeoutMs: 30_000, intervalMs: 10 };
/** The settings' time: far below anything the backend waits for by itself. */
const TIMEOUT_MS = 500;

const opened: PostgresBackend[] = [];
afterEach(async () => {
  for (const b of opened.splice(0)) await b.close().catch(() => undefined);
});
let rawClient: ReturnType<TestDatabase["raw"]> | undefined;
/** The file's raw client of the test database (ended with the others at the end). */
const raw = async () => (rawClient ??= (await database()).raw());
const roles: string[] = [];
afterAll(async () => {
  if (roles.length === 0) return;
  const c = await raw();
  for (const role of roles.splice(0)) {
    await c.query(`DROP OWNED BY ${role}`);
    await c.query(`DROP ROLE ${role}`);
  }
});

/**
 * The test database's URL as a new role (cluster-wide: named after this file's schema) that has `setting` set to
 * TIMEOUT_MS (ALTER ROLE … SET), its sessions named sessionName("role", name).
 */
async function urlWithRoleSetting(db: TestDatabase, name: string, setting: string): Promise<string> {
  const role = `grf_${name}_${db.schema}`;
  const password = "role-password";
  const c = await raw();
  await c.query(`CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD '${password}'`);
  roles.push(role);
  await c.query(`ALTER ROLE ${role} SET ${setting} = ${TIMEOUT_MS}`);
  const u = new URL(namedUrl(db.url, sessionName("role", name, db.schema)));
  u.username = role;
  u.password = password;
  return u.href;
}

async function open(url: string, db: TestDatabase, store: string, readOnly = false): Promise<PostgresBackend> {
  const b = await postgresBackend({ url, schema: db.schema, store, readOnly });
  opened.push(b);
  return b;
}

/** The session named `app` that holds no advisory lock: a handle's data session (a writer's lease session holds one). */
async function dataSession(app: string): Promise<number | undefined> {
  const r = await (await raw()).query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE application_name = $1
      AND pid NOT IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)`,
    [app],
  );
  return r.rows.length === 1 ? r.rows[0]!.pid : undefined;
}

/**
 * Blocks this process (synchronously: it reads none of its sockets meanwhile, as a process busy in a long synchronous
 * turn) until the server session `pid` is gone or has been idle four times TIMEOUT_MS by the database clock.
 */
const IDLE_OR_GONE = `
const pg = (await import("pg")).default;
const [url, pid, ms] = process.argv.slice(1);
const c = new pg.Client({ connectionString: url });
await c.connect();
for (;;) {
  const r = await c.query("SELECT clock_timestamp() - state_change > $2::int * interval '1 ms' AS long FROM pg_stat_activity WHERE pid = $1", [pid, ms]);
  if (r.rows.length === 0 || r.rows[0].long) break;
  await new Promise((resolve) => setTimeout(resolve, 20));
}
await c.end();
`;

function busyWhileIdle(db: TestDatabase, pid: number): void {
  const out = spawnSync(process.execPath, ["--input-type=module", "-e", IDLE_OR_GONE, db.url, String(pid), String(4 * TIMEOUT_MS)], {
    encoding: "utf8",
    timeout: 30_000,
  });
  expect(out.status, out.stderr).toBe(0);
}

describe("postgresBackend: server settings that end sessions end none of a handle's", () => {
  it("idle_session_timeout (the role's): a writer's write after its data session idled past it is acknowledged and stored, on the same session", async () => {
    const db = await database();
    const url = await urlWithRoleSetting(db, "idlew", "idle_session_timeout");
    const app = sessionName("role", "idlew", db.schema);
    const b = await open(url, db, "idle-writer");
    await b.write("a", Buffer.from("1"));
    const pid = await dataSession(app);
    expect(pid).toBeDefined();
    busyWhileIdle(db, pid!);
    await b.write("b", Buffer.from("2"));
    expect(Object.fromEntries(await storedKeys(db, "idle-writer", ""))).toEqual({ a: "1", b: "2" });
    expect(await dataSession(app)).toBe(pid);
  });

  it("idle_session_timeout (the role's): a reader's read after its data session idled past it answers, on the same session", async () => {
    const db = await database();
    const writer = await open(db.url, db, "idle-reader");
    await writer.write("a", Buffer.from("1"));
    const url = await urlWithRoleSetting(db, "idler", "idle_session_timeout");
    const app = sessionName("role", "idler", db.schema);
    const reader = await open(url, db, "idle-reader", true);
    expect(Buffer.from((await reader.read("a"))!).toString()).toBe("1");
    const pid = await dataSession(app);
    expect(pid).toBeDefined();
    await writer.write("a", Buffer.from("2"));
    busyWhileIdle(db, pid!);
    expect(Buffer.from((await reader.read("a"))!).toString()).toBe("2");
    expect(await dataSession(app)).toBe(pid);
  });

  it("transaction_timeout (the role's): a writer's conditional batch waiting for a row lock past it is not ended, and commits once the lock is let go", async () => {
    const db = await database();
    const url = await urlWithRoleSetting(db, "txw", "transaction_timeout");
    const app = sessionName("role", "txw", db.schema);
    const store = "transaction-writer";
    const b = await open(url, db, store);
    await b.write("k", Buffer.from("1"));
    const locker = await db.raw();
    await locker.query("BEGIN");
    await locker.query(`SELECT 1 FROM "${db.schema}".graphrefly_storage WHERE store = $1 AND k = 'k' FOR UPDATE`, [store]);
    let outcome: string | undefined;
    const batch = b.writeBatchIf({ key: "k", value: Buffer.from("1") }, [{ op: "put", key: "k", value: Buffer.from("2") }]);
    batch.then(
      (ok) => (outcome = `resolved ${ok}`),
      (err: unknown) => (outcome = `failed: ${String(err)}`),
    );
    try {
      // Its wait for the row outlasts the setting twice over (or the batch ended).
      await until(
        async () =>
          outcome !== undefined ||
          (
            await (await raw()).query(
              "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock' AND clock_timestamp() - xact_start > $2::int * interval '1 ms'",
              [app, 2 * TIMEOUT_MS],
            )
          ).rows.length > 0,
        "the batch waits for the row past transaction_timeout",
        timeouts,
      );
      expect(outcome).toBeUndefined();
    } finally {
      await locker.query("COMMIT"); // also when it failed: the row lock would hold up the end of the file
    }
    expect(await batch).toBe(true);
    expect(Object.fromEntries(await storedKeys(db, store, ""))).toEqual({ k: "2" });
  });
});
