/**
 * What the two "writer that gave its store up" files share (postgres-lease-given-up and -given-up-late): a pipe that
 * holds a writer's renewals and its write, tells when its release of the row was answered, and may drop the data
 * connection's answers; and the order both force on it: a write held on its way while the row lapses, the writer's
 * loss found, its late renewals passed and its release answered. The write is then the test's to deliver.
 */
import { expect } from "vitest";
import { StorageError } from "../../src/errors.js";
import type { PostgresBackend, PostgresBackendOptions } from "../../src/backend/postgres.js";
import type { TestDatabase } from "./postgres-db.js";
import { leaseRow } from "./lease-row.js";
import type { PipeConnection, usePipes } from "./postgres-pipe.js";
import { errorOf, until } from "./wait.js";

export const failure = (err: unknown): unknown => (err instanceof StorageError ? `${err.code}: ${err.message}` : err);
export const codeOf = (e: unknown): unknown => (e as { code?: unknown } | undefined)?.code;

/** How many command answers ("UPDATE n" tags) a chunk from the server holds. */
export const updateTags = (d: Buffer): number => d.toString("latin1").split("UPDATE ").length - 1;

type Pipes = ReturnType<typeof usePipes>;
type Open = (opts?: Partial<PostgresBackendOptions>) => Promise<PostgresBackend>;

/**
 * A writer "A" whose write of "k2" was sent within its deadline and is held on a slow link with its renewals, until
 * its row lapsed by the database clock, a check found its deadline passed (not-owner: it gave the store up) and its
 * release was answered (after the late renewals, on the lease connection). `write` settles with "stored" or the
 * write's error once the test delivers it (`deliverWrite`); with `dropAnswers` set before, the data connection's
 * answers are lost (`answersDropped` counts them).
 */
export async function givenUpWithWriteHeld(db: TestDatabase, pipes: Pipes, open: Open) {
  // Holds A's renewals (lease connection) while `holdRenew`, and its write (data connection) while `holdWrite`.
  let holdRenew = false;
  let holdWrite = false;
  const drop = { answers: false, dropped: 0 };
  const heldRenew: Array<() => void> = [];
  const heldWrite: Array<() => void> = [];
  // The data connection the write was held on: the answer watch may drop it while the write is held (see deliverWrite).
  let writeConn: PipeConnection | undefined;
  const leaseConns = new Set<unknown>();
  // The connection A's release of its row went out on (the lease connection, or a new one when a held renewal timed
  // out meanwhile, as under load), and whether it was answered: the next command answer there is the release's.
  const releaseConns = new Set<unknown>();
  let released = false;
  const pipe = await pipes(db.url, {
    toServer: (d, pass, conn) => {
      if (d.includes("grf_write_")) conn.marked = true;
      if (!conn.marked && d.includes("grf_lease_renew")) leaseConns.add(conn);
      if (!conn.marked && d.includes("LEAST(expires_at")) releaseConns.add(conn);
      if (holdRenew && !conn.marked && d.includes("grf_lease_renew")) return void heldRenew.push(pass);
      if (holdWrite && conn.marked && d.includes("grf_write_")) {
        writeConn = conn;
        return void heldWrite.push(pass);
      }
      pass();
    },
    toClient: (d, pass, conn) => {
      if (releaseConns.has(conn) && updateTags(d) > 0) released = true;
      if (drop.answers && conn.marked) return void drop.dropped++;
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
  const write = a.write("k2", Uint8Array.of(2)).then(
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
  return {
    a,
    write,
    cut: pipe.cut,
    /** From now on the data connection's answers are lost. */
    dropAnswers: (): void => void (drop.answers = true),
    answersDropped: (): number => drop.dropped,
    /**
     * The held write reaches the server now: true. False when its connection was closed before: A's answer watch
     * found the request unanswered for the lease time (the server session idle, not having got it) and dropped the
     * connection, and its settle ended that session (the write failed in doubt, settled). Correct, and only the time
     * this order takes decides it: the watch looks from a lease time after the write was sent, which a loaded machine
     * may reach before the release is answered here.
     */
    deliverWrite: (): boolean => {
      holdWrite = false;
      const delivered = writeConn !== undefined && !writeConn.closed;
      for (const pass of heldWrite.splice(0)) pass();
      return delivered;
    },
    /** The connection the write was held on has closed (the answer watch, a cut, or the server ended it). */
    writeConnClosed: (): boolean => writeConn?.closed === true,
  };
}
