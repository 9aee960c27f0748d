/**
 * A wave that replaces a node (remove, then re-add with other meta or as another type) while a dependent is re-added
 * unchanged: the diff sees the node replaced and the dependent unchanged, so the frames are `graph.remove b`,
 * `graph.add b`. Replayed one by one, the remove was refused (the code-built dependent c still depends on b):
 * RestoreError phase-failed on every restore until a compaction, after which restore silently kept b's old meta (a
 * baseline skipped the refused removal). Both paths must give the live graph.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import {
  attachSnapshotStorage,
  compactGraph,
  createGraph,
  restoreSnapshot,
  type GraphCheckpointRecord,
  type GraphPersistSnapshot,
  type JsonValue,
  type ReactiveGraph,
} from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";

let dir = "";
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "replace-dependent-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function open(file: string) {
  const backend = sqliteBackend(file);
  const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" });
  const wal = kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec });
  return {
    snapshot,
    wal,
    async close() {
      await snapshot.close();
      await wal.close();
      await backend.close?.();
    },
  };
}

const pair = (a: JsonValue, b: JsonValue): JsonValue => [a, b];
const double = (v: JsonValue): JsonValue => (v as number) * 2;
function build(): ReactiveGraph {
  const g = createGraph("g");
  g.state("a", 1);
  g.state("b", 2);
  g.derived("c", ["a", "b"], pair);
  g.derived("d", ["a"], double);
  g.derived("e", ["d"], double);
  return g;
}

/** Runs `wave` with storage attached; the live snapshot, the restore before and after compaction, the frames. */
async function scenario(wave: (g: ReactiveGraph) => void): Promise<{ live: GraphPersistSnapshot; before: GraphPersistSnapshot; after: GraphPersistSnapshot; frames: string[] }> {
  const file = join(dir, "g.db");
  const s = open(file);
  const g = build();
  const h = attachSnapshotStorage(g, [{ snapshot: s.snapshot, wal: s.wal }], { compactEvery: Number.POSITIVE_INFINITY });
  g.batch(() => wave(g));
  await h.flush();
  const live = g.snapshot();
  await h.dispose();
  const stored = (await Promise.all((await s.wal.list("g/wal/")).map((k) => s.wal.load(k)))) as WALFrame[];
  const frames = stored.sort((x, y) => x.frame_seq - y.frame_seq).map((f) => `${(f.change.change as { kind: string }).kind} ${f.path}`);
  const r1 = build();
  await restoreSnapshot(r1, { snapshot: s.snapshot, wal: s.wal });
  await s.close();
  const raw = sqliteBackend(file);
  await compactGraph({ backend: raw }, { graphName: "g" });
  await raw.close?.();
  const s2 = open(file);
  const r2 = build();
  await restoreSnapshot(r2, { snapshot: s2.snapshot, wal: s2.wal });
  await s2.close();
  return { live, before: r1.snapshot(), after: r2.snapshot(), frames };
}

describe("a node replaced under a dependent that stays", () => {
  it("a state node re-added with other meta and value", async () => {
    const r = await scenario((g) => {
      g.remove("c");
      g.remove("b");
      g.addState("b", 5, { unit: "kg" });
      g.derived("c", ["a", "b"], pair);
    });
    expect(r.frames).toEqual(["graph.remove b", "graph.add b", "node.set c"]); // c: same identity, new value
    expect(r.live.nodes.b).toEqual({ type: "state", deps: [], status: "settled", meta: { unit: "kg" }, value: 5 });
    expect(r.before).toEqual(r.live);
    expect(r.after).toEqual(r.live);
  });

  it("a derived node re-added as a state node (the code's dependent stays wired to it)", async () => {
    const r = await scenario((g) => {
      g.remove("e");
      g.remove("d");
      g.addState("d", 40);
      g.derived("e", ["d"], double);
    });
    expect(r.live.nodes.e?.value).toBe(80);
    expect(r.before).toEqual(r.live);
    expect(r.after).toEqual(r.live);
  });
});
