/**
 * A store worker lost with a graph's frames unacknowledged: the graph stops (write-refused), whoever flushed, and
 * never acknowledges a lost frame (review of the refusal watch):
 * - a flush in flight when the worker died covered the frames, so nothing marked them lost: only that flush's
 *   caller heard worker-crashed, and the graph's next flush resolved with its frame gone (also when the app's
 *   flush was the one in flight);
 * - the same during a rebaseline's gate: the lost own baseline's retried flush resolved, frames were written above
 *   the missing baseline, and restore failed with wal-gap;
 * - PostgreSQL: a frame lost in a revived actor that could not open (the dead worker's lease) was heard by nobody.
 *   Since task 296 a frame taken by such an actor is not lost (no actor took it): it is sent again once the dead
 *   worker's lease lapsed and lands; the frame lost with the worker still stops its graph.
 * Real parts: SQLite files and PostgreSQL, real worker threads (the fault worker: hang, then terminate).
 */
import { afterAll, expect, it } from "vitest";
import type { StoreSpec } from "../../src/engine/index.js";
import { attachSnapshotStorage, type GraphCheckpointRecord } from "../../src/index.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { postgresBackend } from "../../src/backend/postgres.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { kvStorage } from "../../src/tier/kv.js";
import { openFaultEngine, type FaultEngine } from "../support/faults.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { smallGraph, twoGraphsAt1 } from "../support/small-graphs.js";
import { outcome } from "../support/refusals.js";

const tmp = tempDir("crash-lost-frames");
afterAll(() => tmp.remove());
const database = useTestDatabase();

function tiersOf(engine: FaultEngine, store: StoreSpec) {
  return {
    snapshot: engine.snapshot<GraphCheckpointRecord>(store),
    wal: engine.kv<WALFrame>(store, { codec: walFrameCodec, debounceMs: 60_000 }), // frames stay pending in the worker
  };
}

/**
 * Flushes until the handle answers for good (resolved or stopped); the outcomes, in order. Since task 390 a pair a
 * lost worker stopped resumes by itself: the flush answering for the lost writes rejects worker-crashed, a later one
 * resolves.
 */
async function flushUntilSettled(flush: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < 100; i++) {
    const o = await outcome(flush());
    seen.push(o);
    if (o === "resolved" || o === "rejected write-refused") break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return seen;
}

async function restoredValue(backend: StorageBackend, name: string): Promise<unknown> {
  const g = smallGraph(name);
  await restoreSnapshot(g, { snapshot: snapshotStorage<GraphCheckpointRecord>(backend), wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }) });
  return g.get("v");
}

it.each(["the graph's", "the app's"])("a worker lost while %s flush was in flight: the graph stops, its lost frame is never acknowledged", async (who) => {
  const engine = openFaultEngine({ threads: 1, onError: () => {} });
  const store: StoreSpec = { kind: "sqlite", path: tmp.path("inflight.db") };
  try {
    const { snapshot, wal } = tiersOf(engine, store);
    const a = smallGraph("a");
    const ha = attachSnapshotStorage(a, [{ snapshot, wal }], { onError: () => {} });
    a.set("v", 1);
    expect(await outcome(ha.flush())).toBe("resolved");
    a.set("v", 2); // pending in the worker
    await new Promise((r) => setTimeout(r, 50));
    await engine.injectFault(store, "hang"); // the worker stops answering
    const inflight = outcome(who === "the graph's" ? ha.flush() : wal.flush()); // sent, never answered
    await new Promise((r) => setTimeout(r, 100));
    await engine.injectFault(store, "terminate");
    expect(await inflight).toBe("rejected worker-crashed");
    const seen = await flushUntilSettled(() => ha.flush());
    // The lost frame is answered for by a rejection (the graph's flush in flight, else the first one after), never
    // acknowledged; the pair then resumes with a baseline of the graph.
    if (who !== "the graph's") expect(seen[0]).toBe("rejected worker-crashed");
    expect(seen.slice(0, -1).every((o) => o === "rejected worker-crashed"), seen.join()).toBe(true);
    expect(seen.at(-1)).toBe("resolved");
    await ha.dispose();
  } finally {
    await engine.close().catch(() => undefined);
  }
  const b = sqliteBackend(store.path);
  expect(await restoredValue(b, "a")).toBe(2); // the resumed pair's baseline: the graph
  await b.close?.();
}, 60_000);

it("a worker lost during a rebaseline's gate: no frame is written above the lost baseline, restore works", async () => {
  const engine = openFaultEngine({ threads: 1, onError: () => {} });
  const store: StoreSpec = { kind: "sqlite", path: tmp.path("gate.db") };
  try {
    const { snapshot, wal } = tiersOf(engine, store);
    const a = smallGraph("a");
    const ha = attachSnapshotStorage(a, [{ snapshot, wal }], { onError: () => {} });
    a.set("v", 1);
    a.set("v", 2);
    expect(await outcome(ha.flush())).toBe("resolved");
    await engine.injectFault(store, "hang");
    const rebased = outcome(ha.rebaseline()); // own baseline saved, its gate's flush sent: never answered
    await new Promise((r) => setTimeout(r, 100));
    a.set("v", 3); // held behind the gate
    await engine.injectFault(store, "terminate");
    expect(await rebased).toMatch(/^rejected/);
    expect((await flushUntilSettled(() => ha.flush())).at(-1)).toBe("resolved"); // resumed by itself (task 390)
    await ha.dispose();
  } finally {
    await engine.close().catch(() => undefined);
  }
  const b = sqliteBackend(store.path);
  expect(await restoredValue(b, "a")).toBe(3); // the resumed pair's baseline, no wal-gap
  await b.close?.();
}, 60_000);

it("PostgreSQL: a frame taken by a revived actor that could not open (the dead worker's lease) lands once it opens; the one lost with the worker stops its graph", async () => {
  const db = await database();
  const engine = openFaultEngine({ threads: 1, onError: () => {} });
  // The lease outlives a slow revival (a loaded machine): the revived actor's open must find the dead worker's lease.
  const store: StoreSpec = { kind: "postgres", url: db.url, schema: db.schema, store: "lost-revive", lease: { ttlMs: 6_000 } };
  try {
    const { snapshot, wal } = tiersOf(engine, store);
    const { a, b, ha, hb } = await twoGraphsAt1(snapshot, wal);
    a.set("v", 2); // lost with the worker
    await new Promise((r) => setTimeout(r, 50));
    await engine.injectFault(store, "terminate");
    for (let i = 0; i < 2000 && (await engine.stats()).every((s) => s.alive); i++) await new Promise((r) => setTimeout(r, 5));
    b.set("v", 2); // goes to a revived actor whose open fails (store-locked): kept, sent again once it opens
    expect((await flushUntilSettled(() => hb.flush())).at(-1)).toBe("resolved");
    const seen = await flushUntilSettled(() => ha.flush());
    expect(seen[0]).toBe("rejected worker-crashed"); // the lost frame: never acknowledged
    expect(seen.at(-1)).toBe("resolved"); // then a's pair resumed by itself (task 390)
    await hb.dispose().catch(() => undefined);
    await ha.dispose().catch(() => undefined);
  } finally {
    await engine.close().catch(() => undefined);
  }
  const ro = await postgresBackend({ url: db.url, schema: db.schema, store: "lost-revive", readOnly: true });
  try {
    expect(await restoredValue(ro, "b")).toBe(2);
  } finally {
    await ro.close();
  }
}, 60_000);
