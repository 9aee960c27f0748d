/**
 * Task 215 (review r204, task 209): an engine kept every store it ever opened, its actor, SQLite handles and store
 * lock, until engine.close(), also after every tier of the store closed: a server opening a store per tenant grew
 * for good and held every tenant's lock. Now a store that nothing uses is shut down when its last tier's close (or
 * its last job) ends, and reopened by the next tier or job; kept open: a memory store (its data is in the actor), a
 * store whose actor holds state a new one would not have (task 223: the actor answers, the engine reads no config):
 * a commit watcher's setting (not a lift alone, nor a fold rule taken back), a job's that may keep some (a custom
 * job; not the built-in compaction, task 223). Real worker threads, SQLite files, child processes.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { openStorageEngineForTests } from "../../src/engine/engine.js";
import { compactGraphInEngine } from "../../src/persistence/compaction.js";
import { stopFoldingInBackground, WAL_GROWTH_WATCHER } from "../../src/persistence/wal-growth-watcher.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { REPO_ROOT, tempRoot } from "./fixtures/helpers.js";
import { killChildren } from "../support/child-processes.js";
import { sleep, until } from "../support/wait.js";

const HOLDER = join(REPO_ROOT, "test/engine/fixtures/hold-store.mjs");
const PROBE_WORKER = fileURLToPath(new URL("./fixtures/probe-job-worker.mjs", import.meta.url));
/** The message probe-job-worker.mjs opens its job's gate on (OPEN_PROBE_GATE there). */
const OPEN_PROBE_GATE = "graphrefly.test-open-probe-gate";

const root = tempRoot("idle-stores");
let engine: StorageEngine | undefined;
const children = new Set<ChildProcess>();
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
  await killChildren(children);
});
afterAll(() => root.remove());

/** Another process opens `path` through its own engine and writes: its first line, "holding" or why it could not. */
async function otherProcessOpens(path: string): Promise<string> {
  const child = spawn(process.execPath, [HOLDER, "sqlite", path], { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "inherit"] });
  children.add(child);
  const exited = once(child, "exit");
  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      out += chunk;
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once("error", reject);
    child.once("exit", (code) => resolve(`exited ${String(code)}`));
  });
  child.stdin!.end(); // the holder closes its engine and exits
  await exited;
  return line.split(" ").slice(0, 2).join(" ");
}

describe("a store whose last tier closed", () => {
  it("is shut down: 20 stores opened, written and closed leave 0 open, their locks released; reopened, each has its data", async () => {
    engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0 });
    const paths = Array.from({ length: 20 }, (_, i) => root.fresh(`s${i}.db`));
    for (const [i, path] of paths.entries()) {
      const kv = engine.kv<{ i: number }>({ kind: "sqlite", path }, { name: "kv" });
      kv.save("k", { i });
      await kv.flush();
      await kv.close();
    }
    expect((await engine.stats()).length).toBe(0);
    // The lock went with the store: another process opens one and writes (before: "error store-locked").
    expect(await otherProcessOpens(paths[7]!)).toBe("holding");
    for (const [i, path] of paths.entries()) {
      const kv = engine.kv<{ i: number }>({ kind: "sqlite", path }, { name: "kv" });
      expect(await kv.load("k")).toEqual({ i });
      await kv.close();
    }
    const again = engine.kv<number>({ kind: "sqlite", path: paths[7]! }, { name: "child" });
    expect(typeof (await again.load("from-child"))).toBe("number");
    await again.close();
    expect((await engine.stats()).length).toBe(0);
  }, 120_000);

  it("stays open while another tier of it is open, and closes with the last one", async () => {
    engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0 });
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("two.db") };
    const a = engine.kv<number>(store, { name: "a" });
    const b = engine.kv<number>(store, { name: "b" });
    a.save("x", 1);
    await a.close();
    expect((await engine.stats()).length).toBe(1);
    b.save("y", 2); // the store's actor is the same: b works on
    await b.flush();
    await b.close();
    expect((await engine.stats()).length).toBe(0);
    const c = engine.kv<number>(store, { name: "a" });
    expect(await c.load("x")).toBe(1);
    await c.close();
  }, 60_000);

  it("answers a flush in flight at the close, and its writes are durable (read by another engine after)", async () => {
    engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0 });
    const path = root.fresh("inflight.db");
    const kv = engine.kv<number>({ kind: "sqlite", path }, { name: "kv" });
    for (let i = 0; i < 2_000; i++) kv.save(`k${i}`, i);
    const flushed = kv.flush();
    const closed = kv.close();
    await expect(flushed).resolves.toBeUndefined();
    await expect(closed).resolves.toBeUndefined();
    expect((await engine.stats()).length).toBe(0);
    const reader = openStorageEngine({ threads: 1, idleStoreCloseMs: 0 });
    try {
      const r = reader.kv<number>({ kind: "sqlite", path }, { name: "kv" });
      expect(await r.load("k0")).toBe(0);
      expect(await r.load("k1999")).toBe(1999);
    } finally {
      await reader.close();
    }
  }, 60_000);

  it("of a memory store keeps the store open with its data", async () => {
    engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0 });
    const store: StoreSpec = { kind: "memory", name: "idle-memory" };
    const kv = engine.kv<string>(store, { name: "kv" });
    kv.save("k", "kept");
    await kv.flush();
    await kv.close();
    expect((await engine.stats()).map((s) => s.store)).toEqual([store]);
    const again = engine.kv<string>(store, { name: "kv" });
    expect(await again.load("k")).toBe("kept");
  }, 60_000);

  it("of a store sent a commit-watcher config keeps it open (the setting is the store's, a new actor would not know it)", async () => {
    engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0 });
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("watched.db") };
    const kv = engine.kv<unknown>(store, { name: "wal" });
    expect(kv.configureCommitWatcher!(WAL_GROWTH_WATCHER, "g", { ratio: 4, minBytes: 1024 })).toBe(true);
    kv.save("a", 1);
    await kv.close();
    expect((await engine.stats()).length).toBe(1);
  }, 60_000);

  it("of a store sent a fold rule, then a lift (keepAboveSeq Infinity), keeps it open: the lift leaves the rule set (task 220)", async () => {
    engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0 });
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("rule-lift.db") };
    const kv = engine.kv<unknown>(store, { name: "wal" });
    expect(kv.configureCommitWatcher!(WAL_GROWTH_WATCHER, "g", { ratio: 4, minBytes: 1024 })).toBe(true);
    expect(kv.configureCommitWatcher!(WAL_GROWTH_WATCHER, "g", { keepAboveSeq: Number.POSITIVE_INFINITY })).toBe(true);
    kv.save("a", 1);
    await kv.close();
    expect((await engine.stats()).length).toBe(1);
  }, 60_000);

  it("of a store sent a pin, then its lift, shuts it down: nothing is left set (task 220)", async () => {
    engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0 });
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("pin-lift.db") };
    const kv = engine.kv<unknown>(store, { name: "wal" });
    expect(kv.configureCommitWatcher!(WAL_GROWTH_WATCHER, "g", { keepAboveSeq: 5 })).toBe(true);
    await kv.flush();
    await kv.close();
    expect((await engine.stats()).length).toBe(1); // the pin holds it
    const again = engine.kv<unknown>(store, { name: "wal" });
    expect(again.configureCommitWatcher!(WAL_GROWTH_WATCHER, "g", { keepAboveSeq: Number.POSITIVE_INFINITY })).toBe(true);
    again.save("a", 1);
    await again.close();
    expect((await engine.stats()).length).toBe(0);
  }, 60_000);

  it("of a store sent a fold rule, then a lift, then the rule's release (attach's dispose), shuts it down (task 223)", async () => {
    engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0 });
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("rule-release.db") };
    const kv = engine.kv<unknown>(store, { name: "wal" });
    expect(kv.configureCommitWatcher!(WAL_GROWTH_WATCHER, "g", { ratio: 4, minBytes: 1024 })).toBe(true);
    expect(kv.configureCommitWatcher!(WAL_GROWTH_WATCHER, "g", { keepAboveSeq: Number.POSITIVE_INFINITY })).toBe(true);
    stopFoldingInBackground(kv, "g");
    kv.save("a", 1);
    await kv.close();
    expect((await engine.stats()).length).toBe(0);
  }, 60_000);

  it("of a store whose fold rule was released, while another graph's rule is set, keeps it open (task 223)", async () => {
    engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0 });
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("rule-release-other.db") };
    const kv = engine.kv<unknown>(store, { name: "wal" });
    expect(kv.configureCommitWatcher!(WAL_GROWTH_WATCHER, "g", { ratio: 4, minBytes: 1024 })).toBe(true);
    expect(kv.configureCommitWatcher!(WAL_GROWTH_WATCHER, "h", { ratio: 4, minBytes: 1024 })).toBe(true);
    stopFoldingInBackground(kv, "g");
    await kv.close();
    expect((await engine.stats()).length).toBe(1);
  }, 60_000);

  it("of a store sent a pin, then a fold rule's release, keeps it open: a release leaves the pin (task 223)", async () => {
    engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0 });
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("pin-release.db") };
    const kv = engine.kv<unknown>(store, { name: "wal" });
    expect(kv.configureCommitWatcher!(WAL_GROWTH_WATCHER, "g", { keepAboveSeq: 5 })).toBe(true);
    stopFoldingInBackground(kv, "g");
    await kv.close();
    expect((await engine.stats()).length).toBe(1);
  }, 60_000);
});

describe("a compaction job on a store with no tier", () => {
  it("leaves no state in the actor: the store shuts down once it ended, and opens again for the next tier (task 223)", async () => {
    engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0 });
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("compact-job.db") };
    const g = createGraph("g");
    g.state("a", 0);
    const snapshot = engine.snapshot<GraphCheckpointRecord>(store, { compactEvery: 1_000 });
    const wal = engine.kv<WALFrame>(store, { codec: walFrameCodec });
    const h = attachSnapshotStorage(g, [{ snapshot, wal }]); // a wave cadence: no fold rule in the actor
    for (let i = 1; i <= 20; i++) g.set("a", i);
    await h.dispose();
    await snapshot.close();
    await wal.close();
    expect((await engine.stats()).length).toBe(0);
    const result = await compactGraphInEngine(engine, store, "g");
    expect(result.baselineSeq).toBeGreaterThan(0);
    // Before: 1 (a store any job ran on stayed open until engine.close()).
    expect((await engine.stats()).length).toBe(0);
    const again = engine.snapshot<GraphCheckpointRecord>(store);
    expect((await again.loadHead!("g"))?.seq).toBe(result.baselineSeq);
    await again.close();
    expect((await engine.stats()).length).toBe(0);
  }, 60_000);
});

describe("a job on a store with no tier", () => {
  it("runs, holds the store open while it runs (a tier closing meanwhile leaves it), and the store stays open after (a job may keep state in the actor: task 220)", async () => {
    const access = openStorageEngineForTests({ threads: 1, idleStoreCloseMs: 0 }, PROBE_WORKER);
    engine = access.engine;
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("job.db") };
    const seed = engine.kv<string>(store, { name: "kv" });
    seed.save("k", "before");
    await seed.close();
    expect((await engine.stats()).length).toBe(0);
    const probe = engine.runJob(store, "probe-exclusive", { key: "kv/k", holdMs: 1 });
    const kv = engine.kv<string>(store, { name: "other" });
    kv.save("x", "y");
    await kv.close(); // the job still runs: the store stays
    expect((await engine.stats()).length).toBe(1);
    await access.post(store, { type: OPEN_PROBE_GATE });
    const seen = (await probe) as { before: string | null; after: string | null };
    expect(seen.before).toBe(seen.after);
    expect((await engine.stats()).length).toBe(1);
    expect(await engine.runJob(store, "early-exclusive", {})).toBe("ran");
    const reopened = engine.kv<string>(store, { name: "kv" });
    expect(await reopened.load("k")).toBe("before");
    await reopened.close();
    expect((await engine.stats()).length).toBe(1);
  }, 60_000);
});

describe("an idle store with idleStoreCloseMs (review r231 F4: a tier or job per request paid a new actor and a SQLite open each time)", () => {
  it("lingers by default: a tier opened after the last one closed finds the same actor (its counters go on), and close() does not wait", async () => {
    engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 10 * 60_000 }); // ten minutes: close() waiting would time the test out
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("linger.db") };
    for (let i = 0; i < 5; i++) {
      const kv = engine.kv<number>(store, { name: "req" });
      kv.save(`k${i}`, i);
      await kv.flush();
      await kv.close();
      const stats = await engine.stats();
      expect(stats.length).toBe(1); // before: 0 (shut down with each close, a new actor for each request)
      expect(stats[0]!.flushes).toBeGreaterThanOrEqual(i + 1); // one connection's counters: every request's flush
    }
    await engine.close();
    engine = undefined;
  }, 30_000);

  it("lingers by default after a job on a store with no tier: compactions in a row share one actor", async () => {
    engine = openStorageEngine({ threads: 1 });
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("linger-jobs.db") };
    const snapshot = engine.snapshot<GraphCheckpointRecord>(store, { compactEvery: 1_000 });
    const wal = engine.kv<WALFrame>(store, { codec: walFrameCodec });
    for (const name of ["g1", "g2", "g3"]) {
      const g = createGraph(name);
      g.state("a", 0);
      const h = attachSnapshotStorage(g, [{ snapshot, wal }]);
      for (let i = 1; i <= 5; i++) g.set("a", i);
      await h.dispose();
    }
    await snapshot.close();
    await wal.close();
    for (const name of ["g1", "g2", "g3"]) {
      expect((await compactGraphInEngine(engine, store, name)).baselineSeq).toBeGreaterThan(0);
      expect((await engine.stats()).length).toBe(1); // before: 0 after each (and a new actor for the next)
    }
  }, 60_000);

  it("shuts the store down once it stayed unused that long; a tier opened meanwhile keeps it, and its close starts the wait again", async () => {
    engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 50 });
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("linger-short.db") };
    const a = engine.kv<number>(store, { name: "a" });
    a.save("x", 1);
    await a.close();
    const b = engine.kv<number>(store, { name: "b" }); // whether or not the wait ended, b is served
    b.save("y", 2);
    await b.flush();
    await sleep(200); // longer than the wait: b open keeps the store
    expect((await engine.stats()).length).toBe(1);
    await b.close();
    await until(async () => (await engine!.stats()).length === 0, "the store shut down once unused for 50 ms", { timeoutMs: 20_000 });
    const again = engine.kv<number>(store, { name: "a" });
    expect(await again.load("x")).toBe(1);
    await again.close();
  }, 60_000);

  it("is refused when not a number of milliseconds >= 0", () => {
    expect(() => openStorageEngine({ idleStoreCloseMs: -1 })).toThrow(RangeError);
    expect(() => openStorageEngine({ idleStoreCloseMs: Number.NaN })).toThrow(RangeError);
    expect(() => openStorageEngine({ idleStoreCloseMs: "5" as unknown as number })).toThrow(RangeError);
  });
});
