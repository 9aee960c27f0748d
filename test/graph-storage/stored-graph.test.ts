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
import {
  attachSnapshotStorage,
  createGraph,
  restoreSnapshot,
  type GraphCheckpointRecord,
  type GraphPersistSnapshot,
  type ReactiveGraph,
} from "../../src/graph/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { graphWalPrefix, walFrameCodec, walFrameKey, type WALFrame } from "../../src/wal/index.js";
import { wrapBackend } from "../support/test-backend.js";
import { errorOf } from "../support/wait.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";

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

function tiers(backend: StorageBackend) {
  return {
    snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }),
    wal: kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec }),
  };
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
  const h = attachSnapshotStorage(g, [tiers(backend)], { compactEvery: Number.POSITIVE_INFINITY });
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
  await restoreSnapshot(g, { ...tiers(backend), ...(targetSeq === undefined ? {} : { targetSeq }) });
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
    const err = await errorOf(() => restoreSnapshot(g, tiers(backend)));
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

describe("restore needs a WAL it can list", () => {
  it("a kv tier over a backend without list: StorageError backend-no-list-support, not the baseline's state as if it were the latest", async () => {
    const inner = memoryBackend();
    await fifteenFrames(inner);
    const unlisted = wrapBackend(inner, { list: false });
    const g = build();
    const err = await errorOf(() => restoreSnapshot(g, tiers(unlisted)));
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ code: "backend-no-list-support" });
    expect(g.get("c")).toBe(0);
  });
});
