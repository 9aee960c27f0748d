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
import { heldWritePipe } from "../support/held-write-pipe.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";
import { leaseRow } from "../support/lease-row.js";
import { usePipes } from "../support/postgres-pipe.js";
import { storedBytes } from "../support/stored-row.js";
import { errorOf } from "../support/wait.js";

const database = useTestDatabase();
const open = useBackends(database, "late-write");
const pipes = usePipes();

const failure = (err: unknown): unknown => (err instanceof StorageError ? `${err.code}: ${err.message}` : err);

/** Writer "A" through a new held-write pipe (test/support/held-write-pipe.ts), k = [1] stored, its next write held. */
async function writerHeld(opts: { dropEnds?: boolean } = {}) {
  const db = await database();
  const pipe = await heldWritePipe(pipes, db, opts);
  const a = await open({ url: pipe.url, lease: { holder: "A", ttlMs: 1_000, renewEveryMs: 250 } });
  await a.write("k", Uint8Array.of(1));
  pipe.hold();
  return { db, pipe, a };
}

describe("postgres: a write in doubt whose request reaches the server late", () => {
  it("does not overwrite a value of the key written and acknowledged after the in-doubt error", async () => {
    const { pipe, a } = await writerHeld();
    const first = await errorOf(() => a.write("k2", Uint8Array.of(1)));
    const told = first instanceof StorageError ? { inDoubt: first.details.inDoubt, settled: first.details.settled } : failure(first);
    await a.write("k2", Uint8Array.of(2));
    await pipe.deliver();
    expect({ told, now: Array.from((await a.read("k2")) ?? []) }).toEqual({ told: { inDoubt: true, settled: true }, now: [2] });
    await a.close();
  });

  it("says the outcome may still change when the end of its server session cannot be seen", async () => {
    const { pipe, a } = await writerHeld({ dropEnds: true });
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
    const { db, pipe, a } = await writerHeld();
    const first = await errorOf(() => a.write("k2", Uint8Array.of(2)));
    const inDoubt = first instanceof StorageError ? first.details.inDoubt : failure(first);
    await a.close();
    await pipe.deliver();
    const row = await leaseRow(db, a.store);
    const b = await errorOf(async () => {
      const next = await postgresBackend({ url: db.url, schema: db.schema, store: a.store, lease: { holder: "B", ttlMs: 1_000, renewEveryMs: 250 } });
      await next.close();
    });
    expect({ inDoubt, k2: await storedBytes(db, a.store, "k2"), lapsed: row.lapsed, open: failure(b) }).toEqual({
      inDoubt: true,
      k2: undefined,
      lapsed: true,
      open: undefined,
    });
  });
});
