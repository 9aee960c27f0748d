/**
 * forgetStores' live window (docs/design.md §3.10, "Forgotten stays forgotten") counts only what a live handle said:
 * a forget's own rewrite of the record makes no store look seen (a record written before 2026-12-06 has no `seen`;
 * its own time stands for every store, and keeps standing after a forget), and a `seen` time from a clock that ran
 * ahead of this one (beyond FORGET_CLOCK_AHEAD_MS) does not keep a store "live" until this clock catches up. Real
 * SQLite files; the record is written as a live attach (or an older version) wrote it, at the time it says, with
 * the clock moved (Date only).
 */
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { sqliteBackend, type SqliteBackend } from "../../src/backend/sqlite.js";
import { StorageError } from "../../src/errors.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { parseSharedWalRecordAll, sharedWalRecordFrame, sharedWalRecordKey, type SharedWalStores } from "../../src/persistence/shared-wal-record.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { build } from "./fixtures/shared-wal.js";

const tmp = tempDir("shared-wal-forget-window");
afterAll(() => tmp.remove());
afterEach(() => void vi.useRealTimers());

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const TWO = "sqlite:/elsewhere/two.db";
const THREE = "sqlite:/elsewhere/three.db";

/** A store file holding graph g (one pair of its own, disposed): a baseline and frames, and a WAL to forget from. */
async function storeWithGraph(name: string): Promise<SqliteBackend> {
  const b = sqliteBackend(tmp.path(name));
  const g = build();
  const h = attachSnapshotStorage(g, [{ snapshot: snapshotStorage<GraphCheckpointRecord>(b), wal: kvStorage<WALFrame>(b, { codec: walFrameCodec }) }]);
  g.set("a", 1);
  await h.flush();
  await h.dispose();
  return b;
}

/** Stores the record naming `stores` (seen: `seen`, none for an older version's record) as written at `at` (ms). */
function writeRecord(b: SqliteBackend, at: number, stores: SharedWalStores, seen?: SharedWalStores): void {
  vi.useFakeTimers({ toFake: ["Date"], now: at });
  const frame = sharedWalRecordFrame("g", stores, undefined, seen);
  vi.useRealTimers();
  b.write(sharedWalRecordKey("g"), walFrameCodec.encode(frame));
}

/** The record's `seen` as stored now. */
function storedSeen(b: SqliteBackend): Record<string, number> {
  const record = parseSharedWalRecordAll("g", b.read(sharedWalRecordKey("g")) as Uint8Array | undefined);
  return Object.fromEntries(record?.seen ?? []);
}

/** Forgets `id` at `now` (this clock when undefined); resolves to the error, undefined when accepted. */
async function forget(b: SqliteBackend, id: string, now?: number): Promise<unknown> {
  if (now !== undefined) vi.useFakeTimers({ toFake: ["Date"], now });
  try {
    return await compactGraph({ backend: b }, { graphName: "g", forgetStores: [id] }).then(
      () => undefined,
      (err: unknown) => err,
    );
  } finally {
    vi.useRealTimers();
  }
}

describe("a forget's rewrite of the record", () => {
  it("of a record without seen (an older version's) leaves the other stores at that record's time: a second forget right after is accepted", async () => {
    const b = await storeWithGraph("old-record.db");
    try {
      const written = Date.now() - 3 * HOUR;
      writeRecord(b, written, new Map([[TWO, 0], [THREE, 0]]));
      expect(await forget(b, TWO)).toBeUndefined(); // three hours ago: not live
      const seenAfter = storedSeen(b);
      expect(await forget(b, THREE)).toBeUndefined();
      // The store kept had the old record's time, not the forget's (with none, the rewrite's own time stood for it).
      // (The record's time is stored in ns as a double: read back within a millisecond.)
      expect(Object.keys(seenAfter)).toEqual([THREE]);
      expect(Math.abs((seenAfter[THREE] as number) - written)).toBeLessThanOrEqual(1);
      expect(storedSeen(b)).toEqual({});
    } finally {
      b.close();
    }
  });

  it("keeps a store a live handle named lately live: the next forget of it is still refused store-live", async () => {
    const b = await storeWithGraph("live-kept.db");
    try {
      const seenThree = Date.now() - 10 * MINUTE;
      writeRecord(b, Date.now() - 10 * MINUTE, new Map([[TWO, 0], [THREE, 0]]), new Map([[TWO, Date.now() - 2 * HOUR], [THREE, seenThree]]));
      expect(await forget(b, TWO)).toBeUndefined();
      expect(storedSeen(b)).toEqual({ [THREE]: seenThree });
      const err = await forget(b, THREE);
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).code).toBe("store-live");
      expect((err as StorageError).details).toMatchObject({ liveStores: [THREE], seenAt: [new Date(seenThree).toISOString()] });
    } finally {
      b.close();
    }
  });

  it("of a record without seen written within the hour refuses a store in it (the record's time is a live attach's)", async () => {
    const b = await storeWithGraph("old-record-recent.db");
    try {
      const written = Date.now() - 20 * MINUTE;
      writeRecord(b, written, new Map([[TWO, 0], [THREE, 0]]));
      const err = await forget(b, TWO);
      expect((err as StorageError).code).toBe("store-live");
      // An hour after the record was written, by this clock: both go, the second right after the first.
      expect(await forget(b, TWO, written + HOUR + MINUTE)).toBeUndefined();
      expect(await forget(b, THREE, written + HOUR + 2 * MINUTE)).toBeUndefined();
    } finally {
      b.close();
    }
  });
});

describe("a seen time ahead of this clock", () => {
  it("far ahead (a clock that ran 3 days ahead, corrected since) is no evidence of a live handle: the forget is accepted", async () => {
    const b = await storeWithGraph("ahead-far.db");
    try {
      const ahead = Date.now() + 72 * HOUR;
      writeRecord(b, ahead, new Map([[TWO, 0]]), new Map([[TWO, ahead]]));
      expect(await forget(b, TWO)).toBeUndefined();
    } finally {
      b.close();
    }
  });

  it("far ahead in a record without seen (its own time) is no evidence either", async () => {
    const b = await storeWithGraph("ahead-far-old.db");
    try {
      writeRecord(b, Date.now() + 72 * HOUR, new Map([[TWO, 0]]));
      expect(await forget(b, TWO)).toBeUndefined();
    } finally {
      b.close();
    }
  });

  it("a minute ahead (another host's clock, in sync within the tolerance) counts as live", async () => {
    const b = await storeWithGraph("ahead-near.db");
    try {
      const ahead = Date.now() + MINUTE;
      writeRecord(b, ahead, new Map([[TWO, 0]]), new Map([[TWO, ahead]]));
      const err = await forget(b, TWO);
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).code).toBe("store-live");
    } finally {
      b.close();
    }
  });
});
