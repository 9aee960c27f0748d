/**
 * `frames` and `inspect` over a live file store show whole waves only (docs/design.md §3.36). A file store's batch
 * renames its frames into place one by one, so a listing made between two renames ends in a wave in part (here a
 * `b` set without the `sum` it derived in the same wave), a state the writer never had. The CLI now waits for the
 * batches under way and leaves such a tail wave out (saying so), as restore and followers do. The store is a real
 * writer's (a child process, killed); the batch under way is made on disk: the wave's last frame moved to a temp
 * file of this running process, renamed back while the CLI (a child process) waits for it.
 */
import { fork, spawn } from "node:child_process";
import { readdirSync, readFileSync, renameSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, requireBuiltBin, tempDir, type CliRun } from "./fixtures/cli.js";

const tmp = tempDir("live-waves");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

const WRITER = fileURLToPath(new URL("./fixtures/compacting-writer.mjs", import.meta.url));
const walFiles = (dir: string): string[] => readdirSync(dir).filter((f) => f.startsWith("g%2fwal%2f")).sort();
const pathOf = (dir: string, file: string): string => (JSON.parse(readFileSync(join(dir, file), "utf8")) as { path: string }).path;

/** A real writer's file store (killed), its WAL cut back to end in a wave's `sum`. */
async function writerStore(name: string): Promise<string> {
  const dir = tmp.path(name);
  const child = fork(WRITER, [JSON.stringify({ kind: "file", store: dir })], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  await new Promise<void>((resolve, reject) => {
    child.on("message", (m: { t: string }) => m.t === "ready" && resolve());
    child.on("exit", (code) => reject(new Error(`the writer exited (${code}) before it was ready`)));
  });
  while (walFiles(dir).length < 4) await new Promise((r) => setImmediate(r));
  const exited = new Promise((r) => child.on("exit", r));
  child.kill("SIGKILL");
  await exited;
  const files = walFiles(dir);
  while (pathOf(dir, files[files.length - 1]!) !== "sum") unlinkSync(join(dir, files.pop()!));
  expect(files.length).toBeGreaterThanOrEqual(2);
  return dir;
}

/** Runs the CLI with the wave's last frame renamed away, and renames it back `afterMs` later (the batch ends). */
async function runMidBatch(dir: string, args: readonly string[], afterMs: number): Promise<CliRun> {
  const last = walFiles(dir).pop()!;
  const temp = join(dir, `.tmp-${process.pid}-0-999999`);
  renameSync(join(dir, last), temp);
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => renameSync(temp, join(dir, last)), afterMs);
  const code = await new Promise<number | null>((r) => child.on("close", r));
  clearTimeout(timer);
  try {
    renameSync(temp, join(dir, last)); // not yet renamed back (the CLI ended first)
  } catch {
    // renamed back already
  }
  return { code, stdout, stderr };
}

interface FrameLine {
  frame: { path: string; frame_t_ns: number };
}

describe("the CLI over a file store whose writer is renaming a batch into place", () => {
  it("frames prints whole waves: the tail wave caught in part is left out, and said so", { timeout: 60_000 }, async () => {
    const dir = await writerStore("frames");
    const r = await runMidBatch(dir, ["frames", dir, "--graph", "g"], 2_000);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as FrameLine);
    const last = lines[lines.length - 1]!;
    // The last wave printed is whole: it ends in its sum (a wave in part ended in the set of a or b).
    expect(last.frame.path).toBe("sum");
    const lastWave = lines.filter((l) => l.frame.frame_t_ns === last.frame.frame_t_ns).map((l) => l.frame.path);
    expect(lastWave).toHaveLength(2);
    // Either the CLI listed before the batch ended (the wave left out, said on stderr) or after (all of it).
    expect(r.stderr).toMatch(/^(note: 1 frame of a wave still being written, not shown\n)?$/);
  });

  it("inspect counts whole waves only", { timeout: 60_000 }, async () => {
    const dir = await writerStore("inspect");
    const total = walFiles(dir).length;
    const r = await runMidBatch(dir, ["inspect", dir, "--graph", "g", "--json"], 2_000);
    expect(r.code, r.stderr).toBe(0);
    const wal = (JSON.parse(r.stdout) as { graphs: Array<{ wal: { frames: number; inFlight: number; kinds: Record<string, number> } }> }).graphs[0]!.wal;
    // Listed mid-batch: the `sum` unlisted and the wave's set left out (in flight); listed after: every frame.
    expect([wal.frames, wal.inFlight]).toEqual(wal.inFlight === 0 ? [total, 0] : [total - 2, 1]);
  });
});
