/**
 * `frames` and `inspect` over a live file store show whole waves only (docs/design.md §3.36). A file store's batch
 * renames its frames into place one by one, so a listing made between two renames ends in a wave in part (here a
 * `b` set without the `sum` it derived in the same wave), a state the writer never had. The CLI now waits for the
 * batches under way and leaves such a tail wave out (saying so), as restore and followers do. The store is a real
 * writer's (a child process, killed); the batch under way is made on disk: the wave's last frame moved to a temp
 * file of this running process, renamed back once the CLI (a child process) has listed the frames: counted by the
 * CLI's own progress (it is held at its first read of a listed frame), never by time, so the test always exercises
 * the listing mid-batch (before: renamed back after 2 s, and a CLI starting later passed without meeting it).
 */
import { execFileSync, spawn } from "node:child_process";
import { constants, renameSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, requireBuiltBin, tempDir, type CliRun } from "./fixtures/cli.js";
import { killedWriterStoreEndingInSum, walFiles } from "./fixtures/writer-store.js";

const tmp = tempDir("live-waves");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

/** A real writer's file store (killed), its WAL cut back to end in a wave's `sum`. */
async function writerStore(name: string): Promise<string> {
  const dir = tmp.path(name);
  expect((await killedWriterStoreEndingInSum(dir)).length).toBeGreaterThanOrEqual(2);
  return dir;
}

const PAUSE_HOOK = fileURLToPath(new URL("./fixtures/pause-at-open.mjs", import.meta.url));

/**
 * Runs the CLI with the wave's last frame renamed away (a batch under way: the temp file is this running process's)
 * and renames it back once the CLI has listed the frames: when it opens the last frame it listed (pause-at-open.mjs
 * holds it there until the rename is done). So the CLI always lists mid-batch and the batch ends before it reads on,
 * whatever the machine's load; `paused` says it happened (a CLI that never opened that frame never paused).
 */
async function runMidBatch(dir: string, args: readonly string[]): Promise<CliRun & { paused: boolean }> {
  const files = walFiles(dir);
  const last = files.pop()!;
  const listedTail = join(dir, files[files.length - 1]!);
  const temp = join(dir, `.tmp-${process.pid}-0-999999`);
  const fifo = tmp.path("pause.fifo");
  execFileSync("mkfifo", [fifo]);
  renameSync(join(dir, last), temp);
  const child = spawn(process.execPath, ["--import", PAUSE_HOOK, BIN, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, GRF_PAUSE_AT: listedTail, GRF_PAUSE_FIFO: fifo },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<number | null>((r) => child.on("close", r));
  // Opening the FIFO for writing completes once the CLI opened it for reading: it is paused at that frame.
  const opening = open(fifo, "w");
  const paused = await Promise.race([opening.then(() => true), closed.then(() => false)]);
  if (paused) {
    renameSync(temp, join(dir, last)); // the batch ends, after the CLI's listing
    await (await opening).close(); // the CLI reads on
  } else {
    renameSync(temp, join(dir, last));
    // The CLI ended without pausing: open the FIFO's reading end ourselves so the pending open for writing ends.
    const reader = await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    await (await opening).close();
    await reader.close();
  }
  return { code: await closed, stdout, stderr, paused };
}

interface FrameLine {
  frame: { path: string; frame_t_ns: number };
}

describe("the CLI over a file store whose writer is renaming a batch into place", () => {
  it("frames prints whole waves: the tail wave caught in part is left out, and said so", { timeout: 60_000 }, async () => {
    const dir = await writerStore("frames");
    const r = await runMidBatch(dir, ["frames", dir, "--graph", "g"]);
    expect(r.paused, "the CLI listed the frames mid-batch").toBe(true);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as FrameLine);
    const last = lines[lines.length - 1]!;
    // The last wave printed is whole: it ends in its sum (a wave in part ended in the set of a or b).
    expect(last.frame.path).toBe("sum");
    const lastWave = lines.filter((l) => l.frame.frame_t_ns === last.frame.frame_t_ns).map((l) => l.frame.path);
    expect(lastWave).toHaveLength(2);
    // The CLI listed before the batch ended: the wave's set it listed is left out, and said so on stderr.
    expect(r.stderr).toBe("note: 1 frame of a wave still being written, not shown\n");
  });

  it("inspect counts whole waves only", { timeout: 60_000 }, async () => {
    const dir = await writerStore("inspect");
    const total = walFiles(dir).length;
    const r = await runMidBatch(dir, ["inspect", dir, "--graph", "g", "--json"]);
    expect(r.paused, "the CLI listed the frames mid-batch").toBe(true);
    expect(r.code, r.stderr).toBe(0);
    const wal = (JSON.parse(r.stdout) as { graphs: Array<{ wal: { frames: number; inFlight: number; kinds: Record<string, number> } }> }).graphs[0]!.wal;
    // Listed mid-batch: the `sum` unlisted and the wave's set left out (in flight).
    expect([wal.frames, wal.inFlight]).toEqual([total - 2, 1]);
  });
});
