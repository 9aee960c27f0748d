/**
 * A follower asks the baseline's head (name and seq, read without the rest: docs/design.md §3.18) whether the store
 * moved past it. A head that vouches for more than the record holds must not be taken for a baseline
 * (docs/design.md §3.27): a well-formed head over a malformed snapshot, or a non-canonical record naming the graph in
 * its head and another graph after its snapshot (JSON.parse keeps the last), is reloaded and checked whole, and the
 * follower stops with restore's error instead of showing a state the store cannot restore. Real SQLite file,
 * read-only handle. Passes on the code before (found sound: a head's "yes" was always checked by a full read).
 */
import { afterEach, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { jsonCodec } from "../../src/codec/json.js";
import { RestoreError } from "../../src/errors.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { followGraph } from "../../src/persistence/follow.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { GRAPH, buildGraph, inlinePair, tempDir } from "../graph-compaction/fixtures.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Bytes whose head is a baseline of GRAPH at `seq`, and whose whole is not a usable one. */
const LIARS: ReadonlyArray<[string, (b: GraphCheckpointRecord, seq: number) => Uint8Array]> = [
  ["a malformed snapshot behind a well-formed head", (b, seq) => jsonCodec.encode({ ...b, seq, snapshot: "garbage" })],
  [
    "another graph's name after the snapshot (not canonical JSON)",
    (b, seq) => {
      const text = new TextDecoder().decode(jsonCodec.encode({ ...b, seq }));
      return new TextEncoder().encode(`${text.slice(0, -1)},"name":"other"}`);
    },
  ],
];

describe("a follower and a baseline whose head says more than the record holds", () => {
  it.each(LIARS)("%s: the follower stops with baseline-missing", async (label, lie) => {
    const tmp = tempDir("follow-lying-head");
    cleanups.push(() => tmp.remove());
    const path = tmp.path("store.db");
    const backend = sqliteBackend(path);
    cleanups.push(() => backend.close());
    const graph = buildGraph();
    const handle = attachSnapshotStorage(graph, [inlinePair(backend)], { compactEvery: Number.POSITIVE_INFINITY });
    cleanups.push(() => handle.dispose());
    const seq = await handle.flush();
    const reader = sqliteBackend(path, { readOnly: true });
    cleanups.push(() => reader.close());
    const follower = await followGraph(buildGraph(), inlinePair(reader), { pollMs: 3_600_000 });
    cleanups.push(() => follower.stop());
    const stored = jsonCodec.decode(backend.read(GRAPH) as Uint8Array) as GraphCheckpointRecord;
    backend.write(GRAPH, lie(stored, seq + 10));
    const err = await follower.poll().catch((e: unknown) => e);
    expect(err, label).toBeInstanceOf(RestoreError);
    expect((err as RestoreError).code).toBe("baseline-missing");
    await expect(follower.done).rejects.toBe(err);
    expect(follower.stats().state).toBe("failed");
  });
});
