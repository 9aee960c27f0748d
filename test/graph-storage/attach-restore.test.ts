import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { jsonCodec } from "../../src/codec/json.js";
import { RestoreError, StorageError } from "../../src/errors.js";
import {
  attachSnapshotStorage,
  createGraph,
  decomposeDiffToFrames,
  restoreSnapshot,
  type AttachOptions,
  type Graph,
  type GraphCheckpointRecord,
  type ReactiveGraph,
  type RestoreResult,
} from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { graphWalPrefix, verifyWalFrameChecksum, walFrameCodec, walFrameKey, type WALFrame } from "../../src/wal/index.js";
import { faultyBackend } from "../support/faulty-backend.js";
import { errorOf, sleep } from "../support/wait.js";

interface Store {
  backend: StorageBackend;
  snapshot: SnapshotStorageTier<GraphCheckpointRecord>;
  wal: KvStorageTier<WALFrame>;
}

/** Snapshot tier and WAL share one backend (keys `g` and `g/wal/…` do not clash). */
function store(backend: StorageBackend = memoryBackend(), walCodec: "frame" | "json" = "frame"): Store {
  return {
    backend,
    snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }),
    wal: kvStorage<WALFrame>(backend, walCodec === "frame" ? { name: "wal", codec: walFrameCodec } : { name: "wal" }),
  };
}

/** The "code" that builds the graph: the same in the writing and the restoring process. */
function build(initial = 0): ReactiveGraph {
  const g = createGraph("g");
  g.state("a", initial);
  g.derived("d", ["a"], (a) => (a as number) * 2);
  return g;
}

function attach(g: Graph, s: Store, opts: AttachOptions = {}) {
  return attachSnapshotStorage(g, [{ snapshot: s.snapshot, wal: s.wal }], opts);
}

async function restoreInto(s: Store, extra: Partial<Parameters<typeof restoreSnapshot>[1]> = {}, initial = 0) {
  const g = build(initial);
  const result = await restoreSnapshot(g, { snapshot: s.snapshot, wal: s.wal, ...extra });
  return { g, result };
}

async function frames(s: Store): Promise<WALFrame[]> {
  const out: WALFrame[] = [];
  for (const key of await s.wal.list(`${graphWalPrefix("g")}/`)) out.push((await s.wal.load(key)) as WALFrame);
  return out;
}

const kindOf = (f: WALFrame): string => (f.change.change as { kind: string }).kind;

/** Rewrites a stored frame's bytes (a torn write on disk). */
async function tamper(s: Store, seq: number, how: "checksum" | "garbage"): Promise<void> {
  const key = walFrameKey(graphWalPrefix("g"), seq);
  const frame = (await s.wal.load(key)) as WALFrame;
  const bytes =
    how === "checksum"
      ? jsonCodec.encode({ ...frame, checksum: "0".repeat(64) } as never)
      : new TextEncoder().encode('{"t":"c","lifecy');
  await s.backend.write(key, bytes);
}

const phaseFrames = (r: RestoreResult): Record<string, number> =>
  Object.fromEntries(r.phases.map((p) => [p.lifecycle, p.frames]));

describe("attach: baselines, seqs and frames", () => {
  it("writes the attach baseline at seq 1 and one frame per changed node per wave from seq 2 (TS seq rule)", async () => {
    const s = store();
    const g = build();
    const h = attach(g, s, { compactEvery: 100 });
    g.set("a", 1);
    g.set("a", 2);
    g.set("a", 3);
    expect(await h.flush()).toBe(7);
    const record = (await s.snapshot.load("g")) as GraphCheckpointRecord;
    expect(record).toMatchObject({ name: "g", mode: "full", seq: 1, format_version: 1 });
    expect(record.snapshot.nodes.a?.value).toBe(0);
    const fs = await frames(s);
    // each wave: a then d (value frames in path order)
    expect(fs.map((f) => `${f.frame_seq} ${kindOf(f)} ${f.path}`)).toEqual([
      "2 node.set a",
      "3 node.set d",
      "4 node.set a",
      "5 node.set d",
      "6 node.set a",
      "7 node.set d",
    ]);
    expect(fs.every(verifyWalFrameChecksum)).toBe(true);
    expect(h.seq).toBe(7);
    await h.dispose();
  });

  it("seals frames itself when the WAL codec does not (plain JSON codec), so stored frames verify either way", async () => {
    for (const codec of ["json", "frame"] as const) {
      const s = store(memoryBackend(), codec);
      const g = build();
      const h = attach(g, s);
      g.set("a", 4);
      await h.flush();
      const raw = await s.backend.read(walFrameKey(graphWalPrefix("g"), 2));
      const stored = jsonCodec.decode(raw as Uint8Array) as WALFrame;
      expect(stored.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(verifyWalFrameChecksum(stored)).toBe(true);
      await h.dispose();
    }
  });

  it("leaves checksums to a sealing WAL codec (no hashing where frames are built)", async () => {
    const s = store();
    const saved: WALFrame[] = [];
    const inner = s.wal;
    const wal: KvStorageTier<WALFrame> = Object.assign(Object.create(inner) as KvStorageTier<WALFrame>, {
      save: (key: string, frame: WALFrame) => {
        saved.push(frame);
        inner.save(key, frame);
      },
      saveMany: (entries: ReadonlyArray<readonly [string, WALFrame]>) => {
        for (const [, frame] of entries) saved.push(frame);
        inner.saveMany!(entries);
      },
    });
    const g = build();
    const h = attachSnapshotStorage(g, [{ snapshot: s.snapshot, wal }]);
    g.set("a", 3);
    await h.flush();
    expect(saved.map((f) => f.checksum)).toEqual(["", ""]);
    const stored = await frames(s);
    expect(stored.map((f) => f.frame_seq)).toEqual([2, 3]);
    expect(stored.every(verifyWalFrameChecksum)).toBe(true);
    await h.dispose();
  });

  it("never leaks an unhandled rejection when writes fail and promises are ignored", async () => {
    const inner = memoryBackend();
    const backend = faultyBackend(inner);
    const s = store(backend);
    const g = build();
    const errors: Error[] = [];
    const h = attach(g, s, { onError: (e) => errors.push(e) });
    await h.flush();
    backend.inject({ op: "write", errno: "EIO" });
    backend.inject({ op: "writeBatch", errno: "EIO" });
    g.set("a", 1); // sync-through tiers flush in the background and fail
    void h.flush();
    void h.dispose();
    await sleep(20);
    expect(errors.length).toBeGreaterThan(0);
    backend.heal();
    expect(await h.flush()).toBe(3);
  });

  it("does not persist equal writes (resolved) and never persists a destroy wave", async () => {
    const s = store();
    const g = build();
    const h = attach(g, s);
    g.set("a", 0);
    expect(await h.flush()).toBe(1);
    g.destroy();
    expect(await h.flush()).toBe(1);
    expect(await frames(s)).toEqual([]);
    await h.dispose();
  });

  it("writes a baseline every compactEvery persisted waves at its last frame's seq: the frames stay consecutive", async () => {
    const s = store();
    const g = build();
    const h = attach(g, s, { compactEvery: 2 });
    g.set("a", 1); // frames 2, 3
    g.set("a", 2); // frames 4, 5: a baseline is due
    await Promise.resolve(); // the tick ends: the baseline is written, holding frames <= 5
    g.set("a", 3); // frames 6, 7
    expect(await h.flush()).toBe(7);
    const record = (await s.snapshot.load("g")) as GraphCheckpointRecord;
    expect(record.seq).toBe(5);
    expect(record.snapshot.nodes.a?.value).toBe(2);
    expect((await frames(s)).map((f) => f.frame_seq)).toEqual([2, 3, 4, 5, 6, 7]);
    const { g: r, result } = await restoreInto(s);
    expect(r.get("a")).toBe(3);
    expect(result.replayedFrames).toBe(2);
    expect(result.finalSeq).toBe(7);
    await h.dispose();
  });

  it("a burst writes one baseline per pair: the last one due holds the others", async () => {
    const s = store();
    const records: number[] = [];
    const snapshot = Object.assign(Object.create(s.snapshot) as typeof s.snapshot, {
      save(record: GraphCheckpointRecord) {
        records.push(record.seq);
        s.snapshot.save(record);
      },
    });
    const g = build();
    const h = attachSnapshotStorage(g, [{ snapshot, wal: s.wal }], { compactEvery: 1 });
    for (let i = 1; i <= 50; i++) g.set("a", i); // 50 baselines fall due in one tick
    expect(await h.flush()).toBe(101);
    expect(records).toEqual([1, 101]);
    expect(((await s.snapshot.load("g")) as GraphCheckpointRecord).snapshot.nodes.a?.value).toBe(50);
    await h.dispose();
  });

  it("takes compactEvery from the snapshot tier, and Infinity keeps only the attach baseline", async () => {
    const backend = memoryBackend();
    const s: Store = {
      backend,
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { compactEvery: 1 }),
      wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }),
    };
    const g = build();
    const h = attach(g, s);
    g.set("a", 1);
    await h.flush();
    expect(((await s.snapshot.load("g")) as GraphCheckpointRecord).seq).toBe(3);
    await h.dispose();

    const s2 = store();
    const g2 = build();
    const h2 = attach(g2, s2, { compactEvery: Number.POSITIVE_INFINITY });
    for (let i = 1; i <= 30; i++) g2.set("a", i);
    expect(await h2.flush()).toBe(61);
    expect(((await s2.snapshot.load("g")) as GraphCheckpointRecord).seq).toBe(1);
    await h2.dispose();
  });

  it("without a WAL the waves of a tick are written as one full baseline, each taking a seq of its own", async () => {
    const s = store();
    const g = build();
    const h = attachSnapshotStorage(g, [{ snapshot: s.snapshot }]);
    g.set("a", 5);
    expect(await h.flush()).toBe(2);
    g.set("a", 6);
    g.set("a", 7);
    expect(await h.flush()).toBe(3);
    const record = (await s.snapshot.load("g")) as GraphCheckpointRecord;
    expect(record.seq).toBe(3);
    expect(record.snapshot.nodes.d?.value).toBe(14);
    await h.dispose();
  });

  it("with debounced tiers the attach baseline is made durable at once; frames wait for the debounce or flush", async () => {
    const backend = memoryBackend();
    const s: Store = {
      backend,
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { debounceMs: 60_000 }),
      wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec, debounceMs: 60_000 }),
    };
    const g = build();
    const h = attach(g, s);
    g.set("a", 20);
    await sleep(5);
    expect(backend.list?.("")).toEqual(["g"]);
    expect(await h.flush()).toBe(3);
    expect(backend.list?.("")).toEqual(["g", walFrameKey("g/wal", 2), walFrameKey("g/wal", 3)]);
    const record = (await s.snapshot.load("g")) as GraphCheckpointRecord;
    expect(record).toMatchObject({ name: "g", mode: "full", format_version: 1, seq: 1 });
    await h.dispose();
    await s.snapshot.close();
    await s.wal.close();
  });

  it("holds every frame back until the attach baseline is durable, whatever the snapshot tier's debounce", async () => {
    const s = store();
    const debounced = snapshotStorage<GraphCheckpointRecord>(s.backend, { name: "snap", debounceMs: 60_000 });
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const snapshot = Object.assign(Object.create(debounced) as typeof debounced, {
      flush: async () => {
        await released; // the baseline's write takes its time
        await debounced.flush();
      },
    });
    const g = build();
    const h = attachSnapshotStorage(g, [{ snapshot, wal: s.wal }], { compactEvery: 100 });
    g.set("a", 1);
    g.set("a", 2);
    await sleep(5);
    expect(await s.wal.list("g/wal/")).toEqual([]); // sync-through WAL, yet nothing above the missing baseline
    release();
    expect(await h.flush()).toBe(5);
    expect(((await s.snapshot.load("g")) as GraphCheckpointRecord).seq).toBe(1);
    expect((await frames(s)).map((f) => f.frame_seq)).toEqual([2, 3, 4, 5]);
    await h.dispose();
  });

  it("an attach baseline whose write fails keeps the frames back; flush() retries it and then writes them", async () => {
    const backend = faultyBackend(memoryBackend(), [{ op: "write", errno: "EIO", key: /^g$/ }]);
    const s: Store = {
      backend,
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap", debounceMs: 60_000 }),
      wal: kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec }),
    };
    const errors: Error[] = [];
    const g = build();
    const h = attach(g, s, { compactEvery: 100, onError: (e) => errors.push(e) });
    g.set("a", 1);
    expect(await errorOf(() => h.flush())).toBeInstanceOf(Error);
    expect(errors.length).toBeGreaterThan(0);
    expect(await s.wal.list("g/wal/")).toEqual([]);
    backend.heal();
    expect(await h.flush()).toBe(3);
    expect((await frames(s)).map((f) => f.frame_seq)).toEqual([2, 3]);
    expect((await restoreInto(s)).g.get("a")).toBe(1);
    await h.dispose();
  });

  it("gives ten back-to-back waves unique, consecutive frame_seqs", async () => {
    const s = store();
    const g = createGraph("g");
    g.state("a", 0);
    const h = attach(g, s, { compactEvery: 100 });
    for (let i = 1; i <= 10; i++) g.set("a", i);
    await h.flush();
    expect((await frames(s)).map((f) => f.frame_seq)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    await h.dispose();
  });

  it("re-attach to a populated store starts above the highest stored seq (WAL keys and baseline)", async () => {
    const s = store();
    const g = build();
    const h = attach(g, s, { compactEvery: 100 });
    g.set("a", 1);
    g.set("a", 2);
    await h.dispose(); // frames 2..5
    const g2 = build();
    await restoreSnapshot(g2, { snapshot: s.snapshot, wal: s.wal });
    const h2 = attach(g2, s, { compactEvery: 100 });
    g2.set("a", 3);
    expect(await h2.flush()).toBe(8);
    expect(((await s.snapshot.load("g")) as GraphCheckpointRecord).seq).toBe(6);
    await h2.dispose();
    // with the frames gone (compacted), the baseline seq alone decides
    for (const key of await s.wal.list("g/wal/")) await s.wal.delete(key);
    const g3 = build();
    const h3 = attach(g3, s, { compactEvery: 100 });
    expect(await h3.flush()).toBe(7);
    await h3.dispose();
  });

  it("a failed bootstrap poisons the pair: onError, flush rejects, nothing written at low seqs", async () => {
    const inner = memoryBackend();
    const backend = faultyBackend(inner, [{ op: "list", errno: "EIO" }]);
    const s = store(backend);
    const errors: Error[] = [];
    const g = build();
    const h = attach(g, s, { onError: (e) => errors.push(e) });
    g.set("a", 1);
    expect(await errorOf(() => h.flush())).toBeInstanceOf(Error);
    expect(errors.length).toBeGreaterThan(0);
    backend.heal();
    expect(await inner.list?.("")).toEqual([]);
    expect(h.seq).toBe(0);
    await expect(h.dispose()).rejects.toBeInstanceOf(Error);
  });

  it("a failed flush reports, rejects, keeps the data pending and a later flush makes the same seqs durable", async () => {
    const inner = memoryBackend();
    const backend = faultyBackend(inner);
    const s = store(backend);
    const errors: Error[] = [];
    const g = build();
    const h = attach(g, s, { onError: (e) => errors.push(e) });
    expect(await h.flush()).toBe(1);
    backend.inject({ op: "write", errno: "ENOSPC" });
    backend.inject({ op: "writeBatch", errno: "ENOSPC" });
    g.set("a", 9);
    expect(await errorOf(() => h.flush())).toBeInstanceOf(Error);
    expect(errors.length).toBeGreaterThan(0);
    backend.heal();
    expect(await h.flush()).toBe(3);
    expect((await frames(s)).map((f) => f.frame_seq)).toEqual([2, 3]);
    const { g: r } = await restoreInto(s);
    expect(r.get("a")).toBe(9);
    await h.dispose();
  });

  it("a save that can never succeed (closed tier) stops the pair instead of leaving a hole in its WAL", async () => {
    const s = store();
    const g = build();
    const errors: Error[] = [];
    const h = attach(g, s, { onError: (e) => errors.push(e) });
    await h.flush();
    await s.wal.close();
    g.set("a", 1);
    g.set("a", 2);
    // No refusal: the tier's owner closed it, said with code closed (task 321), not write-refused.
    expect(errors.map((e) => (e as StorageError).code)).toEqual(["closed"]);
    expect((errors[0] as StorageError).details["reason"]).toBe("tier-closed");
    expect(((errors[0] as Error).cause as StorageError).code).toBe("closed");
    const err = await errorOf(() => h.flush());
    expect(err).toBe(errors[0]);
    expect((err as StorageError).details["seq"]).toBe(2);
  });

  it("dispose unsubscribes, drains, and is idempotent", async () => {
    const s = store();
    const g = build();
    const h = attach(g, s);
    g.set("a", 1);
    const p1 = h.dispose();
    const p2 = h.dispose();
    expect(p2).toBe(p1);
    await p1;
    g.set("a", 2);
    expect(await h.flush()).toBe(3);
    expect((await frames(s)).length).toBe(2);
  });

  it("paths and filter gate only the trigger: a gated change is persisted with the next triggering wave", async () => {
    const s = store();
    const g = createGraph("g");
    g.state("quiet", 0);
    g.state("loud", 0);
    g.mount("m");
    g.state("m::x", 0);
    const h = attach(g, s, { paths: ["loud", "m"], compactEvery: 100 });
    g.set("quiet", 1);
    expect(await h.flush()).toBe(1);
    g.set("m::x", 1); // under the listed mount: triggers, and carries "quiet" along
    expect(await h.flush()).toBe(3);
    expect((await frames(s)).map((f) => f.path)).toEqual(["m::x", "quiet"]);
    await h.dispose();

    const s2 = store();
    const g2 = createGraph("g");
    g2.state("a", 0);
    g2.state("b", 0);
    const seen: Array<[string, unknown]> = [];
    const h2 = attach(g2, s2, {
      filter: (path, slice) => {
        seen.push([path, slice?.value]);
        return path === "b";
      },
    });
    g2.set("a", 1);
    g2.remove("a");
    expect(await h2.flush()).toBe(1);
    g2.set("b", 1);
    expect(await h2.flush()).toBe(3);
    expect((await frames(s2)).map((f) => `${kindOf(f)} ${f.path}`)).toEqual(["graph.remove a", "node.set b"]);
    expect(seen).toContainEqual(["a", 1]);
    expect(seen).toContainEqual(["a", undefined]);
    await h2.dispose();
  });

  it("a baseline due at the end of a tick holds the frames handed out, not a change a paths gate still holds back", async () => {
    const s = store();
    const g = createGraph("g");
    g.state("quiet", 0);
    g.state("loud", 0);
    const h = attach(g, s, { paths: ["loud"], compactEvery: 1 });
    await h.flush();
    g.set("loud", 1); // frame 2: a baseline is due
    g.set("quiet", 1); // held back by the gate
    expect(await h.flush()).toBe(2);
    const record = (await s.snapshot.load("g")) as GraphCheckpointRecord;
    expect(record.seq).toBe(2);
    expect(record.snapshot.nodes.loud?.value).toBe(1);
    expect(record.snapshot.nodes.quiet?.value).toBe(0);
    g.set("loud", 2); // carries "quiet" along: frames 3 and 4
    expect(await h.flush()).toBe(4);
    const r = createGraph("g");
    r.state("quiet", 0);
    r.state("loud", 0);
    await restoreSnapshot(r, { snapshot: s.snapshot, wal: s.wal });
    expect(r.snapshot()).toEqual(g.snapshot());
    await h.dispose();
  });

  it("costs O(change) per wave: no snapshot() and describeNode only for the touched paths", async () => {
    const s = store();
    const g = createGraph("g");
    for (let i = 0; i < 2000; i++) g.state(`n${i}`, i);
    let snapshots = 0;
    let described = 0;
    const counted: Graph = Object.assign(Object.create(g) as Graph, {
      snapshot: () => {
        snapshots++;
        return g.snapshot();
      },
      describeNode: (p: string) => {
        described++;
        return g.describeNode(p);
      },
      observe: (fn: Parameters<Graph["observe"]>[0]) => g.observe(fn),
    });
    const h = attachSnapshotStorage(counted, [{ snapshot: s.snapshot, wal: s.wal }], { compactEvery: 1000 });
    expect(snapshots).toBe(1);
    snapshots = 0;
    g.set("n5", -1);
    g.batch(() => {
      g.set("n6", -1);
      g.set("n7", -1);
    });
    expect(snapshots).toBe(0);
    expect(described).toBe(3);
    await h.dispose();
  });

  it("validates its arguments", () => {
    const s = store();
    const g = build();
    expect(() => attachSnapshotStorage(g, [])).toThrow(TypeError);
    expect(() => attachSnapshotStorage(g, [{ snapshot: s.snapshot, wal: {} as KvStorageTier<WALFrame> }])).toThrow(TypeError);
    expect(() => attach(g, s, { compactEvery: 0 })).toThrow(RangeError);
    expect(() => attach(g, s, { paths: "a" as unknown as string[] })).toThrow(TypeError);
    expect(() => attachSnapshotStorage({} as Graph, [{ snapshot: s.snapshot }])).toThrow(TypeError);
  });
});

describe("restore (docs/protocol.md §10.7 vectors, TS seq rule)", () => {
  async function written(ops: (g: ReactiveGraph) => void, opts: AttachOptions = { compactEvery: 100 }): Promise<Store> {
    const s = store();
    const g = build();
    const h = attach(g, s, opts);
    ops(g);
    await h.dispose();
    return s;
  }

  it("baseline only → nothing replayed; set 7 then 11 → a = 11, phases spec, data, ownership", async () => {
    const s0 = await written(() => {});
    const r0 = await restoreInto(s0, {}, 42);
    expect(r0.g.get("a")).toBe(0);
    expect(r0.result).toMatchObject({ replayedFrames: 0, skippedFrames: 0, finalSeq: 1 });

    const s = await written((g) => {
      g.set("a", 7);
      g.set("a", 11);
    });
    const { g, result } = await restoreInto(s);
    expect(g.get("a")).toBe(11);
    expect(g.get("d")).toBe(22);
    expect(result.skippedFrames).toBe(0);
    expect(result.phases.map((p) => p.lifecycle)).toEqual(["spec", "data", "ownership"]);
    expect(result).toMatchObject({ replayedFrames: 4, appliedFrames: 2, ignoredFrames: 2, finalSeq: 5 });
  });

  it("lifecycle ['spec'] over a value baseline applies the baseline and no data frame", async () => {
    const s = await written((g) => g.set("a", 7));
    const { g, result } = await restoreInto(s, { lifecycle: ["spec"] }, 3);
    expect(g.get("a")).toBe(0);
    expect(result.replayedFrames).toBe(0);
    expect(phaseFrames(result)).toEqual({ spec: 0, data: 0, ownership: 0 });
  });

  it("targetSeq scopes replay (sets 1, 2, 3 → frames 2..7; target 4 → a = 2)", async () => {
    const s = await written((g) => {
      g.set("a", 1);
      g.set("a", 2);
      g.set("a", 3);
    });
    const { g, result } = await restoreInto(s, { targetSeq: 4 });
    expect(g.get("a")).toBe(2);
    expect(result).toMatchObject({ replayedFrames: 3, finalSeq: 4 });
    expect(phaseFrames(result)).toEqual({ spec: 0, data: 3, ownership: 0 });
  });

  it("a torn tail is skipped and counted; mid-stream aborts with the graph untouched; onTornWrite overrides", async () => {
    const make = () =>
      written((g) => {
        g.set("a", 5); // 2, 3
        g.set("a", 6); // 4, 5
      });
    const s = await make();
    await tamper(s, 5, "checksum");
    const tail = await restoreInto(s);
    expect(tail.g.get("a")).toBe(6); // frame 4 (a) is intact; 5 was the derived value
    expect(tail.result.skippedFrames).toBe(1);

    const s2 = await make();
    await tamper(s2, 4, "garbage");
    const g2 = build(99);
    const err = await errorOf(() => restoreSnapshot(g2, { snapshot: s2.snapshot, wal: s2.wal }));
    expect(err).toBeInstanceOf(RestoreError);
    expect((err as RestoreError).code).toBe("torn-write-mid-stream");
    expect((err as RestoreError).details).toMatchObject({ frame_seq: 4, reason: "decode-failed", isTail: false });
    expect(g2.get("a")).toBe(99);

    const infos: unknown[] = [];
    const skipAll = await restoreInto(s2, { onTornWrite: (i) => (infos.push(i), "skip") });
    expect(skipAll.result.skippedFrames).toBe(1);
    expect(skipAll.g.get("a")).toBe(5);
    expect(infos).toEqual([expect.objectContaining({ frame_seq: 4, key: walFrameKey("g/wal", 4), isTail: false })]);

    const abortTail = await errorOf(() => restoreInto(s, { onTornWrite: () => "abort" }));
    expect((abortTail as RestoreError).code).toBe("torn-write-mid-stream");
    const defaulted = await restoreInto(s, { onTornWrite: () => undefined });
    expect(defaulted.result.skippedFrames).toBe(1);
  });

  it("the tail is computed before targetSeq: a bad frame at the target is mid-stream", async () => {
    const s = await written((g) => {
      g.set("a", 5);
      g.set("a", 6);
    });
    await tamper(s, 3, "checksum");
    const err = await errorOf(() => restoreInto(s, { targetSeq: 3 }));
    expect((err as RestoreError).code).toBe("torn-write-mid-stream");
  });

  it("invalidate persists as node.invalidate and replays onto a graph built with a value", async () => {
    const s = await written((g) => {
      g.set("a", 7);
      g.invalidate("a");
    });
    expect((await frames(s)).filter((f) => f.path === "a").map(kindOf)).toEqual(["node.set", "node.invalidate"]);
    const { g } = await restoreInto(s, {}, 7);
    expect(g.get("a")).toBeUndefined();
    expect(g.get("d")).toBeUndefined();
  });

  it("a sentinel in the baseline invalidates the rebuilt state node", async () => {
    const s = await written((g) => g.invalidate("a"), { compactEvery: 1 });
    expect(((await s.snapshot.load("g")) as GraphCheckpointRecord).snapshot.nodes.a?.sentinel).toBe(true);
    const { g } = await restoreInto(s, {}, 7);
    expect(g.get("a")).toBeUndefined();
  });

  it("replays topology: add, remove, mount, unmount; the later frame wins over an older set", async () => {
    const s = await written((g) => {
      g.mount("m");
      g.mount("m::n");
      g.addState("m::n::x", 1, { unit: "ms" });
      g.addState("b", 1);
      g.set("b", 2);
      g.remove("b");
      g.addState("b", 5); // older set b=2 must not win over this add
      g.mount("gone");
      g.addState("gone::y", 1);
      g.unmount("gone");
    });
    const live = build();
    live.mount("m");
    live.mount("m::n");
    live.addState("m::n::x", 1, { unit: "ms" });
    live.addState("b", 5);
    const { g, result } = await restoreInto(s);
    expect(g.snapshot()).toEqual(live.snapshot());
    expect(result.ignoredFrames).toBeGreaterThan(0);
  });

  it("restores over a graph whose code has nodes and mounts the baseline lacks", async () => {
    const s = await written((g) => {
      g.set("a", 3);
      g.remove("d");
      g.mount("m");
    }, { compactEvery: 1 });
    const g = build();
    g.mount("extra");
    g.state("extra::z", 1);
    g.state("loose", 1);
    await restoreSnapshot(g, { snapshot: s.snapshot, wal: s.wal });
    expect(g.paths()).toEqual(["a"]);
    expect(g.mounts()).toEqual(["m"]);
    expect(g.get("a")).toBe(3);
  });

  it("error codes: baseline-missing, phase-failed, wal-tier-required, codec-mismatch", async () => {
    const code = async (fn: () => Promise<unknown>): Promise<string | undefined> => {
      const e = await errorOf(fn);
      return e instanceof RestoreError ? e.code : `${String(e)}`;
    };
    const empty = store();
    expect(await code(() => restoreInto(empty))).toBe("baseline-missing");

    const s = await written((g) => g.set("a", 1), { compactEvery: 2 });
    expect(await code(() => restoreInto(s, { lifecycle: [] }))).toBe("phase-failed");
    expect(await code(() => restoreInto(s, { targetSeq: 0 }))).toBe("phase-failed");
    expect(await code(() => restoreSnapshot(build(), { snapshot: s.snapshot } as never))).toBe("wal-tier-required");
    expect(await errorOf(() => restoreInto(s, { targetSeq: -1 }))).toBeInstanceOf(RangeError);
    expect(await errorOf(() => restoreInto(s, { lifecycle: ["values" as never] }))).toBeInstanceOf(TypeError);

    const spec = store();
    spec.snapshot.save({ ...((await s.snapshot.load("g")) as GraphCheckpointRecord), lifecycle: "spec" });
    await spec.snapshot.flush();
    expect(await code(() => restoreInto(spec))).toBe("baseline-missing");

    const v2 = store();
    v2.snapshot.save({ ...((await s.snapshot.load("g")) as GraphCheckpointRecord), format_version: 2 });
    await v2.snapshot.flush();
    expect(await code(() => restoreInto(v2))).toBe("codec-mismatch");

    // a spec frame the graph refuses (mount under a missing parent): the phase rolls back
    const bad = await written((g) => g.set("a", 4));
    const [frame] = decomposeDiffToFrames(
      { nodesAdded: [], nodesRemoved: [], subgraphsAdded: ["nope::child"], subgraphsRemoved: [], valuesChanged: [] },
      { timestampNs: 1, baseSeq: 3 },
    );
    bad.wal.save(walFrameKey("g/wal", 4), frame as WALFrame);
    await bad.wal.flush();
    const g = build();
    const err = await errorOf(() => restoreSnapshot(g, { snapshot: bad.snapshot, wal: bad.wal }));
    expect(err).toBeInstanceOf(RestoreError);
    expect((err as RestoreError).code).toBe("phase-failed");
    expect((err as RestoreError).details).toMatchObject({ lifecycle: "spec", frame_seq: 4 });
    expect(g.mounts()).toEqual([]);
  });

  it("reads only its own graph's WAL (no sibling-prefix frames)", async () => {
    const s = await written((g) => g.set("a", 1));
    const [frame] = decomposeDiffToFrames(
      { nodesAdded: [], nodesRemoved: [], subgraphsAdded: [], subgraphsRemoved: [], valuesChanged: [{ path: "a", value: 666 }] },
      { timestampNs: 1, baseSeq: 99 },
    );
    s.wal.save(walFrameKey("g/walrus", 100), frame as WALFrame);
    s.wal.save(`g/wal/${"9".repeat(21)}`, frame as WALFrame);
    await s.wal.flush();
    const { g } = await restoreInto(s);
    expect(g.get("a")).toBe(1);
  });
});
