/**
 * close() after a PostgreSQL writer lost its lease (follow-up to postgres-lease-lost): no retry can store what the
 * tier holds, so close() closes it anyway, dropping that data, rejects once with the final not-owner (the caller
 * learns the data was not stored), and a second close() resolves. It rejected with not-owner and left the tier
 * open, its data and timers kept for a retry that could never succeed: a server's shutdown path (close every tier,
 * then the backend or engine) leaked it. Inline, through an engine's actor, and under an attach whose dispose()
 * settles before its tiers close. The server is "frozen" by a loopback proxy, as in postgres-lease-lost.
 */
import { describe, expect, it } from "vitest";
import { openStorageEngine, postgresBackend } from "../../src/index.js";
import { KvCore } from "../../src/tier/kv.js";
import { isRefusalReport } from "../../src/tier/refusal-watchers.js";
import { jsonCodecFor } from "../../src/codec/json.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { usePipes } from "../support/postgres-pipe.js";
import { errorOf, syncErrorOf, until } from "../support/wait.js";
import { attachedOver, codeOf, LOST_LEASE_TTL_MS, outcome, useFreezable, wavesThroughFreeze, type Freezable } from "../support/lease-loss.js";

const freezable = useFreezable(useTestDatabase(), usePipes());
const TTL = LOST_LEASE_TTL_MS;

/** An engine kv tier over a proxied store whose lease was lost with writes pending (onError heard not-owner). */
async function engineTierWithLostLease(f: Freezable, store: string) {
  const errors: unknown[] = [];
  const engine = openStorageEngine({ threads: 1, onError: (e) => errors.push(codeOf(e)) });
  const tier = engine.kv<number>({ kind: "postgres", url: f.url, schema: f.db.schema, store, lease: { ttlMs: TTL } }, { retry: { initialMs: 1, maxMs: 1 } });
  tier.save("warm", 0);
  await tier.flush();
  f.freeze();
  for (let i = 0; i < 5; i++) tier.save(`k${i}`, i);
  await until(() => errors.length > 0, "the frozen write failed", { timeoutMs: 30_000 });
  f.thaw();
  await until(() => errors.includes("not-owner"), "a retry found the lease lost", { timeoutMs: 30_000 });
  return { engine, tier, errors };
}

describe("close() of a PostgreSQL tier whose lease was lost", () => {
  it("inline: rejects once with not-owner, closes the tier dropping its data; a second close() resolves", async () => {
    const f = await freezable();
    const backend = await postgresBackend({ url: f.url, schema: f.db.schema, store: "lost-close-inline", lease: { ttlMs: TTL } });
    const errors: unknown[] = [];
    const tier = new KvCore<number>(backend, jsonCodecFor(), {
      retry: { initialMs: 1, maxMs: 1 },
      onError: (e) => errors.push(codeOf(e)),
    });
    try {
      tier.put("warm", 0);
      await tier.flush();
      f.freeze();
      // Sync-through: the first put's flush hangs on the frozen server; the others wait behind it.
      for (let i = 0; i < 5; i++) tier.put(`k${i}`, i);
      await until(() => errors.length > 0, "the frozen write failed", { timeoutMs: 30_000 });
      f.thaw();
      await until(() => errors.includes("not-owner"), "a retry found the lease lost", { timeoutMs: 30_000 });
      expect(tier.stats.pendingEntries).toBeGreaterThan(0);
      const err = await errorOf(() => tier.close());
      expect(codeOf(err)).toBe("not-owner");
      expect(isRefusalReport(err)).toBe(false); // a loss, not a refusal among stored writes
      expect(tier.isClosed).toBe(true);
      expect(tier.stats.pendingEntries).toBe(0);
      expect(await outcome(tier.close())).toBe("resolved");
      expect(codeOf(await errorOf(() => tier.flush()))).toBe("closed");
      expect(codeOf(syncErrorOf(() => tier.assertWritable()))).toBe("closed");
      expect(errors.filter((c) => c === "not-owner")).toEqual(["not-owner"]); // the close reported nothing again
    } finally {
      f.thaw();
      await backend.close().catch(() => undefined);
    }
  });

  it("engine: the tier's close() rejects once with not-owner and closes it; engine.close() then resolves", async () => {
    const f = await freezable();
    const { engine, tier, errors } = await engineTierWithLostLease(f, "lost-close-engine");
    try {
      const err = await errorOf(() => tier.close());
      expect(codeOf(err)).toBe("not-owner");
      expect(isRefusalReport(err)).toBe(false);
      expect(await outcome(tier.close())).toBe("resolved");
      expect(codeOf(syncErrorOf(() => tier.save("after", 1)))).toBe("closed");
      // Nothing of the tier is left to drain: the store's actor ends cleanly.
      expect(await outcome(engine.close())).toBe("resolved");
      expect(errors.filter((c) => c === "not-owner")).toEqual(["not-owner"]);
    } finally {
      f.thaw();
      await engine.close().catch(() => undefined);
    }
  });

  it("engine: engine.close() with the tier still open rejects with not-owner and ends the store", async () => {
    const f = await freezable();
    const { engine, tier } = await engineTierWithLostLease(f, "lost-close-engine-open");
    try {
      expect(await outcome(engine.close())).toBe("rejected not-owner");
      expect(await outcome(tier.close())).toBe("rejected not-owner"); // the drain's outcome for this tier
      expect(codeOf(syncErrorOf(() => tier.save("after", 1)))).toBe("closed");
    } finally {
      f.thaw();
      await engine.close().catch(() => undefined);
    }
  });

  it("attach: dispose() settles, then each tier's close() settles (not-owner at most once) and the backend closes", async () => {
    const f = await freezable();
    const attached = await attachedOver(f, "lost-close-attach");
    const { backend, tierErrors, wal, snapshot, handle } = attached;
    let disposed = false;
    try {
      await wavesThroughFreeze(f, attached);
      await until(() => tierErrors.includes("not-owner"), "a retry found the lease lost", { timeoutMs: 30_000 });
      const disposal = outcome(handle.dispose());
      expect(await disposal).toMatch(/^(resolved|rejected (write-refused|not-owner))$/);
      disposed = true;
      // The WAL tier held frames no write could store: its close reports not-owner; either close reports it at most once.
      const first = [await outcome(wal.close()), await outcome(snapshot.close())];
      expect(first[0]).toBe("rejected not-owner");
      expect(["resolved", "rejected not-owner"]).toContain(first[1]);
      expect([await outcome(wal.close()), await outcome(snapshot.close())]).toEqual(["resolved", "resolved"]);
      expect(codeOf(syncErrorOf(() => wal.save("after", new Uint8Array(1) as never)))).toBe("closed");
      expect(await outcome(backend.close())).toBe("resolved");
    } finally {
      f.thaw();
      if (!disposed) await handle.dispose().catch(() => undefined);
      await backend.close().catch(() => undefined);
    }
  });
});
