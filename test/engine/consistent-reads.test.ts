/**
 * readConsistent through a read-only engine store (src/engine/consistent-reads.ts): the store's actor holds its
 * backend's point in time from before `fn` runs until `fn` settled, so the reads of every tier of that store made
 * meanwhile see the store as it was when the call began, whatever the writer commits; calls nest, also across the
 * store's tiers. A worker lost inside one ends it with the actor: the call rejects with what `fn` met, and the
 * reopened store reads (and holds a new point in time) as usual.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { ConsistentReads } from "../../src/engine/consistent-reads.js";
import { StorageError } from "../../src/errors.js";
import { openFaultEngine } from "../support/faults.js";
import { errorOf, until } from "../support/wait.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("consistent-reads");
afterAll(() => root.remove());
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An inline writer on a fresh SQLite store holding k = 1, and that store's read-only engine spec. */
function store(): { writer: ReturnType<typeof sqliteBackend>; spec: StoreSpec; path: string } {
  const path = root.fresh("store.db");
  const writer = sqliteBackend(path);
  cleanups.push(() => writer.close());
  writer.write("k", new TextEncoder().encode("1"));
  return { writer, spec: { kind: "sqlite", path, readOnly: true }, path };
}
const json = (n: number): Uint8Array => new TextEncoder().encode(JSON.stringify(n));

describe("readConsistent on a read-only engine store", () => {
  it("every tier of the store reads one point in time inside it, nested calls included; after it, the store as it is", async () => {
    const { writer, spec } = store();
    const engine: StorageEngine = openStorageEngine({ threads: 1 });
    cleanups.push(() => engine.close());
    const kv = engine.kv<number>(spec);
    const snapshot = engine.snapshot<number>(spec);
    const seen = await kv.readConsistent!(async () => {
      const first = await kv.load("k");
      writer.writeBatch([
        { op: "put", key: "k", value: json(2) },
        { op: "put", key: "snap", value: json(3) },
      ]);
      const inner = await snapshot.readConsistent!(async () => [await snapshot.load("snap"), await kv.load("k")]);
      return { first, inner, listed: await kv.list() };
    });
    expect(seen).toEqual({ first: 1, inner: [undefined, 1], listed: ["k"] });
    expect([await kv.load("k"), await snapshot.load("snap")]).toEqual([2, 3]);
  });

  it("fn's error is the call's and the point in time ends with it", async () => {
    const { writer, spec } = store();
    const engine = openStorageEngine({ threads: 1 });
    cleanups.push(() => engine.close());
    const kv = engine.kv<number>(spec);
    const boom = new Error("boom");
    const err = await errorOf(() =>
      kv.readConsistent!(async () => {
        await kv.load("k");
        writer.write("k", json(5));
        throw boom;
      }),
    );
    expect(err).toBe(boom);
    expect(await kv.load("k")).toBe(5);
    expect(await errorOf(() => kv.readConsistent!(5 as unknown as () => Promise<number>))).toBeInstanceOf(TypeError);
  });

  it("a worker lost inside it: the call rejects with worker-crashed even when fn's reads succeeded, the reopened store holds a new point in time", async () => {
    const { writer, spec } = store();
    const engine = openFaultEngine({ threads: 1 });
    cleanups.push(() => engine.close().catch(() => undefined));
    const kv = engine.kv<number>(spec);
    expect(await kv.load("k")).toBe(1);
    const err = await errorOf(() =>
      kv.readConsistent!(async () => {
        await engine.injectFault(spec, "terminate");
        return kv.load("k");
      }),
    );
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ code: "worker-crashed" });
    writer.write("k", json(6));
    const again = await kv.readConsistent!(async () => {
      const first = await kv.load("k");
      writer.write("k", json(7));
      return [first, await kv.load("k")];
    });
    expect(again).toEqual([6, 6]);
    expect(await kv.load("k")).toBe(7);
  });

  it("writable and non-SQL stores have none", async () => {
    const engine = openStorageEngine({ threads: 1 });
    cleanups.push(() => engine.close());
    expect(engine.kv({ kind: "sqlite", path: root.fresh("w.db") }).readConsistent).toBeUndefined();
    expect(engine.kv({ kind: "memory", name: root.fresh("m") }).readConsistent).toBeUndefined();
  });
});

describe("ConsistentReads (the actor's side)", () => {
  it("refuses a writer's backend; an end of a token it never gave (a lost actor's) answers false; a closed backend holds nothing", async () => {
    const { writer, path } = store();
    const reads = new ConsistentReads();
    expect(await errorOf(() => reads.begin(writer, 1))).toMatchObject({ code: "invalid-argument" });
    expect(await reads.end("a token of a lost actor")).toBe(false);
    const reader = sqliteBackend(path, { readOnly: true });
    reader.close();
    expect(await errorOf(() => reads.begin(reader, 1))).toMatchObject({ code: "closed" });
    // Nothing was left held: a begin on an open handle starts afresh, overlapping begins share it, the last end ends it.
    const open = sqliteBackend(path, { readOnly: true });
    cleanups.push(() => open.close());
    const a = await reads.begin(open, 1);
    expect(open.db.inTransaction).toBe(true);
    const b = await reads.begin(open, 2);
    expect(await reads.end(a)).toBe(true);
    expect(await reads.end(a)).toBe(false); // ended once: never another caller's
    expect(open.db.inTransaction).toBe(true);
    expect(await reads.end(b)).toBe(true);
    expect(open.db.inTransaction).toBe(false);
    // A closed tier ends the points in time it began, and only those.
    const c = await reads.begin(open, 1);
    const d = await reads.begin(open, 2);
    reads.endTier(1);
    expect(await reads.end(c)).toBe(false);
    expect(open.db.inTransaction).toBe(true);
    reads.endTier(2);
    await until(() => !open.db.inTransaction, "the last holder's tier closed");
    expect(await reads.end(d)).toBe(false);
  });
});
