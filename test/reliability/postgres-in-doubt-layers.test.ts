/**
 * A PostgreSQL write whose answer was lost (it may have committed: details.inDoubt) as the layers above the backend
 * report it, on the real server behind a proxy that drops the server's answers: an inline tier's flush, an engine
 * store's flush (the error crosses from the store's worker), attach's flush and onError; what the retry of such a
 * batch writes (the same bytes); and a retry refused because the lease ran out meanwhile, which must not read as
 * "nothing stored" when the lost attempt may have stored it.
 */
import { afterEach, describe, expect, it } from "vitest";
import { postgresBackend } from "../../src/backend/postgres.js";
import { openStorageEngine, type PostgresStoreSpec, type StorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { kvStorage } from "../../src/tier/kv.js";
import { GRAPH, buildGraph, enginePair, randomWave, rng } from "../graph-compaction/fixtures.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { useAnswerLosingProxies } from "../support/postgres-proxy.js";
import { errorOf, sleep, until } from "../support/wait.js";

const database = useTestDatabase();
const answerLosingProxy = useAnswerLosingProxies();
const engines: StorageEngine[] = [];
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  for (const e of engines.splice(0)) await e.close().catch(() => undefined);
});

function engine(onError?: (err: Error) => void): StorageEngine {
  const e = openStorageEngine({ threads: 1, ...(onError ? { onError } : {}) });
  engines.push(e);
  return e;
}

/** The stored rows of `store` whose key starts with `prefix`, as hex. */
async function rows(store: string, prefix = ""): Promise<Map<string, string>> {
  const db = await database();
  const raw = await db.raw();
  const r = await raw.query<{ k: string; v: Buffer }>(
    `SELECT k, v FROM "${db.schema}".graphrefly_storage WHERE store = $1 AND starts_with(k, $2)`,
    [store, prefix],
  );
  await raw.end();
  return new Map(r.rows.map((x) => [x.k, x.v.toString("hex")]));
}

function expectInDoubt(err: unknown, code = "backend-error"): StorageError {
  expect(err, "expected a StorageError").toBeInstanceOf(StorageError);
  const e = err as StorageError;
  expect({ code: e.code, inDoubt: e.details.inDoubt }).toEqual({ code, inDoubt: true });
  return e;
}

describe("a PostgreSQL write in doubt, through the layers above the backend", () => {
  it("an engine kv tier's flush rejects with the backend's error, code and details.inDoubt kept across the thread", async () => {
    const db = await database();
    const proxy = await answerLosingProxy(db.url);
    const store = "layers-engine-kv";
    const spec: PostgresStoreSpec = { kind: "postgres", url: proxy.url, schema: db.schema, store, lease: { ttlMs: 30_000 } };
    const kv = engine().kv<{ n: number }>(spec, { name: "kv" });
    await kv.save("a", { n: 1 });
    await kv.flush();
    proxy.loseAnswers();
    await kv.save("k", { n: 2 });
    const flushing = errorOf(() => kv.flush());
    await until(async () => (await rows(store)).has("k"), "the write committed on the server", { timeoutMs: 10_000, intervalMs: 20 });
    const committed = (await rows(store)).get("k");
    proxy.cut();
    const err = expectInDoubt(await flushing);
    expect(err.message).toMatch(/may or may not have been stored/);
    // The retry writes the same bytes again, and then the flush resolves.
    await kv.flush();
    expect((await rows(store)).get("k")).toBe(committed);
    expect(await kv.load("k")).toEqual({ n: 2 });
  });

  it("attach through the engine: flush and onError say in doubt; the retried frames are byte-identical to those committed", async () => {
    const db = await database();
    const proxy = await answerLosingProxy(db.url);
    const store = "layers-attach";
    const heard: Error[] = [];
    const spec: PostgresStoreSpec = { kind: "postgres", url: proxy.url, schema: db.schema, store, lease: { ttlMs: 30_000 } };
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [enginePair(engine(), spec)], { onError: (e) => heard.push(e) });
    cleanups.push(() => handle.dispose());
    const random = rng(3);
    randomWave(graph, random);
    await handle.flush();
    const before = await rows(store, `${GRAPH}/wal/`);
    proxy.loseAnswers();
    randomWave(graph, random);
    randomWave(graph, random);
    const flushing = errorOf(() => handle.flush());
    await until(async () => (await rows(store, `${GRAPH}/wal/`)).size > before.size, "frames committed on the server", {
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    const committed = await rows(store, `${GRAPH}/wal/`);
    proxy.cut();
    expectInDoubt(await flushing);
    expect(heard.length).toBeGreaterThan(0);
    expectInDoubt(heard[0]);
    const seq = await handle.flush();
    const after = await rows(store, `${GRAPH}/wal/`);
    for (const [k, v] of committed) expect(after.get(k), k).toBe(v);
    expect(after.size).toBeGreaterThanOrEqual(committed.size);
    expect(seq).toBeGreaterThan(0);
  });

  it("a retry refused because the lease ran out while the answer was lost says the lost attempt may have stored it", async () => {
    const db = await database();
    const proxy = await answerLosingProxy(db.url);
    const store = "layers-lease";
    const b = await postgresBackend({ url: proxy.url, schema: db.schema, store, lease: { ttlMs: 1000, renewEveryMs: 100 } });
    cleanups.push(() => b.close());
    const heard: Error[] = [];
    const kv = kvStorage<{ n: number }>(b, { name: "kv", onError: (e) => heard.push(e) });
    await kv.save("a", { n: 1 });
    await kv.flush();
    proxy.loseAnswers();
    await kv.save("k", { n: 2 });
    const first = errorOf(() => kv.flush());
    await until(async () => (await rows(store)).has("k"), "the write committed on the server", { timeoutMs: 10_000, intervalMs: 20 });
    await sleep(1500); // the renewals' answers are lost too: the lease runs out while the write waits for its answer
    proxy.cut();
    // The save's own flush (sync-through) met the lost answer; the awaited flush may be its retry, refused for the
    // lease: either way it must not say the write is not stored, since it is.
    const err = (await first) as StorageError;
    expect(err).toBeInstanceOf(StorageError);
    expect({ code: ["backend-error", "not-owner"].includes(err.code), inDoubt: err.details.inDoubt }).toEqual({ code: true, inDoubt: true });
    expect(heard.length).toBeGreaterThan(0);
    expectInDoubt(heard[0]);
    // A later retry is refused (the lease is gone): it stored nothing, but the batch it retries may be stored.
    const retry = await errorOf(() => kv.flush());
    const e = expectInDoubt(retry, "not-owner");
    expect(e.message).toMatch(/may have been stored/);
    expect((await rows(store)).has("k")).toBe(true);
    // Keys never in doubt are refused as plainly not stored.
    const other = await errorOf(() => b.write("other", Uint8Array.of(1)));
    expect((other as StorageError).code).toBe("not-owner");
    expect((other as StorageError).details.inDoubt).toBeUndefined();
  });
});
