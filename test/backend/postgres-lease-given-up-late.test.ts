/**
 * A PostgreSQL writer that gave its store up: a statement of its own sent before the give-up and reaching the server
 * after the release of its row cannot take the row back (task 261, review r253). The release matched holder and
 * epoch and left them, so a write in flight still matched: it took the row back for a whole lease. A write that
 * commits answers releases it again on its connection (67496d7), but a write whose connection is cut after the
 * commit was sent (its outcome unknown: in doubt) has no connection left to do so, and the next writer was refused
 * store-locked for up to a lease. The release now renames the holder: such a write is refused, nothing of it stored.
 *
 * Orders are forced, not timed: a loopback pipe holds the renewals and the write, drops the write's answer and cuts
 * the connections. Real parts: the test PostgreSQL server, the backend's connections.
 */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { postgresBackend } from "../../src/backend/postgres.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";
import { leaseRow } from "../support/lease-row.js";
import { usePipes } from "../support/postgres-pipe.js";
import { codeOf, failure, givenUpWithWriteHeld } from "../support/given-up-pipe.js";
import { errorOf, until } from "../support/wait.js";

const database = useTestDatabase();
const open = useBackends(database, "given-up-late");
const pipes = usePipes();

describe("a PostgreSQL writer that gave its store up", () => {
  it("its write in flight, reaching the server after the release and its answer lost, does not leave the row live", async () => {
    const db = await database();
    const { a, write, cut, dropAnswers, answersDropped, deliverWrite, writeConnClosed } = await givenUpWithWriteHeld(db, pipes, open);
    // The held write reaches the server now; its answer is lost, and its connection cut once the server answered:
    // the commit's outcome is unknown to A, and no statement of A's runs after it.
    dropAnswers();
    const delivered = deliverWrite();
    // Under load A's answer watch may have dropped the held write's connection first (a lease time unanswered, the
    // session idle: given-up-pipe deliverWrite), or drop it before the server's answer came back: then the server
    // answered nothing, and the write's settle ended its session. Either way A reports the write in doubt.
    await until(() => answersDropped() > 0 || writeConnClosed(), "the server answered A's write, or A dropped it", { timeoutMs: 10_000 });
    const answered = answersDropped() > 0;
    cut();
    const outcome = await write;
    const details = (outcome as StorageError).details;
    expect({ code: codeOf(outcome), inDoubt: details?.inDoubt }).toEqual({ code: "backend-error", inDoubt: true });
    // Dropped before it reached the server: settled, its session seen ended, so it can never land.
    if (!delivered) expect({ answered, settled: details?.settled }).toEqual({ answered: false, settled: true });
    // Before the fix the write took the row back (it still named A's epoch) and committed: live for a whole lease,
    // B refused store-locked. Now it found no row of A's: refused on the server, nothing of it stored.
    const row = await leaseRow(db, a.store);
    const b = await errorOf(async () => {
      const nb = await postgresBackend({ url: db.url, schema: db.schema, store: a.store, lease: { holder: "B" } });
      try {
        if ((await nb.read("k2")) !== undefined) throw new Error("A's write refused on the server was stored");
        // B's newer value stands: nothing of A's late write lands over it.
        await nb.write("k2", Uint8Array.of(3));
        const after = await nb.read("k2");
        if (after?.[0] !== 3) throw new Error(`B's newer value was overwritten: ${String(after)}`);
      } finally {
        await nb.close();
      }
    });
    expect({ lapsed: row.lapsed, open: failure(b) }).toEqual({ lapsed: true, open: undefined });
  });
});

describe("close() of a PostgreSQL writer past its deadline", () => {
  it("sends no renewal that was waiting for its connection: the release does not wait behind it, and the store is free", async () => {
    const db = await database();
    // Once `holdConnect`, the first bytes of every new connection (its startup) are held: a connection being opened.
    let holdConnect = false;
    const heldConnects: Array<() => void> = [];
    const seen = new WeakSet<object>();
    let closing = false;
    let renewalsAfterClose = 0;
    const pipe = await pipes(db.url, {
      toServer: (d, pass, conn) => {
        const first = !seen.has(conn);
        seen.add(conn);
        if (closing && d.includes("grf_lease_renew")) renewalsAfterClose++;
        if (first && holdConnect) return void heldConnects.push(pass);
        pass();
      },
    });
    const a = await postgresBackend({
      url: pipe.url,
      schema: db.schema,
      store: "given-up-late-close",
      lease: { holder: "A", ttlMs: 1_000, renewEveryMs: 200 },
    });
    await a.write("k", Uint8Array.of(1));
    // The network drops A's connections; the next renewal opens a new one, which does not get through.
    holdConnect = true;
    pipe.cut();
    await until(() => heldConnects.length > 0, "a renewal opening a new connection", { timeoutMs: 30_000 });
    await until(async () => (await leaseRow(db, a.store)).lapsed, "A's row lapsed by the database clock", { timeoutMs: 30_000 });
    // A closes past its own deadline (the database's expiry is later); then its connection gets through. Before the
    // fix the renewal waiting for it was sent, and close()'s release waited for its answer (up to the lease time).
    closing = true;
    const closed = a.close();
    holdConnect = false;
    for (const pass of heldConnects.splice(0)) pass();
    await closed;
    const b = await errorOf(async () => {
      const nb = await postgresBackend({ url: db.url, schema: db.schema, store: a.store, lease: { holder: "B" } });
      await nb.close();
    });
    expect({ renewalsAfterClose, open: failure(b) }).toEqual({ renewalsAfterClose: 0, open: undefined });
  });
});
