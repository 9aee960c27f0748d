/**
 * A store released at once after a tier's close that its actor, lost before it answered ready(), answered (task 321,
 * releaseUnreached): the engine forgot it while the lost actor's thread was still being terminated (the watchdog's
 * termination waits for a native SQLite call to return first), and a tier opened on the same path started a new
 * actor at once, which met the store still held by the old thread (review r329 F3, task 334). The engine now starts
 * the store's next actor only once the old one is off its thread.
 * Real parts: SQLite files, engine worker threads; the fixture's thread stands as one stuck inside the store's open
 * (its database locked, its native gate marked) for 3 s, then busy until terminated.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";
import { openStorageEngineForTests } from "../../src/engine/engine.js";
import { settledTo } from "../support/settled.js";
import { tempRoot } from "./fixtures/helpers.js";

const STUCK_WORKER = fileURLToPath(new URL("./fixtures/stuck-open-worker.mjs", import.meta.url));
const root = tempRoot("released-store-waits-thread");
afterAll(() => root.remove());

it("a store released after its unopened actor was lost opens again only once that actor's thread is gone", async () => {
  const heard: Error[] = [];
  const access = openStorageEngineForTests({ threads: 2, watchdogMs: 500, idleStoreCloseMs: 0, closeTimeoutMs: 10_000, onError: (e) => void heard.push(e) }, STUCK_WORKER);
  const engine = access.engine;
  try {
    const store = { kind: "sqlite" as const, path: root.fresh("store.db") };
    const first = engine.kv<string>(store, { name: "t" });
    first.save("k", "1");
    await first.flush();
    await first.close(); // the store shuts down with its last tier (idleStoreCloseMs 0)
    writeFileSync(`${store.path}.stuck`, ""); // the next actor of the store gets stuck in its open
    const stuck = engine.kv<string>(store, { name: "t" });
    stuck.save("k", "never stored");
    const closed = await settledTo(stuck.close()); // the watchdog loses the actor: the close is answered by its loss
    expect(closed).toMatchObject({ code: "worker-unresponsive", details: { tierClosed: true } });
    const told = heard.length;
    const again = engine.kv<string>(store, { name: "t" });
    again.save("k", "2");
    expect(await settledTo(again.flush())).toBe("resolved");
    expect(await again.load("k")).toBe("2");
    // Before: the new actor opened the store while the old thread still held it, and its open failure was told.
    expect(heard.slice(told).map((e) => `${(e as { code?: string }).code}: ${e.message}`)).toEqual([]);
    await again.close();
  } finally {
    await engine.close().catch(() => undefined);
  }
}, 60_000);
