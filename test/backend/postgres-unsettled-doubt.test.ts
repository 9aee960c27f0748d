/**
 * A write in doubt whose server session could not be seen ended (`details.settled: false`, task 284): its request,
 * held by the network, may still run later. Before, the handle went on at once: a write acknowledged after the error
 * was overwritten when the held request ran (a lost acknowledged value), and an append-log's retry, or another tier's
 * append to the same bucket, was overwritten by the held attempt's older array. Now every later call of the handle
 * first ends that session and waits until it is gone; until it can, the call fails unsent.
 *
 * The end cannot be seen here because the server refuses the lease connection's terminate (the role may not end the
 * session, as a server error; simulated by the pipe renaming the function so the server has none of that name): the
 * lease connection stays healthy, so the lease is kept throughout.
 */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { heldWritePipe } from "../support/held-write-pipe.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";
import { usePipes } from "../support/postgres-pipe.js";
import { storedBytes, storedJson } from "../support/stored-row.js";
import { errorOf } from "../support/wait.js";

const database = useTestDatabase();
const open = useBackends(database, "unsettled-doubt");
const pipes = usePipes();

const LEASE = { holder: "A", ttlMs: 1_000, renewEveryMs: 250 } as const;

const told = (err: unknown): unknown =>
  err instanceof StorageError
    ? { code: err.code, inDoubt: err.details.inDoubt === true, settled: err.details.settled, unsettled: err.details.unsettled === true }
    : err;

const UNSETTLED = { code: "backend-error", inDoubt: true, settled: false, unsettled: false };
const REFUSED_UNSENT = { code: "backend-error", inDoubt: false, settled: undefined, unsettled: true };

/** A writer through a new pipe holding its next write (test/support/held-write-pipe.ts; `pipe.state.refuseEnds`). */
async function unsettledWriter() {
  const db = await database();
  const pipe = await heldWritePipe(pipes, db);
  const a = await open({ url: pipe.url, lease: LEASE });
  return { db, pipe, a };
}

describe("postgres: a write in doubt that could not be settled", () => {
  it("holds every later call until its session is seen ended: a value acknowledged after it is never overwritten", async () => {
    const { db, pipe, a } = await unsettledWriter();
    await a.write("k", Uint8Array.of(1));
    pipe.hold();
    pipe.state.refuseEnds = true;
    const first = told(await errorOf(() => a.write("k2", Uint8Array.of(49))));
    // Still no end seen: refused before anything is sent (no value of it can land).
    const second = told(await errorOf(() => a.write("k2", Uint8Array.of(50))));
    pipe.state.refuseEnds = false;
    await a.write("k2", Uint8Array.of(51)); // ends the held session first, then writes
    await pipe.deliver(); // the held request reaches a session that is gone
    const stored = await storedBytes(db, a.store, "k2");
    expect({ first, second, read: Array.from((await a.read("k2")) ?? []), stored }).toEqual({
      first: UNSETTLED,
      second: REFUSED_UNSENT,
      read: [51],
      stored: [51],
    });
  });

  it("an array-layout append-log's retry acknowledged after it is not overwritten by the held attempt", async () => {
    const { db, pipe, a } = await unsettledWriter();
    const log = appendLogStorage<number>(a, { name: "log", layout: "array", debounceMs: 60_000 });
    log.appendEntries([1]);
    await log.flush();
    pipe.hold();
    pipe.state.refuseEnds = true;
    log.appendEntries([2]);
    const failed = told(await errorOf(() => log.flush())); // the held attempt wrote [1, 2]
    pipe.state.refuseEnds = false;
    log.appendEntries([3]);
    await log.flush(); // acknowledged: [1, 2, 3]
    await pipe.deliver();
    expect({ failed, stored: await storedJson(db, a.store, "log"), loaded: (await log.loadEntries()).entries }).toEqual({
      failed: UNSETTLED,
      stored: [1, 2, 3],
      loaded: [1, 2, 3],
    });
  });

  it("another tier's append to the same bucket, acknowledged after it, is not overwritten by the held attempt", async () => {
    const { db, pipe, a } = await unsettledWriter();
    const shared = { keyOf: () => "x", layout: "array", debounceMs: 60_000 } as const;
    const ls = appendLogStorage<number>(a, { name: "ls", ...shared });
    const lt = appendLogStorage<number>(a, { name: "lt", ...shared });
    ls.appendEntries([1]);
    await ls.flush();
    pipe.hold();
    pipe.state.refuseEnds = true;
    ls.appendEntries([2]);
    const failed = told(await errorOf(() => ls.flush())); // the held attempt wrote [1, 2]
    pipe.state.refuseEnds = false;
    lt.appendEntries([3]);
    await lt.flush(); // acknowledged
    await pipe.deliver();
    ls.appendEntries([4]);
    await ls.flush(); // the retry of 2, and 4
    const stored = (await storedJson(db, a.store, "x")) as number[];
    // Each entry stored exactly once, in whatever order the retry put 2 (it was never acknowledged before).
    expect({ failed, stored: [...stored].sort() }).toEqual({ failed: UNSETTLED, stored: [1, 2, 3, 4] });
  });
});
