/**
 * The release of a lease row lost with the network (review r286 F3, F2, F6). A loss releases the row, renaming its
 * holder, so that nothing the writer sent before (a renewal, a write in doubt still on its way) takes it back. Before,
 * a release that failed was kept as the release (Lease.releaseOwn): close() once the network was back returned it
 * without sending anything, the row kept naming the closed writer, its held renewal made it live again, its held
 * write stored its data after close() resolved, and the next writer was refused store-locked. Now a failed release is
 * tried again in the background and by close(); close() rejects when a write in doubt may still land and neither the
 * release nor the end of its session could be confirmed. And a writer whose in-doubt write cannot be settled (its
 * session's end never seen) gives the store up after a lease time instead of keeping it, renewed, with every call
 * failing (F6).
 */
import { describe, expect, it } from "vitest";
import { postgresBackend } from "../../src/backend/postgres.js";
import { StorageError } from "../../src/errors.js";
import { useBackends, useTestDatabase, type TestDatabase } from "../support/postgres-db.js";
import { usePipes, type PipeConnection } from "../support/postgres-pipe.js";
import { leaseRow } from "../support/lease-row.js";
import { storedBytes } from "../support/stored-row.js";
import { errorOf, sleep, until } from "../support/wait.js";

const database = useTestDatabase();
const open = useBackends(database, "lost-release");
const pipes = usePipes();

const LEASE = { holder: "A", ttlMs: 1_000, renewEveryMs: 250 } as const;

/** The next writer of `store` opens (and closes), or the error it got. */
async function nextWriter(db: TestDatabase, store: string): Promise<unknown> {
  const e = await errorOf(async () => {
    const b = await postgresBackend({ url: db.url, schema: db.schema, store, lease: { holder: "B", ttlMs: 1_000, renewEveryMs: 250 } });
    await b.close();
  });
  return e instanceof StorageError ? e.code : e;
}

/**
 * A pipe that holds the first request containing `marker` sent after `hold()` (its session stays open when its client
 * drops the connection) until `deliver()`, and cuts every connection's traffic while `down` is set (from that request
 * on, when `downWithHold`).
 */
async function holdingPipe(db: TestDatabase, marker: string, opts: { downWithHold?: boolean; cutWhen?: (d: Buffer) => boolean } = {}) {
  let holding = false;
  let held: PipeConnection | undefined;
  const passes: Array<() => void> = [];
  let delivered = false;
  let answered = false;
  const state = { down: false };
  const pipe = await pipes(db.url, {
    frozen: (conn) => conn === held,
    toServer: (d, pass, conn) => {
      if (!delivered && opts.cutWhen?.(d) === true) return conn.cut();
      if (holding && d.includes(marker)) {
        holding = false;
        held = conn;
        if (opts.downWithHold === true) state.down = true;
      }
      if (conn === held && !delivered) return void passes.push(pass);
      if (state.down) return conn.cut();
      pass();
    },
    toClient: (_d, pass, conn) => {
      if (conn === held && delivered) answered = true;
      pass();
    },
  });
  return {
    url: pipe.url,
    state,
    hold: () => void (holding = true),
    isHeld: () => held !== undefined,
    /** Delivers the held request and waits for the server's answer to it. */
    deliver: async () => {
      delivered = true;
      for (const pass of passes.splice(0)) pass();
      await until(() => answered, "the held request answered", { timeoutMs: 30_000 });
    },
  };
}

describe("postgres lease release lost with the network", () => {
  it("close() after the network came back sends the release again: a held renewal cannot revive the row (F3)", async () => {
    const db = await database();
    const p = await holdingPipe(db, "grf_lease_renew_own", { downWithHold: true });
    const a = await open({ url: p.url, lease: LEASE });
    await a.write("k", Uint8Array.of(0));
    p.hold();
    await until(p.isHeld, "a renewal held", { timeoutMs: 10_000 });
    // Past the writer's own deadline, still down: an (empty) write finds the lease run out; the release the loss sends
    // is lost, and so is its first background try.
    await until(async () => (await errorOf(() => a.writeBatch([]))) !== undefined, "the lease run out", { timeoutMs: 10_000, intervalMs: 50 });
    const refused = await errorOf(() => a.writeBatch([]));
    await sleep(LEASE.renewEveryMs * 2);
    p.state.down = false;
    await a.close();
    const atClose = await leaseRow(db, a.store);
    await p.deliver();
    expect({
      refused: refused instanceof StorageError ? refused.code : refused,
      holderAtClose: atClose.holder,
      after: await leaseRow(db, a.store),
      next: await nextWriter(db, a.store),
    }).toEqual({
      refused: "not-owner",
      holderAtClose: "A (given up)",
      after: { holder: "A (given up)", epoch: atClose.epoch, lapsed: true },
      next: undefined,
    });
  });

  it("close() after the network came back sends the release again: a held write in doubt stores nothing after it (F3)", async () => {
    const db = await database();
    const p = await holdingPipe(db, "grf_write_", { downWithHold: true });
    const a = await open({ url: p.url, lease: LEASE });
    await a.write("k", Uint8Array.of(0));
    p.hold();
    const first = await errorOf(() => a.write("k2", Uint8Array.of(1)));
    // Still down: the lease ran out meanwhile (not-owner), and the release the loss sent is lost.
    const second = await errorOf(() => a.writeBatch([]));
    await sleep(LEASE.renewEveryMs * 2);
    p.state.down = false;
    await a.close();
    const atClose = await leaseRow(db, a.store);
    await p.deliver();
    expect({
      first: first instanceof StorageError ? { inDoubt: first.details.inDoubt, settled: first.details.settled } : first,
      second: second instanceof StorageError ? second.code : second,
      holderAtClose: atClose.holder,
      k2: await storedBytes(db, a.store, "k2"),
      next: await nextWriter(db, a.store),
    }).toEqual({ first: { inDoubt: true, settled: false }, second: "not-owner", holderAtClose: "A (given up)", k2: undefined, next: undefined });
  });

  it("close() says so when a write in doubt may still land: neither the release nor the session's end confirmed (F2)", async () => {
    const db = await database();
    // The network resets the lease connection whenever it carries a terminate or a release, until the delivery.
    const p = await holdingPipe(db, "grf_write_", { cutWhen: (d) => d.includes("pg_terminate_backend") || d.includes("(given up)") });
    const a = await open({ url: p.url, lease: LEASE });
    await a.write("k", Uint8Array.of(0));
    p.hold();
    const first = await errorOf(() => a.write("k2", Uint8Array.of(1)));
    const closed = await errorOf(() => a.close());
    expect({
      first: first instanceof StorageError ? { inDoubt: first.details.inDoubt, settled: first.details.settled } : first,
      closed: closed instanceof StorageError ? { code: closed.code, unsettled: closed.details.unsettled } : closed,
    }).toEqual({ first: { inDoubt: true, settled: false }, closed: { code: "backend-error", unsettled: true } });
    // What close() warned of: the held request still lands (the row names the writer, lapsed or not).
    await p.deliver();
    expect(await storedBytes(db, a.store, "k2")).toEqual([1]);
  });

  it("a writer whose write in doubt cannot be settled gives the store up instead of keeping it (F6)", async () => {
    const db = await database();
    // Every terminate's connection is reset: the held write's session is never seen ended. Renewals pass.
    const p = await holdingPipe(db, "grf_write_", { cutWhen: (d) => d.includes("pg_terminate_backend") });
    const a = await open({ url: p.url, lease: LEASE });
    await a.write("k", Uint8Array.of(0));
    p.hold();
    const first = await errorOf(() => a.write("k", Uint8Array.of(1)));
    // A keeps trying, as a tier's retries do, while a contender waits up to four lease times.
    let stop = false;
    const codes = new Set<unknown>();
    const retries = (async () => {
      while (!stop) {
        const e = await errorOf(() => a.write("k", Uint8Array.of(2)));
        codes.add(e instanceof StorageError ? `${e.code}${e.details.unsettled === true ? " (unsettled)" : ""}` : e);
        if (a.finalError !== undefined) return;
      }
    })();
    const next = await errorOf(async () => {
      const b = await postgresBackend({ url: db.url, schema: db.schema, store: a.store, lease: { holder: "B", ttlMs: 1_000, renewEveryMs: 250, waitMs: 4_000 } });
      await b.close();
    });
    stop = true;
    await retries;
    expect({
      first: first instanceof StorageError ? first.details.settled : first,
      finalError: a.finalError instanceof StorageError ? a.finalError.code : a.finalError,
      gaveUp: codes.has("not-owner"),
      next: next instanceof StorageError ? next.code : next,
      k: await storedBytes(db, a.store, "k"),
    }).toEqual({ first: false, finalError: "not-owner", gaveUp: true, next: undefined, k: [0] });
  });
});
