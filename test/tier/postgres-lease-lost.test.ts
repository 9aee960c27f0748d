/**
 * A PostgreSQL writer that lost its lease while a write was in flight (review s15c2 D-B): the write fails with
 * backend-error, the tier's retry finds the lease lost (not-owner), and losing it is final. The tier then refuses
 * every later write with not-owner, resolves drained() waiters, reports not-owner once and retries no more; inline,
 * in an engine's actor (the main-thread proxy learns it too), and under a graph attach (its pair stops with
 * write-refused). The server is "frozen" by a loopback proxy that holds everything the writer sends, as a paused
 * server or a cut network would, until its own lease deadline passes.
 */
import { describe, expect, it } from "vitest";
import { kvStorage, openStorageEngine, postgresBackend, StorageError } from "../../src/index.js";
import { KvCore } from "../../src/tier/kv.js";
import { jsonCodecFor } from "../../src/codec/json.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { usePipes } from "../support/postgres-pipe.js";
import { errorOf, sleep, syncErrorOf, until } from "../support/wait.js";
import { attachedOver, codeOf, LOST_LEASE_TTL_MS, useFreezable, wavesThroughFreeze } from "../support/lease-loss.js";

const freezable = useFreezable(useTestDatabase(), usePipes());
const TTL = LOST_LEASE_TTL_MS;

/** Settled already, or still pending once the timers' turn came (no duration measured). */
function stateOf(p: Promise<unknown>): Promise<string> {
  return Promise.race([p.then(() => "resolved", (e: unknown) => `rejected ${String(codeOf(e))}`), new Promise<string>((r) => setImmediate(() => r("pending")))]);
}

const lostLease = (lastError: string | undefined): boolean => lastError?.startsWith("not-owner") === true;

describe("a PostgreSQL tier whose lease was lost", () => {
  it("inline: saves throw not-owner, drained() settles, onError hears not-owner once, retries stop", async () => {
    const f = await freezable();
    const backend = await postgresBackend({ url: f.url, schema: f.db.schema, store: "lost-inline", lease: { ttlMs: TTL } });
    const errors: unknown[] = [];
    // The core kvStorage's tier runs on, for its counters (stats); save() is assertWritable + put.
    const tier = new KvCore<{ v: number; pad: string }>(backend, jsonCodecFor(), {
      maxPendingBytes: 64 * 1024,
      retry: { initialMs: 1, maxMs: 1 },
      onError: (e) => errors.push(codeOf(e)),
    });
    const save = (key: string, value: { v: number; pad: string }): void => {
      tier.assertWritable();
      tier.put(key, value);
    };
    try {
      save("warm", { v: -1, pad: "" });
      await tier.flush();
      f.freeze();
      const pad = "x".repeat(1000);
      // Sync-through: the first save's flush hangs on the frozen server; the rest fill the bound.
      let refused: unknown;
      for (let i = 0; refused === undefined; i++) refused = syncErrorOf(() => save(`k${i}`, { v: i, pad }));
      expect(codeOf(refused)).toBe("backpressure");
      const waiter = tier.drained();
      // The write fails once the lease deadline passed; the server back, a background retry finds the lease lost.
      await until(() => tier.stats.lastError !== undefined, "the frozen write failed", { timeoutMs: 30_000 });
      f.thaw();
      await until(() => lostLease(tier.stats.lastError), "a retry found the lease lost", { timeoutMs: 30_000 });
      expect(errors).toEqual(["backend-error", "not-owner"]);
      expect(await stateOf(waiter)).toBe("resolved");
      expect(await stateOf(tier.drained())).toBe("resolved");
      const refusedNow = syncErrorOf(() => save("after", { v: 0, pad: "" }));
      expect(refusedNow).toBeInstanceOf(StorageError);
      expect(codeOf(refusedNow)).toBe("not-owner");
      expect(codeOf(await errorOf(() => tier.flush()))).toBe("not-owner");
      // No retry runs any more (they were due every millisecond): the attempts stay where they are.
      const attempts = tier.stats.flushAttempts;
      await sleep(200);
      expect(tier.stats.flushAttempts).toBe(attempts);
      expect(errors).toEqual(["backend-error", "not-owner"]);
    } finally {
      f.thaw();
      await backend.close().catch(() => undefined);
    }
  });

  it("engine: the main-thread proxy throws not-owner, its drained() settles, onError hears not-owner once", async () => {
    const f = await freezable();
    const errors: unknown[] = [];
    const engine = openStorageEngine({ threads: 1, maxPendingBytes: 64 * 1024, onError: (e) => errors.push(codeOf(e)) });
    try {
      const tier = engine.kv<{ v: number; pad: string }>(
        { kind: "postgres", url: f.url, schema: f.db.schema, store: "lost-engine", lease: { ttlMs: TTL } },
        { retry: { initialMs: 1, maxMs: 1 } },
      );
      tier.save("warm", { v: -1, pad: "" });
      await tier.flush();
      f.freeze();
      const pad = "x".repeat(1000);
      let refused: unknown;
      for (let i = 0; refused === undefined; i++) {
        refused = syncErrorOf(() => tier.save(`k${i}`, { v: i, pad }));
        if (i % 20 === 19) await new Promise((r) => setImmediate(r)); // lets the actor take what was posted
      }
      expect(codeOf(refused)).toBe("backpressure");
      const waiter = tier.drained!();
      await until(() => errors.length > 0, "the frozen write failed", { timeoutMs: 30_000 });
      f.thaw();
      // The server back, a retry finds the lease lost (before the fix, retries went on: due every millisecond).
      const thawed = (await engine.stats())[0]?.flushAttempts ?? 0;
      const lostOrRetrying = async (): Promise<boolean> =>
        errors.includes("not-owner") || ((await engine.stats())[0]?.flushAttempts ?? 0) > thawed + 20;
      await until(lostOrRetrying, "a retry found the lease lost", { timeoutMs: 30_000 });
      expect(errors).toContain("not-owner");
      expect(await stateOf(waiter)).toBe("resolved");
      expect(await stateOf(tier.drained!())).toBe("resolved");
      expect(codeOf(syncErrorOf(() => tier.save("after", { v: 0, pad: "" })))).toBe("not-owner");
      expect(codeOf(await errorOf(() => tier.flush()))).toBe("not-owner");
      const attempts = (await engine.stats())[0]?.flushAttempts;
      await sleep(200);
      expect((await engine.stats())[0]?.flushAttempts).toBe(attempts);
      expect(errors.filter((c) => c === "not-owner")).toEqual(["not-owner"]);
      expect(errors[0]).toBe("backend-error");
    } finally {
      f.thaw();
      await engine.close().catch(() => undefined);
    }
  });

  it("attach: the pair stops, handle.flush() rejects write-refused caused by not-owner, drained() settles", async () => {
    const f = await freezable();
    const attached = await attachedOver(f, "lost-attach");
    const { backend, handle } = attached;
    try {
      let drained!: Promise<void>;
      await wavesThroughFreeze(f, attached, () => void (drained = handle.drained()));
      // The server back, a flush (or the tiers' retries) finds the lease lost: final, the pair stops.
      let err: unknown;
      for (let i = 0; i < 5 && !["not-owner", "write-refused"].includes(String(codeOf(err))); i++) err = await errorOf(() => handle.flush());
      expect(codeOf(err)).toBe("write-refused");
      expect(codeOf((err as Error).cause)).toBe("not-owner");
      expect(await stateOf(drained)).not.toBe("pending");
    } finally {
      f.thaw();
      await handle.dispose().catch(() => undefined);
      await backend.close().catch(() => undefined);
    }
  });
});
