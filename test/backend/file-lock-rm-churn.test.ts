/**
 * Task 385: another program running `rm -f <store>/.graphrefly.lock*` in a tight loop while writers in two threads
 * open the store, run conditional batches and close it, over and over. Failures came out as a plain backend-error
 * with SQLite's or the OS's word and no reason (ENOENT at the look after SQLite's open; "disk I/O error" or
 * SQLITE_READONLY_DBMOVED making the check lock, or committing the lock's row with its journal removed; a check lock's
 * open failing SQLITE_CANTOPEN while a newer hold's file was made there). Now every failure is typed with a reason
 * (store-busy lock-replaced: nothing written, try again; backend-error store-moved while an older handle has a removed
 * file open), and the counter holds every increment answered true. Real worker threads (fixtures/
 * file-lock-rm-churn-worker.mjs, dist/: build first), a real shell removing the files. How often the untyped failures
 * came depends on the machine's timing: backend/file-lock-removed-at-open places each at its exact step.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { afterAll, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { LOCK_FILE_NAME } from "../../src/backend/lock.js";

const WORKER = new URL("./fixtures/file-lock-rm-churn-worker.mjs", import.meta.url);
// A memory file system where there is one: its fsyncs cost nothing, so the threads open the store many times.
const root = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "file-lock-rm-churn-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const THREADS = 2;
const CYCLES = 150;

interface Result {
  acked: number;
  failures: Record<string, number>;
  untyped: string[];
}

it("rm -f .graphrefly.lock* in a loop while two threads open the store and run conditional batches: every failure typed, no increment lost", async () => {
  const dir = join(root, "store");
  fileBackend(dir).close(); // the directory made before the churn starts
  // The glob is the shell's, expanded at each pass: whatever lock files are there then.
  const churn = spawn("sh", ["-c", `while :; do rm -f "$0"/${LOCK_FILE_NAME}*; done`, dir], { stdio: "ignore" });
  let results: Result[];
  try {
    results = await Promise.all(
      Array.from({ length: THREADS }, async () => {
        const worker = new Worker(WORKER, { workerData: { dir, cycles: CYCLES } });
        try {
          const [result] = (await once(worker, "message")) as [Result];
          return result;
        } finally {
          await worker.terminate();
        }
      }),
    );
  } finally {
    churn.kill("SIGKILL");
    await once(churn, "exit");
  }
  const failures: Record<string, number> = {};
  for (const r of results) for (const [why, n] of Object.entries(r.failures)) failures[why] = (failures[why] ?? 0) + n;
  const b = fileBackend(dir);
  const stored = b.read("counter");
  b.close();
  const acked = results.reduce((sum, r) => sum + r.acked, 0);
  // Before: backend-error without a reason (ENOENT, disk I/O error, SQLITE_READONLY_DBMOVED, SQLITE_CANTOPEN).
  expect(results.flatMap((r) => r.untyped)).toEqual([]);
  const allowed = ["store-busy/lock-replaced", "backend-error/store-moved", "store-busy/lock-database-busy"];
  expect(Object.keys(failures).filter((why) => !allowed.includes(why))).toEqual([]);
  expect(stored === undefined ? 0 : new DataView(stored.buffer, stored.byteOffset, 4).getUint32(0)).toBe(acked);
  expect(acked).toBeGreaterThan(0);
});
