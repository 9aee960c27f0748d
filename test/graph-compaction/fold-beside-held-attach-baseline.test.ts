/**
 * A compaction's baseline covers a held baseline of the graph only up to its own seq (review r178 of a999150). A job's
 * writes tell the tiers holding put-back values (design §3.30), and a999150 dropped every older-numbered held value of
 * the baseline key, also one whose seq is ABOVE the fold's: an attach baseline (a seq of its own; no frame holds its
 * state) whose save failed was dropped by an inline compaction of the session before's frames, the attach handle's
 * next flush resolved its seq, the store kept the fold's baseline below it, and restore returned the session
 * before's state. Now the held attach baseline's retry lands over the fold's. Memory behind a fault wrapper (sync,
 * and async as PostgreSQL is) and a SQLite file whose trigger refuses the row. No timing: the retry is held (60 s)
 * and driven by explicit flushes.
 */
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { kvStorage } from "../../src/tier/kv.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { faultyBackend } from "../support/faulty-backend.js";
import { acceptRows, rejectRow } from "../engine/fixtures/refused-rows.js";
import { GRAPH, buildGraph, inlinePair, restoredSnapshot, tempDir } from "../graph-compaction/fixtures.js";

const HELD = 60_000;
const tmp = tempDir("fold-held-attach-baseline");
afterAll(() => tmp.remove());

interface Store {
  readonly backend: StorageBackend;
  fail(): void;
  /** Resolves once every call issued so far was decided (under the faults): none lands after heal(). */
  idle(): Promise<void>;
  heal(): void;
  close(): void;
}
function faulty(async: boolean): Store {
  const fb = faultyBackend(memoryBackend(), [], { async });
  return {
    backend: fb,
    fail() {
      fb.inject({ op: "writeBatch", errno: "EIO", key: new RegExp(`^${GRAPH}$`) });
      fb.inject({ op: "write", errno: "EIO", key: new RegExp(`^${GRAPH}$`) });
    },
    idle: () => fb.idle(),
    heal: () => fb.heal(),
    close: () => undefined,
  };
}
function sqlite(): Store {
  const path = tmp.path("store.db");
  const b = sqliteBackend(path);
  return { backend: b, fail: () => rejectRow(path, GRAPH), idle: async () => undefined, heal: () => acceptRows(path), close: () => b.close() };
}

describe.each<[string, () => Store]>([
  ["memory sync", () => faulty(false)],
  ["memory async (PostgreSQL-like)", () => faulty(true)],
  ["SQLite file", sqlite],
])("inline compactGraph beside a failed attach baseline (%s)", (_name, open) => {
  it("the held attach baseline lands over the fold's: a resolved flush restores the live state", async () => {
    const st = open();
    // Session 1: frames in the store above its attach baseline.
    const g1 = buildGraph();
    const h1 = attachSnapshotStorage(g1, [inlinePair(st.backend)], { compactEvery: Number.POSITIVE_INFINITY });
    await h1.flush();
    for (let i = 0; i < 5; i++) g1.set("a", 10 + i);
    await h1.flush();
    await h1.dispose();

    // Session 2: a graph in another state attaches; its attach baseline's save fails until healed (held for retry).
    const g2 = buildGraph();
    g2.set("b", 777);
    const pair = {
      snapshot: snapshotStorage<GraphCheckpointRecord>(st.backend, { retry: { initialMs: HELD, maxMs: HELD } }),
      wal: kvStorage<WALFrame>(st.backend, { codec: walFrameCodec }),
    };
    st.fail();
    const h2 = attachSnapshotStorage(g2, [pair], { compactEvery: Number.POSITIVE_INFINITY });
    await expect(h2.flush()).rejects.toThrow();
    // A save of the attach baseline issued before the heal but run after its async hop landed before the fold, and
    // the fold then had nothing below it to show (review r318: 'expected 17 to be less than 17' under load).
    await st.idle();
    st.heal();

    const fold = await compactGraph({ backend: st.backend }, { graphName: GRAPH });
    const acknowledged = await h2.flush(); // resolves: the attach baseline's seq
    g2.set("c", "after");
    await h2.flush();
    const stored = (await pair.snapshot.load(GRAPH))?.seq;
    const restored = await restoredSnapshot(pair);
    expect(fold.baselineSeq).toBeLessThan(acknowledged); // the fold's baseline is below the held attach baseline
    expect(stored).toBeGreaterThanOrEqual(acknowledged);
    expect(restored).toEqual(g2.snapshot());
    await h2.dispose();
    st.close();
  });
});
