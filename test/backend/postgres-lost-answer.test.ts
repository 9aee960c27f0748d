/**
 * A PostgreSQL write whose answer never comes (the database host froze or lost power after taking the COMMIT; here a
 * proxy that drops the answers and keeps the socket open) settles as in doubt instead of waiting forever: the
 * writer's answer watch (src/backend/postgres-answer-watch.ts) asks the server about the data connection's session
 * once a statement has run for the lease time, and drops the connection when the session is idle (its answer was
 * lost) or when the server cannot be asked and the lease has lapsed. Before, flush() and close() never settled.
 */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { kvStorage } from "../../src/tier/kv.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";
import { useAnswerLosingProxies, type AnswerLosingProxy } from "../support/postgres-proxy.js";
import { sleep } from "../support/wait.js";
import { settledTo } from "../support/settled.js";

const database = useTestDatabase();
const proxies = useAnswerLosingProxies();
const open = useBackends(database, "lost-answer");

/** A writer (lease 1 s) behind a proxy that `lose`s answers right before it flushes a second value; the flush's outcome. */
async function writeLosingAnswers(lose: (proxy: AnswerLosingProxy) => void) {
  const db = await database();
  const proxy = await proxies(db.url);
  const backend = await open({ url: proxy.url, lease: { ttlMs: 1_000 }, connectTimeoutMs: 2_000 });
  const kv = kvStorage<number>(backend, { name: "kv", debounceMs: 60_000 });
  kv.save("a", 1);
  await kv.flush();
  lose(proxy);
  kv.save("b", 2);
  return { proxy, backend, flushed: settledTo(kv.flush()) };
}

describe("a PostgreSQL write whose answer never comes", () => {
  it("only the data connection lost it (the lease renews on): flush rejects in doubt, and the value is stored", async () => {
    const { proxy, backend, flushed } = await writeLosingAnswers((p) => p.loseAnswersAfter("grf_write_"));
    const err = await flushed;
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("backend-error");
    expect((err as StorageError).details).toMatchObject({ inDoubt: true });
    // The server committed it (only its answer was lost); the handle still owns the store and reads it back.
    expect(backend.lease).toBeDefined();
    expect(await backend.read("b")).toBeDefined();
    proxy.cut();
  }, 30_000);

  it("every answer lost (the server cannot be asked either): flush rejects once the lease has lapsed, and close ends", async () => {
    const { backend, flushed } = await writeLosingAnswers((p) => p.loseAnswers());
    const err = await flushed;
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).details).toMatchObject({ inDoubt: true });
    // close() ends, and says that write may still land: neither the release of the lease row nor the end of its
    // session could be confirmed (review r286 F2; before, it resolved as if nothing of the handle could land later).
    const closed = await settledTo(backend.close());
    expect(closed).toBeInstanceOf(StorageError);
    expect({ code: (closed as StorageError).code, unsettled: (closed as StorageError).details.unsettled }).toEqual({
      code: "backend-error",
      unsettled: true,
    });
  }, 30_000);

  it("a statement the server is still running (waiting for a lock for three lease times) is left to finish", async () => {
    const db = await database();
    const backend = await open({ lease: { ttlMs: 1_000 } });
    const kv = kvStorage<number>(backend, { name: "kv", debounceMs: 60_000 });
    kv.save("a", 1);
    await kv.flush();
    const raw = await db.raw();
    await raw.query("BEGIN");
    await raw.query(`LOCK TABLE "${db.schema}".graphrefly_storage IN ACCESS EXCLUSIVE MODE`);
    kv.save("b", 2);
    const flushed = settledTo(kv.flush());
    await sleep(3_000); // the write waits for the lock meanwhile, as the server says (pg_stat_activity: active)
    await raw.query("COMMIT");
    expect(await flushed).toBe("resolved");
    expect(await backend.read("b")).toBeDefined();
  }, 30_000);
});
