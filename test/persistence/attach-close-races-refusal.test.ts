/**
 * The app closes an attach pair's WAL tier while frames are pending, and the close's write refuses one of them (a
 * WAL codec that cannot encode a value): the close writes the frames before it and refuses the frame at seq 5. The
 * refusal's gap search could not list the closed tier and fell back to the first unacknowledged seq (3): flush()
 * said "the write at seq 3 was refused ... until handle.rebaseline()" (rebaseline cannot write through a closed
 * tier), and onError heard "WAL frame ...03 (and 2 more) ... could not be deleted (tier closed) ... wal-gap at
 * seq 3" while the store held 2, 3 and 4 and restored a = 3 (review r329 F2, task 334). Now the search keeps the
 * refused seq the watch heard, tries no delete on a closed tier, and the stop says both: the refusal and the close.
 * Real parts: SQLite files (the inline backend).
 */
import { afterAll, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { StorageError } from "../../src/errors.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { graphWalPrefix, parseWalFrameKey } from "../../src/wal/keys.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { refusingBadFrames } from "../support/refusals.js";
import { settledTo } from "../support/settled.js";

const tmp = tempDir("attach-close-races-refusal");
afterAll(() => tmp.remove());

it("a WAL tier closed by the app whose close refuses a frame: the stop names the refused seq and the close, no delete, no false wal-gap", async () => {
  const path = tmp.path("store.db");
  const backend = sqliteBackend(path);
  const wal = kvStorage<WALFrame>(backend, { codec: refusingBadFrames, debounceMs: 60_000, onError: () => undefined });
  const g = createGraph("g");
  g.state("a", 0);
  const heard: unknown[] = [];
  const h = attachSnapshotStorage(g, [{ snapshot: snapshotStorage<GraphCheckpointRecord>(backend), wal }], {
    onError: (e) => void heard.push(e),
  });
  try {
    g.set("a", 1);
    expect(await h.flush()).toBe(2);
    g.set("a", 2); // seq 3
    g.set("a", 3); // seq 4
    g.set("a", "bad"); // seq 5: the codec refuses it when the close writes it
    expect(await settledTo(wal.close())).toMatchObject({ message: expect.stringMatching(/cannot encode bad/) });
    const err = (await settledTo(h.flush())) as StorageError;
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ code: "closed", details: { graph: "g", seq: 5, reason: "tier-closed" } });
    expect(err.message).toMatch(/the write at seq 5 was refused/);
    expect(err.message).toMatch(/cannot encode bad/);
    expect(err.message).toMatch(/closed by its owner/);
    expect(err.message).not.toMatch(/until handle\.rebaseline\(\)/);
    expect(heard.filter((e) => /could not be deleted|wal-gap/.test((e as Error).message))).toEqual([]);
    expect(heard).toContain(err);
    await h.dispose().catch(() => undefined);
  } finally {
    await backend.close?.();
  }
  // What the close stored: frames 2, 3 and 4, restoring a = 3.
  const reopened = sqliteBackend(path);
  try {
    const tiers = { snapshot: snapshotStorage<GraphCheckpointRecord>(reopened), wal: kvStorage<WALFrame>(reopened, { codec: walFrameCodec }) };
    const prefix = graphWalPrefix("g");
    expect((await tiers.wal.list(`${prefix}/`)).map((k) => parseWalFrameKey(prefix, k))).toEqual([2, 3, 4]);
    const r = createGraph("g");
    r.state("a", -1);
    await restoreSnapshot(r, tiers);
    expect(r.get("a")).toBe(3);
  } finally {
    await reopened.close?.();
  }
});
