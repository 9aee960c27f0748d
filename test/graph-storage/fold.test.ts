import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { RestoreError } from "../../src/errors.js";
import {
  attachSnapshotStorage,
  createGraph,
  foldWal,
  type GraphCheckpointRecord,
  type ReactiveGraph,
} from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { sealWalFrame, walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { errorOf } from "../support/wait.js";

/** Records a live graph through attach and returns the stored baseline, frames and the live graph. */
async function record(ops: (g: ReactiveGraph) => void): Promise<{ baseline: GraphCheckpointRecord; frames: WALFrame[]; live: ReactiveGraph }> {
  const backend = memoryBackend();
  const snapshot = snapshotStorage<GraphCheckpointRecord>(backend);
  const wal = kvStorage<WALFrame>(backend, { codec: walFrameCodec });
  const live = createGraph("g");
  live.state("a", 1);
  live.state("b", 2);
  live.derived("sum", ["a", "b"], (a, b) => (a as number) + (b as number));
  live.mount("m");
  live.state("m::x", 0);
  live.derived("m::twice", ["m::x"], (x) => [x, x]);
  const h = attachSnapshotStorage(live, [{ snapshot, wal }], { compactEvery: Number.POSITIVE_INFINITY });
  ops(live);
  await h.dispose();
  const frames: WALFrame[] = [];
  for (const k of await wal.list("g/wal/")) frames.push((await wal.load(k)) as WALFrame);
  return { baseline: (await snapshot.load("g")) as GraphCheckpointRecord, frames, live };
}

function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null) {
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
    Object.freeze(v);
  }
  return v;
}

const ownershipFrame = (seq: number): WALFrame =>
  sealWalFrame({
    t: "c",
    lifecycle: "ownership",
    path: "m",
    change: { structure: "ownership", version: 1, t_ns: 1, lifecycle: "ownership", change: { kind: "claim", subgraphId: "m", actor: "x", level: "L1" } },
    frame_seq: seq,
    frame_t_ns: 1,
  });

describe("foldWal", () => {
  it("equals the live snapshot: derived values, invalidation cascades, topology, edges and subgraphs", async () => {
    const { baseline, frames, live } = await record((g) => {
      g.set("a", 10);
      g.invalidate("b"); // sum becomes sentinel too
      g.batch(() => {
        g.mount("n");
        g.mount("n::o");
        g.addState("n::o::y", { deep: [1] }, { unit: "s" });
        g.addState("c", null);
      });
      g.unmount("m");
      g.remove("c");
      g.set("b", 5);
    });
    const fold = foldWal(baseline, [...frames].reverse());
    expect(fold.snapshot).toEqual(live.snapshot());
    expect(fold.seq).toBe(frames[frames.length - 1]?.frame_seq);
    expect(fold.skippedFrames).toBe(0);
    expect(fold.appliedFrames + fold.ignoredFrames).toBe(frames.length);
  });

  it("stops at targetSeq, ignores frames at or below the baseline, and counts foreign frames as ignored", async () => {
    const { baseline, frames } = await record((g) => {
      g.set("a", 2); // frames 2 (a), 3 (sum)
      g.set("a", 3); // 4, 5
    });
    const half = foldWal(baseline, frames, { targetSeq: 3 });
    expect(half.snapshot.nodes.a?.value).toBe(2);
    expect(half.snapshot.nodes.sum?.value).toBe(4);
    expect(half.seq).toBe(3);
    const stale = { ...(frames[0] as WALFrame), frame_seq: 1 };
    const withForeign = foldWal(baseline, [sealWalFrame(stale), ...frames, ownershipFrame(6)]);
    expect(withForeign.seq).toBe(6);
    expect(withForeign.ignoredFrames).toBe(1);
    expect(withForeign.snapshot.nodes.a?.value).toBe(3);
  });

  it("skips a torn tail, throws on a torn frame mid-stream, and lets verify:false or onTornWrite decide", async () => {
    const { baseline, frames } = await record((g) => {
      g.set("a", 2);
      g.set("a", 3);
    });
    const bad = (f: WALFrame): WALFrame => ({ ...f, checksum: "f".repeat(64) });
    const tornTail = [...frames.slice(0, 3), bad(frames[3] as WALFrame)];
    const tail = foldWal(baseline, tornTail);
    expect(tail).toMatchObject({ seq: 4, skippedFrames: 1 });
    expect(tail.snapshot.nodes.sum?.value).toBe(4);

    const tornMid = [bad(frames[0] as WALFrame), ...frames.slice(1)];
    const err = await errorOf(() => foldWal(baseline, tornMid));
    expect(err).toBeInstanceOf(RestoreError);
    expect((err as RestoreError).code).toBe("torn-write-mid-stream");
    expect(foldWal(baseline, tornMid, { verify: false }).snapshot.nodes.a?.value).toBe(3);
    expect(foldWal(baseline, tornMid, { onTornWrite: () => "skip" }).skippedFrames).toBe(1);
    expect(() => foldWal(baseline, tornTail, { onTornWrite: () => "abort" })).toThrow(RestoreError);
  });

  it("refuses to fold across a hole in the frame seqs, and a baseline of a format it does not read", async () => {
    const { baseline, frames } = await record((g) => {
      g.set("a", 2); // frames 2 (a), 3 (sum)
      g.set("a", 3); // 4, 5
    });
    const holed = frames.filter((f) => f.frame_seq !== 3);
    expect(await errorOf(() => foldWal(baseline, holed))).toMatchObject({
      name: "RestoreError",
      code: "wal-gap",
      details: { baselineSeq: 1, from: 3, to: 3 },
    });
    expect(await errorOf(() => foldWal(baseline, frames.slice(1)))).toMatchObject({ code: "wal-gap", details: { from: 2, to: 2 } });
    // Up to a target below the hole, nothing is missing.
    expect(foldWal(baseline, holed, { targetSeq: 2 }).seq).toBe(2);
    expect(await errorOf(() => foldWal({ ...baseline, format_version: 99 }, frames))).toMatchObject({
      name: "RestoreError",
      code: "codec-mismatch",
    });
  });

  it("never modifies its inputs", async () => {
    const { baseline, frames, live } = await record((g) => {
      g.set("m::x", 4);
      g.addState("z", [1, 2]);
      g.unmount("m");
    });
    const fold = foldWal(deepFreeze(baseline), deepFreeze(frames));
    expect(fold.snapshot).toEqual(live.snapshot());
  });

  it("validates its arguments", async () => {
    const { baseline, frames } = await record((g) => g.set("a", 2));
    expect(() => foldWal({ ...baseline, mode: "diff" } as unknown as GraphCheckpointRecord, frames)).toThrow(TypeError);
    expect(() => foldWal(baseline, "frames" as unknown as WALFrame[])).toThrow(TypeError);
    expect(() => foldWal(baseline, frames, { targetSeq: 1.5 })).toThrow(RangeError);
    const below = await errorOf(() => foldWal({ ...baseline, seq: 5 }, frames, { targetSeq: 4 }));
    expect((below as RestoreError).code).toBe("phase-failed");
  });
});
