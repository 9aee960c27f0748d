/**
 * A closed engine's store connections are collected (review s14 J). comlink's finalization registry holds each
 * wrapped endpoint strongly until every proxy of it is collected or released; the endpoint holds the MessagePort,
 * the port's listeners hold the connection, and the connection held the proxy the registry waits on: after
 * engine.close() every connection, its tiers' records and watchers (an attach left undisposed: its graph and claim)
 * stayed reachable for the process's life. Now a connection lost for good releases its proxy and port listeners.
 * Real parts: worker threads, SQLite files, V8's collector (forced through --expose-gc set at run time).
 */
import { afterAll, describe, expect, it } from "vitest";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { fileURLToPath } from "node:url";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { openStorageEngineForTests } from "../../src/engine/engine.js";
import { StorageError } from "../../src/errors.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { createGraph } from "../../src/graph/graph.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { AttachPair, GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { until } from "../support/wait.js";
import { expectCoded, rejectionOf, tempRoot } from "./fixtures/helpers.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const root = tempRoot("close-frees");
afterAll(() => root.remove());
const FAULT_WORKER = fileURLToPath(new URL("../support/fault-worker.mjs", import.meta.url));

/** A tier's store connection (test access: the connection is not public). */
function connectionOf(tier: object): object {
  return (tier as { conn: object }).conn;
}

/** Watches every key's refusals of `tier` (engine tiers have the watch; attach uses it). */
function watch(tier: KvStorageTier<number>): void {
  if (tier.watchRefusals === undefined) throw new Error("an engine kv tier has watchRefusals");
  tier.watchRefusals("", () => undefined);
}

/**
 * Collects until every ref is cleared or 50 rounds passed (finalization callbacks run in later turns): the names of
 * those still live.
 */
async function survivors(refs: Readonly<Record<string, WeakRef<object>>>): Promise<string[]> {
  const live = (): string[] => Object.keys(refs).filter((name) => refs[name]!.deref() !== undefined);
  for (let i = 0; i < 50 && live().length > 0; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  return live();
}

/** Opens an engine, writes through tiers it leaves open, closes the engine: refs to engine, connection and tiers. */
async function closedWithOpenTiers(store: StoreSpec): Promise<Record<string, WeakRef<object>>> {
  const engine = openStorageEngine({ threads: 1 });
  const kv = engine.kv<number>(store, { name: "kv", debounceMs: 60_000 });
  const snap = engine.snapshot<{ v: number }>(store, { name: "snap" });
  const log = engine.appendLog<number>(store, { name: "log" });
  watch(kv); // a watcher, as an attach registers on its tiers
  kv.save("k", 1);
  snap.save({ v: 2 });
  log.appendEntries([3]);
  await kv.flush();
  kv.save("k", 4); // left to the close's drain
  await engine.close();
  const refs = { engine, connection: connectionOf(kv), kv, snap, log };
  return Object.fromEntries(Object.entries(refs).map(([name, o]) => [name, new WeakRef(o)]));
}

describe("a closed engine is collected", () => {
  it.each([
    ["memory", (): StoreSpec => ({ kind: "memory", name: "frees" })],
    ["SQLite", (): StoreSpec => ({ kind: "sqlite", path: root.fresh("frees.db") })],
  ])("%s store: engine, connection and tiers left open", async (_kind, spec) => {
    const store = spec();
    const refs = await closedWithOpenTiers(store);
    expect(await survivors(refs)).toEqual([]);
    if (store.kind !== "sqlite") return;
    const check = openStorageEngine({ threads: 1 });
    try {
      expect(await check.kv<number>(store, { name: "kv" }).load("k")).toBe(4); // the drain stored the last write
    } finally {
      await check.close();
    }
  });

  it("50 engines opened and closed in a loop: none of their connections stays", async () => {
    // In a function of its own: a suspended async frame may keep its last locals (the last engine) reachable.
    const openAndClose = async (i: number): Promise<WeakRef<object>> => {
      const engine = openStorageEngine({ threads: 1 });
      const kv = engine.kv<number>({ kind: "memory", name: `loop-${i}` }, { name: "kv" });
      kv.save("k", i);
      await kv.flush();
      const ref = new WeakRef(connectionOf(kv));
      await engine.close();
      return ref;
    };
    const refs: Record<string, WeakRef<object>> = {};
    for (let i = 0; i < 50; i++) refs[`connection ${i}`] = await openAndClose(i);
    expect(await survivors(refs)).toEqual([]);
  }, 180_000);

  it("a graph attached through engine tiers, left attached at engine.close(), attaches again through a new engine", async () => {
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("attach.db") };
    const pair = (engine: StorageEngine): AttachPair => ({
      snapshot: engine.snapshot<GraphCheckpointRecord>(store),
      wal: engine.kv<WALFrame>(store, { codec: walFrameCodec }),
    });
    const graph = (): ReactiveGraph => {
      const g = createGraph("g");
      g.state("a", 0);
      return g;
    };
    const dropped = async (): Promise<WeakRef<ReactiveGraph>> => {
      const engine = openStorageEngine({ threads: 1 });
      const g = graph();
      const handle = attachSnapshotStorage(g, [pair(engine)]);
      g.set("a", 1);
      await handle.flush();
      await engine.close(); // the handle is neither disposed nor its tiers closed
      return new WeakRef(g);
    };
    const ref = await dropped();
    expect(await survivors({ graph: ref })).toEqual([]);
    const engine = openStorageEngine({ threads: 1 });
    try {
      const g = graph();
      const handle = attachSnapshotStorage(g, [pair(engine)]); // before: invalid-argument, "attached to the store … already"
      g.set("a", 2);
      await expect(handle.dispose()).resolves.toBeUndefined();
    } finally {
      await engine.close();
    }
  });
});

describe("connections of an engine left open", () => {
  it("a tier closed while its engine stays open is collected; the engine's connection stays and serves", async () => {
    const engine = openStorageEngine({ threads: 1 });
    const store: StoreSpec = { kind: "memory", name: "tier-closed" };
    try {
      const closedTier = async (): Promise<WeakRef<object>> => {
        const kv = engine.kv<number>(store, { name: "gone" });
        watch(kv);
        kv.save("k", 1);
        await kv.close();
        return new WeakRef(kv);
      };
      const ref = await closedTier();
      expect(await survivors({ tier: ref })).toEqual([]);
      const kv = engine.kv<number>(store, { name: "gone" });
      expect(await kv.load("k")).toBe(1);
    } finally {
      await engine.close();
    }
  });

  it("a store revived after its worker died releases the dead actor's port and proxy; the store serves on the new one", async () => {
    const errors: string[] = [];
    const onError = (e: Error): void => void errors.push((e as StorageError).code);
    const { engine, terminate } = openStorageEngineForTests({ threads: 1, onError }, FAULT_WORKER);
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("revive.db") };
    try {
      const kv = engine.kv<number>(store, { name: "kv" });
      kv.save("a", 1);
      await kv.flush();
      const conn = connectionOf(kv) as { port: object; remote: object };
      const dead = { port: new WeakRef(conn.port), proxy: new WeakRef(conn.remote) };
      await terminate(store);
      await until(() => errors.includes("worker-crashed"), "the connection saw its worker die");
      kv.save("b", 2); // revives the store on a new worker
      await kv.flush();
      expect(conn.port).not.toBe(dead.port.deref());
      expect(await survivors(dead)).toEqual([]);
      expect(await kv.load("a")).toBe(1);
      expect(await kv.load("b")).toBe(2);
    } finally {
      await engine.close();
    }
  });

  it("calls after close still settle: a tier's close() and flush() with its drain outcome, a write with closed", async () => {
    const engine = openStorageEngine({ threads: 1 });
    const kv = engine.kv<number>({ kind: "memory", name: "after" }, { name: "kv", debounceMs: 60_000 });
    kv.save("k", 1);
    await engine.close();
    await expect(kv.close()).resolves.toBeUndefined();
    // The drain stored every write the tier took (task 299: a flush after it said closed, as if they were not).
    await expect(kv.flush()).resolves.toBeUndefined();
    expectCoded(await rejectionOf(kv.load("k")), StorageError, "closed");
  });
});
