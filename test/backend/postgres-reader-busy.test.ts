/**
 * A read-only handle's read that the server is still working on (it waits for a lock: the session shows active) is
 * not dropped because this process runs long synchronous turns. The answer watch asks the server about the read
 * after the lease time; at a busy process its question takes several turns (opening the question connection is
 * several round trips, one a turn), and after a long turn Node runs an expired timer before it reads the socket.
 * d91957e counted a question that got no byte within half the lease time as the server's silence, and the reader
 * dropped the healthy read (backend-error "Connection terminated") with 250 ms turns; now silence counts only while
 * the server owes an answer, confirmed after an I/O turn (src/backend/postgres-silence.ts). The lease time is 1 s;
 * the turns are shorter and longer than half of it, and longer than all of it. Outcomes only, never durations.
 */
import { describe, expect, it } from "vitest";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";

const database = useTestDatabase();
const open = useBackends(database, "busy-reader");

/**
 * Turns the lock holds the read for, by turn length: past the lease time and past the answer watch's question (a few
 * turns to open its connection). Each case fails at 10633c1 (before the fix) with these counts as with 10 turns
 * (there the 700 and 1,500 ms reads were dropped at ~5 and ~3.5 turns); 250 ms turns need all 10 (with 5 the read
 * resolved there too).
 */
const LOCKED_TURNS: Record<number, number> = { 250: 10, 700: 7, 1_500: 5 };

/** Reads "a" while a lock holds the read and every turn spends `turnMs` busy; the lock goes after LOCKED_TURNS turns. */
async function readBehindLock(turnMs: number): Promise<string> {
  const lockedTurns = LOCKED_TURNS[turnMs] ?? 10;
  const db = await database();
  const writer = await open();
  await writer.write("a", new Uint8Array([1, 2, 3]));
  const store = writer.store;
  await writer.close();
  const reader = await open({ store, readOnly: true, lease: { ttlMs: 1_000 } });
  expect(Array.from((await reader.read("a")) ?? [])).toEqual([1, 2, 3]); // its question connection not opened yet
  const raw = await db.raw();
  await raw.query("BEGIN");
  await raw.query(`LOCK TABLE "${db.schema}".graphrefly_storage IN ACCESS EXCLUSIVE MODE`);
  let turns = 0;
  let done = false;
  let released: Promise<unknown> | undefined;
  const turn = (): void => {
    if (done) return;
    turns++;
    const end = performance.now() + turnMs;
    while (performance.now() < end); // synchronous work: nothing else of this process runs meanwhile
    if (turns === lockedTurns) released = raw.query("COMMIT");
    setImmediate(turn);
  };
  const read = reader.read("a").then(
    (v) => `resolved ${Array.from(v ?? []).join(",")}`,
    (e: unknown) => `rejected ${(e as { code?: string }).code}: ${(e as Error).message}`,
  );
  setImmediate(turn);
  const got = await read;
  done = true;
  await (released ?? raw.query("COMMIT"));
  return got;
}

describe("a reader's read waiting for a lock at a busy process (lease 1 s)", () => {
  for (const turnMs of [250, 700, 1_500]) {
    it(`resolves once the lock goes, under ${turnMs} ms turns`, async () => {
      expect(await readBehindLock(turnMs)).toBe("resolved 1,2,3");
    }, 60_000);
  }
});
