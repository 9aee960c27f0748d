/**
 * Baselines attach builds from its own graph's slices skip the snapshot tier's value walk (issue 13: ~12 ms a
 * baseline at 10,000 nodes), and nothing else does: the exemption is for the one record attach is saving, by
 * identity; that record is frozen down to every slice, so a tier's filter cannot change it; and a graph that is
 * not the built-in one (or has its methods replaced) is walked, its unstorable values refused as before.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { bigintJsonCodec } from "../../src/codec/bigint.js";
import { jsonCodec } from "../../src/codec/json.js";
import { CodecError, StorageError } from "../../src/errors.js";
import { attachSnapshotStorage, createGraph, type Graph, type GraphCheckpointRecord } from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { valueCheckFor, vouchBaseline } from "../../src/tier/value-check.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";

function recordOf(value: unknown): GraphCheckpointRecord {
  return {
    name: "g",
    mode: "full",
    snapshot: { name: "g", nodes: { a: { type: "state", deps: [], status: "settled", meta: {}, value } }, edges: [], subgraphs: [], version: 1 },
    seq: 1,
    timestamp_ns: 1,
    format_version: 1,
  } as unknown as GraphCheckpointRecord;
}

/** Every container of a baseline record, from the record down to each slice, its deps, the edges and the mounts. */
function deeplyFrozen(r: GraphCheckpointRecord): boolean {
  const s = r.snapshot;
  const slices = Object.values(s.nodes);
  return (
    Object.isFrozen(r) &&
    Object.isFrozen(s) &&
    Object.isFrozen(s.nodes) &&
    Object.isFrozen(s.edges) &&
    s.edges.every((e) => Object.isFrozen(e)) &&
    Object.isFrozen(s.subgraphs) &&
    slices.every((n) => Object.isFrozen(n) && Object.isFrozen(n.deps) && Object.isFrozen(n.meta))
  );
}

describe("vouched baselines", () => {
  it("the JSON codecs' check exempts only the one record vouched for, by identity, answering its size", () => {
    for (const codec of [jsonCodec, bigintJsonCodec]) {
      const check = valueCheckFor(codec)!;
      const bad = recordOf(() => 1);
      const other = recordOf(() => 1);
      expect(() => check(bad)).toThrow(CodecError);
      vouchBaseline(bad, 1234);
      try {
        expect(check(bad)).toBe(1234);
        expect(() => check(other)).toThrow(CodecError); // same content, another object
      } finally {
        vouchBaseline(undefined, 0);
      }
      expect(() => check(bad)).toThrow(CodecError);
    }
    // The frame codec's rule is not the record's: a vouched record is no vouched frame.
    const frames = valueCheckFor(walFrameCodec)!;
    const record = recordOf(1);
    vouchBaseline(record, 10);
    try {
      expect(() => frames(record)).toThrow(CodecError);
    } finally {
      vouchBaseline(undefined, 0);
    }
  });

  it("attach's baselines of the built-in graph are frozen to the slices, a filter cannot change them, and they load as graph.snapshot()", async () => {
    const backend = memoryBackend();
    const seen: GraphCheckpointRecord[] = [];
    const tampered: boolean[] = [];
    const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, {
      name: "snap",
      filter: (r) => {
        seen.push(r);
        // A filter that tries to slip an unstorable value into the record it was handed.
        try {
          (r.snapshot.nodes["a"] as { value: unknown }).value = 10n;
          tampered.push(true);
        } catch {
          tampered.push(false);
        }
        try {
          (r.snapshot.nodes as Record<string, unknown>)["x"] = { type: "state", deps: [], status: "settled", meta: {}, value: () => 1 };
          tampered.push(true);
        } catch {
          tampered.push(false);
        }
        return true;
      },
    });
    const wal = kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec });
    const g = createGraph("g");
    g.state("a", { v: 0 }, { meta: { label: "A" } });
    g.mount("sub");
    g.state("sub::b", [1, 2]);
    g.derived("c", ["a", "sub::b"], (a) => a);
    const errors: Error[] = [];
    const handle = attachSnapshotStorage(g, [{ snapshot, wal }], { baselineRatio: 0.001, onError: (e) => errors.push(e) });
    await handle.flush();
    for (let i = 1; i <= 4; i++) g.set("a", { v: i });
    await handle.flush();
    g.set("sub::b", [3]);
    await handle.rebaseline();
    await handle.flush();
    // The attach baseline, the periodic ones (the ratio cadence: one a wave here) and the rebaseline's.
    expect(seen.length).toBeGreaterThanOrEqual(4);
    for (const r of seen) expect(deeplyFrozen(r)).toBe(true);
    expect(tampered.every((t) => !t)).toBe(true);
    expect(errors).toStrictEqual([]);
    const stored = await snapshot.load("g");
    expect(stored?.snapshot).toStrictEqual(g.snapshot());
    await handle.dispose();
  });

  it("a graph that is not the built-in one, or has its methods replaced, is walked: its unstorable value is refused as before", async () => {
    const makeForeign = (): Graph => {
      const inner = createGraph("g");
      inner.state("a", 1);
      const snapshotWithBigint = (): ReturnType<Graph["snapshot"]> => {
        const s = inner.snapshot();
        (s.nodes["a"] as { value: unknown }).value = 10n;
        return s;
      };
      // Everything delegated to a real graph, the snapshot and slices carrying a bigint the JSON codec refuses.
      return Object.assign(Object.create(inner) as Graph, {
        snapshot: snapshotWithBigint,
        describeNode: (p: string) => snapshotWithBigint().nodes[p],
      });
    };
    const replaced = (): Graph => {
      const g = createGraph("g");
      g.state("a", 1);
      const own = g.snapshot.bind(g);
      const describe = g.describeNode.bind(g);
      Object.assign(g, {
        snapshot: () => {
          const s = own();
          (s.nodes["a"] as { value: unknown }).value = 10n;
          return s;
        },
        describeNode: (p: string, mode?: "copy" | "shared") => ({ ...describe(p, mode)!, value: 10n as unknown as number }),
      });
      return g;
    };
    for (const graph of [makeForeign(), replaced()]) {
      const backend = memoryBackend();
      const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" });
      const errors: Error[] = [];
      const handle = attachSnapshotStorage(graph, [{ snapshot }], { onError: (e) => errors.push(e) });
      await handle.flush().catch(() => undefined);
      expect(errors.length).toBeGreaterThanOrEqual(1);
      // Refused at acceptance by the tier's walk, with the value's path (the pair stops, as before).
      const err = errors[0] as StorageError;
      expect(err).toBeInstanceOf(StorageError);
      expect(err.code).toBe("write-refused");
      const cause = err.cause as CodecError;
      expect(cause).toBeInstanceOf(CodecError);
      expect(cause.code).toBe("encode-failed");
      expect(cause.details).toStrictEqual({ path: "$.snapshot.nodes.a.value" });
      expect(await backend.read("g")).toBeUndefined();
      await handle.dispose().catch(() => undefined);
    }
  });
});
