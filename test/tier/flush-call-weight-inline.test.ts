/**
 * An inline tier's flush() calls posted after writes count against maxPendingBytes while unanswered (docs/design.md
 * §3.19, "Flush calls"). Write-less calls share one answer (flush-join-inline); a call after a write starts its own
 * flush, which against a store that does not answer waits with its batch, account and promise chain (~2.3 KB each):
 * 50,000 save + flush pairs under a 4 MiB bound held +116 MB of heap, uncounted. Now each weighs FLUSH_CALL_WEIGHT
 * until it settles. A real PostgreSQL server behind a proxy that swallows its answers (as a paused server), then
 * cuts the connections.
 */
import { afterEach, expect, it } from "vitest";
import { postgresBackend } from "../../src/backend/postgres.js";
import { StorageError } from "../../src/errors.js";
import { kvStorage } from "../../src/tier/kv.js";
import { FLUSH_CALL_WEIGHT } from "../../src/tier/weights.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { useAnswerLosingProxies } from "../support/postgres-proxy.js";

const database = useTestDatabase();
const answerLosingProxy = useAnswerLosingProxies();
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

it("save + flush pairs while the store does not answer: unanswered flushes are counted, and stay within the bound", async () => {
  const max = 64 * 1024;
  const db = await database();
  const proxy = await answerLosingProxy(db.url);
  const backend = await postgresBackend({ url: proxy.url, schema: db.schema, store: "flush-call-weight", lease: { ttlMs: 30_000 } });
  cleanups.push(() => backend.close());
  const kv = kvStorage<number>(backend, { name: "kv", debounceMs: 60_000, maxPendingBytes: max, onError: () => undefined });
  kv.save("warm", 0);
  await kv.flush();
  proxy.loseAnswers();

  // A server whose handlers each save and flush, not pacing on drained(): turns of 50 pairs until one is refused.
  let unanswered = 0;
  const calls: Array<Promise<void>> = [];
  const accepted: string[] = [];
  let refusal: StorageError | undefined;
  for (let i = 0; refusal === undefined; ) {
    for (let j = 0; j < 50; j++, i++) {
      try {
        kv.save(`k${i}`, i);
      } catch (err) {
        refusal = err as StorageError;
        break;
      }
      accepted.push(`k${i}`);
      unanswered++;
      const call = kv.flush();
      calls.push(call);
      call.then(
        () => unanswered--,
        () => unanswered--,
      );
    }
    if (refusal === undefined) await new Promise((r) => setImmediate(r));
  }
  expect(refusal).toBeInstanceOf(StorageError);
  expect(refusal.code).toBe("backpressure");
  const pending = refusal.details.pendingBytes as number;
  // Counted, and within the bound (one flush's weight over it at most: a flush is never refused). Before: every
  // flush unanswered (~800), ~1.6 MB beyond a count of 64 KiB.
  expect(unanswered).toBeGreaterThan(0);
  expect(unanswered * FLUSH_CALL_WEIGHT).toBeLessThanOrEqual(pending);
  expect(pending).toBeLessThanOrEqual(max + FLUSH_CALL_WEIGHT);

  // Nothing accepted is lost: after the cut a flush on a new connection stores every value.
  proxy.cut();
  await Promise.allSettled(calls);
  expect(unanswered).toBe(0);
  await kv.flush();
  const values = await Promise.all(accepted.map((k) => kv.load(k)));
  expect(accepted.filter((k, i) => values[i] !== Number(k.slice(1)))).toEqual([]);
  await kv.close();
});
