/**
 * Frames the live graph refuses outright, written into a store by another program with a right checksum: an add of
 * a state node at a path no graph accepts (`x::`, `__meta__`), under a mount that does not exist, where a mount is,
 * or a mount where a node is. Restore fails RestoreError `phase-failed` at such a frame; the pure fold took it as a
 * no-op, so a compaction (and the CLI's export) succeeded and the compacted store then restored without it: restore
 * before and after a compaction differed, silently. Now the fold fails as restore does and compaction changes
 * nothing. Real SQLite file, inline.
 */
import { Buffer } from "node:buffer";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteBackend, type SqliteBackend } from "../../src/backend/sqlite.js";
import { jsonCodec } from "../../src/codec/json.js";
import { createGraph } from "../../src/graph/graph.js";
import type { SnapshotNodeSlice } from "../../src/graph/types.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";
import { tempDir } from "./fixtures.js";

const tmp = tempDir("fold-refused-frames");
afterAll(() => tmp.remove());

function build() {
  const g = createGraph("g");
  g.state("a", 0);
  g.state("b", 0);
  g.derived("sum", ["a", "b"], (a, b) => (a as number) + (b as number));
  return g;
}

const state = (value: number): SnapshotNodeSlice => ({ type: "state", deps: [], status: "settled", meta: {}, value });

function frame(seq: number, lifecycle: "spec" | "data", path: string, change: unknown): WALFrame {
  return {
    t: "c",
    lifecycle,
    path,
    change: { structure: "graph.value", version: 0, t_ns: seq, lifecycle, change },
    frame_seq: seq,
    frame_t_ns: seq,
    checksum: "",
    format_version: 1,
  };
}

/** Baseline at 1, frames 2..4 setting a, then `hostile` at 5 and a set of b at 6. */
async function store(hostile: WALFrame): Promise<string> {
  const path = tmp.path("s.db");
  const backend = sqliteBackend(path);
  try {
    const snap = snapshotStorage(backend);
    snap.save({ name: "g", mode: "full", snapshot: build().snapshot(), seq: 1, timestamp_ns: 1, format_version: 1 });
    await snap.flush();
    const wal = kvStorage<WALFrame>(backend, { codec: walFrameCodec });
    const prefix = graphWalPrefix("g");
    for (const s of [2, 3, 4]) wal.save(walFrameKey(prefix, s), frame(s, "data", "a", { kind: "node.set", path: "a", value: s }));
    wal.save(walFrameKey(prefix, 5), hostile);
    wal.save(walFrameKey(prefix, 6), frame(6, "data", "b", { kind: "node.set", path: "b", value: 6 }));
    await wal.flush();
  } finally {
    backend.close();
  }
  return path;
}

async function restored(path: string): Promise<string> {
  const backend = sqliteBackend(path, { readOnly: true });
  try {
    const g = build();
    const r = await restoreSnapshot(g, { snapshot: snapshotStorage(backend), wal: kvStorage(backend, { codec: walFrameCodec }) });
    return `ok ${r.finalSeq} ${g.paths().join(",")}`;
  } catch (err) {
    const e = err as { code?: unknown; details?: { frame_seq?: unknown } };
    return `${String(e.code)} at ${String(e.details?.frame_seq)}`;
  } finally {
    backend.close();
  }
}

function contents(backend: SqliteBackend): Record<string, string> {
  return Object.fromEntries(backend.list().map((k) => [k, Buffer.from(backend.read(k) ?? []).toString("base64")]));
}

const add = (path: string): WALFrame => frame(5, "spec", path, { kind: "graph.add", nodeId: path, slice: state(1) });
const HOSTILE: ReadonlyArray<[string, WALFrame]> = [
  ["an add at a path with an empty segment", add("x::")],
  ["an add of the reserved name __meta__", add("__meta__")],
  ["an add under a mount that does not exist", add("m::x")],
  ["a mount where a node is", frame(5, "spec", "a", { kind: "graph.mount", path: "a" })],
];

describe("compaction over frames the graph refuses (SQLite file, inline)", () => {
  it.each(HOSTILE)("%s: compaction fails phase-failed at that frame as restore does, the store unchanged", async (_label, hostile) => {
    const path = await store(hostile);
    expect(await restored(path)).toBe("phase-failed at 5");
    const backend = sqliteBackend(path);
    try {
      const before = contents(backend);
      await expect(compactGraph({ backend }, { graphName: "g" })).rejects.toMatchObject({
        name: "RestoreError",
        code: "phase-failed",
        details: expect.objectContaining({ frame_seq: 5 }),
      });
      expect(contents(backend)).toEqual(before);
    } finally {
      backend.close();
    }
    expect(await restored(path)).toBe("phase-failed at 5");
  });

  it("control: an add of a state node in place of a derived node still folds, and restores alike before and after", async () => {
    const path = await store(frame(5, "spec", "sum", { kind: "graph.add", nodeId: "sum", slice: state(9) }));
    const before = await restored(path);
    expect(before).toBe("ok 6 a,b,sum");
    const backend = sqliteBackend(path);
    try {
      await compactGraph({ backend }, { graphName: "g" });
    } finally {
      backend.close();
    }
    expect(await restored(path)).toBe(before);
  });
});
