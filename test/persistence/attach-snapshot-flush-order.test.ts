/**
 * handle.flush() asks the WAL tier first and the snapshot tier only after it resolved ("frames first": a baseline
 * never lands before them), also when nothing of the pair waits in the snapshot tier: asking both at once took
 * reports a failed WAL flush left unheard (review r332, design §3.51). A baseline whose flush failed stays pending and
 * is made durable by the next flush, after the frames. Real SQLite files, inline tiers wrapped only to record calls.
 */
import Database from "better-sqlite3";
import { setImmediate as nextTurn } from "node:timers/promises";
import { afterAll, expect, it } from "vitest";
import { attachSnapshotStorage, createGraph, type GraphCheckpointRecord } from "../../src/index.js";
import { sqliteKv, sqliteSnapshot } from "../../src/tier/index.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { tempRoot } from "../engine/fixtures/helpers.js";

const root = tempRoot("attach-snapshot-flush-order");
afterAll(() => root.remove());

/** `tier` with its flush recorded in `log` as `<what>.flush` (called) and `<what>.flushed` (resolved). */
function recorded<T extends object>(tier: T & { flush(): Promise<void> }, what: string, log: string[], fail?: { next: boolean }): T {
  return new Proxy(tier, {
    get(target, prop) {
      if (prop === "flush") {
        return async () => {
          log.push(`${what}.flush`);
          if (fail?.next === true) {
            fail.next = false;
            throw new Error("disk hiccup"); // transient: what the tier holds stays pending, as after a failed write
          }
          await target.flush();
          log.push(`${what}.flushed`);
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** The seq of graph "g"'s baseline in the snapshot file, as another connection reads it from disk. */
function storedSeq(path: string): number | undefined {
  const db = new Database(path, { readonly: true });
  try {
    for (const v of db.prepare<[], Buffer>("SELECT v FROM graphrefly_storage").pluck().all()) {
      const record = JSON.parse(Buffer.from(v).toString()) as Partial<GraphCheckpointRecord>;
      if (record.name === "g") return record.seq;
    }
    return undefined;
  } finally {
    db.close();
  }
}

/** The WAL's flush asked and resolved, then the snapshot tier's asked and resolved: frames first. */
function expectInOrder(log: readonly string[]): void {
  expect(log).toStrictEqual(["wal.flush", "wal.flushed", "snapshot.flush", "snapshot.flushed"]);
}

function open(compactEvery: number) {
  const log: string[] = [];
  const fail = { next: false };
  const snapshotPath = root.fresh("snapshot.db");
  // Debounced for an hour: a baseline stays pending in the tier until a flush writes it.
  const snapshot = recorded(
    sqliteSnapshot<GraphCheckpointRecord>(snapshotPath, { name: "snap", debounceMs: 3_600_000 }),
    "snapshot",
    log,
    fail,
  ) as SnapshotStorageTier<GraphCheckpointRecord>;
  const wal = recorded(sqliteKv<WALFrame>(root.fresh("wal.db"), { name: "wal", codec: walFrameCodec }), "wal", log) as KvStorageTier<WALFrame>;
  const g = createGraph("g");
  g.state("a", 0);
  const errors: unknown[] = [];
  const handle = attachSnapshotStorage(g, [{ snapshot, wal }], { compactEvery, onError: (e) => errors.push(e) });
  const close = async () => {
    await handle.dispose();
    await snapshot.close();
    await wal.close();
  };
  return { g, handle, log, fail, snapshotPath, errors, close };
}

it("with no baseline pending, the snapshot tier's flush is still asked after the WAL's resolved (review r332)", async () => {
  const { g, handle, log, snapshotPath, close } = open(Number.POSITIVE_INFINITY);
  try {
    await handle.flush(); // the attach baseline, acknowledged
    const attachSeq = storedSeq(snapshotPath);
    expect(attachSeq).toBeDefined();
    for (let round = 1; round <= 3; round++) {
      g.set("a", round);
      await nextTurn();
      log.length = 0;
      const durable = await handle.flush();
      expect(durable).toBe(attachSeq! + round); // one frame a wave, each acknowledged
      expectInOrder(log);
    }
  } finally {
    await close();
  }
});

it("a baseline whose snapshot flush failed stays pending, and the next flush lands it after the frames ", async () => {
  const { g, handle, log, fail, snapshotPath, errors, close } = open(2);
  try {
    await handle.flush();
    const attachSeq = storedSeq(snapshotPath)!;
    g.set("a", 1);
    await nextTurn();
    g.set("a", 2); // the second wave since the attach baseline: a periodic baseline at its seq
    await nextTurn();
    fail.next = true;
    log.length = 0;
    await expect(handle.flush()).rejects.toThrow("disk hiccup");
    expect(log).toStrictEqual(["wal.flush", "wal.flushed", "snapshot.flush"]);
    expect(storedSeq(snapshotPath)).toBe(attachSeq); // the periodic baseline is not on disk
    expect(errors).toHaveLength(1);

    // Nothing new since: the baseline handed before is this pair's, pending in the tier. It must still be flushed, and
    // only once the frames it covers are durable.
    log.length = 0;
    expect(await handle.flush()).toBe(attachSeq + 2);
    expectInOrder(log);
    expect(storedSeq(snapshotPath)).toBe(attachSeq + 2);

    g.set("a", 3);
    await nextTurn();
    log.length = 0;
    expect(await handle.flush()).toBe(attachSeq + 3);
    expectInOrder(log);
  } finally {
    await close();
  }
});
