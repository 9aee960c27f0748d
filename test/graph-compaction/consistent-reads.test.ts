/**
 * Reads see one point in time while compaction runs (docs/design.md §3.16): a restore whose reads interleave with a
 * compaction (in the store's actor, or inline on the same backend) either reads the old baseline with all its
 * frames or starts over on the new one; it never folds old frames away under an old baseline (a wrong state
 * without error) nor calls a frame compaction deleted a torn write. A baseline that keeps moving ends in
 * StorageError `store-busy`. The interleavings are forced by running a real compaction between two of restore's
 * own reads; the last test lets a writer, autoCompact and restores race naturally.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { ExpectedValue, StorageBackend } from "../../src/backend/types.js";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { compactGraphInEngine } from "../../src/persistence/compaction.js";
import { StorageError } from "../../src/errors.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord, StorageHandle } from "../../src/persistence/storage-types.js";
import type { JsonValue } from "../../src/graph/types.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { errorOf } from "../support/wait.js";
import { BACKEND_KINDS, GRAPH, buildGraph, inlinePair, openBackend, storeSpec, tempDir, type BackendKind } from "./fixtures.js";

const tmp = tempDir("consistent");
afterAll(() => tmp.remove());

const engines: StorageEngine[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close().catch(() => undefined)));
});

interface Pair {
  snapshot: SnapshotStorageTier<GraphCheckpointRecord>;
  wal: KvStorageTier<WALFrame>;
}

/** A store reached inline (tiers over a backend) or through an engine (proxies to the store's actor). */
interface Setup {
  pair(): Pair;
  compact(): Promise<unknown>;
  close(): Promise<void>;
}

function inlineSetup(kind: BackendKind): Setup {
  const backend: StorageBackend = openBackend(kind, tmp);
  return {
    pair: () => inlinePair(backend),
    compact: () => compactGraph({ backend }, { graphName: GRAPH }),
    close: async () => void (await backend.close?.()),
  };
}

function engineSetup(kind: BackendKind): Setup {
  const engine = openStorageEngine({ threads: 1 });
  engines.push(engine);
  const store: StoreSpec = storeSpec(kind, tmp);
  return {
    pair: () => ({ snapshot: engine.snapshot<GraphCheckpointRecord>(store), wal: engine.kv<WALFrame>(store, { codec: walFrameCodec }) }),
    compact: () => compactGraphInEngine(engine, store, GRAPH),
    close: async () => undefined,
  };
}

/** Baseline at attach, then `waves` sets of `c` (no dependents: one frame each). Returns the writer's handle. */
async function written(setup: Setup, waves: number): Promise<{ handle: StorageHandle; last: JsonValue }> {
  const g = buildGraph();
  const handle = attachSnapshotStorage(g, [setup.pair()], { compactEvery: Number.POSITIVE_INFINITY });
  for (let i = 1; i <= waves; i++) g.set("c", i);
  await handle.flush();
  return { handle, last: waves };
}

/** The pair with `between` run once, after the first call of `method` has answered and before it returns. */
function interleaved(pair: Pair, method: "snapshot.load" | "wal.list", between: () => Promise<unknown>): Pair {
  let done = false;
  const once = async <T>(result: T): Promise<T> => {
    if (!done) {
      done = true;
      await between();
    }
    return result;
  };
  if (method === "snapshot.load") {
    return { ...pair, snapshot: Object.assign(Object.create(pair.snapshot) as Pair["snapshot"], { load: async (k?: string) => once(await pair.snapshot.load(k)) }) };
  }
  return { ...pair, wal: Object.assign(Object.create(pair.wal) as Pair["wal"], { list: async (p?: string) => once(await pair.wal.list(p)) }) };
}

const SETUPS: Array<[string, (kind: BackendKind) => Setup]> = [
  ["inline", inlineSetup],
  ["engine", engineSetup],
];

describe.each(SETUPS)("restore while compaction commits (%s)", (_mode, make) => {
  it.each(BACKEND_KINDS)("%s: baseline read before the fold, frames listed after it: restore starts over on the new baseline", async (kind) => {
    const setup = make(kind);
    const { handle, last } = await written(setup, 30);
    let compacted: { previousBaselineSeq: number; baselineSeq: number } | undefined;
    const pair = interleaved(setup.pair(), "snapshot.load", async () => {
      compacted = (await setup.compact()) as typeof compacted;
    });
    const g = buildGraph();
    const r = await restoreSnapshot(g, pair);
    expect(compacted).toMatchObject({ previousBaselineSeq: 1, baselineSeq: handle.seq });
    expect(g.get("c")).toBe(last);
    expect(r.finalSeq).toBe(handle.seq);
    await handle.dispose();
    await setup.close();
  });

  it.each(BACKEND_KINDS)("%s: frames listed before the fold, read after it deleted them: a restart, not a torn write", async (kind) => {
    const setup = make(kind);
    const { handle, last } = await written(setup, 30);
    const pair = interleaved(setup.pair(), "wal.list", () => setup.compact());
    const g = buildGraph();
    const r = await restoreSnapshot(g, pair);
    expect(r).toMatchObject({ finalSeq: handle.seq, skippedFrames: 0 });
    expect(g.get("c")).toBe(last);
    await handle.dispose();
    await setup.close();
  });
});

describe("compaction's commit order", () => {
  it.each(BACKEND_KINDS)("%s: the new baseline is stored before any frame it covers is deleted", async (kind) => {
    const inner = openBackend(kind, tmp);
    const log: string[] = [];
    const atomic = inner.supports.atomicBatch;
    const traced: StorageBackend = Object.assign(Object.create(inner) as StorageBackend, {
      write: (k: string, v: Uint8Array) => (log.push(`put ${k}`), inner.write(k, v)),
      delete: (k: string) => (log.push(`delete ${k}`), inner.delete!(k)),
      writeBatch: (ops: Parameters<NonNullable<StorageBackend["writeBatch"]>>[0]) => {
        log.push(`${atomic ? "atomic" : "batch"}: ${ops.map((o) => `${o.op} ${o.key}`).join(", ")}`);
        return inner.writeBatch!(ops);
      },
      // The fold's conditional commit (on the baseline it folded): traced like a batch.
      writeBatchIf: (expected: ExpectedValue, ops: Parameters<NonNullable<StorageBackend["writeBatch"]>>[0]) => {
        log.push(`${atomic ? "atomic" : "batch"}: ${ops.map((o) => `${o.op} ${o.key}`).join(", ")}`);
        return inner.writeBatchIf!(expected, ops);
      },
    });
    const setup: Setup = { pair: () => inlinePair(traced), compact: () => compactGraph({ backend: traced }, { graphName: GRAPH }), close: async () => void (await inner.close?.()) };
    const { handle } = await written(setup, 5);
    await handle.dispose();
    log.length = 0;
    await setup.compact();
    const ops = log.flatMap((l) => l.replace(/^(atomic|batch): /, "").split(", "));
    expect(ops[0]).toBe(`put ${GRAPH}`);
    expect(ops.slice(1).every((o) => o.startsWith("delete "))).toBe(true);
    expect(ops).toHaveLength(1 + 5);
    // Without an atomic batch the baseline is its own durable write (a batch of it alone), before the deletions.
    if (!atomic) expect(log[0]).toMatch(new RegExp(`^(batch: )?put ${GRAPH}$`));
    await setup.close();
  });
});

describe("a baseline that never stops moving", () => {
  it("ends the read with StorageError store-busy after a bounded number of attempts", async () => {
    const setup = inlineSetup("sqlite");
    const g = buildGraph();
    const handle = attachSnapshotStorage(g, [setup.pair()], { compactEvery: Number.POSITIVE_INFINITY });
    let n = 0;
    await handle.flush();
    const base = setup.pair();
    // Every listing is followed by a new frame and a compaction, so every attempt sees its frames vanish.
    const busy: Pair = {
      ...base,
      wal: Object.assign(Object.create(base.wal) as Pair["wal"], {
        list: async (p?: string) => {
          const keys = await base.wal.list(p);
          g.set("c", ++n);
          g.set("c", ++n);
          await handle.flush();
          await setup.compact();
          return keys;
        },
      }),
    };
    const err = await errorOf(() => restoreSnapshot(buildGraph(), busy));
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ code: "store-busy", details: { graph: GRAPH } });
    await handle.dispose();
    await setup.close();
  });
});

describe("a writer, autoCompact and restores racing in one engine", () => {
  it("every restore succeeds and gives a state the writer had", async () => {
    const engine = openStorageEngine({ threads: 1, autoCompact: { everyFrames: 25 } });
    engines.push(engine);
    const store = storeSpec("sqlite", tmp);
    const pair = (): Pair => ({ snapshot: engine.snapshot<GraphCheckpointRecord>(store), wal: engine.kv<WALFrame>(store, { codec: walFrameCodec }) });
    const g = buildGraph();
    const handle = attachSnapshotStorage(g, [pair()], { compactEvery: Number.POSITIVE_INFINITY });
    await handle.flush();
    /** seq -> value of `c` the writer had there (one frame per wave). */
    const history = new Map<number, JsonValue>([[handle.seq, null]]);
    let writing = true;
    const writer = (async () => {
      for (let i = 1; writing; i++) {
        g.set("c", i);
        history.set(handle.seq, i);
        if (i % 5 === 0) await handle.flush();
        else await new Promise((r) => setImmediate(r));
      }
      await handle.flush();
    })();
    const failures: unknown[] = [];
    let restores = 0;
    for (; restores < 150; restores++) {
      const fresh = buildGraph();
      try {
        const r = await restoreSnapshot(fresh, pair());
        const expected = history.get(r.finalSeq);
        if (!history.has(r.finalSeq) || fresh.get("c") !== (expected === null ? undefined : expected)) {
          failures.push(`restore ${restores}: seq ${r.finalSeq} gave c=${String(fresh.get("c"))}, the writer had ${String(expected)}`);
        }
      } catch (err) {
        failures.push(err);
      }
    }
    writing = false;
    await writer;
    expect(failures).toEqual([]);
    expect(history.size).toBeGreaterThan(100);
    await handle.dispose();
  });
});
