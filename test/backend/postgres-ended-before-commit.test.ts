/**
 * A split batch whose server session was ended after its last statement's answer and before its COMMIT (task 315).
 * The server's error comes with that answer (a writer frozen inside the transaction, ended by
 * idle_in_transaction_session_timeout or by a contender; here: pg_terminate_backend). The driver then refuses the
 * COMMIT without sending it ("not queryable"): nothing was committed, certainly. It used to be reported in doubt
 * ("failed after it was sent, its answer lost"), seen in postgres-failover's SIGSTOP case under load.
 *
 * Order forced, not timed: a loopback pipe holds the last statement's answer until the server ended the session,
 * then hands both to the client at once. Real parts: the test PostgreSQL server, the backend's connections.
 */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";
import { usePipes, type PipeConnection } from "../support/postgres-pipe.js";
import { errorOf, until } from "../support/wait.js";

const database = useTestDatabase();
const open = useBackends(database, "ended-before-commit");
const pipes = usePipes();

describe("a split batch whose session the server ended before its COMMIT", () => {
  it("fails as certain (not in doubt), and nothing of it is stored", async () => {
    const db = await database();
    const app = `grf-ended-before-commit-${db.schema}`;
    // On the data connection, once `armed`: the second write statement's answer, and what follows it, are held.
    let armed = false;
    let writesSent = 0;
    let holding = false;
    // What the server sent while held, and the connection: handed to the client in one write (one read there).
    const held: Buffer[] = [];
    let heldOn: PipeConnection | undefined;
    let endedHeld = false;
    const pipe = await pipes(db.url, {
      toServer: (d, pass, conn) => {
        if (d.includes("grf_write_")) {
          conn.marked = true;
          if (armed && ++writesSent === 2) holding = true;
        }
        pass();
      },
      toClient: (d, pass, conn) => {
        if (holding && conn.marked) {
          if (d.includes("57P01")) endedHeld = true; // the server's error: terminated by an administrator
          heldOn = conn;
          return void held.push(d);
        }
        pass();
      },
      // The server closing its side is held back too (it would reach the client ahead of the held answer).
      frozen: (conn) => holding && conn.marked,
    });
    const url = new URL(pipe.url);
    url.searchParams.set("application_name", app);
    // One statement per row: a batch of two is BEGIN, two statements, COMMIT.
    const a = await open({ url: url.href, maxStatementBytes: 1, lease: { holder: "A", ttlMs: 5_000, renewEveryMs: 500 } });
    await a.write("k0", Uint8Array.of(0));
    armed = true;
    const batch = errorOf(() =>
      a.writeBatch([
        { op: "put", key: "k1", value: Uint8Array.of(1) },
        { op: "put", key: "k2", value: Uint8Array.of(2) },
      ]),
    );
    // The second statement ran (the session waits for the COMMIT, inside the transaction); its answer is held.
    const raw = await db.raw();
    const inside = async () =>
      (
        await raw.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle in transaction' AND query LIKE 'WITH lease%'",
          [app],
        )
      ).rows;
    await until(async () => held.length > 0 && (await inside()).length === 1, "the second statement answered, held", { timeoutMs: 30_000 });
    const [{ pid }] = (await inside()) as [{ pid: number }];
    await raw.query("SELECT pg_terminate_backend($1)", [pid]);
    await until(async () => (await raw.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid])).rows.length === 0, "the session ended", {
      timeoutMs: 30_000,
    });
    // The server's error for the ended session has reached the pipe: the answer and it go to the client at once.
    await until(() => endedHeld, "the server's error after the held answer", { timeoutMs: 30_000 });
    holding = false;
    heldOn?.sendToClient(Buffer.concat(held.splice(0)));
    const err = await batch;
    expect(err).toBeInstanceOf(StorageError);
    const e = err as StorageError;
    expect({ code: e.code, inDoubt: e.details.inDoubt === true }, e.message).toEqual({ code: "backend-error", inDoubt: false });
    const stored = await raw.query(`SELECT k FROM "${db.schema}".graphrefly_storage WHERE store = $1 ORDER BY k`, [a.store]);
    expect(stored.rows.map((r: { k: string }) => r.k)).toEqual(["k0"]);
  });
});
