/**
 * Read-only engine stores for SQLite and file stores (issue 14 item 2): `{ kind, path | dir, readOnly: true }` opens
 * an actor of its own (the store key keeps it apart from a writer's actor of the same store), which reads without the
 * store's lock while another process writes; its tier proxies refuse writes when offered with
 * StorageError("read-only"), as inline read-only tiers do (test/tier/read-only.test.ts); and it leaves no file behind.
 */
import { readdirSync } from "node:fs";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, storeKey, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { createGraph } from "../../src/graph/graph.js";
import { followGraph } from "../../src/persistence/follow.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { sqliteKv } from "../../src/tier/index.js";
import type { BaseStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { killAllStoreChildren, openStoreInChild } from "../backend/store-holder.js";
import { killAllChildren, sleep, startChild, tempDir, type TempDir } from "../reliability/fixtures/crash-harness.js";
import { buildGraph, digestOf } from "../reliability/fixtures/graph-crash-model.mjs";
import { seedEveryTier } from "../support/seeded-store.js";
import { errorOf, syncErrorOf } from "../support/wait.js";

type Kind = "sqlite" | "file";
const KINDS: readonly Kind[] = ["sqlite", "file"];

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await killAllStoreChildren();
});
afterAll(() => killAllChildren());

function store(kind: Kind): { tmp: TempDir; path: string; spec: (readOnly?: boolean) => StoreSpec } {
  const tmp = tempDir(`engine-ro-${kind}`);
  cleanups.push(() => tmp.remove());
  const path = kind === "sqlite" ? `${tmp.dir}/store.db` : `${tmp.dir}/store`;
  const spec = (readOnly?: boolean): StoreSpec =>
    kind === "sqlite" ? { kind: "sqlite", path, ...(readOnly === undefined ? {} : { readOnly }) } : { kind: "file", dir: path, ...(readOnly === undefined ? {} : { readOnly }) };
  return { tmp, path, spec };
}

function engine(): StorageEngine {
  const e = openStorageEngine({ threads: 1 });
  cleanups.push(() => e.close());
  return e;
}

function expectReadOnly(err: unknown): void {
  expect(err, String(err)).toBeInstanceOf(StorageError);
  expect((err as StorageError).code).toBe("read-only");
}

describe("read-only engine stores", () => {
  it("a readOnly spec is another store key than the writer's, and readOnly must be a boolean", () => {
    for (const kind of KINDS) {
      const { spec } = store(kind);
      expect(storeKey(spec(true))).not.toBe(storeKey(spec()));
      expect(storeKey(spec(false))).toBe(storeKey(spec()));
      expect(syncErrorOf(() => storeKey({ ...spec(), readOnly: "yes" } as never))).toBeInstanceOf(TypeError);
    }
  });

  it.each(KINDS)("%s: reads a store another process holds and writes, refuses every write when offered, beside a refused writer actor", async (kind) => {
    const { path, spec } = store(kind);
    await seedEveryTier(kind, path);
    const holder = await openStoreInChild(kind, path); // holds the lock and wrote "from-child"
    expect(holder.report.code).toBe("acquired");
    const e = engine();

    // A writer actor of the same store in this process is refused (another process holds it) ...
    const writer = e.kv<number>(spec(), { name: "kv-writer" });
    const locked = await errorOf(() => writer.load("k/1"));
    expect((locked as StorageError).code).toBe("store-locked");
    // ... while the read-only actor reads it.
    const ro = spec(true);
    const snapshot = e.snapshot<{ name: string; v: number }>(ro);
    const kv = e.kv<number>(ro);
    const log = e.appendLog<number>(ro, { name: "log" });
    expect(await snapshot.load("g")).toEqual({ name: "g", v: 1 });
    expect(await kv.load("k/2")).toBe(2);
    expect(await kv.list()).toContain("from-child");

    expectReadOnly(syncErrorOf(() => snapshot.save({ name: "g", v: 2 })));
    expectReadOnly(syncErrorOf(() => kv.save("k/3", 3)));
    expectReadOnly(syncErrorOf(() => log.appendEntries([4])));
    expectReadOnly(syncErrorOf(() => log.appendEntries([])));
    expectReadOnly(await errorOf(() => kv.delete("k/1")));
    for (const tier of [snapshot, kv, log] as BaseStorageTier[]) {
      expectReadOnly(await errorOf(() => tier.compact()));
      await tier.flush(); // nothing was accepted, so nothing fails later
      tier.rollback();
    }
    expect(await kv.load("k/1")).toBe(1);
    await holder.release();
  });

  it.each(KINDS)("%s: opening, reading and closing a read-only engine store leaves no file behind", async (kind) => {
    const { tmp, path, spec } = store(kind);
    await seedEveryTier(kind, path);
    const listing = (): string[] => readdirSync(tmp.dir, { recursive: true }).map(String).sort();
    const before = listing();
    const e = openStorageEngine({ threads: 1 });
    const kv = e.kv<number>(spec(true));
    expect(await kv.list("k/")).toEqual(["k/1", "k/2"]);
    expect((await e.appendLog<number>(spec(true), { name: "log" }).loadEntries()).entries).toEqual([1, 2, 3]);
    await e.close();
    expect(listing()).toEqual(before);
  });

  it("engine kv tiers pass the backend's change counter through (SQLite has one, file stores none), so followers skip idle polls", async () => {
    const { path, spec } = store("sqlite");
    const writer = sqliteKv<number>(path);
    writer.save("a", 1);
    await writer.flush();
    const e = engine();
    const kv = e.kv<number>(spec(true));
    const c0 = await kv.changeCounter!();
    expect(await kv.load("a")).toBe(1);
    expect(await kv.changeCounter!(), "reads change nothing").toBe(c0);
    writer.save("b", 2);
    await writer.flush();
    expect(await kv.changeCounter!(), "another handle's commit moves it").not.toBe(c0);
    await writer.close();
    expect(e.kv<number>(store("file").spec(true)).changeCounter).toBeUndefined();
  });

  it.each(KINDS)("%s: followGraph through read-only engine tiers follows a writer process to its last acknowledged state", async (kind) => {
    const { tmp, path, spec } = store(kind);
    const sidecar = `${tmp.dir}/digests.log`;
    const writer = startChild("follow-writer.mjs", { kind, store: path, sidecar, seed: 7 });
    cleanups.push(async () => void (await writer.kill()));
    await writer.waitFor("ack", 2);
    const e = engine();
    const ro = spec(true);
    const graph = buildGraph(createGraph);
    const follower = await followGraph(
      graph,
      { snapshot: e.snapshot<GraphCheckpointRecord>(ro, { name: "snap" }), wal: e.kv<WALFrame>(ro, { name: "wal", codec: walFrameCodec }) },
      { pollMs: 10 },
    );
    cleanups.push(() => follower.stop());
    await sleep(400);
    const messages = await writer.kill();
    expect(messages.find((m) => m.t === "error")).toBeUndefined();
    const acks = messages.filter((m) => m.t === "ack");
    const last = acks[acks.length - 1] as unknown as { seq: number; digest: string };
    for (let i = 0; i < 3; i++) await follower.poll(); // the store is at rest now

    // What a restore through a fresh read-only engine store reads.
    const other = engine();
    const restored = buildGraph(createGraph);
    const r = await restoreSnapshot(restored, {
      snapshot: other.snapshot<GraphCheckpointRecord>(ro, { name: "snap" }),
      wal: other.kv<WALFrame>(ro, { name: "wal", codec: walFrameCodec }),
    });
    expect(follower.lag()).toMatchObject({ appliedSeq: r.finalSeq, frames: 0 });
    expect(r.finalSeq).toBeGreaterThanOrEqual(last.seq);
    expect(digestOf(graph)).toBe(digestOf(restored));
    expect(follower.stats().state).toBe("following");
  });
});
