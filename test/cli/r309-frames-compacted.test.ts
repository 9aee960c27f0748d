/**
 * Review r309 F3: `frames` on a live compacting file store printed `{"error":"absent when read (deleted since it was
 * listed…)"}` lines: a compaction deleted frames between the listing and their reads. A frame gone when read whose
 * seq the baseline now covers was folded, not lost: it is left out. A frame gone above the baseline is still an
 * error line. The compaction is made on disk while the CLI (a child process) is held at its read of a listed frame
 * (pause-at-open.mjs: counted by the CLI's own progress, never by time).
 */
import { execFileSync, spawn } from "node:child_process";
import { constants, unlinkSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { encodeKeyToFileName } from "../../src/backend/file-names.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";
import { BIN, requireBuiltBin, tempDir, type CliRun } from "./fixtures/cli.js";
import { baselineSnapshot, buildStore } from "./fixtures/stores.js";

const tmp = tempDir("r309-frames-compacted");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

const PAUSE_HOOK = fileURLToPath(new URL("./fixtures/pause-at-open.mjs", import.meta.url));
const frameFile = (dir: string, seq: number): string => join(dir, encodeKeyToFileName(walFrameKey(graphWalPrefix("g"), seq)));

/** `frames` over store `dir`, held at its read of frame `pauseSeq` while `meanwhile` changes the store. */
async function framesPausedAt(dir: string, pauseSeq: number, meanwhile: () => Promise<void>): Promise<CliRun> {
  const fifo = tmp.path("pause.fifo");
  execFileSync("mkfifo", [fifo]);
  const child = spawn(process.execPath, ["--import", PAUSE_HOOK, BIN, "frames", dir, "--graph", "g"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, GRF_PAUSE_AT: frameFile(dir, pauseSeq), GRF_PAUSE_FIFO: fifo },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<number | null>((r) => child.on("close", r));
  const opening = open(fifo, "w"); // completes once the CLI opened the FIFO: it is held at that frame
  const paused = await Promise.race([opening.then(() => true), closed.then(() => false)]);
  if (paused) {
    await meanwhile();
    await (await opening).close();
  } else {
    const reader = await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    await (await opening).close();
    await reader.close();
  }
  expect(paused, `the CLI never read frame ${pauseSeq}: ${stderr}`).toBe(true);
  return { code: await closed, stdout, stderr };
}

/** A compaction as the store's actor makes it: the new baseline at `seq` first, then the frames it covers deleted. */
async function compactTo(dir: string, seq: number): Promise<void> {
  const backend = fileBackend(dir);
  try {
    const snap = snapshotStorage<GraphCheckpointRecord>(backend);
    snap.save({ name: "g", mode: "full", snapshot: baselineSnapshot("g"), seq, timestamp_ns: 1_700_000_000_000_000_001, format_version: 1 });
    await snap.flush();
  } finally {
    backend.close();
  }
  for (let s = 2; s <= seq; s++) unlinkSync(frameFile(dir, s));
}

const seqs = (r: CliRun): Array<number | string> =>
  r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { seq: number; error?: string })
    .map((l) => (l.error === undefined ? l.seq : `error ${l.seq}`));

describe("frames over a file store compacted while it reads", () => {
  it("leaves out the frames the compaction folded and deleted after the listing", { timeout: 60_000 }, async () => {
    const dir = tmp.path("compacted");
    await buildStore("file", dir, [{ name: "g" }]); // baseline 1, frames 2..11
    const r = await framesPausedAt(dir, 3, () => compactTo(dir, 6));
    expect(r.code, r.stderr).toBe(0);
    // 2 was printed before the compaction; 3..6 were deleted by it (folded into baseline 6).
    expect(seqs(r)).toEqual([2, 7, 8, 9, 10, 11]);
  });

  it("still reports a frame gone above the baseline", { timeout: 60_000 }, async () => {
    const dir = tmp.path("lost");
    await buildStore("file", dir, [{ name: "g" }]);
    const r = await framesPausedAt(dir, 3, async () => unlinkSync(frameFile(dir, 8)));
    expect(r.code, r.stderr).toBe(0);
    expect(seqs(r)).toEqual([2, 3, 4, 5, 6, 7, "error 8", 9, 10, 11]);
  });
});
