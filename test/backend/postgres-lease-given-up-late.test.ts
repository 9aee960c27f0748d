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
import { errorOf, until } from "../support/wait.js";

const database = useTestDatabase();
const open = useBackends(database, "given-up-late");
const pipes = usePipes();

const failure = (err: unknown): unknown => (err instanceof StorageError ? `${err.code}: ${err.message}` : err);
const codeOf = (e: unknown): unknown => (e as { code?: unknown } | undefined)?.code;

/** How many command answers ("UPDATE n" tags) a chunk from the server holds. */
const updateTags = (d: Buffer): number => d.toString("latin1").split("UPDATE ").length - 1;

describe("a PostgreSQL writer that gave its store up", () => {
  it("its write in flight, reaching the server after the release and its answer lost, does not leave the row live", async () => {
    const db = await database();
    // Holds A's renewals (lease connection) while `holdRenew`, its write (data connection) while `holdWrite`, and
    // drops the server's answers on the data connection while `dropAnswers`.
    let holdRenew = false;
    let holdWrite = false;
    let dropAnswers = false;
    let answersDropped = 0;
    const heldRenew: Array<() => void> = [];
    const heldWrite: Array<() => void> = [];
    const leaseConns = new Set<unknown>();
    // The connection A's release of its row went out on (the lease connection, or a new one when a held renewal
    // timed out meanwhile), and whether it was answered: the next command answer there is the release's.
    const releaseConns = new Set<unknown>();
    let released = false;
    const pipe = await pipes(db.url, {
      toServer: (d, pass, conn) => {
        if (d.includes("grf_write_")) conn.marked = true;
        if (!conn.marked && d.includes("grf_lease_renew")) leaseConns.add(conn);
        if (!conn.marked && d.includes("LEAST(expires_at")) releaseConns.add(conn);
        if (holdRenew && !conn.marked && d.includes("grf_lease_renew")) return void heldRenew.push(pass);
        if (holdWrite && conn.marked && d.includes("grf_write_")) return void heldWrite.push(pass);
        pass();
      },
      toClient: (d, pass, conn) => {
        if (releaseConns.has(conn) && updateTags(d) > 0) released = true;
        if (dropAnswers && conn.marked) return void answersDropped++;
        pass();
      },
    });
    // The release's statement is bounded by the renewal interval: 400 ms, so that it answers on a loaded machine.
    const a = await open({ url: pipe.url, lease: { holder: "A", ttlMs: 1_000, renewEveryMs: 400 } });
    await a.write("k", Uint8Array.of(1));
    await until(() => leaseConns.size > 0, "a renewal went out", { timeoutMs: 30_000 });
    holdRenew = true;
    holdWrite = true;
    // A slow link: a write sent within A's deadline is held, and so are its renewals.
    const w = a.write("k2", Uint8Array.of(2)).then(
      () => "stored",
      (e: unknown) => e,
    );
    await until(() => heldWrite.length > 0, "A's write held", { timeoutMs: 30_000 });
    await until(async () => (await leaseRow(db, a.store)).lapsed, "A's row lapsed by the database clock", { timeoutMs: 30_000 });
    // A check with no changes (outside the data queue) finds A's deadline passed: lose() queues the release.
    expect(codeOf(await errorOf(() => a.writeBatch([])))).toBe("not-owner");
    holdRenew = false;
    for (const pass of heldRenew.splice(0)) pass();
    await until(() => released, "A's release answered (after the late renewal, on the lease connection)", { timeoutMs: 10_000 });
    expect((await leaseRow(db, a.store)).lapsed).toBe(true);
    // The held write reaches the server now; its answer is lost, and its connection cut once the server answered:
    // the commit's outcome is unknown to A, and no statement of A's runs after it.
    dropAnswers = true;
    holdWrite = false;
    for (const pass of heldWrite.splice(0)) pass();
    await until(() => answersDropped > 0, "the server answered A's write", { timeoutMs: 10_000 });
    pipe.cut();
    const outcome = await w;
    expect({ code: codeOf(outcome), inDoubt: (outcome as StorageError).details?.inDoubt }).toEqual({ code: "backend-error", inDoubt: true });
    // Before the fix the write took the row back (it still named A's epoch) and committed: live for a whole lease,
    // B refused store-locked. Now it found no row of A's: refused on the server, nothing of it stored.
    const row = await leaseRow(db, a.store);
    const b = await errorOf(async () => {
      const nb = await postgresBackend({ url: db.url, schema: db.schema, store: a.store, lease: { holder: "B" } });
      const k2 = await nb.read("k2");
      await nb.close();
      if (k2 !== undefined) throw new Error("A's write refused on the server was stored");
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
