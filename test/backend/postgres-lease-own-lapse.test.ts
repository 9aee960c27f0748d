/**
 * A PostgreSQL writer whose own lease row lapsed by the database clock while nobody took the store keeps it (task
 * 241): the row still naming its holder and epoch proves no other writer held the store since, so a write takes it
 * back in its own conditional statement, and so does a renewal within the writer's deadline or beside a write of its
 * own. A row another writer took (a higher epoch) still fences both; past its own deadline, with nothing of its own
 * holding the row, the writer still gives the store up.
 *
 * Before, postgres-lease-edges' long-write case failed under load: after a 1.6 s write (lease 1 s) a renewal sent
 * before the write's own extension reached the server found the row expired, and the writer gave the store up with
 * nobody else in sight. Here that order is forced, not timed: a loopback pipe holds the data connection's extension
 * until renewals ran. Real parts: the test PostgreSQL server, the backend's two connections.
 */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { simulatePausedHolder } from "../../src/backend/postgres.js";
import { useBackends, useTestDatabase, type TestDatabase } from "../support/postgres-db.js";
import { leaseRow } from "../support/lease-row.js";
import { usePipes } from "../support/postgres-pipe.js";
import { errorOf, until } from "../support/wait.js";

const database = useTestDatabase();
const open = useBackends(database, "own-lapse");
const pipes = usePipes();

/** What a call ended with, readable in a failed expectation: undefined, or code and message. */
const failure = (err: unknown): unknown => (err instanceof StorageError ? `${err.code}: ${err.message}` : err);

/** Makes the server take `seconds` over every row written under key `key` (an AFTER trigger: opens refuse BEFORE). */
async function slowKey(db: TestDatabase, key: string, seconds: number): Promise<void> {
  const raw = await db.raw();
  const s = `"${db.schema}"`;
  await raw.query(`CREATE OR REPLACE FUNCTION ${s}.own_lapse_slow() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.k = '${key}' THEN PERFORM pg_sleep(${seconds}); END IF; RETURN NEW; END $$`);
  await raw.query(
    `CREATE OR REPLACE TRIGGER own_lapse_slow AFTER INSERT OR UPDATE ON ${s}.graphrefly_storage FOR EACH ROW EXECUTE FUNCTION ${s}.own_lapse_slow()`,
  );
  await raw.end();
}

describe("postgresBackend lease: the writer's own row lapsed, nobody took it", () => {
  it("a renewal that finds it so after a long write takes it back: the writer keeps its store", async () => {
    const db = await database();
    // The pipe holds the data connection's extension after the long write (as a busy process or a slow link would
    // delay it) until three renewals went out on the lease connection, or the writer gave the store up.
    let holding = false;
    const held: Array<() => void> = [];
    let renewalsWhileHeld = 0;
    const pipe = await pipes(db.url, {
      toServer: (d, pass, conn) => {
        if (d.includes("grf_write_")) conn.marked = true; // the data connection
        if (conn.marked && (held.length > 0 || (holding && d.includes("grf_lease_extend_after_write")))) {
          held.push(pass);
          return;
        }
        if (!conn.marked && held.length > 0 && d.includes("grf_lease_renew")) renewalsWhileHeld++;
        pass();
      },
    });
    const a = await open({ url: pipe.url, lease: { holder: "A", ttlMs: 1000, renewEveryMs: 100 } });
    await slowKey(db, "slow", 1.3);
    await a.write("before", Uint8Array.of(1));
    holding = true;
    // Its lease row's expiry, set as it began, passes while the server works: it commits on a lapsed row.
    const slow = a.write("slow", Uint8Array.of(2));
    await until(() => a.finalError !== undefined || renewalsWhileHeld >= 3, "renewals after the long write, or the store given up", {
      timeoutMs: 30_000,
    });
    holding = false;
    for (const pass of held.splice(0)) pass();
    // Before: "not-owner: ... its lease was taken over or expired ... (the lease row still names it, expired)".
    expect(failure(a.finalError)).toBeUndefined();
    expect(failure(await errorOf(() => slow))).toBeUndefined();
    expect(failure(await errorOf(() => a.write("after", Uint8Array.of(3))))).toBeUndefined();
    expect(await a.readMany(["before", "slow", "after"])).toEqual([1, 2, 3].map((n) => Uint8Array.of(n)));
    expect(await leaseRow(db, a.store)).toMatchObject({ holder: "A", epoch: a.lease!.epoch });
  });

  it("a write that finds it so takes it back and lands, one statement or a split batch; a takeover after still fences it", async () => {
    const db = await database();
    for (const split of [false, true]) {
      // Paused (the test hook): no renewals, no deadline of its own; its writes reach the database however late.
      const a = await open({ ...(split ? { maxStatementBytes: 1 } : {}), lease: { holder: "A", ttlMs: 500, renewEveryMs: 100 } });
      await a.write("k0", Uint8Array.of(1));
      simulatePausedHolder(a);
      await until(async () => (await leaseRow(db, a.store)).lapsed, "A's lease row lapsed by the database clock", { timeoutMs: 30_000 });
      const late = split
        ? a.writeBatch([
            { op: "put", key: "k1", value: Uint8Array.of(2) },
            { op: "put", key: "k2", value: Uint8Array.of(3) },
          ])
        : a.write("k1", Uint8Array.of(2));
      // Before: not-owner, "(the lease row still names it, expired)", nothing stored.
      expect(failure(await errorOf(() => late)), `split ${split}`).toBeUndefined();
      expect(await leaseRow(db, a.store), `split ${split}`).toMatchObject({ holder: "A", epoch: a.lease!.epoch });

      // A real takeover: B waits for the taken-back lease to lapse (A, paused, does not renew it) and takes the store.
      const b = await open({ store: a.store, lease: { holder: "B", waitMs: 30_000 } });
      expect(b.lease?.epoch).toBe(a.lease!.epoch + 1);
      const refused = await errorOf(() => a.write("k3", Uint8Array.of(4)));
      expect((refused as StorageError).code, `split ${split}`).toBe("not-owner");
      expect((refused as StorageError).details).toMatchObject({ holder: "B", epoch: a.lease!.epoch + 1 });
      await b.write("b", Uint8Array.of(5));
      // A's acknowledged writes stand, its refused one is nowhere.
      const want = split ? [1, 2, 3] : [1, 2, undefined];
      expect(await b.readMany(["k0", "k1", "k2", "k3", "b"])).toEqual([...want, undefined, 5].map((n) => (n === undefined ? undefined : Uint8Array.of(n))));
      expect(await leaseRow(db, a.store)).toMatchObject({ holder: "B", epoch: a.lease!.epoch + 1 });
    }
  });

  it("a write and a contender racing for the lapsed row: exactly one gets it, and the write's answer says which", async () => {
    const db = await database();
    const a = await open({ lease: { holder: "A", ttlMs: 500, renewEveryMs: 100 } });
    await a.write("k", Uint8Array.of(1));
    simulatePausedHolder(a);
    await until(async () => (await leaseRow(db, a.store)).lapsed, "A's lease row lapsed by the database clock", { timeoutMs: 30_000 });
    // Whichever locks the row first: A's write takes the row back (B then waits for it to lapse again), or B takes
    // the store (A's write is fenced). Never both at one epoch.
    const [write, contender] = await Promise.allSettled([
      a.write("race", Uint8Array.of(2)),
      open({ store: a.store, lease: { holder: "B", waitMs: 30_000 } }),
    ]);
    expect(contender.status).toBe("fulfilled");
    const b = (contender as PromiseFulfilledResult<Awaited<ReturnType<typeof open>>>).value;
    expect(b.lease?.epoch).toBe(a.lease!.epoch + 1);
    if (write.status === "rejected") expect((write.reason as StorageError).code).toBe("not-owner");
    // An acknowledged write is in the store B took over; a refused one is not.
    expect(await b.read("race")).toEqual(write.status === "fulfilled" ? Uint8Array.of(2) : undefined);
    expect((await errorOf(() => a.write("after", Uint8Array.of(3))) as StorageError).code).toBe("not-owner");
    expect(await b.read("after")).toBeUndefined();
  });

  /**
   * A pipe holding the lease connection's renewals (the data connection passes) while `hold.on`; `release` sends the
   * held ones on, `drop` loses them with every connection (as a network cut).
   */
  async function renewalsHeld(db: TestDatabase): Promise<{ url: string; hold: { on: boolean }; release(): void; drop(): void }> {
    const hold = { on: false };
    const held: Array<() => void> = [];
    const pipe = await pipes(db.url, {
      toServer: (d, pass, conn) => {
        if (d.includes("grf_write_")) conn.marked = true;
        if (hold.on && !conn.marked && d.includes("grf_lease_renew")) {
          held.push(pass);
          return;
        }
        pass();
      },
    });
    return {
      url: pipe.url,
      hold,
      release: () => {
        hold.on = false;
        for (const pass of held.splice(0)) pass();
      },
      drop: () => {
        hold.on = false;
        held.length = 0;
        pipe.cut();
      },
    };
  }

  it("a renewal held back past a takeover is refused: the old writer loses the store and writes nothing", async () => {
    const db = await database();
    const pipe = await renewalsHeld(db);
    const a = await open({ url: pipe.url, lease: { holder: "A", ttlMs: 500, renewEveryMs: 100 } });
    await a.write("k", Uint8Array.of(1));
    pipe.hold.on = true;
    const b = await open({ store: a.store, lease: { holder: "B", waitMs: 30_000 } });
    expect(b.lease?.epoch).toBe(a.lease!.epoch + 1);
    pipe.release();
    await until(() => a.finalError !== undefined, "A's renewal refused", { timeoutMs: 30_000 });
    expect((a.finalError as StorageError).code).toBe("not-owner");
    expect((a.finalError as StorageError).details).toMatchObject({ holder: "B", epoch: a.lease!.epoch + 1 });
    expect((await errorOf(() => a.write("k", Uint8Array.of(2))) as StorageError).code).toBe("not-owner");
    await b.write("b", Uint8Array.of(3));
    expect(await b.readMany(["k", "b"])).toEqual([Uint8Array.of(1), Uint8Array.of(3)]);
    expect(await leaseRow(db, a.store)).toMatchObject({ holder: "B", epoch: a.lease!.epoch + 1 });
  });

  it("renewals held back past the writer's own deadline, nobody taking the store: the lapse is final all the same", async () => {
    const db = await database();
    const pipe = await renewalsHeld(db);
    const a = await open({ url: pipe.url, lease: { holder: "A", ttlMs: 500, renewEveryMs: 100 } });
    await a.write("k", Uint8Array.of(1));
    pipe.hold.on = true;
    // As a cut network: the row lapses by the database clock, and with it A's own deadline (never later), with no
    // write of its own holding the row. The renewals held (some sent within the deadline) are lost with the cut.
    await until(async () => (await leaseRow(db, a.store)).lapsed, "A's lease row lapsed by the database clock", { timeoutMs: 30_000 });
    pipe.drop();
    // Its next renewal, past its deadline, asks for a live lease and is refused: no write needed to give the store up.
    await until(() => a.finalError !== undefined, "A gave the store up", { timeoutMs: 30_000 });
    expect((a.finalError as StorageError).code).toBe("not-owner");
    expect((await errorOf(() => a.write("k", Uint8Array.of(2))) as StorageError).code).toBe("not-owner");
    // Nobody held it: the next writer takes it at once, and A's refused write is nowhere.
    const b = await open({ store: a.store, lease: { holder: "B" } });
    expect(b.lease?.epoch).toBe(a.lease!.epoch + 1);
    expect(await b.read("k")).toEqual(Uint8Array.of(1));
  });
});
