/**
 * An append-log tier in the "array" layout retried a flush whose commit answer was lost by reading the stored array
 * again and appending the batch to it: when the lost commit had landed, the entries were stored twice ([1, 2, 2])
 * (review). The retry now appends to the array the failed attempt read; when another tier of the handle wrote the
 * bucket first, what it read tells whether the lost commit landed (the lease: no other handle writes the store).
 */
import { describe, expect, it } from "vitest";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { StorageError } from "../../src/errors.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";
import { useAnswerLosingProxies } from "../support/postgres-proxy.js";
import { storedJson } from "../support/stored-row.js";
import { errorOf, until } from "../support/wait.js";

const database = useTestDatabase();
const proxies = useAnswerLosingProxies();
const open = useBackends(database, "append-array-doubt");

const storedArray = async (store: string, key: string): Promise<unknown> => storedJson(await database(), store, key);

describe("array-layout append-log after a commit whose answer was lost", () => {
  it("stores each entry once when the retry runs", async () => {
    const db = await database();
    const proxy = await proxies(db.url);
    const backend = await open({ url: proxy.url, lease: { ttlMs: 30_000 } });
    const log = appendLogStorage<number>(backend, { name: "log", layout: "array", debounceMs: 60_000 });
    log.appendEntries([1]);
    await log.flush();
    proxy.loseAnswersAfter("grf_write_"); // the data connection's next write is answered no more
    log.appendEntries([2]);
    const flushing = errorOf(() => log.flush());
    await until(async () => JSON.stringify(await storedArray(backend.store, "log")) === "[1,2]", "the commit landed", {
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    proxy.cut();
    const err = await flushing;
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).details.inDoubt).toBe(true);
    log.appendEntries([3]);
    await log.flush(); // the retry, with an entry appended since
    expect((await log.loadEntries()).entries).toEqual([1, 2, 3]);
    expect(await storedArray(backend.store, "log")).toEqual([1, 2, 3]);
  });

  it("stores each entry once when another tier of the handle appends to the bucket before the retry (the lease: no other writer)", async () => {
    const db = await database();
    const proxy = await proxies(db.url);
    const backend = await open({ url: proxy.url, lease: { ttlMs: 30_000 } });
    const shared = { keyOf: () => "x", layout: "array", debounceMs: 60_000 } as const;
    const ls = appendLogStorage<number>(backend, { name: "ls", ...shared });
    const lt = appendLogStorage<number>(backend, { name: "lt", ...shared });
    ls.appendEntries([1]);
    await ls.flush();
    proxy.loseAnswersAfter("grf_write_");
    ls.appendEntries([2]);
    const flushing = errorOf(() => ls.flush());
    await until(async () => JSON.stringify(await storedArray(backend.store, "x")) === "[1,2]", "the commit landed", {
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    proxy.cut();
    expect(((await flushing) as StorageError).details.inDoubt).toBe(true);
    lt.appendEntries([3]);
    await lt.flush(); // read [1, 2]: only this handle writes the store, so those are ls's bytes, landed
    ls.appendEntries([4]);
    await ls.flush();
    expect(await storedArray(backend.store, "x")).toEqual([1, 2, 3, 4]);
  });

  it("two attempts in doubt (one and two chunks), the later landed: the next landing names it by its digest", async () => {
    // The bucket keeps each in-doubt attempt as a SHA-256 digest and length, not its bytes (review r188 item 8):
    // the landing's kept bytes must still pick the attempt that landed, here the second of two.
    const db = await database();
    const proxy = await proxies(db.url);
    const backend = await open({ url: proxy.url, lease: { ttlMs: 30_000 } });
    const shared = { keyOf: () => "x", layout: "array", debounceMs: 60_000 } as const;
    const ls = appendLogStorage<number>(backend, { name: "ls", ...shared });
    const lt = appendLogStorage<number>(backend, { name: "lt", ...shared });
    ls.appendEntries([1]);
    await ls.flush();
    for (const [entry, landed] of [
      [2, "[1,2]"],
      [3, "[1,2,3]"],
    ] as const) {
      proxy.loseAnswersAfter("grf_write_");
      ls.appendEntries([entry]);
      const flushing = errorOf(() => ls.flush());
      await until(async () => JSON.stringify(await storedArray(backend.store, "x")) === landed, "the commit landed", {
        timeoutMs: 10_000,
        intervalMs: 20,
      });
      proxy.cut();
      expect(((await flushing) as StorageError).details.inDoubt).toBe(true);
    }
    lt.appendEntries([9]);
    await lt.flush(); // read [1, 2, 3]: the second attempt's bytes, so both of ls's chunks are stored
    ls.appendEntries([4]);
    await ls.flush();
    expect(await storedArray(backend.store, "x")).toEqual([1, 2, 3, 9, 4]);
  });
});
