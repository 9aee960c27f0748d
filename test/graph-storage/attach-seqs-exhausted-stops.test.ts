/**
 * Attach over a store two seqs below the top (2^53 − 1): the attach baseline takes the last seq but one, the first
 * wave (one frame) the top, and the next wave cannot be numbered. That error is permanent, so the pair stops there: it is reported once
 * through onError, every later flush rejects with it, nothing more is retried or acknowledged. Before, the pair
 * stayed blocked and reported seqs-exhausted again at each retry (each new wave, each debounce window).
 */
import { describe, expect, it } from "vitest";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { sqliteKv, sqliteSnapshot } from "../../src/tier/factories.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import { buildGraph as build, seqsTopStores, TOP, type Mode } from "./fixtures/seqs-top.js";

const DEBOUNCE_MS = 5;
const { storeWithBaseline, pairOf } = seqsTopStores("seqs-exhausted-stops", { debounceMs: DEBOUNCE_MS });

const exhausted = { name: "StorageError", code: "corrupt-store", details: expect.objectContaining({ reason: "seqs-exhausted" }) };
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each<Mode>(["inline", "engine"])("seqs exhausted while attached (%s)", (mode) => {
  it("stops the pair: one report, every flush rejects with it, no retry, nothing acknowledged past the top", async () => {
    const path = storeWithBaseline(TOP - 2);
    const errors: unknown[] = [];
    const pair = pairOf(mode, path);
    const g = build();
    const handle = attachSnapshotStorage(g, [pair], { onError: (e) => void errors.push(e) });
    try {
      expect(await handle.flush()).toBe(TOP - 1);
      // Waves past the top, several debounce windows apart: each used to be a retry that failed and reported again.
      for (let i = 1; i <= 5; i++) {
        g.set("a", 100 + i);
        await pause(DEBOUNCE_MS * 4);
      }
      await expect(handle.flush()).rejects.toMatchObject(exhausted);
      g.set("b", 1);
      await pause(DEBOUNCE_MS * 4);
      await expect(handle.flush()).rejects.toMatchObject(exhausted);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject(exhausted);
    } finally {
      await handle.dispose().catch(() => undefined);
      await pair.snapshot.close().catch(() => undefined);
      await pair.wal.close().catch(() => undefined);
    }
    // What was stored restores: the first wave's frame at the top (a = 101), nothing past it.
    const check = { snapshot: sqliteSnapshot<GraphCheckpointRecord>(path), wal: sqliteKv(path, { codec: walFrameCodec }) };
    try {
      const r = build();
      expect((await restoreSnapshot(r, check)).finalSeq).toBe(TOP);
      expect(r.get("a")).toBe(101);
    } finally {
      await check.snapshot.close();
      await check.wal.close();
    }
  });
});
