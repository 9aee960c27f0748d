/**
 * A live handle idle for over an hour (its baselines put) keeps its stores "live" in the shared-WAL record
 * (docs/design.md §3.10): its group saves the record again every SEEN_REFRESH_MS while open, so forgetStores' live
 * window (an hour) counts from the handle's last sign of life. Before, its `seen` time was its last baseline move,
 * and a forget right after the handle ended (a crash, a process that attaches again at its next start) was accepted
 * without force. Real SQLite files; the clock is injected (vitest's fake Date and setInterval only: the tiers' own
 * timers stay real), never waited for.
 */
import { realpathSync } from "node:fs";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { StorageError } from "../../src/errors.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { SEEN_REFRESH_MS } from "../../src/persistence/shared-wal.js";
import { FORGET_LIVE_WINDOW_MS, parseSharedWalRecordAll, sharedWalRecordKey } from "../../src/persistence/shared-wal-record.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { build } from "./fixtures/shared-wal.js";

const tmp = tempDir("shared-wal-seen-refresh");
afterAll(() => tmp.remove());
afterEach(() => void vi.useRealTimers());

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);

/** Attaches pairs {one, W}, {two, W} (W on one) at T0 by the injected clock, writes, stays idle for `idleMs`, disposes. */
async function idleSession(one: string, two: string, idleMs: number): Promise<{ seenBefore: number; seenAfter: number }> {
  vi.useFakeTimers({ toFake: ["Date", "setInterval", "clearInterval"], now: T0 });
  const b1 = sqliteBackend(one);
  const b2 = sqliteBackend(two);
  const id = `sqlite:${realpathSync(two)}`;
  const seen = (): number => parseSharedWalRecordAll("g", b1.read(sharedWalRecordKey("g")) as Uint8Array | undefined)?.seen.get(id) ?? -1;
  try {
    const g = build();
    const wal = kvStorage<WALFrame>(b1, { codec: walFrameCodec });
    const h = attachSnapshotStorage(g, [
      { snapshot: snapshotStorage<GraphCheckpointRecord>(b1, { compactEvery: 1_000_000 }), wal },
      { snapshot: snapshotStorage<GraphCheckpointRecord>(b2, { compactEvery: 1_000_000 }), wal },
    ]);
    for (let i = 1; i <= 20; i++) g.set(i % 2 === 0 ? "a" : "b", i);
    await h.flush();
    await vi.waitFor(() => expect(seen()).toBeGreaterThanOrEqual(T0)); // the record moved with store two's baseline
    const seenBefore = seen();
    // Idle: nothing is written; the clock moves on a minute at a time (the group's look fires as it would).
    for (let t = 0; t < idleMs; t += MINUTE) vi.advanceTimersByTime(MINUTE);
    await h.flush();
    const seenAfter = seen();
    await h.dispose();
    return { seenBefore, seenAfter };
  } finally {
    b1.close();
    b2.close();
  }
}

/** forgetStores of store two on store one now (by the injected clock): the error, undefined when accepted. */
async function forgetTwo(one: string, two: string): Promise<unknown> {
  const b = sqliteBackend(one);
  try {
    await compactGraph({ backend: b }, { graphName: "g", forgetStores: [`sqlite:${realpathSync(two)}`] });
    return undefined;
  } catch (err) {
    return err;
  } finally {
    b.close();
  }
}

describe("an idle live handle's stores stay live in the record", () => {
  it("idle for 61 minutes: the record says it was seen within SEEN_REFRESH_MS, and a forget right after it ended is refused", async () => {
    const [one, two] = [tmp.path("idle-one.db"), tmp.path("idle-two.db")];
    const { seenBefore, seenAfter } = await idleSession(one, two, 61 * MINUTE);
    // Before: seenAfter === seenBefore (the last baseline move, 61 minutes ago).
    expect(seenAfter).toBeGreaterThan(seenBefore);
    expect(Date.now() - seenAfter).toBeLessThanOrEqual(SEEN_REFRESH_MS);
    const err = await forgetTwo(one, two);
    // Before: accepted (the store looked idle past FORGET_LIVE_WINDOW_MS).
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ code: "store-live", details: { liveStores: [`sqlite:${realpathSync(two)}`] } });
    // An hour after the handle ended: accepted.
    vi.setSystemTime(Date.now() + FORGET_LIVE_WINDOW_MS);
    expect(await forgetTwo(one, two)).toBeUndefined();
  }, 120_000);

  it("idle for less than SEEN_REFRESH_MS: no record write more (the control)", async () => {
    const [one, two] = [tmp.path("short-one.db"), tmp.path("short-two.db")];
    const { seenBefore, seenAfter } = await idleSession(one, two, SEEN_REFRESH_MS - 2 * MINUTE);
    expect(seenAfter).toBe(seenBefore);
  }, 120_000);
});
