/**
 * Review r231 F3 (task 234): an attach that threw after handing the graph's fold rule to its WAL store's actor
 * never took it back, and the rule kept folding the graph's WAL for a later attach whose baselines are in another
 * store (that attach sends a lift, which keeps a rule, task 222): its folds reported false wal-gap losses to
 * onError. Now a failed attach takes the rule back. Real worker threads, real SQLite files.
 */
import { afterAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { createGraph } from "../../src/graph/graph.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempRoot } from "../engine/fixtures/helpers.js";

const root = tempRoot("r231-linger");
afterAll(() => root.remove());

function graph(name: string): ReactiveGraph {
  const g = createGraph(name);
  for (const path of ["a", "b"]) g.state(path, 0);
  return g;
}

describe("an attach that throws after handing its fold rule over, then an attach with its baselines elsewhere", () => {
  it.each([
    { lingering: false, what: "control: A's rule released by its dispose, nothing lingers: no error" },
    { lingering: true, what: "an attach that threw took its rule back: the later attach's writes restore and onError hears nothing" },
  ])("$what", async ({ lingering }) => {
    const sPath = root.fresh("s.db");
    const tPath = root.fresh("t.db");
    const s: StoreSpec = { kind: "sqlite", path: sPath };
    const t: StoreSpec = { kind: "sqlite", path: tPath };
    const errors: string[] = [];
    const engine = openStorageEngine({ threads: 1, onError: (e) => void errors.push(`${(e as { code?: string }).code}: ${e.message}`) });
    const b = graph("g");
    try {
      const snapS = engine.snapshot<GraphCheckpointRecord>(s);
      const walS = engine.kv<WALFrame>(s, { codec: walFrameCodec });
      // 1. An ordinary background attach, disposed properly: a baseline of g in S.
      const a = graph("g");
      const ha = attachSnapshotStorage(a, [{ snapshot: snapS, wal: walS }]);
      a.set("a", "from A");
      await ha.flush();
      await ha.dispose();
      // 2. An attach that throws after handing over its rule (graph.snapshot fails): it takes the rule back.
      if (lingering) {
        const bad = graph("g");
        Object.defineProperty(bad, "snapshot", { value: () => { throw new Error("snapshot failed"); } });
        expect(() => attachSnapshotStorage(bad, [{ snapshot: snapS, wal: walS }])).toThrow("snapshot failed");
      }
      // 3. g attached again with its baselines in T, its WAL still in S (no background cadence: a lift is sent).
      const snapT = engine.snapshot<GraphCheckpointRecord>(t);
      const hb = attachSnapshotStorage(b, [{ snapshot: snapT, wal: walS }], { compactEvery: 1_000_000 });
      const pad = "x".repeat(1024);
      for (let i = 0; i < 600; i++) {
        b.set(i % 2 === 0 ? "a" : "b", `${i}${pad}`);
        if (i % 50 === 49) await hb.flush();
      }
      await hb.flush(); // acknowledged
      await hb.dispose();
      await snapT.close();
      await snapS.close();
      await walS.close();
    } finally {
      await engine.close();
    }
    // Restore g from B's pair: T's baseline and S's frames.
    const tb = sqliteBackend(tPath);
    const sb = sqliteBackend(sPath);
    const r = graph("g");
    let restored: unknown;
    try {
      await restoreSnapshot(r, { snapshot: snapshotStorage<GraphCheckpointRecord>(tb), wal: kvStorage<WALFrame>(sb, { codec: walFrameCodec }) });
      restored = { a: r.get("a"), b: r.get("b") };
    } catch (err) {
      restored = err;
    } finally {
      tb.close();
      sb.close();
    }
    expect(restored).toEqual({ a: b.get("a"), b: b.get("b") }); // holds: the fold fails on B's baseline hole
    expect(errors).toEqual([]); // before: wal-gap reports ("the changes they held are lost") from the lingering rule's folds
  }, 180_000);
});
