/**
 * The watchdog never terminates a worker thread inside a native SQLite call (review s15c D2): terminated there, the
 * call returned into a terminating isolate and better-sqlite3 aborted the WHOLE process ("FATAL ERROR:
 * v8::ToLocalChecked Empty MaybeLocal", exit 134; WiseLibs/better-sqlite3#842). Now the waiting calls reject
 * worker-unresponsive at once (in doubt: the call may still commit), the thread is terminated only when the call
 * returned, and the store reopens on a fresh thread after that. The engine runs in a child process of its own
 * (fixtures/native-call-child.mjs, whose steps say how each waits for an event), its thread held inside one native
 * call by a lock a third process holds until the child saw the rejection; the call then returns with an SQLite
 * error (a trigger the lock holder added refuses the write), the path that aborted.
 */
import { afterAll, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { tempRoot } from "./fixtures/helpers.js";

const CHILD = fileURLToPath(new URL("./fixtures/native-call-child.mjs", import.meta.url));
const root = tempRoot("watchdog-native-call");
afterAll(() => root.remove());

/** Runs the child in `mode`; its exit must be clean (before the fix: SIGABRT, "FATAL ERROR" on stderr). */
async function runChild(mode: "watchdog" | "close"): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [CHILD, root.fresh("store.db"), mode], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on("exit", (c, s) => r([c, s])));
  expect({ code, signal, err: err.slice(0, 600) }).toEqual({ code: 0, signal: null, err: "" });
  return JSON.parse(out.trim().split("\n").at(-1)!) as Record<string, unknown>;
}

it("a thread inside a long SQLite call when the watchdog fires: calls reject, the process lives, the store works after", async () => {
  const report = await runChild("watchdog");
  // The call waiting on the thread rejected when the watchdog fired, in doubt (its write was still running).
  expect(report.job).toEqual({ code: "worker-unresponsive", inDoubt: true });
  // The next actor started only once the old thread was gone (after its write failed): its open met the trigger
  // (corrupt-store; on a machine too loaded for the bound, its new thread may be taken for a hang first).
  expect(["corrupt-store", "worker-unresponsive"]).toContain(report.reopen);
  // Then the store writes and reads on a fresh thread; the job's write was refused by the trigger, not half-stored.
  expect(report.after).toEqual({ after: 3, fromJob: null });
}, 120_000);

it("close() giving a store up while its thread is inside a long SQLite call: the pool is destroyed after the call", async () => {
  const report = await runChild("close");
  expect(report.job).toEqual({ code: "close-timeout", inDoubt: false });
  expect(report.closed).toBe("close-timeout"); // close settles (with the give-up) once the call returned
  expect(report.after).toEqual({ warm: 1, fromJob: null });
}, 120_000);
