/**
 * Two graphs (and the app) share one WAL tier. A WAL frame refused for good (a custom WAL codec) fails the flushes
 * that answer for it, but the first caller to flush took that report: when the app or the other graph flushed
 * first, the graph whose frame was refused acknowledged it (handle.flush() resolved, restore lacked the value), and
 * the graph whose flush took the report stopped instead, though all of its frames were stored (review). Each graph
 * now watches the refusals under its own WAL prefix (BaseStorageTier.watchRefusals), whoever flushes. Likewise the
 * writes a crashed store worker lost: only a graph whose frames the store lacks stops.
 * Real parts: SQLite files, real worker threads (the refusal made on the main thread and in the worker).
 */
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { attachSnapshotStorage, type GraphCheckpointRecord } from "../../src/index.js";
import { jsonCodec } from "../../src/codec/json.js";
import type { Codec } from "../../src/codec/types.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { kvStorage } from "../../src/tier/kv.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { openFaultEngine } from "../support/faults.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { smallGraph, twoGraphsAt1 } from "../support/small-graphs.js";
import { outcome, refusingBadFrames } from "../support/refusals.js";

const MODULE = new URL("../engine/fixtures/refusing-frames.mjs", import.meta.url).href;
const tmp = tempDir("shared-wal-refusal");
afterAll(() => tmp.remove());


interface Pair {
  snapshot: SnapshotStorageTier<GraphCheckpointRecord>;
  wal: KvStorageTier<WALFrame>;
  /** Reads the store afresh (after the writers closed). */
  reopen(): { snapshot: SnapshotStorageTier<GraphCheckpointRecord>; wal: KvStorageTier<WALFrame> };
  close(): Promise<void>;
}

const harnesses: Record<string, () => Pair> = {
  "inline SQLite": () => {
    const path = tmp.path("inline.db");
    const backend = sqliteBackend(path);
    return {
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend),
      wal: kvStorage<WALFrame>(backend, { codec: refusingBadFrames, debounceMs: 60_000, onError: () => {} }),
      reopen: () => {
        const b = sqliteBackend(path);
        return { snapshot: snapshotStorage(b), wal: kvStorage(b, { codec: jsonCodec as unknown as Codec<WALFrame> }) };
      },
      close: async () => backend.close?.(),
    };
  },
  ...Object.fromEntries(
    (["main-thread", "worker"] as const).map((where) => [
      `engine, refused ${where === "worker" ? "in the worker" : "on the main thread"}`,
      (): Pair => {
        const engine: StorageEngine = openStorageEngine({ threads: 1, onError: () => {} });
        const store: StoreSpec = { kind: "sqlite", path: tmp.path(`engine-${where}.db`) };
        const codec = where === "worker" ? { module: MODULE, export: "codec" } : refusingBadFrames;
        return {
          snapshot: engine.snapshot<GraphCheckpointRecord>(store),
          wal: engine.kv<WALFrame>(store, { codec: codec as Codec<WALFrame>, debounceMs: 60_000 }),
          reopen: () => {
            const b = sqliteBackend(store.path);
            return { snapshot: snapshotStorage(b), wal: kvStorage(b, { codec: jsonCodec as unknown as Codec<WALFrame> }) };
          },
          close: () => engine.close(),
        };
      },
    ]),
  ),
};

async function restoredValue(name: string, tiers: ReturnType<Pair["reopen"]>): Promise<unknown> {
  const g = smallGraph(name);
  await restoreSnapshot(g, tiers);
  return g.get("v");
}

describe.each(Object.entries(harnesses))("%s", (_, open) => {
  it.each(["the app", "the other graph"])("%s flushes the WAL tier first: only the refused graph stops", async (taker) => {
    const pair = open();
    const a = smallGraph("a");
    const b = smallGraph("b");
    const ha = attachSnapshotStorage(a, [{ snapshot: pair.snapshot, wal: pair.wal }], { onError: () => {} });
    const hb = attachSnapshotStorage(b, [{ snapshot: pair.snapshot, wal: pair.wal }], { onError: () => {} });
    a.set("v", 1);
    b.set("v", 1);
    await Promise.all([ha.flush(), hb.flush()]);
    a.set("v", "bad"); // refused for good by the WAL codec
    b.set("v", 2);
    if (taker === "the app") expect(await outcome(pair.wal.flush())).toMatch(/^rejected/); // the refusal's report
    else expect(await outcome(hb.flush())).toBe("resolved");
    expect(await outcome(ha.flush())).toBe("rejected write-refused");
    b.set("v", 3);
    expect(await outcome(hb.flush())).toBe("resolved");
    await hb.dispose();
    await ha.dispose().catch(() => undefined);
    await pair.close();
    const reopened = pair.reopen();
    expect(await restoredValue("a", reopened)).toBe(1);
    expect(await restoredValue("b", reopened)).toBe(3);
  });
});

it("a crashed worker lost one graph's frame: that graph's next flush rejects with it and it resumes by itself; the other (nothing unacknowledged) goes on", async () => {
  const engine = openFaultEngine({ threads: 1, onError: () => {} });
  const store: StoreSpec = { kind: "sqlite", path: tmp.path("crash.db") };
  try {
    const snapshot = engine.snapshot<GraphCheckpointRecord>(store);
    const wal = engine.kv<WALFrame>(store, { codec: walFrameCodec, debounceMs: 60_000 }); // frames stay pending in the worker
    const { a, b, ha, hb } = await twoGraphsAt1(snapshot, wal);
    a.set("v", 2); // reaches the worker, never committed
    await new Promise((r) => setTimeout(r, 50));
    await engine.injectFault(store, "terminate");
    for (let i = 0; i < 2000 && (await engine.stats()).every((s) => s.alive); i++) await new Promise((r) => setTimeout(r, 5));
    expect(await outcome(wal.flush())).toBe("rejected worker-crashed"); // the app's flush takes the report
    // Its first flush answers for the lost frame (task 390: worker-crashed, no refusal); then a's pair resumed with a
    // baseline of the graph, which a later flush acknowledges without a rebaseline() call.
    expect(await outcome(ha.flush())).toBe("rejected worker-crashed");
    expect(await outcome(ha.flush())).toBe("resolved");
    b.set("v", 2);
    expect(await outcome(hb.flush())).toBe("resolved");
    await hb.dispose();
    await ha.dispose();
    await engine.close();
    const b2 = sqliteBackend(store.path);
    const reopened = { snapshot: snapshotStorage<GraphCheckpointRecord>(b2), wal: kvStorage<WALFrame>(b2, { codec: walFrameCodec }) };
    expect(await restoredValue("a", reopened)).toBe(2);
    expect(await restoredValue("b", reopened)).toBe(2);
    await b2.close?.();
  } finally {
    await engine.close().catch(() => undefined);
  }
});

it("a frame a worker codec refuses with a plain Error stops its graph (it passed for a transient failure)", async () => {
  const engine = openStorageEngine({ threads: 1, onError: () => {} });
  try {
    const store: StoreSpec = { kind: "sqlite", path: tmp.path("plain-error.db") };
    const codec = { module: MODULE, export: "codec" } as unknown as Codec<WALFrame>;
    const a = smallGraph("a");
    const ha = attachSnapshotStorage(a, [{ snapshot: engine.snapshot(store), wal: engine.kv<WALFrame>(store, { codec }) }], {
      onError: () => {},
    });
    a.set("v", 1);
    await ha.flush();
    a.set("v", "bad");
    expect(await outcome(ha.flush())).toBe("rejected write-refused");
    expect(await outcome(ha.flush())).toBe("rejected write-refused"); // never acknowledged by a later flush
    await ha.dispose().catch(() => undefined);
  } finally {
    await engine.close().catch(() => undefined);
  }
});
