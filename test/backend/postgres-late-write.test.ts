/**
 * A writer's write whose request the network holds: the answer watch finds the data session idle at two ticks, drops
 * the connection, and the write fails in doubt. The network may still deliver the held request to the server session,
 * which stays open (the proxy here is frozen: the client closing its side does not close the server's). It must not
 * store anything once the writer was told "in doubt" (a newer value of the key, acknowledged, would be overwritten),
 * nor after close() resolved (the row taken back for a whole lease, the next writer refused).
 */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { postgresBackend } from "../../src/backend/postgres.js";
import { useBackends, useTestDatabase, type TestDatabase } from "../support/postgres-db.js";
import { leaseRow } from "../support/lease-row.js";
import { usePipes, type PipeConnection } from "../support/postgres-pipe.js";
import { errorOf, until } from "../support/wait.js";

const database = useTestDatabase();
const open = useBackends(database, "late-write");
const pipes = usePipes();

const failure = (err: unknown): unknown => (err instanceof StorageError ? `${err.code}: ${err.message}` : err);

/**
 * A pipe that holds the first write request sent after `hold()` (and whatever follows it on that connection), and
 * tells when the held request was settled on the server: answered after `deliver()`, or its session ended (an
 * ErrorResponse with SQLSTATE 57P01, admin_shutdown) before.
 */
async function holdingPipe(db: TestDatabase, opts: { dropEnds?: boolean } = {}) {
  let holding = false;
  let held: PipeConnection | undefined;
  const passes: Array<() => void> = [];
  let delivered = false;
  let settled = false;
  const pipe = await pipes(db.url, {
    // The held connection only: its server side stays open when the client drops it (other connections close as
    // they should: frozen, each close() waited for its connections' bound).
    frozen: (conn) => conn === held,
    toServer: (d, pass, conn) => {
      // The request ending the held session lost on its way (a second network fault): nothing confirms its end.
      if (opts.dropEnds === true && d.includes("pg_terminate_backend")) return;
      if (holding && d.includes("grf_write_")) {
        holding = false;
        held = conn;
      }
      if (conn === held && !delivered) return void passes.push(pass);
      pass();
    },
    toClient: (d, pass, conn) => {
      if (conn === held && (delivered || d.includes("57P01"))) settled = true;
      pass();
    },
  });
  return {
    url: pipe.url,
    hold: () => void (holding = true),
    /** Delivers the held request, and waits until the server answered it or had ended its session before. */
    deliver: async () => {
      delivered = true;
      for (const pass of passes.splice(0)) pass();
      await until(() => settled, "the held request settled on the server", { timeoutMs: 30_000 });
    },
  };
}

async function storedValue(db: TestDatabase, store: string, key: string): Promise<number[] | undefined> {
  const raw = await db.raw();
  try {
    const r = await raw.query<{ v: Buffer }>(`SELECT v FROM "${db.schema}".graphrefly_storage WHERE store = $1 AND k = $2`, [store, key]);
    return r.rows[0] ? Array.from(r.rows[0].v) : undefined;
  } finally {
    await raw.end();
  }
}

describe("postgres: a write in doubt whose request reaches the server late", () => {
  it("does not overwrite a value of the key written and acknowledged after the in-doubt error", async () => {
    const db = await database();
    const pipe = await holdingPipe(db);
    const a = await open({ url: pipe.url, lease: { holder: "A", ttlMs: 1_000, renewEveryMs: 250 } });
    await a.write("k", Uint8Array.of(1));
    pipe.hold();
    const first = await errorOf(() => a.write("k2", Uint8Array.of(1)));
    const told = first instanceof StorageError ? { inDoubt: first.details.inDoubt, settled: first.details.settled } : failure(first);
    await a.write("k2", Uint8Array.of(2));
    await pipe.deliver();
    expect({ told, now: Array.from((await a.read("k2")) ?? []) }).toEqual({ told: { inDoubt: true, settled: true }, now: [2] });
    await a.close();
  });

  it("says the outcome may still change when the end of its server session cannot be seen", async () => {
    const db = await database();
    const pipe = await holdingPipe(db, { dropEnds: true });
    const a = await open({ url: pipe.url, lease: { holder: "A", ttlMs: 1_000, renewEveryMs: 250 } });
    await a.write("k", Uint8Array.of(1));
    pipe.hold();
    const first = await errorOf(() => a.write("k2", Uint8Array.of(1)));
    expect(
      first instanceof StorageError
        ? { inDoubt: first.details.inDoubt, settled: first.details.settled, later: first.message.includes("may still be stored later") }
        : failure(first),
    ).toEqual({ inDoubt: true, settled: false, later: true });
    await pipe.deliver();
    await a.close();
  });

  it("stores nothing after close(): the row stays released and the next writer opens at once", async () => {
    const db = await database();
    const pipe = await holdingPipe(db);
    const a = await open({ url: pipe.url, lease: { holder: "A", ttlMs: 1_000, renewEveryMs: 250 } });
    await a.write("k", Uint8Array.of(1));
    pipe.hold();
    const first = await errorOf(() => a.write("k2", Uint8Array.of(2)));
    const inDoubt = first instanceof StorageError ? first.details.inDoubt : failure(first);
    await a.close();
    await pipe.deliver();
    const row = await leaseRow(db, a.store);
    const b = await errorOf(async () => {
      const next = await postgresBackend({ url: db.url, schema: db.schema, store: a.store, lease: { holder: "B", ttlMs: 1_000, renewEveryMs: 250 } });
      await next.close();
    });
    expect({ inDoubt, k2: await storedValue(db, a.store, "k2"), lapsed: row.lapsed, open: failure(b) }).toEqual({
      inDoubt: true,
      k2: undefined,
      lapsed: true,
      open: undefined,
    });
  });
});
