/**
 * Engine tiers flushing against a SQLite file another process holds locked for longer than watchdogMs (review s15c
 * D1): with a 5 s busy timeout the actor's group commit waited 5 s inside SQLite, then each tier's batch alone 5 s
 * more, none of it counted as progress, and the watchdog took the worker for hung (every flush rejected
 * worker-unresponsive). Now each attempt fails store-busy after a short busy timeout and the tiers retry
 * asynchronously, so the worker's event loop keeps beating: no tier is reported unresponsive, and every one stores
 * its write once the lock ends. A real second process holds the lock (test/support/sqlite-locker.cjs) until told.
 */
import { afterAll, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/engine.js";
import { StorageError } from "../../src/errors.js";
import { lockSqliteFile } from "../support/sqlite-locker.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("sqlite-locked");
afterAll(() => root.remove());

const TIERS = 7;
const WATCHDOG_MS = 2_000;

it("several tiers of a locked store fail store-busy, are never reported unresponsive, and all store after the lock", async () => {
  const errors: Error[] = [];
  const engine = openStorageEngine({ threads: 1, watchdogMs: WATCHDOG_MS, onError: (e) => errors.push(e) });
  const store = { kind: "sqlite" as const, path: root.fresh("locked.db") };
  try {
    const tiers = Array.from({ length: TIERS }, (_, n) => engine.kv<number>(store, { name: `t${n}`, retry: { initialMs: 20, maxMs: 200 } }));
    for (const t of tiers) {
      t.save("warm", 0);
      await t.flush();
    }
    const locker = await lockSqliteFile(store.path);
    try {
      // One turn: every tier saves and flushes (their batches share the actor's group commit).
      const first = await Promise.allSettled(
        tiers.map((t, n) => {
          t.save(`k${n}`, n);
          return t.flush();
        }),
      );
      for (const r of first) {
        expect(r.status).toBe("rejected");
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(StorageError);
        expect(((r as PromiseRejectedResult).reason as StorageError).code).toBe("store-busy");
      }
      // The lock lasts well past the watchdog's bound while the tiers' writes wait (answers due): the tiers retry
      // meanwhile (the actor's counters show the failed attempts), and nothing is taken for a hang.
      const lockedAt = Date.now();
      for (;;) {
        const [s] = await engine.stats();
        if (s!.failedFlushes >= 3 * TIERS && Date.now() - lockedAt >= 3 * WATCHDOG_MS) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const [during] = await engine.stats();
      expect(during!.alive).toBe(true);
      expect(during!.pendingBytes).toBeGreaterThan(0); // the writes are still owed: the watchdog was watching
      await locker.release();
    } finally {
      locker.kill();
    }
    await Promise.all(tiers.map((t) => t.flush()));
    for (let n = 0; n < TIERS; n++) expect(await tiers[n]!.load(`k${n}`)).toBe(n);
    const codes = errors.map((e) => (e as StorageError).code);
    expect(codes).not.toContain("worker-unresponsive");
    expect(codes).not.toContain("worker-crashed");
    expect(codes).toContain("store-busy");
  } finally {
    await engine.close();
  }
}, 120_000);
