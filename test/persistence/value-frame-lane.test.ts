/**
 * Attach's one-value wave goes to an engine WAL tier in its parts, not as a built frame (design §3.48): the columns
 * must be exactly those `frameColumns.push` makes of the frame `diffFrames` builds (so the actor stores the same
 * bytes), the lane must be taken only for such a frame, and what it saves must read back as the frames would.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { createGraph } from "../../src/graph/graph.js";
import { toFrozenJson } from "../../src/graph/json-utils.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { diffFrames, oneValueFrame } from "../../src/persistence/decompose.js";
import type { GraphCheckpointRecord, GraphSnapshotDiff } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import { verifyWalFrameChecksum } from "../../src/wal/checksum.js";
import type { WALFrame } from "../../src/wal/frame.js";
import {
  frameColumns,
  pushValueFrame,
  saveValueFrame,
  type FrameColumns,
  type ValueFrameLane,
  type ValueFrameParts,
} from "../../src/wal/frame-columns.js";

const diffOf = (path: string, value: unknown, more: Partial<GraphSnapshotDiff> = {}): GraphSnapshotDiff => ({
  nodesAdded: [],
  nodesRemoved: [],
  subgraphsAdded: [],
  subgraphsRemoved: [],
  valuesChanged: [{ path, value: value as never }],
  ...more,
});

const newParts = (): ValueFrameParts => ({
  lifecycle: "",
  structure: "",
  version: 0,
  kind: "",
  path: "",
  value: undefined,
  frameSeq: 0,
  tNs: 0,
  checksum: "",
  formatVersion: 0,
});

describe("pushValueFrame", () => {
  it("fills the columns push fills with the frame diffFrames builds, shared and varied fields alike, before and after encodeAhead", () => {
    const values = [
      toFrozenJson({ id: 1, label: "a", value: { count: 1, ratio: 1 / 7, tags: ["x", "y"] } }, "v"),
      toFrozenJson([1, "two", null, true], "v"),
      toFrozenJson("text", "v"),
      toFrozenJson(42, "v"),
      toFrozenJson({ nested: { deeper: [{ k: 1 }] } }, "v"),
    ];
    // Stamps shared by runs of frames and varying between them: both the shared and the per-frame forms.
    const stamps = [1.8e18, 1.8e18, 1.8e18 + 1024, 1.8e18 + 2048, 1.8e18 + 2048, 1.8e18 + 4096];
    for (const prefix of [0, 1]) {
      const built: FrameColumns = frameColumns.empty();
      const lane: FrameColumns = frameColumns.empty();
      if (prefix === 1) {
        // A frame of another shape first (a topology frame): the lane's frames join columns already varied.
        const spec = diffFrames(
          { nodesAdded: [{ path: "s", slice: { type: "state", deps: [], status: "settled", meta: {}, value: 1 } }], nodesRemoved: [], subgraphsAdded: [], subgraphsRemoved: [], valuesChanged: [] },
          1.7e18,
          0,
          false,
        )[0]!;
        expect(frameColumns.push(built, spec)).toBe(true);
        expect(frameColumns.push(lane, spec)).toBe(true);
      }
      const parts = newParts();
      for (let i = 0; i < 12; i++) {
        const diff = diffOf(`n${i % 4}`, values[i % values.length]);
        const seq = 10 + i;
        const frame = diffFrames(diff, stamps[i % stamps.length]!, seq, false, true)[0]!;
        expect(Object.isFrozen(frame)).toBe(true);
        expect(frameColumns.push(built, frame)).toBe(true);
        expect(oneValueFrame(diff, stamps[i % stamps.length]!, seq, parts)).toBe(true);
        expect(parts.frameSeq).toBe(frame.frame_seq);
        pushValueFrame(lane, parts);
        expect(lane).toEqual(built);
      }
      frameColumns.encodeAhead!(built);
      frameColumns.encodeAhead!(lane);
      expect(lane).toEqual(built);
      for (let i = 0; i < (built[0] as number); i++) expect(frameColumns.at(lane, i)).toEqual(frameColumns.at(built, i));
    }
  });

  it("oneValueFrame declines every diff whose frame diffFrames would not build as a frozen lone node.set", () => {
    const parts = newParts();
    const checked = toFrozenJson({ a: 1 }, "v");
    expect(oneValueFrame(diffOf("p", checked), 1.8e18, 0, parts)).toBe(true);
    // An invalidate, an unchecked value, topology, two values: built frames, as before.
    expect(oneValueFrame(diffOf("p", undefined), 1.8e18, 0, newParts())).toBe(false);
    expect(oneValueFrame(diffOf("p", { a: 1 }), 1.8e18, 0, newParts())).toBe(false);
    expect(oneValueFrame(diffOf("p", checked, { subgraphsAdded: ["m"] }), 1.8e18, 0, newParts())).toBe(false);
    const two = diffOf("p", checked);
    (two.valuesChanged as unknown[]).push({ path: "q", value: 2 });
    expect(oneValueFrame(two, 1.8e18, 0, newParts())).toBe(false);
  });
});

it("attach saves one-value waves to an engine WAL tier through the lane; the store reads back the frames it would have saved", async () => {
  const dir = mkdtempSync(join(tmpdir(), "t304-lane-"));
  const engine = openStorageEngine({ threads: 1 });
  try {
    const runs: Array<{ frames: WALFrame[]; laneCalls: number; taken: number }> = [];
    // The same writes through the lane and, with a filter that keeps everything (which the lane declines), through
    // built frames.
    for (const filtered of [false, true]) {
      const spec = { kind: "sqlite" as const, path: join(dir, `${String(filtered)}.db`) };
      const wal = engine.kv<WALFrame>(spec, { codec: walFrameCodec, ...(filtered ? { filter: () => true } : {}) });
      const lane = (wal as unknown as { [saveValueFrame]: ValueFrameLane })[saveValueFrame];
      expect(typeof lane).toBe("function");
      const counted = { laneCalls: 0, taken: 0 };
      // Counting, not replacing: the tier's own lane runs, standing in for the same save.
      const counting = function (this: unknown, key: string, parts: ValueFrameParts): boolean {
        counted.laneCalls++;
        const took = lane.call(this, key, parts);
        if (took) counted.taken++;
        return took;
      };
      Object.defineProperty(counting, "standsInFor", { value: lane.standsInFor });
      Object.defineProperty(wal, saveValueFrame, { value: counting });
      const g = createGraph("g");
      for (let i = 0; i < 5; i++) g.state(`n${i}`, 0);
      const h = attachSnapshotStorage(g, [{ snapshot: engine.snapshot<GraphCheckpointRecord>(spec), wal }]);
      await h.flush();
      // A burst of one-value waves in one tick, then waves across ticks, an invalidate, a wave of two values.
      for (let i = 0; i < 300; i++) g.set(`n${i % 5}`, { i, tags: ["a", "b"], ratio: i / 7 });
      await new Promise((r) => setImmediate(r));
      g.set("n1", "after a turn");
      g.invalidate("n2");
      g.batch(() => {
        g.set("n3", 3);
        g.set("n4", 4);
      });
      await h.flush();
      await h.dispose();
      const b = sqliteBackend(spec.path);
      try {
        const tier = kvStorage<WALFrame>(b, { codec: walFrameCodec });
        const keys = (await tier.list("g/wal/")).sort();
        const frames = (await Promise.all(keys.map((k) => tier.load(k)))) as WALFrame[];
        runs.push({ frames, ...counted });
      } finally {
        await b.close();
      }
    }
    const [viaLane, viaFrames] = runs as [(typeof runs)[0], (typeof runs)[0]];
    // 301 one-value waves took the lane (the invalidate and the two-value wave did not); none with the filter.
    expect([viaLane.laneCalls, viaLane.taken]).toEqual([301, 301]);
    expect(viaFrames.taken).toBe(0);
    expect(viaLane.frames.length).toBe(304);
    // Numbered on from the attach baseline (seq 1), with no gap.
    expect(viaLane.frames.map((f) => f.frame_seq)).toEqual(viaLane.frames.map((_, i) => i + 2));
    // The same frames but for the wave stamps (wall clock), each sealed with a valid checksum.
    const strip = (f: WALFrame) => ({ ...f, frame_t_ns: 0, checksum: "", change: { ...f.change, t_ns: 0 } });
    expect(viaLane.frames.map(strip)).toEqual(viaFrames.frames.map(strip));
    for (const f of viaLane.frames) expect(verifyWalFrameChecksum(f)).toBe(true);
  } finally {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
