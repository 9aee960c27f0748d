/**
 * A graph attached and disposed over and over on one store (task 259, review r248): each attach deletes the frames
 * its seq bootstrap listed once its attach baseline is durable (docs/design.md §3.18), but dispose ended that reclaim
 * in its read-back, so every cycle left its frame behind: 10,000 cycles left 10,000 frames, and each attach's listing
 * of them (the seq bootstrap) grew with them. Now dispose lets the reclaim running then finish, so the WAL holds only
 * what the last session wrote above its baseline, and restore reads the last acknowledged state.
 */
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { attachSnapshotStorage } from "../../src/index.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { graphWalPrefix } from "../../src/wal/keys.js";
import { GRAPH, buildGraph, enginePair, inlinePair, restoredSnapshot, tempDir } from "../graph-compaction/fixtures.js";

const tmp = tempDir("dispose-cycles");
afterAll(() => tmp.remove());

const CYCLES = 50;
/** Each session writes one frame above its attach baseline; one more is slack, never a cycle's worth per cycle. */
const MAX_WAL_KEYS = 2;

/** Every key under the graph's WAL prefix (frames and anything else stored there). */
const walKeys = async (backend: StorageBackend): Promise<readonly string[]> => backend.list!(`${graphWalPrefix(GRAPH)}/`);

type Pair = ReturnType<typeof inlinePair>;

/**
 * `CYCLES` sessions of restore, attach, one set, dispose (every other one flushed first, the rest left to dispose's
 * own flush); each restore must read the state the session before it left, and after each session the WAL keys of
 * the graph are counted through `inspect`. Resolves to the last session's state.
 */
async function cycles(pair: () => Pair, inspect: () => Promise<readonly string[]>): Promise<{ last: unknown; most: number }> {
  let last: unknown;
  let most = 0;
  for (let i = 0; i < CYCLES; i++) {
    const graph = buildGraph();
    if (i > 0) {
      await restoreSnapshot(graph, pair());
      // Every cycle, not only the last: a frame lost mid-way and written over later would hide from the end state.
      expect(graph.snapshot()).toEqual(last);
    }
    const handle = attachSnapshotStorage(graph, [pair()]);
    graph.set("c", `cycle ${i}`);
    if (i % 2 === 0) await handle.flush();
    await handle.dispose();
    last = graph.snapshot();
    most = Math.max(most, (await inspect()).length);
  }
  return { last, most };
}

describe("attach/dispose cycles on one store keep the WAL bounded", () => {
  it.each(["memory", "sqlite"] as const)("inline tiers (%s), default options", async (kind) => {
    const backend = kind === "memory" ? memoryBackend() : sqliteBackend(tmp.path("inline.db"));
    try {
      const { last, most } = await cycles(() => inlinePair(backend), () => walKeys(backend));
      expect(most).toBeLessThanOrEqual(MAX_WAL_KEYS); // before: one more key per cycle (50 after 50 cycles)
      expect(await restoredSnapshot(inlinePair(backend))).toEqual(last);
    } finally {
      await backend.close?.();
    }
  });

  it("engine tiers of one SQLite store, default options", async () => {
    const store: StoreSpec = { kind: "sqlite", path: tmp.path("engine.db") };
    const engine = openStorageEngine({ threads: 1 });
    let result: { last: unknown; most: number };
    try {
      const pair = (): Pair => enginePair(engine, store);
      result = await cycles(pair, () => pair().wal.list(`${graphWalPrefix(GRAPH)}/`));
      expect(await restoredSnapshot(enginePair(engine, store))).toEqual(result.last);
    } finally {
      await engine.close();
    }
    expect(result.most).toBeLessThanOrEqual(MAX_WAL_KEYS);
    const backend = sqliteBackend(store.path);
    try {
      expect((await walKeys(backend)).length).toBeLessThanOrEqual(MAX_WAL_KEYS);
      expect(await restoredSnapshot(inlinePair(backend))).toEqual(result.last);
    } finally {
      await backend.close?.();
    }
  });
});
