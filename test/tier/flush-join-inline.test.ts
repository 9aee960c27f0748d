/**
 * An inline tier's flush() calls against a stuck store keep memory bounded (review s15c D2): a call with no write
 * offered (and no refusal reported) since the tier's previous call, while that call's answer is due, answers for the
 * same writes. It shares that call's answer while it waits to start, else ONE next flush started once the one
 * running settled: a retry, when it failed after the calls. Before, each call opened an account and chained 2–3
 * promises (~1.1 KB; 2.7 GB of heap in 20 s of a caller flushing every turn). The count: how many distinct answers
 * (promises, each with its account and chain) the calls made during the outage got. A real PostgreSQL server behind
 * a proxy that swallows its answers (the write waits, as on a paused server), then cuts the connections.
 */
import { afterEach, describe, expect, it } from "vitest";
import { postgresBackend } from "../../src/backend/postgres.js";
import { StorageError } from "../../src/errors.js";
import { kvStorage } from "../../src/tier/kv.js";
import { flushCalls } from "../support/flush-calls.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { useAnswerLosingProxies } from "../support/postgres-proxy.js";

const database = useTestDatabase();
const answerLosingProxy = useAnswerLosingProxies();
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

const codeOf = (err: unknown): string | undefined => (err as { code?: string }).code;

describe("an inline tier's flush() calls while its flush waits on a store that does not answer", () => {
  it("calls with nothing offered since share one answer; after the outage each settles as a flush called then", async () => {
    const db = await database();
    const proxy = await answerLosingProxy(db.url);
    const backend = await postgresBackend({ url: proxy.url, schema: db.schema, store: "flush-join-inline", lease: { ttlMs: 30_000 } });
    cleanups.push(() => backend.close());
    const kv = kvStorage<number>(backend, { name: "kv", debounceMs: 60_000, onError: () => undefined });
    kv.save("warm", 0);
    await kv.flush();
    proxy.loseAnswers();
    kv.save("a", 1);
    const first = kv.flush(); // its write waits for an answer that never comes
    const before = await flushCalls(kv, 50, 20);
    // A value the codec refuses, and a value, offered after those calls: the refusal is not theirs (design §3.16).
    kv.save("bad", Number.NaN);
    kv.save("b", 2);
    const after = kv.flush();
    const later = await flushCalls(kv, 50, 20);
    // One answer each for the calls before and after `after`. Before: 1,000 each (one chain and account per call).
    expect([new Set(before).size, new Set(later).size]).toEqual([1, 1]);
    proxy.cut(); // `first` fails (its answer lost: in doubt); the calls' flush retries on a new connection
    const failed = await first.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(StorageError);
    await Promise.all(before); // made before `first` failed: the retry stored "a"
    // `after` answers for the refused value (or, its batch taken at its call, fails with `first`'s failure).
    await expect(after).rejects.toBeInstanceOf(Error);
    // Made after the refused value was offered and before `after` reported it: they report it too.
    const heard = await Promise.allSettled(later);
    expect(heard.map((r) => (r.status === "rejected" ? codeOf(r.reason) : "resolved"))).toEqual(later.map(() => "encode-failed"));
    expect([await kv.load("a"), await kv.load("b"), await kv.load("bad")]).toEqual([1, 2, undefined]);
    await kv.flush(); // reported: nothing more to answer for
    await kv.close();
  });
});
