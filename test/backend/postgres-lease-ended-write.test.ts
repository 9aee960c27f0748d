/**
 * A PostgreSQL writer whose split batch stalled past its lease, its transaction then ended on the server (a contender
 * ends it once the row lapsed, or idle_in_transaction_session_timeout does): a renewal of its own sent while that
 * batch was in flight must not take the lapsed row back (task 268). Before, such a renewal took back any row still
 * naming its holder and epoch; queued on the row's lock it got the row as the rollback freed it, ahead of the
 * contender, and the writer renewed on with its write gone: postgres-frozen-upload's stalled-network case failed at
 * load ~20 with the contender store-locked after 8 s.
 *
 * Forced, not timed: a loopback pipe holds the batch's second statement (its transaction holds the lease row since the
 * first), and holds a renewal sent meanwhile until that transaction is gone on the server. Real parts: the test
 * PostgreSQL server, the backend's two connections.
 */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";
import { leaseRow } from "../support/lease-row.js";
import { usePipes } from "../support/postgres-pipe.js";
import { until } from "../support/wait.js";

const database = useTestDatabase();
const open = useBackends(database, "ended-write");
const pipes = usePipes();

describe("postgresBackend lease: a renewal beside a write whose transaction was ended", () => {
  it("does not take the lapsed row back: a contender gets the store at once, nothing of the batch stored", async () => {
    const db = await database();
    let stalling = false;
    let writesPassed = 0;
    const heldWrites: Array<() => void> = [];
    let heldRenewal: (() => void) | undefined;
    let renewalAnswered = false;
    const pipe = await pipes(db.url, {
      toServer: (d, pass, conn) => {
        if (d.includes("grf_write_")) conn.marked = true; // the data connection
        if (conn.marked) {
          // The batch's first statement passes, the rest waits: its transaction holds the lease row meanwhile.
          if (stalling && (heldWrites.length > 0 || (d.includes("grf_write_") && writesPassed++ > 0))) heldWrites.push(pass);
          else pass();
          return;
        }
        // The first renewal sent while the batch is in flight (the lease connection is serial: later ones wait behind).
        if (stalling && heldRenewal === undefined && d.includes("grf_lease_renew")) {
          heldRenewal = pass;
          return;
        }
        pass();
      },
      toClient: (d, pass, conn) => {
        if (!conn.marked && heldRenewal !== undefined && stalling === false) renewalAnswered = true;
        pass();
      },
    });
    const a = await open({ url: pipe.url, maxStatementBytes: 1, lease: { holder: "A", ttlMs: 1000, renewEveryMs: 250 } });
    await a.write("d", Uint8Array.of(1));
    stalling = true;
    const batch = a
      .writeBatch([
        { op: "put", key: "x", value: Uint8Array.of(2) },
        { op: "put", key: "y", value: Uint8Array.of(3) },
        { op: "delete", key: "d" },
      ])
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    await until(() => heldWrites.length > 0 && heldRenewal !== undefined, "the batch's second statement and a renewal held", {
      timeoutMs: 30_000,
    });
    // The row lapses under the batch's lock; its transaction is then ended as a contender ends it (the server's idle
    // transaction timeout may have ended it first).
    await until(async () => (await leaseRow(db, a.store)).lapsed, "A's lease row lapsed by the database clock", { timeoutMs: 30_000 });
    const raw = await db.raw();
    const holderOfRow = `FROM "${db.schema}".graphrefly_storage_lease AS l JOIN pg_stat_activity AS s ON s.backend_xid = l.xmax
      WHERE l.store = $1`;
    await raw.query(`SELECT pg_terminate_backend(s.pid) ${holderOfRow}`, [a.store]);
    await until(async () => (await raw.query(`SELECT 1 ${holderOfRow}`, [a.store])).rows.length === 0, "A's transaction gone", {
      timeoutMs: 30_000,
    });
    await raw.end();
    // The renewal reaches the server now, the row unlocked, lapsed, still naming A and its epoch.
    stalling = false;
    heldRenewal!();
    await until(() => renewalAnswered, "the held renewal's answer", { timeoutMs: 30_000 });
    // Before: the renewal took the row back (live again for A), and A renewed on; B got store-locked.
    expect(await leaseRow(db, a.store)).toMatchObject({ holder: "A", epoch: a.lease!.epoch, lapsed: true });
    const b = await open({ store: a.store, lease: { holder: "B", ttlMs: 1000, waitMs: 2000 } });
    expect(b.lease?.epoch).toBe(a.lease!.epoch + 1);
    // A's transaction rolled back: nothing of the batch stored, and its caller is told so (not in doubt).
    const err = await batch;
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).details.inDoubt).not.toBe(true);
    expect(await b.readMany(["d", "x", "y"])).toEqual([Uint8Array.of(1), undefined, undefined]);
    for (const pass of heldWrites.splice(0)) pass();
    await until(() => a.finalError !== undefined, "A gives the store up", { timeoutMs: 30_000 });
    expect((a.finalError as StorageError | undefined)?.code).toBe("not-owner");
  }, 60_000);
});
