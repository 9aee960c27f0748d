/**
 * The stored-graph reader as restore uses it (docs/design.md §3.16): a frame missing mid-stream is a typed error,
 * never a silently wrong state; a WAL whose backend cannot list is refused rather than read as empty.
 */
import { describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { RestoreError, StorageError } from "../../src/errors.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { foldStoredGraph } from "../../src/persistence/fold.js";
import { backendSource, listFrameKeys, surveyStoredGraph } from "../../src/persistence/stored-graph.js";
import {
  attachSnapshotStorage,
  createGraph,
  restoreSnapshot,
  type GraphCheckpointRecord,
  type GraphPersistSnapshot,
  type ReactiveGraph,
} from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { graphWalPrefix, walFrameCodec, walFrameKey, type WALFrame } from "../../src/wal/index.js";
import { wrapBackend } from "../support/test-backend.js";
import { errorOf } from "../support/wait.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { mulberry32 as seeded } from "../../src/base/prng.js";
import { namedPair } from "../support/named-pair.js";

const tmp = mkdtempSync(join(tmpdir(), "grf-stored-graph-"));
let n = 0;
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type Kind = "memory" | "file" | "sqlite";
const KINDS: readonly Kind[] = ["memory", "file", "sqlite"];

function backendOf(kind: Kind): StorageBackend {
  if (kind === "memory") return memoryBackend();
  if (kind === "file") return fileBackend(join(tmp, `${n++}-files`));
  return sqliteBackend(join(tmp, `${n++}-store.db`));
}

/** `c` has no dependents: every set is exactly one frame. */
function build(): ReactiveGraph {
  const g = createGraph("g");
  g.state("a", 0);
  g.state("c", 0);
  g.derived("twice", ["a"], (a) => (a as number) * 2);
  return g;
}

/** Baseline at seq 1, then one frame per set of `c`: frames 2..16 (15 frames). Returns the state after each seq. */
async function fifteenFrames(backend: StorageBackend): Promise<Map<number, GraphPersistSnapshot>> {
  const g = build();
  const h = attachSnapshotStorage(g, [namedPair(backend)], { compactEvery: Number.POSITIVE_INFINITY });
  const states = new Map<number, GraphPersistSnapshot>([[await h.flush(), g.snapshot()]]);
  for (let i = 1; i <= 15; i++) {
    g.set("c", i * 10);
    states.set(await h.flush(), g.snapshot());
  }
  await h.dispose();
  return states;
}

async function restoreFrom(backend: StorageBackend, targetSeq?: number): Promise<ReactiveGraph> {
  const g = build();
  await restoreSnapshot(g, { ...namedPair(backend), ...(targetSeq === undefined ? {} : { targetSeq }) });
  return g;
}

describe.each(KINDS)("restore reads one consistent chain of frames (%s)", (kind) => {
  it("a frame deleted mid-stream (frame 11 of 15) is RestoreError wal-gap naming it; the graph is untouched", async () => {
    const backend = backendOf(kind);
    const states = await fifteenFrames(backend);
    expect([...states.keys()]).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    await backend.delete!(walFrameKey(graphWalPrefix("g"), 12)); // the 11th frame (frames are seqs 2..16)

    const g = build();
    g.set("c", -1);
    const err = await errorOf(() => restoreSnapshot(g, namedPair(backend)));
    expect(err).toBeInstanceOf(RestoreError);
    expect(err).toMatchObject({ code: "wal-gap", details: { graph: "g", baselineSeq: 1, from: 12, to: 12 } });
    expect((err as Error).message).toContain("frame 12 is missing");
    expect(g.get("c")).toBe(-1); // nothing was applied

    // The point in time before the hole is still exactly restorable.
    expect((await restoreFrom(backend, 11)).snapshot()).toEqual(states.get(11));
    await backend.close?.();
  });

  it("a hole right after the baseline and a run of missing frames are gaps too", async () => {
    const backend = backendOf(kind);
    await fifteenFrames(backend);
    for (const seq of [2, 3]) await backend.delete!(walFrameKey(graphWalPrefix("g"), seq));
    expect(await errorOf(() => restoreFrom(backend))).toMatchObject({ code: "wal-gap", details: { from: 2, to: 3 } });
    for (const seq of [7, 8, 9]) await backend.delete!(walFrameKey(graphWalPrefix("g"), seq));
    // The first hole is reported.
    expect(await errorOf(() => restoreFrom(backend, 16))).toMatchObject({ code: "wal-gap", details: { from: 2, to: 3 } });
    await backend.close?.();
  });
});

describe.each(KINDS)("checking that the baseline did not move (%s)", (kind) => {
  it("a backend source compares its bytes: the baseline is parsed once, not twice (a 10 MB baseline parses in ~250 ms)", async () => {
    const backend = backendOf(kind);
    const states = await fifteenFrames(backend);
    const source = backendSource(backend);
    let parsed = 0;
    let raw = 0;
    const counted = {
      ...source,
      readBaseline(name: string) {
        parsed++;
        return source.readBaseline(name);
      },
      readBaselineRaw(name: string) {
        raw++;
        return source.readBaselineRaw!(name);
      },
    };
    const { fold } = await foldStoredGraph(counted, "g");
    expect(fold.seq).toBe(Math.max(...states.keys()));
    expect([parsed, raw]).toEqual([1, 1]);
  });
});

describe("frames covered by the baseline", () => {
  it("one that is gone when read (compaction deleted it after the listing) is not reported as damage", async () => {
    const backend = memoryBackend();
    await fifteenFrames(backend);
    // A compaction that has written baseline 16 and is deleting frames 2..16: listed, then gone.
    const { snapshot } = namedPair(backend);
    const record = (await snapshot.load("g")) as GraphCheckpointRecord;
    await backend.write("g", new TextEncoder().encode(JSON.stringify({ ...record, seq: 16 })));
    const source = backendSource(backend);
    const racing = {
      ...source,
      async list(prefix: string) {
        const keys = await source.list(prefix);
        for (const seq of [2, 3, 4]) await backend.delete!(walFrameKey(graphWalPrefix("g"), seq));
        return keys;
      },
    };
    const survey = await surveyStoredGraph(racing, "g");
    expect(survey).toMatchObject({ restorable: true, findings: [] });
  });
});

describe("restore needs a WAL it can list", () => {
  it("a kv tier over a backend without list: StorageError backend-no-list-support, not the baseline's state as if it were the latest", async () => {
    const inner = memoryBackend();
    await fifteenFrames(inner);
    const unlisted = wrapBackend(inner, { list: false });
    const g = build();
    const err = await errorOf(() => restoreSnapshot(g, namedPair(unlisted)));
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ code: "backend-no-list-support" });
    expect(g.get("c")).toBe(0);
  });

  it("so does folding it (the CLI's export) and compacting it", async () => {
    const inner = memoryBackend();
    await fifteenFrames(inner);
    const unlisted = wrapBackend(inner, { list: false });
    const fold = await errorOf(() => foldStoredGraph(backendSource(unlisted), "g"));
    expect(fold).toMatchObject({ name: "StorageError", code: "backend-no-list-support" });
    const compact = await errorOf(() => compactGraph({ backend: unlisted }, { graphName: "g" }));
    expect(compact).toMatchObject({ name: "StorageError", code: "backend-no-list-support" });
  });
});

describe.each(KINDS)("periodic baselines that never landed (%s)", (kind) => {
  it("leave no hole: a baseline carries its last frame's seq, so restore from the older baseline gives the writer's state and verify says clean", async () => {
    // A writer whose snapshot tier is debounced (60 s) beside a WAL flushed per save, a baseline every 5 waves,
    // and a crash before the debounce ends (rollback: the pending baselines never reach the store).
    const backend = backendOf(kind);
    const inner = snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap", debounceMs: 60_000 });
    const saved: number[] = [];
    const snapshot = Object.assign(Object.create(inner) as typeof inner, {
      save(record: GraphCheckpointRecord) {
        saved.push(record.seq);
        inner.save(record);
      },
    });
    const wal = kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec });
    const g = build();
    const h = attachSnapshotStorage(g, [{ snapshot, wal }], { compactEvery: 5 });
    expect(await h.flush()).toBe(1); // the attach baseline lands
    const random = seeded(5);
    for (let i = 0; i < 23; i++) {
      g.set(random() < 0.5 ? "a" : "c", Math.floor(random() * 1000) + i * 1000);
      await Promise.resolve(); // one wave per tick: each due baseline is written
    }
    inner.rollback();
    const seqs = (await listFrameKeys(backendSource(backend), "g")).map((k) => k.seq);
    expect(seqs).toEqual(Array.from({ length: h.seq - 1 }, (_, i) => i + 2));
    // Four periodic baselines (every 5 of the 23 waves), each at the seq of a frame: none took a seq of its own.
    expect(saved).toHaveLength(5);
    for (const seq of saved.slice(1)) expect(seqs).toContain(seq);

    const survey = await surveyStoredGraph(backendSource(backend), "g");
    expect(survey).toMatchObject({ restorable: true, findings: [] });
    const restored = build();
    const r = await restoreSnapshot(restored, namedPair(backend));
    expect(restored.snapshot()).toEqual(g.snapshot());
    expect(r.finalSeq).toBe(h.seq);
    await backend.close?.();
  });
});
