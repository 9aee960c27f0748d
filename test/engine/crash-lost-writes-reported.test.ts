/**
 * Writes a crashed worker held unacknowledged are reported as lost (`worker-crashed`) by their tier's next flush that
 * reaches an open store, and only then:
 * - PostgreSQL: the dead worker's lease outlives it, so the revived actor's open fails (`store-locked`). The lost
 *   writes' refusal went to that actor and died with it; a caller retrying its flush until it resolved never heard
 *   of the loss, and its flush resolved with the write gone (review). The loss is now kept until an actor opened.
 * - A flush that rejected with a refusal (nothing left pending) no longer makes a later crash report writes as lost
 *   that were all stored (an append-log caller retrying them would store them twice) (review).
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openFaultEngine, type FaultEngine } from "../support/faults.js";
import type { StoreSpec } from "../../src/engine/index.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { tempRoot } from "./fixtures/helpers.js";
import { outcome } from "../support/refusals.js";

const database = useTestDatabase();
const root = tempRoot("crash-lost-reported");
afterAll(() => root.remove());
let engine: FaultEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});


async function crash(e: FaultEngine, store: StoreSpec): Promise<void> {
  await e.injectFault(store, "terminate");
  for (let i = 0; i < 2000 && (await e.stats()).every((s) => s.alive); i++) await new Promise((r) => setTimeout(r, 5));
}

describe("lost writes after a worker crash", () => {
  it("PostgreSQL, the lease still held: a caller retrying its flush hears worker-crashed before one resolves", async () => {
    const db = await database();
    const e = openFaultEngine({ threads: 1, onError: () => undefined });
    engine = e;
    const store: StoreSpec = { kind: "postgres", url: db.url, schema: db.schema, store: "crash-lost", lease: { ttlMs: 2_000 } };
    const kv = e.kv<number>(store, { name: "kv", debounceMs: 60_000 });
    kv.save("a", 1);
    await kv.flush();
    kv.save("b", 2); // reaches the actor, never flushed
    await new Promise((r) => setTimeout(r, 20));
    await crash(e, store);
    const seen: string[] = [];
    for (let i = 0; i < 100; i++) {
      const o = await outcome(kv.flush());
      seen.push(o);
      if (o === "resolved") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen.at(-1)).toBe("resolved");
    expect(seen).toContain("rejected worker-crashed");
    expect(seen.filter((o) => o === "rejected worker-crashed")).toHaveLength(1);
    expect(seen.every((o) => ["rejected store-locked", "rejected worker-crashed", "resolved"].includes(o))).toBe(true);
    expect(await kv.load("a")).toBe(1);
    expect(await kv.load("b")).toBeUndefined();
  }, 60_000);

  it("a flush rejected by a refusal, then a crash with nothing unacknowledged: the next flush resolves", async () => {
    const e = openFaultEngine({ threads: 1, onError: () => undefined });
    engine = e;
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("refused.db") };
    const log = e.appendLog<unknown>(store, { name: "log", debounceMs: 60_000 });
    log.appendEntries([1, 2]);
    log.appendEntries([{ n: Number.NaN }]); // refused: JSON has no NaN
    expect(await outcome(log.flush())).toBe("rejected encode-failed");
    await crash(e, store);
    expect(await outcome(log.flush())).toBe("resolved");
    expect((await log.loadEntries()).entries).toEqual([1, 2]);
  });
});
