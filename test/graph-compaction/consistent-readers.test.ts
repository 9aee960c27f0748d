/**
 * Readers on read-only handles hold one point in time (docs/design.md §3.16): restore, a follower's load and its
 * reloads read a stored graph inside the handle's readConsistent, so a writer that compacts between every two of
 * their reads cannot make them start over, and they never give up with `store-busy` (before, a follower beside a
 * writer compacting in a loop reported store-busy: CI, test/reliability/postgres-readers). Forced here by a real
 * compaction on the writer's handle after every listing the reader makes; checked on read-only SQLite and
 * PostgreSQL handles, inline and through a read-only engine store (whose actor holds the point in time). What they
 * restore is the state the writer had when the read began.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { postgresBackend } from "../../src/backend/postgres.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import type { JsonValue } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { followGraph } from "../../src/persistence/follow.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord, StorageHandle } from "../../src/persistence/storage-types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { GRAPH, buildGraph, inlinePair, tempDir } from "./fixtures.js";

const tmp = tempDir("consistent-readers");
afterAll(() => tmp.remove());
const database = useTestDatabase();
const closing: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close();
});

type Pair = ReturnType<typeof inlinePair>;
type Kind = "sqlite" | "postgres";
type Mode = "inline" | "engine";

/** A writer's handle, a read-only handle on the same store and a read-only engine store spec of it. */
async function handles(kind: Kind): Promise<{ writer: StorageBackend; reader: StorageBackend; readOnlySpec: StoreSpec }> {
  if (kind === "sqlite") {
    const path = tmp.path("store.db");
    const writer = sqliteBackend(path);
    const reader = sqliteBackend(path, { readOnly: true });
    closing.push(() => writer.close(), () => reader.close());
    return { writer, reader, readOnlySpec: { kind: "sqlite", path, readOnly: true } };
  }
  const db = await database();
  const store = `readers-${Math.random().toString(36).slice(2, 8)}`;
  const writer = await postgresBackend({ url: db.url, schema: db.schema, store });
  closing.push(() => writer.close());
  const reader = await postgresBackend({ url: db.url, schema: db.schema, store, readOnly: true });
  closing.push(() => reader.close());
  return { writer, reader, readOnlySpec: { kind: "postgres", url: db.url, schema: db.schema, store, readOnly: true } };
}

/** The reader's tiers: inline over the read-only handle, or proxies of a read-only engine store. */
function readerPair(mode: Mode, reader: StorageBackend, spec: StoreSpec): Pair {
  if (mode === "inline") return inlinePair(reader);
  const engine: StorageEngine = openStorageEngine({ threads: 1 });
  closing.unshift(() => engine.close());
  return { snapshot: engine.snapshot<GraphCheckpointRecord>(spec), wal: engine.kv<WALFrame>(spec, { codec: walFrameCodec }) };
}

/**
 * A store with a baseline and frames, and reader tiers whose every listing is followed by two more waves and a
 * compaction on the writer's handle: a reader that reads each statement at its own time sees its baseline move on
 * every attempt. `history` maps each seq the writer reached to its value of `c`.
 */
async function busyStore(
  kind: Kind,
  mode: Mode,
): Promise<{ pair: Pair; history: Map<number, JsonValue>; handle: StorageHandle; compactions: () => number }> {
  const { writer, reader, readOnlySpec } = await handles(kind);
  const g = buildGraph();
  const handle = attachSnapshotStorage(g, [inlinePair(writer)], { compactEvery: Number.POSITIVE_INFINITY });
  closing.unshift(() => handle.dispose());
  const history = new Map<number, JsonValue>();
  let n = 0;
  const wave = (): void => {
    g.set("c", ++n);
    history.set(handle.seq, n);
  };
  await handle.flush();
  history.set(handle.seq, null);
  for (let i = 0; i < 5; i++) wave();
  await handle.flush();
  const base = readerPair(mode, reader, readOnlySpec);
  let compactions = 0;
  const pair: Pair = {
    ...base,
    wal: Object.assign(Object.create(base.wal) as Pair["wal"], {
      list: async (prefix?: string) => {
        const keys = await base.wal.list(prefix);
        wave();
        wave();
        await handle.flush();
        await compactGraph({ backend: writer }, { graphName: GRAPH });
        compactions++;
        return keys;
      },
    }),
  };
  return { pair, history, handle, compactions: () => compactions };
}

const CASES: Array<[Kind, Mode]> = [
  ["sqlite", "inline"],
  ["postgres", "inline"],
  ["sqlite", "engine"],
  ["postgres", "engine"],
];

describe.each(CASES)("readers on a read-only %s store (%s tiers) beside a writer compacting after every listing", (kind, mode) => {
  it("the tiers offer readConsistent (a writer's tiers do not)", async () => {
    const { writer, reader, readOnlySpec } = await handles(kind);
    const pair = readerPair(mode, reader, readOnlySpec);
    expect(typeof pair.wal.readConsistent).toBe("function");
    expect(typeof pair.snapshot.readConsistent).toBe("function");
    expect(inlinePair(writer).wal.readConsistent).toBeUndefined();
    if (mode === "engine") {
      const engine = openStorageEngine({ threads: 1 });
      closing.unshift(() => engine.close());
      // A writable store of the same kind (another store: the inline writer holds this one).
      const writable = (kind === "sqlite" ? { kind, path: tmp.path("w.db") } : { ...readOnlySpec, store: "other", readOnly: false }) as StoreSpec;
      const tier = engine.kv(writable);
      expect(tier.readConsistent).toBeUndefined();
      await tier.flush();
    }
  });

  it("a restore reads one point in time: no store-busy, the state the writer had when it began", async () => {
    const { pair, history, handle, compactions } = await busyStore(kind, mode);
    const seqAtStart = handle.seq;
    const g = buildGraph();
    const r = await restoreSnapshot(g, pair);
    expect(compactions()).toBeGreaterThanOrEqual(1);
    expect(r.finalSeq).toBe(seqAtStart);
    expect(g.get("c")).toBe(history.get(seqAtStart));
  });

  it("a follower loads and reloads without an error, each time a state the writer had", async () => {
    const { pair, history } = await busyStore(kind, mode);
    const errors: string[] = [];
    const g = buildGraph();
    const follower = await followGraph(g, pair, { pollMs: 60_000, onError: (err) => errors.push(String(err)) });
    closing.unshift(() => follower.stop());
    const states: Array<[number, JsonValue]> = [[follower.lag().appliedSeq, g.get("c") as JsonValue]];
    for (let i = 0; i < 4; i++) {
      const lag = await follower.poll();
      states.push([lag.appliedSeq, g.get("c") as JsonValue]);
    }
    expect(errors).toEqual([]);
    expect(follower.stats()).toMatchObject({ state: "following", lastError: undefined });
    expect(follower.stats().reloads).toBeGreaterThanOrEqual(1);
    for (const [seq, c] of states) expect(c, `the follower's state at seq ${seq}`).toBe(history.get(seq));
    expect(states.at(-1)![0]).toBeGreaterThan(states[0]![0]);
  });
});
