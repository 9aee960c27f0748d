/**
 * Task 210 (review r204, 3): a conditional batch waiting for another connection's check lock waited inside one native
 * call (SQLite's busy wait, up to 1 s) marked as such on the thread's native gates: the engine's main thread, ending
 * that worker (a watchdog, a close), could not claim the gates until the wait was over, and the batch then failed
 * store-busy anyway. Now each try is its own short native call and the pauses between them are outside it (asleep,
 * no CPU): a claim made while the batch waits is taken at the next pause, and the batch stops with
 * worker-unresponsive, nothing written. Real worker thread (fixtures/file-check-wait-worker.mjs, dist/), real files,
 * the lock held by a real SQLite connection of this thread.
 */
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { afterAll, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { CHECK_LOCK_FILE_NAME } from "../../src/backend/file-check-lock.js";
import { claimGates, insideNative, newNativeGate } from "../../src/engine/native-gate.js";

const WORKER = new URL("./fixtures/file-check-wait-worker.mjs", import.meta.url);
const root = mkdtempSync(join(tmpdir(), "file-check-wait-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Message {
  ready?: boolean;
  waiting?: boolean;
  ok?: boolean;
  code?: string;
}

it("a batch waiting for the check lock lets the engine claim its thread's gates; it stops worker-unresponsive, nothing written", async () => {
  const dir = join(root, "store");
  const mine = fileBackend(dir);
  const gate = newNativeGate();
  let holder: Database.Database | undefined;
  let worker: Worker | undefined;
  try {
    mine.write("k", Uint8Array.of(0));
    expect(mine.writeBatchIf({ key: "k", value: Uint8Array.of(0) }, [{ op: "put", key: "k", value: Uint8Array.of(0) }])).toBe(true);
    holder = new Database(join(dir, CHECK_LOCK_FILE_NAME));
    holder.exec("BEGIN IMMEDIATE"); // held until the worker answers

    const messages: Message[] = [];
    worker = new Worker(WORKER, { workerData: { dir, gate } });
    worker.on("message", (m: Message) => messages.push(m));
    const until = async (done: () => boolean): Promise<void> => {
      while (!done()) await new Promise((r) => setTimeout(r, 1));
    };
    await until(() => messages.some((m) => m.ready));
    worker.postMessage("go");
    // Waiting: a try found the lock held (or, before the fix, the thread sits inside SQLite's busy wait).
    await until(() => messages.some((m) => m.waiting) || insideNative(gate));
    await claimGates([gate]);
    await until(() => messages.some((m) => m.ok !== undefined));
    expect(messages.find((m) => m.ok !== undefined)).toMatchObject({ ok: false, code: "worker-unresponsive" });
    holder.exec("ROLLBACK");
    expect(Array.from(mine.read("k")!)).toEqual([0]);
  } finally {
    holder?.close();
    await worker?.terminate();
    mine.close();
  }
});
