/**
 * Reclaim's read-back reads the stored baseline's seq, not the whole baseline (docs/design.md §3.18): with a
 * canonical JSON codec the snapshot tier's loadHead parses the record's head (`name` and `seq` sort before the
 * large `snapshot` field) and the graph is never decoded on the main thread; other codecs fall back to a decode.
 * A stored seq that is absent, lower, or another graph's still blocks every deletion.
 */
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import { attachSnapshotStorage, type GraphCheckpointRecord, type StorageHandle } from "../../src/index.js";
import { jsonCodec } from "../../src/codec/json.js";
import type { Codec } from "../../src/codec/types.js";
import { canonicalJsonHead } from "../../src/tier/json-head.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { SnapshotStorageTier } from "../../src/tier/types.js";
import { until } from "../support/wait.js";
import {
  buildGraph,
  enginePair,
  inlinePair,
  openBackend,
  restoredSnapshot,
  storedBaseline,
  storedFrameSeqs,
  tempDir,
} from "../graph-compaction/fixtures.js";

const tmp = tempDir("reclaim-probe");
afterAll(() => tmp.remove());

const enc = (v: unknown): Uint8Array => jsonCodec.encode(v);

/** `n` sets of ~600-byte values (a baseline every ~220 frames), a flush every 50. */
async function churn(graph: ReturnType<typeof buildGraph>, handle: StorageHandle, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    graph.set("c", `${"payload ".repeat(75)}${i}`);
    if (i % 50 === 49) await handle.flush();
  }
  await handle.flush();
}

/** Counts the real tier's full loads (a spy: every call still reaches the tier). */
function countLoads<T>(tier: SnapshotStorageTier<T>): { tier: SnapshotStorageTier<T>; loads: () => number; heads: () => number } {
  let loads = 0;
  let heads = 0;
  const load = tier.load.bind(tier);
  tier.load = (key?: string) => {
    loads++;
    return load(key);
  };
  const loadHead = tier.loadHead?.bind(tier);
  if (loadHead !== undefined) {
    tier.loadHead = (key?: string) => {
      heads++;
      return loadHead(key);
    };
  }
  return { tier, loads: () => loads, heads: () => heads };
}

async function deadFrames(backend: Parameters<typeof storedBaseline>[0]): Promise<number> {
  const base = (await storedBaseline(backend)).seq;
  return (await storedFrameSeqs(backend)).filter((s) => s <= base).length;
}

describe("canonicalJsonHead", () => {
  it("reads name and seq from a record's canonical bytes, whatever follows", () => {
    const record = { name: 'g "quoted" \u00e9\u{1F600}', mode: "full", seq: 4242, snapshot: { nodes: { a: [1, { b: "}" }] } }, timestamp_ns: 1, format_version: 1 };
    expect(canonicalJsonHead(enc(record))).toEqual({ name: record.name, seq: 4242 });
    expect(canonicalJsonHead(enc({ lifecycle: "data", name: "g", seq: 0, snapshot: {} }))).toEqual({ name: "g", seq: 0 });
  });

  it("vouches only for a head naming both fields: the caller decodes the rest (a decode's answer is the truth)", () => {
    expect(canonicalJsonHead(enc({ name: "g", snapshot: {} }))).toBeUndefined(); // no seq
    expect(canonicalJsonHead(enc({ name: "g", seq: 1.5 }))).toBeUndefined();
    expect(canonicalJsonHead(enc({ name: 7, seq: "3" }))).toBeUndefined();
    // Valid JSON a foreign tool wrote unsorted past "seq": the seq is further on (review: the bootstrap reused seqs).
    expect(canonicalJsonHead(new TextEncoder().encode('{"name":"g","snapshot":{},"seq":9}'))).toBeUndefined();
  });

  it("gives up (the caller decodes) on bytes whose head it cannot vouch for", () => {
    const text = (s: string): Uint8Array => new TextEncoder().encode(s);
    expect(canonicalJsonHead(text('{"seq":5,"name":"g","snapshot":{}}'))).toBeUndefined(); // keys out of order
    expect(canonicalJsonHead(text('{"name":"g","seq":5,"seq":6}'))).toBeUndefined(); // duplicate key
    expect(canonicalJsonHead(text('{"name":"g","seq":5,"snapshot":{"a":'))).toBeUndefined(); // cut off
    expect(canonicalJsonHead(text('{"a":{"x":1},"name":"g","seq":5}'))).toBeUndefined(); // an object before seq
    expect(canonicalJsonHead(text("[1,2]"))).toBeUndefined();
    expect(canonicalJsonHead(text('{"name":"g","seq":5x,"snapshot":{}}'))).toBeUndefined();
  });
});

describe("reclaim proves the baseline stored by its head", () => {
  it("inline (json codec): frames are deleted and the baseline is never decoded for it", async () => {
    const backend = openBackend("sqlite", tmp);
    const graph = buildGraph();
    const spy = countLoads(snapshotStorage<GraphCheckpointRecord>(backend));
    const handle = attachSnapshotStorage(graph, [{ snapshot: spy.tier, wal: inlinePair(backend).wal }]);
    await churn(graph, handle, 900);
    expect((await storedBaseline(backend)).seq).toBeGreaterThan(600); // several periodic baselines
    await until(async () => (await deadFrames(backend)) === 0, "no frame at or below the baseline");
    expect(spy.heads()).toBeGreaterThan(2); // the bootstrap and a read-back per baseline
    expect(spy.loads()).toBe(0); // before: one full load per baseline, and one at attach
    expect(await restoredSnapshot(inlinePair(backend))).toEqual(graph.snapshot());
    await handle.dispose();
    await backend.close?.();
  });

  it("inline (another codec): the record is decoded (counted), and the frames are deleted as before", async () => {
    const backend = openBackend("memory", tmp);
    let decodes = 0;
    const counting: Codec<GraphCheckpointRecord> = {
      name: "counting-json",
      version: 1,
      encode: (v) => jsonCodec.encode(v),
      decode: (b) => {
        decodes++;
        return jsonCodec.decode(b) as GraphCheckpointRecord;
      },
    };
    const graph = buildGraph();
    const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { codec: counting });
    const handle = attachSnapshotStorage(graph, [{ snapshot, wal: inlinePair(backend).wal }]);
    await churn(graph, handle, 700);
    await until(async () => (await deadFrames(backend)) === 0, "no frame at or below the baseline");
    expect(decodes).toBeGreaterThan(1);
    await handle.dispose();
  });

  it("a baseline stored under another key (so not found under the graph's name) deletes nothing", async () => {
    const backend = openBackend("memory", tmp);
    const graph = buildGraph();
    const spy = countLoads(snapshotStorage<GraphCheckpointRecord>(backend, { keyOf: () => "elsewhere" }));
    const handle = attachSnapshotStorage(graph, [{ snapshot: spy.tier, wal: inlinePair(backend).wal }]);
    await churn(graph, handle, 600);
    await new Promise((r) => setTimeout(r, 100)); // a reclaim would have run by now
    expect(spy.heads()).toBeGreaterThan(0);
    expect(await storedFrameSeqs(backend)).toHaveLength(600); // every frame since the attach baseline
    await handle.dispose();
  });

  it("a stored record of another graph, or with a lower seq, under the graph's name deletes nothing", async () => {
    for (const wrong of [{ name: "other" }, { seq: 1 }]) {
      const backend = openBackend("memory", tmp);
      const graph = buildGraph();
      const tier = snapshotStorage<GraphCheckpointRecord>(backend, { keyOf: () => graph.name });
      // The tier resolves every flush but stores a record whose head does not vouch for the baseline.
      const save = tier.save.bind(tier);
      tier.save = (r) => save(r.seq === 1 ? r : { ...r, ...wrong, name: wrong.name ?? r.name, seq: wrong.seq ?? r.seq });
      const handle = attachSnapshotStorage(graph, [{ snapshot: tier, wal: inlinePair(backend).wal }]);
      await churn(graph, handle, 600);
      await new Promise((r) => setTimeout(r, 100));
      expect(await storedFrameSeqs(backend)).toHaveLength(600);
      await handle.dispose();
    }
  });

  it("engine, baseline and WAL in different stores: the head is read in the worker, frames are deleted", async () => {
    const engine = openStorageEngine({ threads: 1 });
    try {
      const graph = buildGraph();
      const spy = countLoads(engine.snapshot<GraphCheckpointRecord>({ kind: "sqlite", path: tmp.path("probe-base.db") }));
      const { wal } = enginePair(engine, { kind: "sqlite", path: tmp.path("probe-wal.db") });
      const handle = attachSnapshotStorage(graph, [{ snapshot: spy.tier, wal }]);
      await churn(graph, handle, 900);
      const base = (await spy.tier.loadHead!(graph.name))!.seq!;
      expect(base).toBeGreaterThan(600);
      await until(async () => (await wal.list(`${graph.name}/wal/`)).length < 400, "frames below the baselines deleted");
      expect(spy.loads()).toBe(0);
      expect(spy.heads()).toBeGreaterThan(2);
      await handle.dispose();
    } finally {
      await engine.close();
    }
  });
});

describe("attach's seq bootstrap on a baseline another tool wrote unsorted", () => {
  // Valid JSON with `seq` after `snapshot` (JSON.stringify of a record built in that order): load() reads seq 9.
  const foreign = { name: "g", snapshot: { version: 1, nodes: {} }, seq: 9, mode: "full", timestamp_ns: 1, format_version: 1 };

  async function attachOver(snapshot: SnapshotStorageTier<GraphCheckpointRecord>, wal: ReturnType<typeof inlinePair>["wal"]): Promise<number> {
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [{ snapshot, wal }]);
    const seq = await handle.flush();
    await handle.dispose();
    return seq;
  }

  it("inline: attach writes above the stored seq (review: the head answered no seq, attach wrote seq 1 and reused seqs)", async () => {
    const backend = openBackend("memory", tmp);
    await backend.write("g", new TextEncoder().encode(JSON.stringify(foreign)));
    const pair = inlinePair(backend);
    expect((await pair.snapshot.loadHead!("g"))?.seq).toBe(9); // decoded whole: the head cannot vouch for it
    expect(await attachOver(pair.snapshot, pair.wal)).toBeGreaterThan(9);
  });

  it("engine: the same through the store's actor", async () => {
    const path = tmp.path("foreign-head.db");
    const seed = sqliteBackend(path);
    await seed.write("g", new TextEncoder().encode(JSON.stringify(foreign)));
    await seed.close?.();
    const engine = openStorageEngine({ threads: 1 });
    try {
      const pair = enginePair(engine, { kind: "sqlite", path });
      expect((await pair.snapshot.loadHead!("g"))?.seq).toBe(9);
      expect(await attachOver(pair.snapshot, pair.wal)).toBeGreaterThan(9);
    } finally {
      await engine.close();
    }
  });
});
