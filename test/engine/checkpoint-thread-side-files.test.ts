/**
 * Review r353 F5: the checkpointer thread opened a store with no look at its side files. A store's writer has them
 * looked at before its open (sqlite-side-files.ts), but its actor can die between its hand-over to the thread and the
 * thread's open: its connection is then closed and holds no lock, and a FIFO or link put there since was opened by the
 * thread's connection (here, as root: SQLITE_IOERR_SHMOPEN, SQLITE_CANTOPEN; as a user who cannot open a FIFO
 * read-write, SQLite opens it read-only, which blocked the thread for good: no store of the engine checkpointed by it
 * again, the engine's close waiting out its bound). The thread now looks first, as every opener does, and refuses the
 * store (reported to onError with the refusal's reason and file); it opens the -shm it reads as a regular file only.
 *
 * Real parts: the checkpointer thread (dist/workers/checkpointer.js), SQLite files, and the store's writer on a worker
 * thread of its own (fixtures/checkpoint-writer.mjs, its hand-over made by side-checkpoint as an actor's), terminated
 * for real, all in a child process run as nobody when this is root (review r374 L4: root opens a FIFO read-write, so
 * the hang was not met; the child is killed by its timer if the thread blocks for good). Ordering: the thread is held
 * (EngineCheckpointer.hold, which defers the hand-overs that come meanwhile) from before the hand-over until the side
 * file is in place.
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { asNobody } from "../support/as-nobody.js";
import { STATE_PENDING } from "../../src/engine/checkpoint-link.js";
import { REPO_ROOT, tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("checkpoint-side-files");
afterAll(() => root.remove());
const DIST = fileURLToPath(new URL("../../dist/", import.meta.url));

/**
 * The scenario, in the child: the thread held, a writer's hand-over of a store, the writer's thread terminated, the
 * side file placed (by `place`, as the child's user: a FIFO of mode 0444, which it cannot open read-write), the hold
 * lifted; prints the thread's reports and the stores it serves then. A thread blocked for good never answers: the
 * child's stop waits on it, and the timer kills the child.
 */
const SCENARIO = `
  const { execFileSync } = await import("node:child_process");
  const { existsSync, symlinkSync } = await import("node:fs");
  const { Worker } = await import("node:worker_threads");
  const [dist, writerEntry, path, suffix] = process.argv.slice(2);
  const { EngineCheckpointer } = await import(dist + "src/engine/checkpointer.js");
  const reports = [];
  const cp = new EngineCheckpointer(dist + "workers/checkpointer.js", (e) => reports.push({ code: e.code, details: e.details, message: e.message }), () => 0, 40, 0);
  const link = cp.linkForActor();
  cp.hold(true);
  await cp.stores(); // the hold reached the thread: a hand-over waits for its end
  const writer = new Worker(writerEntry);
  let next = 0;
  const call = (t, args = {}) => new Promise((resolve, reject) => {
    const id = next++;
    const on = (m) => { if (m.id !== id) return; writer.off("message", on); m.error === undefined ? resolve(m) : reject(new Error(m.error)); };
    writer.on("message", on);
    writer.postMessage({ id, t, ...args });
  });
  await call("link", { link });
  await call("open", { path });
  await call("write", { path, count: 3 });
  const state = (await call("words", { path })).state;
  await writer.terminate(); // the actor dies: nothing released, its connection closed by the thread's teardown
  const walBefore = existsSync(path + "-wal");
  const file = path + suffix;
  if (suffix === "-shm") execFileSync("mkfifo", ["-m", "0444", file]);
  else symlinkSync(path + "-victim", file);
  cp.hold(false);
  const deadline = Date.now() + 20_000;
  while (reports.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const stores = await cp.stores(); // the thread answers (not blocked)
  await cp.stop();
  console.log(JSON.stringify({ state, walBefore, reports, stores }));`;

/** Runs SCENARIO for `suffix` in a child (as nobody when root); its output, or the signal that ended it. */
function scenario(path: string, suffix: string): Promise<{ signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  // A file, not --eval: the threads it starts would inherit --input-type, which they refuse.
  const script = join(root.dir, "scenario.mjs");
  writeFileSync(script, SCENARIO);
  const [cmd, args] = asNobody(root.dir, [process.execPath, script, DIST, `${REPO_ROOT}test/engine/fixtures/checkpoint-writer.mjs`, path, suffix]);
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), 45_000);
  return new Promise((resolve) =>
    child.on("exit", (_code, signal) => {
      clearTimeout(timer);
      resolve({ signal, stdout, stderr });
    }),
  );
}

describe("the checkpointer thread's open of a store whose writer's actor died after the hand-over (review r353 F5)", () => {
  it.each([
    ["-shm", "a FIFO"],
    ["-wal", "a symbolic link"],
  ] as const)("%s put there as %s is refused before the thread opens anything: reported with the refusal's reason, the store not served", async (suffix, found) => {
    const dir = root.fresh(`died${suffix}`);
    mkdirSync(dir);
    const path = join(dir, "s.db");
    const r = await scenario(path, suffix);
    expect(r.signal, "the thread blocked on the side file for good").toBeNull();
    expect(r.stderr).toBe("");
    const out = JSON.parse(r.stdout) as { state: number; walBefore: boolean; reports: Array<{ code: string; details: unknown; message: string }>; stores: unknown[] };
    expect(out.state).toBe(STATE_PENDING);
    expect(out.walBefore).toBe(false);
    const file = `${path}${suffix}`;
    expect(out.reports).toHaveLength(1);
    expect(out.reports[0]!.code).toBe("backend-error");
    expect(out.reports[0]!.details).toEqual({ path, reason: "side-not-a-file", file });
    expect(out.reports[0]!.message).toContain(`its ${suffix} file ${file} is ${found}, not a regular file`);
    expect(out.stores).toStrictEqual([]); // the thread answered, and serves nothing
  }, 60_000);
});
