/**
 * A SQLite store whose lock is positively gone or replaced while its database file went with it ends its writes for
 * good (review r287 F1). StorePlace.moved() names the first file that moved, the database before the lock, and the
 * store asked lockGone() only when it named the lock: a directory removed and made again, or another writer's new
 * store opened at the same path, failed every write with a failure that may pass, so its tiers retried for ever and
 * handle.drained() never settled, against docs/api.md ("a lock file positively gone or replaced ... is for good").
 * A store only moved aside (its directory missing) still heals: test/backend/store-writes-ended.test.ts.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { syncErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-sqlite-lock-gone-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const RETRY = { retry: { initialMs: 5, maxMs: 20 } };

it("a SQLite store whose directory was removed and made again: its writes end for good, the error is its finalError", () => {
  const dir = join(root, "remade");
  mkdirSync(dir);
  const b = sqliteBackend(join(dir, "s.db"));
  try {
    b.write("a", new Uint8Array([1]));
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir); // the lock's directory is there without the lock: positively gone
    const first = syncErrorOf(() => b.write("b", new Uint8Array([2])));
    expect(first).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "lock" } });
    expect(b.finalError).toBe(first);
    expect(syncErrorOf(() => b.write("c", new Uint8Array([3])))).toBe(first);
  } finally {
    syncErrorOf(() => b.close());
  }
});

it("a SQLite store removed and opened anew at its path by another writer: its writes end for good, the new store keeps its own", () => {
  const dir = join(root, "replaced");
  mkdirSync(dir);
  const path = join(dir, "s.db");
  const b = sqliteBackend(path);
  let other: ReturnType<typeof sqliteBackend> | undefined;
  try {
    b.write("a", new Uint8Array([1]));
    rmSync(dir, { recursive: true, force: true });
    other = sqliteBackend(path); // a new database and a new lock at the same paths
    other.write("x", new Uint8Array([9]));
    const first = syncErrorOf(() => b.write("b", new Uint8Array([2])));
    expect(first).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "lock" } });
    expect(b.finalError).toBe(first);
    // Nothing of the lost writer reached the new store.
    expect(other.list("")).toEqual(["x"]);
  } finally {
    syncErrorOf(() => b.close());
    syncErrorOf(() => other?.close());
  }
});

it("behind a full WAL tier, a SQLite store whose directory was removed and made again: drained() rejects with its finalError", async () => {
  const dir = join(root, "drained");
  mkdirSync(dir);
  const b = sqliteBackend(join(dir, "s.db"));
  const g = createGraph("g");
  g.state("a", "");
  const wal = kvStorage<WALFrame>(b, { codec: walFrameCodec, ...RETRY, maxPendingBytes: 2_000 });
  const h = attachSnapshotStorage(g, [{ snapshot: snapshotStorage<GraphCheckpointRecord>(b, RETRY), wal }], { onError: () => {} });
  try {
    await h.flush();
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    for (let v = 1; v <= 50; v++) g.set("a", "x".repeat(200) + v);
    // Before the fix drained() never settled: the bound only turns that hang into a readable failure.
    let bound: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      h.drained().then(() => "resolved", (e: unknown) => e),
      new Promise((r) => (bound = setTimeout(() => r("still pending"), 10_000))),
    ]);
    clearTimeout(bound);
    expect(b.finalError).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "lock" } });
    expect(outcome).toBe(b.finalError);
  } finally {
    await h.dispose().catch(() => {});
    syncErrorOf(() => b.close());
  }
}, 30_000);
