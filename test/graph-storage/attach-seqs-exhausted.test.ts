/**
 * Attach over a store whose seqs reached Number.MAX_SAFE_INTEGER (a baseline at 2^53 - 1, which another program can
 * write and restore reads). The attach baseline went in at 2^53 over the good one and the first flush resolved
 * 9007199254740992, an acknowledgement of a record every reader then refused (baseline-missing: seq must be a
 * non-negative integer); two seqs below the top, the frames past it failed every flush with walFrameKey's raw
 * RangeError. Now the pair refuses with StorageError("corrupt-store", reason "seqs-exhausted"): nothing acknowledged
 * that is not restorable, and the stored graph restores as it was.
 */
import { describe, expect, it } from "vitest";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { buildGraph as build, seqsTopStores, TOP, type Mode } from "./fixtures/seqs-top.js";

const { storeWithBaseline, pairOf } = seqsTopStores("seqs-exhausted");

async function closePair(pair: ReturnType<typeof pairOf>): Promise<void> {
  await pair.snapshot.close().catch(() => undefined);
  await pair.wal.close().catch(() => undefined);
}

/** The seq and value of a that a fresh inline restore of the store gives, or the error's code. */
async function restored(path: string): Promise<string> {
  const pair = pairOf("inline", path);
  try {
    const g = build();
    const r = await restoreSnapshot(g, pair);
    return `seq ${r.finalSeq} a=${JSON.stringify(g.get("a"))}`;
  } catch (err) {
    return String((err as { code?: unknown }).code);
  } finally {
    await closePair(pair);
  }
}

const exhausted = { name: "StorageError", code: "corrupt-store", details: expect.objectContaining({ reason: "seqs-exhausted" }) };

describe.each<Mode>(["inline", "engine"])("attach over a store whose seqs reached 2^53 - 1 (%s)", (mode) => {
  it("a baseline at 2^53 - 1: the first flush rejects seqs-exhausted, the stored baseline restores as it was", async () => {
    const path = storeWithBaseline(TOP);
    expect(await restored(path)).toBe(`seq ${TOP} a=7`);
    const errors: unknown[] = [];
    const pair = pairOf(mode, path);
    const g = build();
    const handle = attachSnapshotStorage(g, [pair], { onError: (e) => void errors.push(e) });
    try {
      await expect(handle.flush()).rejects.toMatchObject(exhausted);
      g.set("a", 8);
      await expect(handle.flush()).rejects.toMatchObject(exhausted);
      expect(errors[0]).toMatchObject(exhausted);
    } finally {
      handle.dispose();
      await closePair(pair);
    }
    expect(await restored(path)).toBe(`seq ${TOP} a=7`);
  });

  it("a baseline two seqs below: the attach baseline is stored, the wave past the top rejects seqs-exhausted", async () => {
    const path = storeWithBaseline(TOP - 2);
    const errors: unknown[] = [];
    const pair = pairOf(mode, path);
    const g = build();
    const handle = attachSnapshotStorage(g, [pair], { onError: (e) => void errors.push(e) });
    try {
      expect(await handle.flush()).toBe(TOP - 1);
      g.batch(() => {
        g.set("a", 8);
        g.set("b", 9);
      });
      await expect(handle.flush()).rejects.toMatchObject(exhausted);
      expect(errors.length).toBeGreaterThan(0);
      for (const e of errors) expect(e).toMatchObject(exhausted);
    } finally {
      handle.dispose();
      await closePair(pair);
    }
    // The attach baseline (the graph as restore left it: a = 0 here, the code's value) is what was acknowledged.
    expect(await restored(path)).toBe(`seq ${TOP - 1} a=0`);
  });
});
