/**
 * Attach claims a store's keys of a graph for its handle (docs/design.md §3.7): a second handle of the graph on the
 * store is refused. A handle dropped with its graph, never disposed, writes nothing more: once the graph is collected
 * its claim is released. Claims by file path (SQLite, file stores, engine stores by spec) were held strongly, and
 * those by store object as long as the object lived: the graph's name stayed refused on that store for the process's
 * life (StorageError invalid-argument "attached to the store … already"). Real parts: SQLite files, memory backends,
 * an engine's worker thread, V8's collector (forced through --expose-gc set at run time).
 */
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { createGraph } from "../../src/graph/graph.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { AttachPair, GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { collected } from "../support/collect.js";

const tmp = tempDir("attach-claims-collected");
afterAll(() => tmp.remove());

function build(): ReactiveGraph {
  const g = createGraph("g");
  g.state("a", 0);
  return g;
}

function inlinePair(b: StorageBackend): AttachPair {
  return { snapshot: snapshotStorage<GraphCheckpointRecord>(b), wal: kvStorage<WALFrame>(b, { codec: walFrameCodec }) };
}

/** Attaches graph "g" through `pair`, writes one wave, and drops handle and graph undisposed: a ref to the graph. */
async function attachAndDrop(pair: AttachPair): Promise<WeakRef<ReactiveGraph>> {
  const g = build();
  const h = attachSnapshotStorage(g, [pair]);
  g.set("a", 1);
  await h.flush();
  return new WeakRef(g);
}

/** Attaches a new graph "g" through `pair` and disposes it: "ok" or the error's code and message. */
async function attachAgain(pair: AttachPair): Promise<string> {
  try {
    const g = build();
    const h = attachSnapshotStorage(g, [pair]);
    g.set("a", 2);
    await h.dispose();
    return "ok";
  } catch (err) {
    return `${(err as { code?: string }).code}: ${(err as Error).message}`;
  }
}

describe("a claim of a graph collected undisposed is released", () => {
  it("inline SQLite: a new backend of the file attaches the graph again", async () => {
    const path = tmp.path("inline.db");
    const first = sqliteBackend(path);
    const ref = await attachAndDrop(inlinePair(first));
    first.close(); // the app closed its store and forgot the handle
    expect(await collected(ref)).toBe(true);
    const again = sqliteBackend(path);
    try {
      expect(await attachAgain(inlinePair(again))).toBe("ok");
    } finally {
      again.close();
    }
  });

  it("a memory backend kept alive: the graph attaches to it again", async () => {
    const backend = memoryBackend();
    const ref = await attachAndDrop(inlinePair(backend));
    expect(await collected(ref)).toBe(true);
    expect(await attachAgain(inlinePair(backend))).toBe("ok");
  });

  it("engine tiers of a SQLite store: a new engine of the file attaches the graph again", async () => {
    const spec = { kind: "sqlite" as const, path: tmp.path("engine.db") };
    const pair = (engine: StorageEngine): AttachPair => ({
      snapshot: engine.snapshot<GraphCheckpointRecord>(spec),
      wal: engine.kv<WALFrame>(spec, { codec: walFrameCodec }),
    });
    const dropped = async (): Promise<WeakRef<ReactiveGraph>> => {
      const engine = openStorageEngine({ threads: 1 });
      const tiers = pair(engine);
      try {
        return await attachAndDrop(tiers);
      } finally {
        // The app closed its tiers and engine and forgot the handle (tiers left open: test/engine/close-frees).
        await Promise.all([tiers.snapshot.close?.(), tiers.wal?.close?.()]);
        await engine.close();
      }
    };
    const ref = await dropped();
    expect(await collected(ref)).toBe(true);
    const engine = openStorageEngine({ threads: 1 });
    try {
      expect(await attachAgain(pair(engine))).toBe("ok");
    } finally {
      await engine.close();
    }
  });

  it("a live graph whose handle was dropped still holds its claim", async () => {
    const backend = memoryBackend();
    const g = build();
    const handle = new WeakRef(attachSnapshotStorage(g, [inlinePair(backend)]));
    g.set("a", 1);
    await collected(handle); // the graph's observer keeps the attach writing, whether the handle object goes or not
    expect(await attachAgain(inlinePair(backend))).toMatch(/^invalid-argument: .*attached to the store/);
    g.set("a", 3); // the first attach still writes
  });
});
