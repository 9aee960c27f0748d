/**
 * An array-layout append-log's failed write, whose answer may be lost, must never count as stored when it was not
 * (review r180 of bad99b2). Another handle of the same store (a second SQLite or file-store handle in this process,
 * which joins the store lock; the memory store under the fault wrapper) writes outside the tiers' write lane: bytes
 * read later cannot tell its write from the failed one. Over such stores the retry reads the store again and appends
 * (at least once); over a store only its handle writes (a PostgreSQL writer's lease, `WriterTenure.sole`) the lane
 * sees every write, and a failed write that landed is told and not appended again (exactly once), also after two
 * failed attempts. No timing: retries are held (60 s) and driven by explicit flushes.
 */
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { fileBackend } from "../../src/backend/file.js";
import { setWriterTenure } from "../../src/backend/tenure.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { jsonCodec } from "../../src/codec/json.js";
import { faultyBackend, type FaultRule } from "../support/faulty-backend.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { arrayLog, bucketsOf, notLandedThenAnotherTier, storedThenFailed } from "./fixtures/array-logs.js";

const tmp = tempDir("append-outside-writer");
afterAll(() => tmp.remove());

/** The tiers' backend (faults injected into it) and another handle of the same store, outside their write lane. */
interface Store {
  backend: StorageBackend;
  other: StorageBackend;
  close(): Promise<void>;
}

type Open = (plan: FaultRule[]) => Store;

const stores: Array<[string, Open]> = [
  [
    "memory, sync",
    (plan) => {
      const mem = memoryBackend();
      return { backend: faultyBackend(mem, plan), other: mem, close: async () => undefined };
    },
  ],
  [
    "memory, async (PostgreSQL-like)",
    (plan) => {
      const mem = memoryBackend();
      return { backend: faultyBackend(mem, plan, { async: true }), other: mem, close: async () => undefined };
    },
  ],
  [
    "file store, a second handle",
    (plan) => {
      const dir = tmp.path("files");
      const inner = fileBackend(dir);
      const other = fileBackend(dir); // joins this process's store lock
      return { backend: faultyBackend(inner, plan), other, close: async () => void (await other.close(), await inner.close()) };
    },
  ],
  [
    "SQLite, a second handle",
    (plan) => {
      const path = tmp.path("store.db");
      const inner = sqliteBackend(path);
      const other = sqliteBackend(path); // joins this process's store lock
      return { backend: faultyBackend(inner, plan), other, close: async () => void (await other.close(), await inner.close()) };
    },
  ],
];

/** The other handle appends `entries` to bucket `key` itself (read, append, rewrite: the reference layout). */
async function appendOutside(other: StorageBackend, key: string, entries: string[]): Promise<void> {
  const raw = await other.read(key);
  const stored = raw === undefined ? [] : (jsonCodec.decode(raw) as string[]);
  await other.write(key, jsonCodec.encode([...stored, ...entries]));
}

/**
 * Bucket a's second write fails: not applied, or (torn) applied and then failed, as a lost commit answer looks. Each
 * of ls's flushes writes buckets a and b (a first): one batch, as the fault plan needs.
 */
const failsOnce = (torn?: number): FaultRule[] => [{ op: "writeBatch", errno: "EIO", times: 1, after: 1, key: /^a$/, ...(torn ? { torn } : {}) }];

describe.each(stores)("array-layout append-log beside another handle of the store (%s)", (_name, open) => {
  it("r180: a failed write that did not land, the other handle appending equal entries, then another tier's append: the retry stores it (nothing lost)", async () => {
    const store = open(failsOnce());
    const ls = arrayLog(store.backend, "ls");
    const lt = arrayLog(store.backend, "lt");
    await storedThenFailed(ls);
    await appendOutside(store.other, "a", ["a1"]); // its own a1: the bytes ls's failed write tried
    lt.appendEntries(["a2"]);
    await lt.flush();
    await ls.flush();
    // ls's a1 was never stored: its flush resolving says it is, so it must be there beside the other handle's.
    expect(await bucketsOf(lt)).toEqual({ a: ["a0", "a1", "a2", "a1"], b: ["b0", "b1"] });
    await ls.close();
    await lt.close();
    await store.close();
  });

  it("a failed write that did not land, then the other handle's append, no other tier: the retry keeps the other's entries", async () => {
    const store = open(failsOnce());
    const ls = arrayLog(store.backend, "ls");
    await storedThenFailed(ls);
    await appendOutside(store.other, "a", ["ax"]);
    await ls.flush(); // rewriting the array the failed attempt read would drop ax
    expect(await bucketsOf(ls)).toEqual({ a: ["a0", "ax", "a1"], b: ["b0", "b1"] });
    await ls.close();
    await store.close();
  });

  it("the other handle storing exactly what the failed write tried, no other tier: both appends of a1 are stored", async () => {
    const store = open(failsOnce());
    const ls = arrayLog(store.backend, "ls");
    await storedThenFailed(ls);
    await appendOutside(store.other, "a", ["a1"]);
    await ls.flush();
    expect(await bucketsOf(ls)).toEqual({ a: ["a0", "a1", "a1"], b: ["b0", "b1"] });
    await ls.close();
    await store.close();
  });

  it("a failed write that landed (its answer lost), then another tier's append: the retry stores it again (at least once, in call order)", async () => {
    const store = open(failsOnce(1));
    const ls = arrayLog(store.backend, "ls");
    const lt = arrayLog(store.backend, "lt");
    await storedThenFailed(ls);
    lt.appendEntries(["a2"]);
    await lt.flush();
    ls.appendEntries(["a3"]);
    await ls.flush();
    // Nothing tells this landing from the other handle storing [a0, a1]: a1 twice is the price, never a1 lost.
    expect(await bucketsOf(lt)).toEqual({ a: ["a0", "a1", "a2", "a1", "a3"], b: ["b0", "b1"] });
    await ls.close();
    await lt.close();
    await store.close();
  });
});

/**
 * A store only its handle writes: the fault wrapper is given the tenure a PostgreSQL writer's lease gives its handle
 * (`sole`), which is true here (nothing else writes the memory store).
 */
function soleStore(plan: FaultRule[], async: boolean): StorageBackend {
  const backend = faultyBackend(memoryBackend(), plan, { async });
  setWriterTenure(backend, { id: "1", after: undefined, sole: true });
  return backend;
}

describe.each([false, true])("array-layout append-log over a store only its handle writes (async %s)", (async) => {
  it("a failed write that landed (its answer lost), then another tier's append: the retry stores its entries once", async () => {
    const backend = soleStore(failsOnce(1), async);
    const ls = arrayLog(backend, "ls");
    const lt = arrayLog(backend, "lt");
    await storedThenFailed(ls);
    lt.appendEntries(["a2"]);
    await lt.flush(); // read [a0, a1]: the failed write's bytes
    ls.appendEntries(["a3"]);
    await ls.flush();
    expect(await bucketsOf(lt)).toEqual({ a: ["a0", "a1", "a2", "a3"], b: ["b0", "b1"] });
    await ls.close();
    await lt.close();
  });

  it("two failed attempts, the first landed, the second not: another tier's append tells the first, its entries stored once", async () => {
    // Bucket a's second write is applied and fails; its retry (the third write) fails unapplied.
    const backend = soleStore(
      [
        { op: "writeBatch", errno: "EIO", times: 1, after: 1, key: /^a$/, torn: 1 },
        // Counts the calls the first rule let through (the first write, then the retry): its after 1 is the retry.
        { op: "writeBatch", errno: "EIO", times: 1, after: 1, key: /^a$/ },
      ],
      async,
    );
    const ls = arrayLog(backend, "ls");
    const lt = arrayLog(backend, "lt");
    await storedThenFailed(ls); // landed: [a0, a1]
    ls.appendEntries(["a3", "b3"]);
    await expect(ls.flush()).rejects.toThrow(); // [a0, a1, a3] not landed
    lt.appendEntries(["a2"]);
    await lt.flush(); // read [a0, a1]: the first attempt's bytes
    await ls.flush();
    expect(await bucketsOf(lt)).toEqual({ a: ["a0", "a1", "a2", "a3"], b: ["b0", "b1", "b3"] });
    await ls.close();
    await lt.close();
  });

  it("a failed write that did not land, then another tier's append: the retry appends after it (nothing lost or twice)", async () => {
    const backend = soleStore(failsOnce(), async);
    await notLandedThenAnotherTier(backend);
  });
});
