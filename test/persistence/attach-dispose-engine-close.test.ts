/**
 * dispose() racing engine.close() after everything was acknowledged reports no refused write (task 277, review r267
 * F3). dispose()'s last flush met the engine's tiers closing: the WAL tier's flush rejected `closed` with nothing of
 * the pair's pending, and the pair stopped and reported "the write at seq N was refused for good" for a seq already
 * durable (restore was right: nothing was lost, the report was false). Now that flush resolves.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { kvStorage } from "../../src/tier/kv.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";

const build = () => {
  const g = createGraph("g");
  g.state("c", 0);
  return g;
};

const codeOf = (e: unknown): string => String((e as { code?: unknown }).code);

it("engine.close() racing dispose() after an acknowledged flush: no write-refused, the state restores", async () => {
  const dir = mkdtempSync(join(tmpdir(), "t277-"));
  const spec = { kind: "sqlite" as const, path: join(dir, "s.db") };
  try {
    const heard: string[] = [];
    const outcomes: string[] = [];
    for (let round = 1; round <= 2; round++) {
      const engine = openStorageEngine({ threads: 1 });
      const pair = { snapshot: engine.snapshot<GraphCheckpointRecord>(spec), wal: engine.kv(spec, { codec: walFrameCodec }) };
      const g = build();
      if (round > 1) await restoreSnapshot(g, pair);
      const h = attachSnapshotStorage(g, [pair], { onError: (e) => heard.push(codeOf(e)) });
      g.set("c", round * 10);
      await h.flush(); // everything acknowledged: nothing is left to write
      const disposing = h.dispose();
      const closing = engine.close();
      const [d, c] = await Promise.allSettled([disposing, closing]);
      expect(c.status).toBe("fulfilled");
      // Before: "rejected write-refused" (the pair stopped at a seq already durable).
      outcomes.push(d.status === "fulfilled" ? "fulfilled" : `rejected ${codeOf(d.reason)}`);
    }
    expect(outcomes).toEqual(["fulfilled", "fulfilled"]);
    expect(heard).not.toContain("write-refused");
    const b = sqliteBackend(spec.path);
    try {
      const g = build();
      await restoreSnapshot(g, { snapshot: snapshotStorage<GraphCheckpointRecord>(b), wal: kvStorage(b, { codec: walFrameCodec }) });
      expect(g.get("c")).toBe(20);
    } finally {
      await b.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
