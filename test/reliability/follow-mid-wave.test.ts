/**
 * A follower only ever shows states the writer had: it reads whole transactions, so a writer that commits a wave's
 * frames together is never seen inside a wave. Before, inline SQLite tiers with their defaults (sync-through)
 * committed each frame of a wave apart, and a follower polling while the writer wrote showed waves in part (nodes
 * at k beside nodes at k - 1). The writer (fixtures/mid-wave-writer.mjs) sets every node to k in each wave.
 */
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { createGraph } from "../../src/graph/graph.js";
import { followGraph } from "../../src/persistence/follow.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { assertBuilt, killAllChildren, sleep, startChild, tempDir } from "./fixtures/crash-harness.js";

beforeAll(() => assertBuilt());
afterAll(() => killAllChildren());

const NODES = 40;

it("a follower of an inline SQLite writer (sync-through) never shows part of a wave", { timeout: 60_000 }, async () => {
  const dir = tempDir("follow-mid-wave");
  const child = startChild("mid-wave-writer.mjs", { mode: "inline", path: join(dir.dir, "g.db"), nodes: NODES });
  try {
    await child.waitFor("ready");
    const backend = sqliteBackend(join(dir.dir, "g.db"), { readOnly: true });
    const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" });
    const wal = kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec });
    const g = createGraph("g");
    for (let i = 0; i < NODES; i++) g.state(`n${i}`, "0");
    const mixed: string[] = [];
    let shown = 0;
    g.observe(() => {
      shown++;
      const waves = new Set(g.paths().map((p) => g.get(p)));
      if (waves.size > 1 && mixed.length < 5) mixed.push([...waves].join(","));
    });
    const errors: unknown[] = [];
    const follower = await followGraph(g, { snapshot, wal }, { pollMs: 1, onError: (e) => errors.push(e) });
    try {
      await sleep(2000);
    } finally {
      await follower.stop();
      await snapshot.close();
      await wal.close();
      await backend.close?.();
    }
    expect(shown, "the follower showed the writer's waves").toBeGreaterThan(10);
    expect(mixed, "states the writer never had").toEqual([]);
    expect(errors).toEqual([]);
  } finally {
    await child.kill();
    dir.remove();
  }
});
