/**
 * Two handles of one store in two threads, each merging the append-log's segments (review r349 H2). Handle A lists
 * and reads segments 1 and 2 and stops before its merge batch; handle B (a worker thread) compacts, then appends
 * {i: 2}, acknowledged, stored as segment 1 again (its numbers start above what it lists). A's batch then goes
 * ahead. Before the fix it was unconditional and deleted B's acknowledged segment; now it applies only while the
 * fold and base hold what A read (design §3.11), so A lists again and merges what is there.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { afterAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { BatchOp, StorageBackend } from "../../src/backend/types.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { assertBuilt } from "../reliability/fixtures/crash-harness.js";
import { gatedBackend } from "./fixtures/race-handles.mjs";

const DIST = fileURLToPath(new URL("../../dist/src/index.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "append-compact-race-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Worker B: waits for A's signal, compacts and appends {i: 2} through a handle of its own, then signals back. */
const WORKER = `
const { workerData } = require("node:worker_threads");
(async () => {
  const lib = await import(workerData.dist);
  const cell = new Int32Array(workerData.sab);
  Atomics.wait(cell, 0, 0, 60000);
  const backend = workerData.kind === "sqlite" ? lib.sqliteBackend(workerData.path) : lib.fileBackend(workerData.path);
  const log = lib.appendLogStorage(backend, { name: "log" });
  await log.compact();
  log.appendEntries([{ i: 2 }]);
  await log.flush();
  await log.close();
  await backend.close?.();
  Atomics.store(cell, 1, 1);
  Atomics.notify(cell, 1);
})().catch((err) => {
  console.error(err);
  Atomics.store(cell, 1, 2);
  Atomics.notify(cell, 1);
});
`;

/** A's hook: its first batch that deletes (the merge's) waits there until B has compacted and appended. */
function pausingAtMerge(cell: Int32Array): (ops: readonly BatchOp[]) => void {
  let paused = false;
  return (ops) => {
    if (paused || !ops.some((o) => o.op === "delete")) return;
    paused = true;
    Atomics.store(cell, 0, 1);
    Atomics.notify(cell, 0);
    Atomics.wait(cell, 1, 0, 60_000);
  };
}

describe.each([
  ["file store", "file"],
  ["SQLite", "sqlite"],
] as const)("a stale merge of another thread's handle, %s", (_name, kind) => {
  it("keeps the entry appended after the other handle's merge", async () => {
    assertBuilt();
    const path = join(dir, kind === "sqlite" ? "race.db" : "race");
    const open = (): StorageBackend => (kind === "sqlite" ? sqliteBackend(path) : fileBackend(path));
    const first = open();
    const setup = appendLogStorage<{ i: number }>(first, { name: "log" });
    for (const i of [0, 1]) {
      setup.appendEntries([{ i }]);
      await setup.flush();
    }
    await setup.close();
    await first.close?.();

    const sab = new SharedArrayBuffer(8);
    const cell = new Int32Array(sab);
    const worker = new Worker(WORKER, { eval: true, workerData: { sab, dist: DIST, kind, path } });
    const exited = new Promise((resolve) => worker.on("exit", resolve));
    const inner = open();
    const a = appendLogStorage<{ i: number }>(gatedBackend(inner, { beforeWrite: pausingAtMerge(cell) }), { name: "log" });
    try {
      await a.compact();
      await exited;
      expect(Atomics.load(cell, 1), "worker B compacted and appended").toBe(1);
      expect((await a.loadEntries()).entries).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }]);
    } finally {
      await a.close();
      await inner.close?.();
    }
  }, 60_000);
});
