/**
 * Append-log keys and graph keys share one backend (docs/design.md §3.27). A bucket key shaped like a WAL frame key
 * ("a/wal/" + 20 digits) had its base value (written in overwrite mode, the array layout, or by compact() for a key
 * not yet written) land on graph a's frame; a graph named like a segment key ("x" + U+001F + 20 digits) had its baseline land on bucket x's segment.
 * Both are refused now where the key enters: the bucket by the tier (StorageError `invalid-key`, nothing appended),
 * the graph name by attach (StorageError `invalid-name`). Real SQLite file.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { StorageError } from "../../src/errors.js";
import { attachSnapshotStorage, createGraph, restoreSnapshot, type GraphCheckpointRecord } from "../../src/index.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { segmentKey } from "../../src/tier/append-layout.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { graphWalPrefix, walFrameCodec, walFrameKey, type WALFrame } from "../../src/wal/index.js";
import { syncErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-append-key-collisions-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const tiers = (backend: ReturnType<typeof sqliteBackend>) => ({
  snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }),
  wal: kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec }),
});

describe("append-log buckets beside graphs in one SQLite store", () => {
  it("a bucket key shaped like graph a's frame key is refused; graph a restores whole (overwrite mode)", async () => {
    const backend = sqliteBackend(join(root, "bucket.db"));
    const a = createGraph("a");
    a.state("n", 0);
    const handle = attachSnapshotStorage(a, [tiers(backend)], { compactEvery: Number.POSITIVE_INFINITY });
    for (let i = 1; i <= 3; i++) {
      a.set("n", i);
      await handle.flush();
    }
    await handle.dispose();
    // Before: an overwrite-mode flush put the bucket's base value over frame 4, and restore skipped it as a torn
    // tail (n = 2 where 3 was acknowledged).
    const frameKey = walFrameKey(graphWalPrefix("a"), 4);
    const log = appendLogStorage<{ k: string; v: number }>(backend, { name: "log", mode: "overwrite", keyOf: (e) => e.k });
    const err = syncErrorOf(() => log.appendEntries([{ k: "fine", v: 1 }, { k: frameKey, v: 2 }]));
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("invalid-key");
    await log.flush();
    expect((await log.loadEntries({ keyFilter: "fine" })).entries).toEqual([]); // all or nothing
    await log.close();
    const r = createGraph("a");
    r.state("n", 0);
    await restoreSnapshot(r, tiers(backend));
    expect(r.get("n")).toBe(3);
    backend.close();
  });

  it("a graph named like bucket x's segment key is refused at attach; the segment's entries stay", async () => {
    const backend = sqliteBackend(join(root, "segment.db"));
    const log = appendLogStorage<number>(backend, { name: "x" });
    log.appendEntries([1, 2]);
    await log.flush();
    const name = segmentKey("x", 1);
    expect(backend.read(name)).toBeDefined(); // the segment the first flush wrote
    const evil = createGraph(name);
    evil.state("s", 0);
    const err = syncErrorOf(() => attachSnapshotStorage(evil, [tiers(backend)]));
    expect((err as StorageError).code).toBe("invalid-name");
    expect((await log.loadEntries({ keyFilter: "x" })).entries).toEqual([1, 2]);
    await log.close();
    backend.close();
  });
});
