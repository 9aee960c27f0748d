/**
 * An attach pair over an engine store whose close could not drain (task 307 item 2): engine.close()'s drain failed
 * (every write of the file store fails EIO), nothing of the pair's last waves was stored, and the pair's next flush
 * met its tier closed with that failure. The pair's error said the write "was refused for good" (a refusal: a value
 * or key the store will never take) and pointed at handle.rebaseline(), which an engine closed under it cannot run.
 * It now says what happened: the engine's close could not store the write, with the drain's failure as its cause.
 * Never "not stored" (review r314 F3): a drain that failed on the snapshot tier's store may have stored the WAL
 * tier's frame in another store, and a restore then gives it; the error names the baseline not acknowledged. Nor
 * "refused for good ... rebaseline()" for a save met by an engine already closed (review r314 F4): the close's drain
 * stored the frame, the periodic baseline after it met the closed tier.
 * Real parts: engine workers over file stores, their EIO from the test-only marker file beside a store's directory
 * (src/backend/file-faults.ts), a restore from the stores opened again on this thread.
 */
import { rmSync, writeFileSync } from "node:fs";
import { afterAll, expect, it } from "vitest";
import { WRITE_FAULT_ENV } from "../../src/backend/file-faults.js";
import { fileBackend } from "../../src/backend/file.js";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { createGraph } from "../../src/graph/graph.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord, StorageHandle } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { settledTo } from "../support/settled.js";
import { tempRoot } from "./fixtures/helpers.js";

const SUFFIX = ".t307-fault";
// Read by each engine worker as it starts (a worker copies process.env): set before any engine opens.
process.env[WRITE_FAULT_ENV] = SUFFIX;

const root = tempRoot("drain-failed-pair");
afterAll(() => root.remove());


it("after engine.close()'s drain failed (EIO), the pair's flush says the close could not store the write, with the failure as cause", async () => {
  const dir = root.fresh("store");
  const spec: StoreSpec = { kind: "file", dir };
  const engine = openStorageEngine({ threads: 1, onError: () => undefined });
  const g = createGraph("g");
  g.state("c", 0);
  const heard: unknown[] = [];
  const h = attachSnapshotStorage(g, [{ snapshot: engine.snapshot<GraphCheckpointRecord>(spec), wal: engine.kv<WALFrame>(spec, { codec: walFrameCodec, debounceMs: 60_000 }) }], {
    onError: (e) => void heard.push(e),
  });
  await h.flush(); // the store exists, its first baseline stored
  writeFileSync(`${dir}${SUFFIX}`, ""); // every write fails EIO from now on
  g.set("c", 1);
  const closed = await settledTo(engine.close());
  expect(closed).toMatchObject({ code: "backend-error" });
  const flushed = await settledTo(h.flush());
  expect(flushed).toBeInstanceOf(StorageError);
  const err = flushed as StorageError;
  expect(err.code).toBe("write-refused");
  expect(err.details).toMatchObject({ graph: "g", seq: 2, reason: "drain-failed" });
  // What happened: the close's drain failed, and why (the EIO), not "refused for good" nor "rebaseline()".
  expect(err.message).toMatch(
    /the write at seq 2 is not acknowledged \(it may be stored\): the storage engine closed and its final drain of the store failed \(StorageError backend-error: .*EIO/,
  );
  expect(err.message).not.toMatch(/refused|rebaseline|not stored/);
  // The tier's own answer is the cause: closed, carrying the drain's failure.
  expect(err.cause).toMatchObject({ code: "closed", details: { reason: "drain-failed" }, cause: { code: "backend-error", details: { osCode: "EIO" } } });
  // onError hears the stop once, and nothing else: no frame "left to delete" (every delete met the closed tier).
  expect(heard).toEqual([err]);
  expect(await settledTo(h.dispose())).toBe(err);
}, 30_000);

/** What node `c` of graph "g" restores to from a snapshot tier in `snapDir` and a WAL tier in `walDir` (file stores). */
async function restoredC(snapDir: string, walDir: string): Promise<unknown> {
  const snap = fileBackend(snapDir);
  const wal = fileBackend(walDir);
  try {
    const g = createGraph("g");
    g.state("c", -1);
    await restoreSnapshot(g, { snapshot: snapshotStorage<GraphCheckpointRecord>(snap), wal: kvStorage<WALFrame>(wal, { codec: walFrameCodec }) });
    return g.get("c");
  } finally {
    await snap.close?.();
    await wal.close?.();
  }
}

/** A pair with its snapshot tier and WAL tier in two file stores (a wave's periodic baseline with compactEvery 1). */
function twoStorePair(): { snapDir: string; walDir: string; engine: StorageEngine; h: StorageHandle; g: ReactiveGraph; heard: unknown[] } {
  const snapDir = root.fresh("snap");
  const walDir = root.fresh("wal");
  const engine = openStorageEngine({ threads: 2, onError: () => undefined });
  const g = createGraph("g");
  g.state("c", 0);
  const heard: unknown[] = [];
  const snapshot = engine.snapshot<GraphCheckpointRecord>({ kind: "file", dir: snapDir }, { debounceMs: 60_000 });
  const wal = engine.kv<WALFrame>({ kind: "file", dir: walDir }, { codec: walFrameCodec, debounceMs: 60_000 });
  const h = attachSnapshotStorage(g, [{ snapshot, wal }], { compactEvery: 1, onError: (e) => void heard.push(e) });
  return { snapDir, walDir, engine, h, g, heard };
}

it("a close whose drain failed on the snapshot tier's store alone: the baseline is named not acknowledged, never the stored frame 'not stored'", async () => {
  const { snapDir, walDir, engine, h, g, heard } = twoStorePair();
  await h.flush(); // both stores exist, the first baseline stored
  writeFileSync(`${snapDir}${SUFFIX}`, ""); // the snapshot store's writes fail EIO from now on; the WAL store's do not
  let err: StorageError;
  try {
    g.set("c", 1);
    await new Promise((resolve) => setImmediate(resolve)); // the wave's periodic baseline is saved (a microtask of it)
    expect(await settledTo(engine.close())).toMatchObject({ code: "backend-error" });
    const flushed = await settledTo(h.flush());
    expect(flushed).toBeInstanceOf(StorageError);
    err = flushed as StorageError;
    expect(err.code).toBe("write-refused");
    expect(err.details).toMatchObject({ graph: "g", seq: 2, reason: "drain-failed", baseline: 2 });
    expect(err.message).toMatch(
      /the baseline at seq 2 is not acknowledged \(it may be stored\): the storage engine closed and its final drain of the snapshot tier's store failed \(StorageError backend-error: .*EIO/,
    );
    expect(err.message).not.toMatch(/not stored|refused|rebaseline/);
    expect(err.cause).toMatchObject({ code: "closed", details: { reason: "drain-failed" }, cause: { code: "backend-error", details: { osCode: "EIO" } } });
    expect(heard).toEqual([err]);
    expect(await settledTo(h.dispose())).toBe(err);
  } finally {
    rmSync(`${snapDir}${SUFFIX}`, { force: true });
  }
  // The WAL store drained cleanly: the wave at seq 2 is stored, and a restore of the two stores gives it.
  expect(await restoredC(snapDir, walDir)).toBe(1);
}, 30_000);

it("a save met by an engine already closed (its close resolved): the write is not acknowledged, not 'refused for good' until rebaseline()", async () => {
  const { snapDir, walDir, engine, h, g, heard } = twoStorePair();
  await h.flush();
  g.set("c", 1); // its frame is taken now; its periodic baseline is saved in a microtask, after close() began
  expect(await settledTo(engine.close())).toBe("resolved");
  const flushed = await settledTo(h.flush());
  expect(flushed).toBeInstanceOf(StorageError);
  const err = flushed as StorageError;
  expect(err.code).toBe("write-refused");
  // The write that met the closed engine is the wave's periodic baseline at seq 2 (its save threw): named as such,
  // not "the write at seq 2", which is the stored frame (task 321).
  expect(err.details).toMatchObject({ graph: "g", seq: 2, reason: "engine-closed", baseline: 2 });
  expect(err.message).toMatch(/the baseline at seq 2 is not acknowledged \(it may be stored\): the storage engine closed \(StorageError closed: storage tier .* is closing\)/);
  expect(err.message).not.toMatch(/not stored|refused|rebaseline/);
  expect(err.cause).toMatchObject({ code: "closed", details: { reason: "engine-closed" } });
  expect(heard).toEqual([err]);
  expect(await settledTo(h.dispose())).toBe(err);
  // The close's drain stored the frame: a restore gives the wave.
  expect(await restoredC(snapDir, walDir)).toBe(1);
}, 30_000);
