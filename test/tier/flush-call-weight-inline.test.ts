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
import { kvStorage } from "../../src/tier/kv.js";
import { expectFlushesCounted, saveFlushUntilRefused } from "../support/save-flush-pairs.js";
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

  const pairs = await saveFlushUntilRefused(kv);
  // Before: every flush unanswered (~800), ~1.6 MB beyond a count of 64 KiB.
  expectFlushesCounted(pairs, max);

  // Nothing accepted is lost: after the cut a flush on a new connection stores every value.
  proxy.cut();
  await Promise.allSettled(pairs.calls);
  expect(pairs.unanswered()).toBe(0);
  await kv.flush();
  expect(await pairs.notStored()).toEqual([]);
  await kv.close();
});
