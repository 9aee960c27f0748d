/**
 * Frames attach builds from graph values skip the WAL tier's value walk (the graph checked and froze those values
 * when they were set), and nothing else does: the mark is on values toFrozenJson returned only, the exemption is
 * for the one frame attach is saving, and that frame is frozen so no tier in between can change it. A graph value
 * too deep to be marked is walked as before.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { MAX_JSON_DEPTH } from "../../src/codec/strict.js";
import { CodecError } from "../../src/errors.js";
import { isCheckedJson, MAX_GRAPH_VALUE_DEPTH, toFrozenJson } from "../../src/graph/json-utils.js";
import { attachSnapshotStorage, createGraph, type GraphCheckpointRecord } from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { valueCheckFor, vouchWalFrame } from "../../src/tier/value-check.js";
import { graphWalPrefix, walFrameCodec, walFrameKey, type WALFrame } from "../../src/wal/index.js";

/** An array nested `depth` levels deep (depth 1: `[0]`). */
function nested(depth: number): unknown {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

function frameOf(value: unknown): WALFrame {
  return {
    t: "c",
    lifecycle: "data",
    path: "a",
    change: { structure: "graph.value", version: 1, t_ns: 1, lifecycle: "data", change: { kind: "node.set", path: "a", value } },
    frame_seq: 1,
    frame_t_ns: 1,
    checksum: "",
    format_version: 1,
  } as WALFrame;
}

describe("checked graph values", () => {
  it("only containers toFrozenJson returned carry the mark (not copies, not other frozen objects, not too deep)", () => {
    const v = toFrozenJson({ v: 1, s: "x" }, "value");
    expect(isCheckedJson(v)).toBe(true);
    expect(Object.keys(v as object)).toStrictEqual(["v", "s"]); // invisible to readers
    expect(isCheckedJson(structuredClone(v))).toBe(false);
    expect(isCheckedJson(Object.freeze({ v: 1, s: "x" }))).toBe(false);
    expect(isCheckedJson(toFrozenJson(nested(MAX_JSON_DEPTH - 8), "value"))).toBe(true);
    expect(isCheckedJson(toFrozenJson(nested(MAX_JSON_DEPTH - 7), "value"))).toBe(false);
    expect([isCheckedJson("ok"), isCheckedJson(1), isCheckedJson(null), isCheckedJson(true)]).toStrictEqual([true, true, true, true]);
    expect([isCheckedJson("\ud800"), isCheckedJson(Number.NaN), isCheckedJson(undefined), isCheckedJson(10n ** 30n)]).toStrictEqual([
      false,
      false,
      false,
      false,
    ]);
  });

  it("the frame check exempts only the one frame vouched for, by identity", () => {
    const check = valueCheckFor(walFrameCodec)!;
    const good = frameOf(1);
    const bad = frameOf(() => 1);
    vouchWalFrame(good);
    try {
      expect(() => check(good)).not.toThrow();
      expect(() => check(bad)).toThrow(CodecError);
      expect(() => check({ ...good, change: { ...good.change, change: { kind: "node.set", path: "a", value: Number.NaN } } })).toThrow(
        CodecError,
      );
    } finally {
      vouchWalFrame(undefined);
    }
    expect(() => check(undefined)).toThrow(CodecError);
    expect(() => check(bad)).toThrow(CodecError);
  });

  it("attach's frames from graph values are frozen (a tier in between cannot change them) and persist as before", async () => {
    const backend = memoryBackend();
    const inner = kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec });
    const seen: WALFrame[] = [];
    const wal: KvStorageTier<WALFrame> = Object.assign(Object.create(inner) as KvStorageTier<WALFrame>, {
      save(key: string, frame: WALFrame): void {
        seen.push(frame);
        inner.save(key, frame);
      },
    });
    const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" });
    const g = createGraph("g");
    g.state("a", 0);
    const handle = attachSnapshotStorage(g, [{ snapshot, wal }]);
    await handle.flush();
    g.set("a", { v: 1 });
    g.set("a", "text");
    await handle.flush();
    expect(seen).toHaveLength(2);
    for (const f of seen) {
      expect(Object.isFrozen(f) && Object.isFrozen(f.change) && Object.isFrozen(f.change.change)).toBe(true);
      expect(() => {
        (f.change.change as { value: unknown }).value = () => 1;
      }).toThrow(TypeError);
    }
    // Seq 1 is the attach baseline's own.
    expect((await inner.load(walFrameKey(graphWalPrefix("g"), 2)))?.change.change).toStrictEqual({ kind: "node.set", path: "a", value: { v: 1 } });
    await handle.dispose();
  });

  it("a graph value too deep to be marked is walked where the WAL tier takes it, and stored; deeper ones never enter the graph", async () => {
    const backend = memoryBackend();
    const wal = kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec });
    const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" });
    const g = createGraph("g");
    g.state("a", 0);
    const handle = attachSnapshotStorage(g, [{ snapshot, wal }], { onError: () => undefined });
    await handle.flush();
    const deepest = nested(MAX_GRAPH_VALUE_DEPTH);
    expect(isCheckedJson(toFrozenJson(deepest, "value"))).toBe(false);
    g.set("a", deepest as never);
    const seq = await handle.flush();
    const stored = await wal.load(walFrameKey(graphWalPrefix("g"), seq));
    expect(stored?.change).toMatchObject({ change: { path: "a", value: deepest } });
    // A frame holds a value two levels deeper than the graph does, a baseline four: the graph refuses what a baseline cannot hold.
    expect(() => g.set("a", nested(MAX_GRAPH_VALUE_DEPTH + 1) as never)).toThrow(CodecError);
    await handle.dispose().catch(() => undefined);
  });
});
