/**
 * The settle of a write in doubt (postgres-settle.ts) ends the write's server session only while it waits for its
 * client. Before, it ended it whatever it was doing, also while it had committed locally and waited for its
 * synchronous standby: the server ends such a session with "committed locally, but might not have been replicated",
 * the write was reported `settled: true`, a read-back found it, and a failover to the standby would lose it (review
 * r286 F5).
 *
 * The standby is emulated on a server of this file's own: synchronous_standby_names names one that never connects,
 * and only the held write's session waits for it (synchronous_commit is `local` for every other one, so the writer's
 * renewals and the settle's looks go on).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgresServer, type PostgresServer } from "../../bench/lib/postgres-server.js";
import { postgresBackend, type PostgresBackend } from "../../src/backend/postgres.js";
import { StorageError } from "../../src/errors.js";
import { usePipes, type PipeConnection } from "../support/postgres-pipe.js";
import { errorOf, until } from "../support/wait.js";

let server: PostgresServer;
const closing: Array<{ close(): Promise<unknown> }> = [];
beforeAll(async () => {
  server = await startPostgresServer();
  await server.ready();
}, 90_000);
afterAll(async () => {
  for (const c of closing.splice(0)) await c.close().catch(() => undefined);
  await server?.stop();
});
const pipes = usePipes();

const TERMINATE = "pg_terminate_backend";

/** A simple-protocol Query message. */
function simpleQuery(sql: string): Buffer {
  const text = Buffer.from(`${sql}\0`);
  const head = Buffer.alloc(5);
  head.write("Q");
  head.writeInt32BE(4 + text.length, 1);
  return Buffer.concat([head, text]);
}

describe("postgres settle beside a synchronous standby", () => {
  it("does not end a session that committed locally and waits for its standby", async () => {
    const raw = new pg.Client({ connectionString: server.url });
    raw.on("error", () => undefined);
    await raw.connect();
    closing.push({ close: () => raw.end() });
    let holding = false;
    let held: PipeConnection | undefined;
    const passes: Array<() => void> = [];
    let delivered = false;
    let firstLook: { pass: () => void; conn: PipeConnection } | undefined;
    let firstPassed = false;
    let firstAnswered = false;
    let endedLocalOnly = false;
    const pipe = await pipes(server.url, {
      frozen: (conn) => conn === held,
      toServer: (d, pass, conn) => {
        if (holding && d.includes("grf_write_")) {
          holding = false;
          held = conn;
        }
        if (conn === held && !delivered) return void passes.push(pass);
        // The settle's first look is held until the write waits for its standby.
        if (firstLook === undefined && d.includes(TERMINATE)) return void (firstLook = { pass, conn });
        pass();
      },
      toClient: (d, pass, conn) => {
        if (conn === held && d.includes("committed locally")) endedLocalOnly = true;
        if (firstPassed && conn === firstLook?.conn) firstAnswered = true;
        pass();
      },
    });
    await raw.query("ALTER SYSTEM SET synchronous_commit = 'local'");
    await raw.query("ALTER SYSTEM SET synchronous_standby_names = 'grf_never_connects'");
    await raw.query("SELECT pg_reload_conf()");
    const a: PostgresBackend = await postgresBackend({ url: pipe.url, store: "s", lease: { holder: "A", ttlMs: 3_000, renewEveryMs: 750 } });
    closing.push(a);
    await a.write("k", Uint8Array.of(0));
    holding = true;
    const w = errorOf(() => a.write("k2", Uint8Array.of(1)));
    await until(() => firstLook !== undefined, "the settle's first look sent", { timeoutMs: 30_000 });
    // The held request arrives now, after the write was given up on, behind a statement making its session wait for
    // the standby: it commits locally and waits.
    delivered = true;
    held?.send(simpleQuery("SET synchronous_commit = on"));
    for (const pass of passes.splice(0)) pass();
    await until(
      async () => ((await raw.query("SELECT 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'")).rowCount ?? 0) > 0,
      "the held write waiting for its standby",
      { timeoutMs: 10_000 },
    );
    firstPassed = true;
    firstLook?.pass();
    // Answered: the session was signalled (before: it ended at once, with the warning) or left running.
    await until(() => firstAnswered, "the settle's first look answered", { timeoutMs: 10_000 });
    const waitingAfterLook = (await raw.query("SELECT 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'")).rowCount;
    // The standby "comes back": the locally committed write completes.
    await raw.query("ALTER SYSTEM RESET synchronous_standby_names");
    await raw.query("SELECT pg_reload_conf()");
    const err = await w;
    expect(err).toBeInstanceOf(StorageError);
    // Stored: the write committed (and now replicated), and was never ended half way.
    const k2 = async () => (await raw.query("SELECT v FROM graphrefly_storage WHERE store = 's' AND k = 'k2'")).rows[0] as { v: Buffer } | undefined;
    await until(async () => (await k2()) !== undefined, "k2 stored", { timeoutMs: 10_000 });
    expect({ waitingAfterLook, endedLocalOnly, inDoubt: (err as StorageError).details.inDoubt, k2: Array.from((await k2())!.v) }).toEqual({
      waitingAfterLook: 1,
      endedLocalOnly: false,
      inDoubt: true,
      k2: [1],
    });
  });
});
