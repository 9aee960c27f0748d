/**
 * An inline compaction checks, before committing, that the graph's baseline is still the one it folded; the check
 * and the commit were two steps, so a writer committing between them (another tier or handle of this process on
 * the same store, which shares its lock: a second SQLite or file handle, an engine's actor in a worker thread;
 * any writer of an asynchronous backend while the fold awaits) had its newer baseline overwritten by the fold's older
 * one, and the frames the writer acknowledged above it lay over a hole: restore failed with wal-gap.
 * The commit is now conditional in the backend (writeBatchIf: applied only while the baseline holds the bytes the
 * fold checked, in one step of the backend): the fold changes nothing (store-busy) and every acknowledgement holds.
 * A fold in the store's actor (release / exclusive) whose batch is refused so decides again from the baseline read
 * anew: the writer's newer baseline is kept and only the frames it covers are deleted.
 *
 * The writer's commit is placed in that window by a wrapper that runs it when the fold calls the backend's batch, ahead
 * of passing the call on to the real backend (SQLite and file: a second handle of the same store; memory and
 * PostgreSQL: the same backend object, as another tier of the app uses it). Production reaches the window by timing.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { postgresBackend } from "../../src/backend/postgres.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { BatchOp, ExpectedValue, StorageBackend } from "../../src/backend/types.js";
import { StorageError } from "../../src/errors.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { errorOf } from "../support/wait.js";
import { GRAPH, buildGraph, inlinePair, randomWave, restoredSnapshot, rng, storedFrameSeqs, tempDir } from "./fixtures.js";

const tmp = tempDir("fold-conditional-commit");
afterAll(() => tmp.remove());
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const database = useTestDatabase();

type Kind = "sqlite" | "file" | "memory" | "postgres";

/** The writer's backend and the fold's (another handle of the same store, or the same object). */
async function open(kind: Kind, name: string): Promise<{ writer: StorageBackend; fold: StorageBackend }> {
  let writer: StorageBackend;
  let fold: StorageBackend;
  if (kind === "sqlite" || kind === "file") {
    const path = tmp.path(kind === "sqlite" ? `${name}.db` : name);
    const openOne = (): StorageBackend => (kind === "sqlite" ? sqliteBackend(path) : fileBackend(path));
    writer = openOne();
    fold = openOne(); // joins the lock this process holds
  } else if (kind === "memory") {
    writer = fold = memoryBackend();
  } else {
    const db = await database();
    writer = fold = await postgresBackend({ url: db.url, schema: db.schema, store: name });
  }
  cleanups.push(async () => {
    await writer.close?.();
    if (fold !== writer) await fold.close?.();
  });
  return { writer, fold };
}

/** `inner`, whose first batch (the fold's commit) lets `before` run first: the writer commits in the window. */
function windowed(inner: StorageBackend, before: () => Promise<void>): StorageBackend {
  let fired = false;
  const first = async (): Promise<void> => {
    if (fired) return;
    fired = true;
    await before();
  };
  return {
    name: inner.name,
    supports: { ...inner.supports, sync: false, readPrefix: false },
    read: (key) => inner.read(key),
    readMany: inner.readMany && ((keys) => inner.readMany!(keys)),
    write: async (key, bytes) => {
      await first();
      return inner.write(key, bytes);
    },
    delete: (key) => inner.delete!(key),
    list: (prefix) => inner.list!(prefix),
    writeBatch: async (ops: readonly BatchOp[]) => {
      await first();
      return inner.writeBatch!(ops);
    },
    ...(inner.writeBatchIf && {
      writeBatchIf: async (expected: ExpectedValue, ops: readonly BatchOp[]) => {
        await first();
        return inner.writeBatchIf!(expected, ops);
      },
    }),
  };
}

describe.each<Kind>(["sqlite", "file", "memory", "postgres"])("inline compaction, a writer committing between its check and its commit (%s)", (kind) => {
  it("a rebaseline and frames acknowledged above it: the fold changes nothing (store-busy), restore gives them", async () => {
    const { writer, fold } = await open(kind, `rebaseline-${kind}`);
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [inlinePair(writer)], { compactEvery: Number.POSITIVE_INFINITY });
    cleanups.push(() => handle.dispose());
    const random = rng(0x5eed);
    for (let i = 0; i < 8; i++) randomWave(graph, random);
    const folded = await handle.flush();
    let rebaseline = 0;
    let acknowledged = 0;
    const err = await errorOf(() =>
      compactGraph(
        {
          backend: windowed(fold, async () => {
            rebaseline = await handle.rebaseline();
            randomWave(graph, random);
            acknowledged = await handle.flush();
          }),
        },
        { graphName: GRAPH },
      ),
    );
    expect(rebaseline).toBeGreaterThan(folded);
    expect(acknowledged).toBeGreaterThan(rebaseline);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("store-busy");
    expect(await storedFrameSeqs(writer)).toContain(acknowledged);
    expect(await restoredSnapshot(inlinePair(writer))).toEqual(graph.snapshot());
  });
});

describe("a fold in the store's actor (release / exclusive), a writer committing between its check and its commit", () => {
  it("the refused batch is decided again: the writer's newer baseline is kept and the frames it covers deleted", async () => {
    const { writer, fold } = await open("sqlite", "actor");
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [inlinePair(writer)], { compactEvery: Number.POSITIVE_INFINITY });
    cleanups.push(() => handle.dispose());
    const random = rng(0xacd);
    for (let i = 0; i < 8; i++) randomWave(graph, random);
    const folded = await handle.flush();
    let rebaseline = 0;
    let acknowledged = 0;
    const result = await compactGraph(
      {
        backend: windowed(fold, async () => {
          rebaseline = await handle.rebaseline();
          randomWave(graph, random);
          acknowledged = await handle.flush();
        }),
        release: () => undefined,
        exclusive: async (step) => step(),
      },
      { graphName: GRAPH },
    );
    expect(rebaseline).toBeGreaterThan(folded);
    expect(result).toMatchObject({ baselineSeq: rebaseline, previousBaselineSeq: rebaseline, foldedFrames: 0 });
    expect(result.deletedFrames).toBeGreaterThan(0);
    expect(await storedFrameSeqs(writer)).toEqual([acknowledged]);
    expect(await restoredSnapshot(inlinePair(writer))).toEqual(graph.snapshot());
  });
});
