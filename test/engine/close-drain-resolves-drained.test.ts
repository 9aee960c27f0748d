/**
 * A producer refused by backpressure waits in drained(weight) while the engine closes: the close's drain stores every
 * write, so the wait must resolve (the room is there, nothing it waited for is lost). The store's end used to reject
 * the backlog's waiters (connection.ts die() -> backlog.ts fail()) whenever it came before the 5 ms room poll saw the
 * drain's room (task 337, found by task 334). Here the refused write weighs more than the bound, so its room comes only
 * with the drain's commit of everything before it. The engine's test internals hold the poll (drainPollMs: an hour), so
 * the store's end certainly comes first: before the fix every such wait rejected with `closed` (task 345; with the real
 * poll only about half the rounds did). The same close with the real poll resolves too, whichever comes first. A drain
 * that refuses one of the tier's writes never lets such a wait resolve on the store's end: it rejects with the refusal,
 * unless its poll saw the room first (as before). No timing is asserted.
 * Real parts: SQLite files, engine worker threads.
 */
import { afterAll, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngineForTests, workerEntryPath } from "../../src/engine/engine.js";
import { StorageError } from "../../src/errors.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("close-drain-resolves-drained");
afterAll(() => root.remove());

const MAX_PENDING = 64 * 1024;
const SMALL = "v".repeat(1000);
const ACCEPTED = 40; // 40 kB pending, under the bound
/** The poll held: no look at the acknowledgements before the store's end settles the wait. */
const HELD = 3_600_000;

/**
 * A kv tier on a fresh SQLite store with ACCEPTED writes waiting in its actor for the close's drain (and `refused`'s
 * write first, if any), a write heavier than the bound refused, its drained(weight) waiting, then engine.close(): how
 * the wait and the close settled (`code message`), and the store's path. `drainPollMs` undefined: the engine's poll.
 */
async function closeWhileWaiting(
  drainPollMs: number | undefined,
  refused?: { key: string; value: unknown },
): Promise<{ drained: string; closed: string; path: string }> {
  const path = root.fresh("store.db");
  const { engine } = openStorageEngineForTests(
    { threads: 1, maxPendingBytes: MAX_PENDING, onError: () => undefined },
    workerEntryPath(),
    drainPollMs === undefined ? {} : { drainPollMs },
  );
  const settled = (p: Promise<unknown>): Promise<string> =>
    p.then(
      () => "resolved",
      (e: unknown) => `rejected ${(e as { code?: string }).code ?? ""} ${(e as Error).message}`,
    );
  try {
    const kv = engine.kv<unknown>({ kind: "sqlite", path }, { debounceMs: 60_000 });
    kv.save("opened", "1");
    await kv.flush(); // the actor runs: the writes below wait in it for the close's drain (debounce 60 s)
    if (refused !== undefined) kv.save(refused.key, refused.value);
    for (let i = 0; i < ACCEPTED; i++) kv.save(`k${i}`, SMALL);
    let weight: unknown;
    try {
      kv.save("big", "b".repeat(2 * MAX_PENDING)); // heavier than the bound: taken only once nothing is pending
    } catch (err) {
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).code).toBe("backpressure");
      weight = (err as StorageError).details.weight;
    }
    expect(weight).toBeGreaterThan(MAX_PENDING);
    const drained = settled(kv.drained!(weight as number)); // waiting from this call on: the close begins after it
    const closed = settled(engine.close());
    return { drained: await drained, closed: await closed, path };
  } finally {
    await engine.close().catch(() => undefined);
  }
}

/** Every accepted write is in the SQLite file, the refused one is not. */
function expectStored(path: string): void {
  const backend = sqliteBackend(path);
  try {
    expect(backend.list("k")).toHaveLength(ACCEPTED);
    expect(new TextDecoder().decode(backend.read(`k${ACCEPTED - 1}`))).toContain(SMALL);
    expect(backend.read("big")).toBeUndefined(); // refused, never accepted
  } finally {
    backend.close();
  }
}

it("drained(weight) waiting while engine.close() drains the store resolves when the store's end comes before any poll, and every write is in the file", async () => {
  for (let round = 0; round < 3; round++) {
    const { drained, closed, path } = await closeWhileWaiting(HELD);
    expect(closed).toBe("resolved");
    expect(drained).toBe("resolved");
    expectStored(path);
  }
}, 60_000);

it("drained(weight) waiting while engine.close() drains the store resolves with the engine's poll too, whichever comes first", async () => {
  for (let round = 0; round < 6; round++) {
    const { drained, closed, path } = await closeWhileWaiting(undefined);
    expect(closed).toBe("resolved");
    expect(drained).toBe("resolved");
    expectStored(path);
  }
}, 120_000);

it("drained(weight) on a tier whose write the close's drain refused rejects with that refusal, never with a bare closed", async () => {
  const nan = { key: "nan", value: { n: Number.NaN } }; // refused by the codec when the drain stores it
  for (let round = 0; round < 3; round++) {
    const { drained, closed } = await closeWhileWaiting(HELD, nan);
    expect(closed).toMatch(/^rejected encode-failed /);
    expect(drained).toMatch(/^rejected encode-failed /); // the store's end came first: the tier's drain says why
  }
  for (let round = 0; round < 3; round++) {
    const { drained, closed } = await closeWhileWaiting(undefined, nan);
    expect(closed).toMatch(/^rejected encode-failed /);
    // Its poll may see the room the drain made (a refused write settles too) before the store's end; else the
    // store's end settles it with the tier's drain: the refusal.
    expect(drained).toMatch(/^(resolved|rejected encode-failed )/);
  }
}, 120_000);
