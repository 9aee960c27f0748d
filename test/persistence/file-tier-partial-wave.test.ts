/**
 * Restore and followers reading a live file store through tiers (docs/design.md §3.16). A file store's batch writes
 * every put to a temp file, then renames them one by one: a listing made between two renames holds a wave in part.
 * The writer (test/persistence/fixtures/wave-writer.mjs, another process, compacting) sets a, b and sum = a + b in
 * one wave each time, so a graph with sum ≠ a + b is a state the writer never had. The mid-rename state is made on
 * disk after the writer stopped: the wave's last frame moved back to a temp file named as a batch's (this running
 * process's pid), renamed into place right after the reader's listing, or a moment later while the reader waits.
 * Readers: inline tiers over a read-only file backend, and an engine's tiers over a read-only file store.
 */
import { fork } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { createGraph, type ReactiveGraph } from "../../src/index.js";
import { followGraph } from "../../src/persistence/follow.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage, snapshotStorage } from "../../src/tier/index.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { requireBuiltBin, tempDir } from "../cli/fixtures/cli.js";

const tmp = tempDir("file-tier-wave");
const WRITER = fileURLToPath(new URL("./fixtures/wave-writer.mjs", import.meta.url));
let engine: StorageEngine;
beforeAll(() => {
  requireBuiltBin(); // the writer and the engine's workers load dist/
  engine = openStorageEngine({ threads: 1 });
});
afterAll(async () => {
  await engine.close();
  tmp.remove();
});
const closing: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close();
});

type Pair = { snapshot: SnapshotStorageTier<GraphCheckpointRecord>; wal: KvStorageTier<WALFrame> };
type Values = { a: unknown; b: unknown; sum: unknown };

const walFiles = (dir: string): string[] => readdirSync(dir).filter((f) => f.startsWith("g%2fwal%2f")).sort();
const pathOf = (dir: string, file: string): string => (JSON.parse(readFileSync(join(dir, file), "utf8")) as { path: string }).path;

/** The seq of the store's baseline (the snapshot tier's record under the graph's name). */
const baselineSeq = (dir: string): number => (JSON.parse(readFileSync(join(dir, "g.bin"), "utf8")) as { seq: number }).seq;
const seqOf = (file: string): number => Number(/(\d+)\.bin$/.exec(file)![1]);
/** Frame files above the baseline (a compaction killed between its baseline and its deletions leaves some below). */
const framesAbove = (dir: string): string[] => {
  const base = baselineSeq(dir);
  return walFiles(dir).filter((f) => seqOf(f) > base);
};

/** A stopped writer's file store ending in two whole waves (a, b, sum) above its baseline, after a few compactions. */
async function storeEndingInWave(name: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const dir = tmp.path(name);
    const child = fork(WRITER, [JSON.stringify({ dir })], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    await new Promise<void>((resolve, reject) => {
      child.on("message", (m: { t: string }) => m.t === "ready" && resolve());
      child.on("exit", (code) => reject(new Error(`the writer exited (${code}) before it was ready`)));
    });
    // Three waves above the baseline at least (a compaction may just have folded every frame).
    while (framesAbove(dir).length < 9) await new Promise((r) => setImmediate(r));
    const exited = new Promise((r) => child.on("exit", r));
    child.kill("SIGKILL");
    await exited;
    // The kill may have cut a batch: drop frames down to a wave's last (its temp files are a dead process's).
    let files = walFiles(dir);
    while (files.length > 0 && pathOf(dir, files[files.length - 1]!) !== "sum") unlinkSync(join(dir, files.pop()!));
    files = framesAbove(dir);
    // Two whole waves above the baseline: the last one a test holds back, and one the reader gets before it.
    if (files.length >= 6 && files.slice(-6).map((f) => pathOf(dir, f)).join() === "a,b,sum,a,b,sum") return dir;
    if (attempt === 5) throw new Error(`no store ending in two whole waves above its baseline: ${files.join(", ")}`);
  }
}

let tempCount = 0;
/** Frame file `file` moved back to a temp file of this (running) process: its batch's rename not yet done. */
function unrenamed(dir: string, file: string): { finish(): void } {
  const temp = join(dir, `.tmp-${process.pid}-0-${900_000 + tempCount++}`);
  renameSync(join(dir, file), temp);
  let done = false;
  return {
    finish() {
      if (!done) renameSync(temp, join(dir, file));
      done = true;
    },
  };
}

/** Runs `after` once, right after the next listing of `wal` answered (the reader has its keys, not yet the frames). */
function afterNextList(wal: KvStorageTier<WALFrame>, after: () => void): void {
  const list = wal.list.bind(wal);
  let armed = true;
  wal.list = async (prefix?: string) => {
    const keys = await list(prefix);
    if (armed) {
      armed = false;
      after();
    }
    return keys;
  };
}

/** Read-only tiers of the file store at `dir`: inline over a read-only backend, or an engine's read-only store. */
const readers: ReadonlyArray<[string, (dir: string) => Pair]> = [
  [
    "inline tiers",
    (dir) => {
      const backend = fileBackend(dir, { readOnly: true });
      closing.push(() => backend.close());
      return { snapshot: snapshotStorage<GraphCheckpointRecord>(backend), wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }) };
    },
  ],
  [
    "an engine's tiers",
    (dir) => {
      const spec = { kind: "file", dir, readOnly: true } as const;
      const pair = { snapshot: engine.snapshot<GraphCheckpointRecord>(spec), wal: engine.kv<WALFrame>(spec, { codec: walFrameCodec }) };
      closing.push(() => pair.wal.close(), () => pair.snapshot.close());
      return pair;
    },
  ],
];

function buildGraph(): ReactiveGraph {
  const g = createGraph("g");
  g.state("a", 0);
  g.state("b", 0);
  g.state("sum", 0);
  return g;
}

const valuesOf = (g: ReactiveGraph): Values => ({ a: g.get("a"), b: g.get("b"), sum: g.get("sum") });

/** The store's graph as restore gives it once nothing is under way. */
async function restoredWhole(pair: () => Pair): Promise<Values> {
  const g = buildGraph();
  const { snapshot, wal } = pair();
  await restoreSnapshot(g, { snapshot, wal });
  return valuesOf(g);
}

/** When the wave's last rename lands: right after the reader's listing, or 100 ms later (the reader waits for it). */
const timings: ReadonlyArray<[string, (finish: () => void) => void]> = [
  ["right after the listing", (finish) => finish()],
  ["while the reader waits", (finish) => void setTimeout(finish, 100)],
];

describe.each(readers)("a file store read through %s while a batch's renames are under way", (_, open) => {
  describe.each(timings)("the wave's last rename lands %s", (_when, land) => {
    it("restoreSnapshot gives the whole wave", { timeout: 60_000 }, async () => {
      const dir = await storeEndingInWave("restore");
      const batch = unrenamed(dir, walFiles(dir).pop()!);
      const { snapshot, wal } = open(dir);
      afterNextList(wal, () => land(() => batch.finish()));
      const g = buildGraph();
      await restoreSnapshot(g, { snapshot, wal });
      const got = valuesOf(g);
      expect(got.sum).toBe((got.a as number) + (got.b as number));
      expect(got).toEqual(await restoredWhole(() => open(dir)));
    });

    it("a follower's initial load gives the whole wave", { timeout: 60_000 }, async () => {
      const dir = await storeEndingInWave("follow-load");
      const batch = unrenamed(dir, walFiles(dir).pop()!);
      const source = open(dir);
      afterNextList(source.wal, () => land(() => batch.finish()));
      const g = buildGraph();
      const follower = await followGraph(g, source, { pollMs: 60_000 });
      closing.push(() => follower.stop());
      const got = valuesOf(g);
      expect(got.sum).toBe((got.a as number) + (got.b as number));
      expect(got).toEqual(await restoredWhole(() => open(dir)));
    });

    it("a follower's poll applies no wave in part", { timeout: 60_000 }, async () => {
      const dir = await storeEndingInWave("follow-poll");
      // The last wave is written after the follower's initial load: held outside the store until then.
      const aside = join(dir, "..", `aside-${tempCount++}`);
      mkdirSync(aside);
      const last = walFiles(dir).slice(-3);
      for (const f of last) renameSync(join(dir, f), join(aside, f));
      const source = open(dir);
      const g = buildGraph();
      const follower = await followGraph(g, source, { pollMs: 60_000 });
      closing.push(() => follower.stop());
      const before = valuesOf(g);
      expect(before.sum).toBe((before.a as number) + (before.b as number));
      // Its batch under way: a and b renamed into place, sum still in its temp file.
      renameSync(join(aside, last[0]!), join(dir, last[0]!));
      renameSync(join(aside, last[1]!), join(dir, last[1]!));
      renameSync(join(aside, last[2]!), join(dir, last[2]!));
      const batch = unrenamed(dir, last[2]!);
      afterNextList(source.wal, () => land(() => batch.finish()));
      await follower.poll();
      const polled = valuesOf(g);
      expect(polled.sum).toBe((polled.a as number) + (polled.b as number));
      // The next poll (or this one) applies the whole wave: the writer's last state.
      const lag = await follower.poll();
      expect(lag.frames).toBe(0);
      expect(valuesOf(g)).toEqual(await restoredWhole(() => open(dir)));
      expect(valuesOf(g)).not.toEqual(before);
      expect(follower.stats().lastError).toBeUndefined();
    });
  });
});
