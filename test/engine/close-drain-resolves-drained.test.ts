/**
 * A producer refused by backpressure waits in drained(weight) while the engine closes: the close's drain stores every
 * write, so the wait must resolve (the room is there, nothing it waited for is lost). The store's end used to reject
 * the backlog's waiters (connection.ts die() -> backlog.ts fail()) whenever it came before the 5 ms room poll saw the
 * drain's room (task 337, found by task 334). Here the refused write weighs more than the bound, so its room comes only
 * with the drain's commit of everything before it: before the fix about half the rounds rejected with `closed`. Every
 * round must resolve now, and every accepted write is in the SQLite file. No timing is asserted: the rounds make the
 * race likely to show, not certain. A drain that refuses one of the tier's writes still never lets such a wait
 * resolve on the store's end: it rejects with the refusal, unless its poll saw the room first (as before).
 * Real parts: SQLite files, engine worker threads.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { StorageError } from "../../src/errors.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("close-drain-resolves-drained");
afterAll(() => root.remove());

const MAX_PENDING = 64 * 1024;
const SMALL = "v".repeat(1000);
const ACCEPTED = 40; // 40 kB pending, under the bound

it("drained(weight) waiting while engine.close() drains the store resolves, and every write is in the file", async () => {
  const outcomes: string[] = [];
  for (let round = 0; round < 12; round++) {
    const path = root.fresh("store.db");
    const engine = openStorageEngine({ threads: 1, maxPendingBytes: MAX_PENDING, onError: () => undefined });
    try {
      const kv = engine.kv<string>({ kind: "sqlite", path }, { debounceMs: 60_000 });
      kv.save("opened", "1");
      await kv.flush(); // the actor runs: the writes below wait in it for the close's drain (debounce 60 s)
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
      const drained = kv.drained!(weight as number).then(
        () => "resolved",
        (e: unknown) => `rejected: ${(e as { code?: string }).code ?? ""} ${(e as Error).message}`,
      );
      await sleep(50); // the producer is waiting when the close begins
      await engine.close();
      outcomes.push(await drained);
    } finally {
      await engine.close().catch(() => undefined);
    }
    const backend = sqliteBackend(path);
    try {
      expect(backend.list("k")).toHaveLength(ACCEPTED);
      expect(new TextDecoder().decode(backend.read(`k${ACCEPTED - 1}`))).toContain(SMALL);
      expect(backend.read("big")).toBeUndefined(); // refused, never accepted
    } finally {
      backend.close();
    }
  }
  expect(outcomes).toEqual(outcomes.map(() => "resolved"));
}, 180_000);

it("drained(weight) on a tier whose write the close's drain refused rejects with that refusal, never with a bare closed", async () => {
  for (let round = 0; round < 6; round++) {
    const engine = openStorageEngine({ threads: 1, maxPendingBytes: MAX_PENDING, onError: () => undefined });
    try {
      const kv = engine.kv<unknown>({ kind: "sqlite", path: root.fresh("store.db") }, { debounceMs: 60_000 });
      kv.save("opened", 1);
      await kv.flush();
      kv.save("nan", { n: Number.NaN }); // refused by the codec when the drain stores it
      for (let i = 0; i < ACCEPTED; i++) kv.save(`k${i}`, SMALL);
      let weight: unknown;
      try {
        kv.save("big", "b".repeat(2 * MAX_PENDING));
      } catch (err) {
        weight = (err as StorageError).details.weight;
      }
      expect(weight).toBeGreaterThan(MAX_PENDING);
      const drained = kv.drained!(weight as number).then(
        () => "resolved",
        (e: unknown) => `rejected ${(e as { code?: string }).code ?? ""}`,
      );
      await sleep(50);
      const closed = engine.close().then(
        () => "resolved",
        (e: unknown) => `rejected ${(e as { code?: string }).code ?? ""}`,
      );
      expect(await closed).toBe("rejected encode-failed");
      // Its poll may see the room the drain made (a refused write settles too) before the store's end; else the
      // store's end settles it with the tier's drain: the refusal.
      expect(["resolved", "rejected encode-failed"]).toContain(await drained);
    } finally {
      await engine.close().catch(() => undefined);
    }
  }
}, 120_000);
