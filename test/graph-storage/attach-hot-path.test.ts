/**
 * attach's per-wave hot path (mirror diff on the touched paths, shared node slices, frames built in final form,
 * direct save when nothing is queued) must write exactly the frames a whole-snapshot diff would: same fields in the
 * same order, same seqs, same keys. Also: `describeNode(path, "shared")`, waves queued before the seq bootstrap,
 * and a save that fails in the middle of a wave.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import type { JsonValue } from "../../src/codec/types.js";
import {
  attachSnapshotStorage,
  createGraph,
  decomposeDiffToFrames,
  diffSnapshots,
  type AttachOptions,
  type GraphCheckpointRecord,
  type GraphPersistSnapshot,
  type ReactiveGraph,
} from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { graphWalPrefix, walFrameCodec, walFrameKey, type WALFrame } from "../../src/wal/index.js";

const PREFIX = graphWalPrefix("g");

interface Recorder {
  snapshot: SnapshotStorageTier<GraphCheckpointRecord>;
  /** The real kv tier, with every save recorded (key and frame object) before it is passed on. */
  wal: KvStorageTier<WALFrame>;
  saved: Array<{ key: string; frame: WALFrame }>;
  /** Makes the next save (or saveMany: a wave's frames) throw a transient (retryable) error before it reaches the tier. */
  failNextSave(): void;
}

/** Memory tiers; `codec` "frame" leaves sealing to the WAL codec (engine-like), "json" makes attach seal. */
function recorder(codec: "frame" | "json"): Recorder {
  const backend = memoryBackend();
  const inner = kvStorage<WALFrame>(backend, codec === "frame" ? { name: "wal", codec: walFrameCodec } : { name: "wal" });
  const saved: Array<{ key: string; frame: WALFrame }> = [];
  let fail = false;
  const wal: KvStorageTier<WALFrame> = Object.assign(Object.create(inner) as KvStorageTier<WALFrame>, {
    save: (key: string, frame: WALFrame) => {
      if (fail) {
        fail = false;
        throw new Error("transient save failure");
      }
      saved.push({ key, frame });
      inner.save(key, frame);
    },
    // Attach saves a wave of several frames as one unit.
    saveMany: (entries: ReadonlyArray<readonly [string, WALFrame]>) => {
      if (fail) {
        fail = false;
        throw new Error("transient save failure");
      }
      for (const [key, frame] of entries) saved.push({ key, frame });
      inner.saveMany!(entries);
    },
  });
  return {
    snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }),
    wal,
    saved,
    failNextSave: () => {
      fail = true;
    },
  };
}

/** What the frames of one persisted wave must be: the whole-snapshot diff, decomposed. */
function expectedFrames(before: GraphPersistSnapshot, after: GraphPersistSnapshot, baseSeq: number, tNs: number, seal: boolean) {
  return decomposeDiffToFrames(diffSnapshots(before, after), { timestampNs: tNs, baseSeq, seal });
}

/** Exact comparison: same fields, same key order at both levels, same values. */
function expectSameFrames(actual: readonly WALFrame[], expected: readonly WALFrame[]): void {
  expect(actual.map((f) => JSON.stringify(f))).toEqual(expected.map((f) => JSON.stringify(f)));
}

function build(): ReactiveGraph {
  const g = createGraph("g");
  g.state("a", 0);
  g.state("b", { x: [1, 2] }, { meta: { unit: "kg" } });
  g.state("c");
  g.derived("d", ["a", "b"], (a, b) => ({ a, b }));
  g.mount("m");
  g.state("m::e", "e");
  g.derived("m::f", ["m::e", "a"], (e, a) => [e, a]);
  return g;
}

type Op =
  | { t: "set"; path: string; value: JsonValue }
  | { t: "invalidate"; path: string }
  | { t: "add"; path: string; value: JsonValue | undefined }
  | { t: "remove"; path: string }
  | { t: "mount"; path: string }
  | { t: "unmount"; path: string }
  | { t: "batch"; ops: Op[] };

const PATHS = ["a", "b", "c", "d", "n", "m::e", "m::f", "m::n", "k::n"];
const MOUNTS = ["m", "k"];
// A small pool makes equal writes (resolved, no frame) and value round trips common.
const value: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.constantFrom<JsonValue>(0, 1, "e", null, { x: [1, 2] }, [0, { y: true }]),
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<JsonValue>,
);
const path = fc.constantFrom(...PATHS);
const simpleOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ t: fc.constant("set" as const), path, value }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("invalidate" as const), path }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("add" as const), path, value: fc.option(value, { nil: undefined }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("remove" as const), path }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("mount" as const), path: fc.constantFrom(...MOUNTS) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("unmount" as const), path: fc.constantFrom(...MOUNTS) }) },
);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: simpleOp },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("batch" as const), ops: fc.array(simpleOp, { maxLength: 5 }) }) },
);

/** Applies one op; an op the graph refuses (TypeError, before any change) is skipped. */
function apply(g: ReactiveGraph, o: Op): void {
  try {
    switch (o.t) {
      case "batch":
        g.batch(() => {
          for (const inner of o.ops) apply(g, inner);
        });
        break;
      case "set":
        g.set(o.path, o.value);
        break;
      case "invalidate":
        g.invalidate(o.path);
        break;
      case "add":
        g.addState(o.path, o.value);
        break;
      case "remove":
        g.remove(o.path);
        break;
      case "mount":
        g.mount(o.path);
        break;
      case "unmount":
        g.unmount(o.path);
        break;
    }
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
  }
}

describe("attach hot path: frames identical to the whole-snapshot diff", () => {
  for (const codec of ["frame", "json"] as const) {
    it(`every wave's frames and keys equal decomposeDiffToFrames(diffSnapshots(…)) (${codec} codec)`, async () => {
      const every = fc.constantFrom(1, 2, 5, Number.POSITIVE_INFINITY);
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 25 }), every, async (ops, compactEvery) => {
          const r = recorder(codec);
          const g = build();
          const h = attachSnapshotStorage(g, [{ snapshot: r.snapshot, wal: r.wal }], { compactEvery });
          await h.flush(); // bootstrap done: every wave below takes the direct path
          let before = g.snapshot();
          for (const o of ops) {
            const baseSeq = h.seq;
            const from = r.saved.length;
            apply(g, o);
            const after = g.snapshot();
            const written = r.saved.slice(from);
            const tNs = Number(written[0]?.frame.frame_t_ns ?? 0);
            expectSameFrames(
              written.map((w) => w.frame),
              expectedFrames(before, after, baseSeq, tNs, codec === "json"),
            );
            for (const w of written) expect(w.key).toBe(walFrameKey(PREFIX, w.frame.frame_seq));
            before = after;
          }
          await h.dispose();
        }),
        { numRuns: 60 },
      );
    });
  }

  it("a gated wave is persisted with the next triggering wave, diffed from the last persisted state", async () => {
    const r = recorder("frame");
    const g = build();
    const opts: AttachOptions = { paths: ["c"], compactEvery: Number.POSITIVE_INFINITY };
    const h = attachSnapshotStorage(g, [{ snapshot: r.snapshot, wal: r.wal }], opts);
    await h.flush();
    const before = g.snapshot();
    g.set("a", 5);
    g.set("b", { x: [] });
    g.set("a", 6);
    expect(r.saved).toEqual([]);
    g.set("c", "go");
    const written = r.saved.map((w) => w.frame);
    expectSameFrames(written, expectedFrames(before, g.snapshot(), 1, Number(written[0]?.frame_t_ns ?? 0), false));
    expect(written.map((f) => f.path)).toEqual(["a", "b", "c", "d", "m::f"]);
    await h.dispose();
  });
});

describe("attach hot path: queued waves and failed saves", () => {
  it("waves issued before the seq bootstrap keep their own diffs and are numbered after it", async () => {
    const r = recorder("frame");
    const g = build();
    const h = attachSnapshotStorage(g, [{ snapshot: r.snapshot, wal: r.wal }], { compactEvery: Number.POSITIVE_INFINITY });
    const snaps = [g.snapshot()];
    const step = (fn: () => void): void => {
      fn();
      snaps.push(g.snapshot());
    };
    step(() => g.set("a", 1));
    step(() => g.set("a", 2));
    step(() => g.batch(() => (g.set("b", 3), g.invalidate("c"))));
    step(() => g.addState("n", "new"));
    step(() => g.set("m::e", "x"));
    expect(r.saved).toEqual([]); // the bootstrap (list + load) has not answered yet
    expect(await h.flush()).toBeGreaterThan(1);
    const written = r.saved.map((w) => w.frame);
    const expected: WALFrame[] = [];
    for (let i = 1; i < snaps.length; i++) {
      const tNs = Number(written[expected.length]?.frame_t_ns ?? 0);
      const [before, after] = [snaps[i - 1] as GraphPersistSnapshot, snaps[i] as GraphPersistSnapshot];
      expected.push(...expectedFrames(before, after, 1 + expected.length, tNs, false));
    }
    expectSameFrames(written, expected);
    // The attach baseline queued behind the bootstrap is the state at attach, untouched by the later waves.
    const baseline = (await r.snapshot.load("g")) as GraphCheckpointRecord;
    expect(baseline.seq).toBe(1);
    expect(baseline.snapshot).toEqual(snaps[0]);
    await h.dispose();
  });

  it("a wave whose save fails is retried whole, with the same seqs and keys", async () => {
    const r = recorder("frame");
    const g = build();
    const errors: Error[] = [];
    const h = attachSnapshotStorage(g, [{ snapshot: r.snapshot, wal: r.wal }], {
      compactEvery: Number.POSITIVE_INFINITY,
      onError: (e) => errors.push(e),
    });
    await h.flush();
    g.set("c", 0); // frame 2
    r.saved.length = 0;
    r.failNextSave(); // the next wave's save (frames 3-6, one unit) fails
    g.batch(() => {
      g.set("c", 1);
      g.set("a", 1);
    });
    expect(errors.map((e) => e.message)).toEqual(["transient save failure"]);
    expect(r.saved).toEqual([]);
    expect(h.seq).toBe(2);
    // The next wave queues behind the failed one, whose retry comes first.
    g.set("m::e", "later");
    expect(await h.flush()).toBe(8);
    expect(r.saved.map((w) => `${w.frame.frame_seq} ${w.frame.path}`)).toEqual([
      "3 a",
      "4 c",
      "5 d",
      "6 m::f",
      "7 m::e",
      "8 m::f",
    ]);
    for (const w of r.saved) expect(w.key).toBe(walFrameKey(PREFIX, w.frame.frame_seq));
    g.set("c", 2);
    expect(r.saved.at(-1)?.frame.frame_seq).toBe(9); // back on the direct path
    await h.dispose();
  });

  it("a WAL tier without saveMany: a failure after part of a wave was saved resumes at the failed frame (no duplicate, no gap)", async () => {
    const r = recorder("frame");
    const g = build();
    const errors: Error[] = [];
    const h = attachSnapshotStorage(g, [{ snapshot: r.snapshot, wal: r.wal }], {
      compactEvery: Number.POSITIVE_INFINITY,
      onError: (e) => errors.push(e),
    });
    await h.flush();
    Object.assign(r.wal, { saveMany: undefined }); // a hand-written tier: attach saves frame by frame
    const inner = r.wal.save.bind(r.wal);
    let calls = 0;
    // Fail the second save of the next wave only.
    r.wal.save = (key, frame) => {
      if (++calls === 2) r.failNextSave();
      inner(key, frame);
    };
    g.batch(() => {
      g.set("a", 7);
      g.set("c", 7);
    });
    expect(errors).toHaveLength(1);
    expect(r.saved.map((w) => w.frame.frame_seq)).toEqual([2]);
    expect(await h.flush()).toBe(5);
    expect(r.saved.map((w) => `${w.frame.frame_seq} ${w.frame.path}`)).toEqual(["2 a", "3 c", "4 d", "5 m::f"]);
    await h.dispose();
  });
});

describe('describeNode(path, "shared")', () => {
  it("equals the copy, hands out the graph's frozen value and meta, and a write replaces them", () => {
    const g = build();
    const shared = g.describeNode("b", "shared");
    const copy = g.describeNode("b");
    expect(shared).toEqual(copy);
    expect(JSON.stringify(shared)).toBe(JSON.stringify(copy)); // same keys in the same order
    expect(Object.isFrozen(shared?.value)).toBe(true);
    expect(Object.isFrozen(shared?.meta)).toBe(true);
    expect(g.describeNode("b", "shared")?.value).toBe(shared?.value); // no copy: the same object until a write
    expect(Object.isFrozen(copy?.value)).toBe(false);
    expect(copy?.value).not.toBe(shared?.value);
    g.set("b", { x: [3] });
    expect(shared?.value).toEqual({ x: [1, 2] }); // the old object is untouched
    expect(g.describeNode("b", "shared")?.value).toEqual({ x: [3] });
  });

  it("agrees with the copy for sentinels, derived nodes, unknown paths and subgraph views (outside deps)", () => {
    const g = build();
    for (const p of ["a", "c", "d", "m::e", "m::f", "nope", "m"]) {
      expect(JSON.stringify(g.describeNode(p, "shared"))).toBe(JSON.stringify(g.describeNode(p)));
    }
    const sub = g.subgraph("m");
    for (const p of ["e", "f"]) {
      expect(JSON.stringify(sub.describeNode(p, "shared"))).toBe(JSON.stringify(sub.describeNode(p)));
    }
    expect(sub.describeNode("f", "shared")?.deps).toEqual(["e", "::a"]);
    const sentinel = { type: "state", deps: [], status: "sentinel", meta: {}, sentinel: true };
    expect(g.describeNode("c", "shared")).toEqual(sentinel);
  });

  it("is a plain object as the copy is: Object.prototype, the same own keys in the same order, the same descriptors", () => {
    // The shared slice is made by `new` of a function whose prototype is Object.prototype, not by a literal (design
    // §3.54: a literal's objects can be pretenured by V8); nothing that reads it may tell the difference.
    const g = build();
    const sub = g.subgraph("m");
    const pairs = ["a", "b", "c", "d", "m::e", "m::f"].map((p) => [g.describeNode(p, "shared"), g.describeNode(p)] as const);
    pairs.push([sub.describeNode("f", "shared"), sub.describeNode("f")]);
    for (const [shared, copy] of pairs) {
      expect(Object.getPrototypeOf(shared)).toBe(Object.prototype);
      expect(Reflect.ownKeys(shared as object)).toEqual(Reflect.ownKeys(copy as object));
      expect(Object.getOwnPropertyDescriptors(shared)).toEqual(Object.getOwnPropertyDescriptors(copy));
      expect(shared).toStrictEqual(copy);
      expect(structuredClone(shared)).toStrictEqual(copy);
      expect((shared as object).constructor).toBe(Object);
      expect(Object.isExtensible(shared)).toBe(true); // the mirror freezes the slices it hands to a baseline
    }
  });
});
