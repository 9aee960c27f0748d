/**
 * The file backend took and released its store lock (lock.ts: better-sqlite3 calls on the lock database) outside the
 * native gate, so an engine's watchdog could terminate its worker inside one of them, which aborts the whole process
 * (WiseLibs/better-sqlite3#842; design §3.30). A real worker thread (fixtures/lock-gate-worker.mjs) pauses inside the
 * lock's BEGIN (acquire) or close (release); the main thread reads the gate there, claims it as the watchdog does,
 * lets the call go on, and terminates the thread once the claim resolved: the call had returned by then.
 */
import { afterAll, expect, it } from "vitest";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { claimGates, insideNative, newNativeGate } from "../../src/engine/native-gate.js";

const WORKER = new URL("./fixtures/lock-gate-worker.mjs", import.meta.url);
const root = mkdtempSync(join(tmpdir(), "file-lock-gate-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it.each(["acquire", "release"] as const)("a claim during the file store lock's %s waits for its native call; the thread is terminated after", async (pauseAt) => {
  const gate = newNativeGate();
  const flags = new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
  const worker = new Worker(WORKER, { workerData: { dir: join(root, pauseAt), gate, flags: flags.buffer, pauseAt } });
  const [at] = (await once(worker, "message")) as [string];
  // The thread is inside the lock's call now: the gate must say so, or the watchdog would terminate it there.
  const inside = insideNative(gate);
  const claimed = claimGates([gate]);
  Atomics.store(flags, 0, 1);
  Atomics.notify(flags, 0);
  await claimed;
  const returned = Atomics.load(flags, 1) === 1;
  const exited = once(worker, "exit");
  await worker.terminate();
  await exited;
  expect({ at, inside, returned }).toEqual({ at: pauseAt, inside: true, returned: true });
});
