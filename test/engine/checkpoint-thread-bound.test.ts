/**
 * The writer's bound holds while the checkpointer thread checkpoints (docs/design.md §3.50, task 357): with
 * `synchronous` NORMAL or OFF a writer commits back to back far faster than the thread's checkpoint copies and fsyncs,
 * and SQLite skips the writer's own autocheckpoint (PASSIVE) while the thread's holds the checkpoint lock; before the
 * fix the WAL went on to 4,456–21,386 frames past a 4,000-frame bound. Now a writer past the bound while the thread
 * checkpoints waits for that checkpoint's end and copies the rest itself. And the tail copy of §3.55 while a reader's
 * snapshot holds the WAL (review r356): one copy held short, not one at each of the writer's pauses.
 *
 * Real parts: the checkpointer thread (dist/workers/checkpointer.js) at the engine's threshold, a SQLite file, and the
 * store's writer on a worker thread of its own (fixtures/checkpoint-writer.mjs: a SqliteBackend handed over by
 * side-checkpoint, as an actor's), which reads mxFrame from the -shm after each commit. Ordering is by events: the
 * writer's commits, back to back (or pausing 10 ms after each: the shape of the load, never asserted), and the threads'
 * messages.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { EngineCheckpointer } from "../../src/engine/checkpointer.js";
import { BOUND_FACTOR, CHECKPOINT_FRAMES } from "../../src/engine/checkpoint-link.js";
import { WriterThread } from "./fixtures/checkpoint-writer-thread.js";
import { tempRoot } from "./fixtures/helpers.js";
import { until } from "../support/wait.js";

const root = tempRoot("checkpoint-bound");
afterAll(() => root.remove());

const ENTRY = fileURLToPath(new URL("../../dist/workers/checkpointer.js", import.meta.url));
/** The writer's autocheckpoint while the thread serves its store. */
const BOUND = BOUND_FACTOR * CHECKPOINT_FRAMES;
/** ~9 WAL frames a commit: ~72,000 frames written, the thread's threshold passed ~70 times. */
const COMMITS = 8000;

/** The wal-index header's mxFrame (the WAL's last frame) and nBackfill (frames copied into the database file). */
function walIndex(path: string): { frames: number; backfilled: number } {
  const h = readFileSync(`${path}-shm`).subarray(0, 128);
  return { frames: h.readUInt32LE(16), backfilled: h.readUInt32LE(96) };
}

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("the writer's bound while the checkpointer thread checkpoints", () => {
  for (const synchronous of ["NORMAL", "OFF"] as const) {
    it(`a writer at synchronous ${synchronous} committing back to back stays within the bound`, { timeout: 120_000 }, async () => {
      const reports: string[] = [];
      const cp = new EngineCheckpointer(ENTRY, (err) => reports.push(err.message), () => 0, CHECKPOINT_FRAMES, 0);
      cleanups.push(() => cp.stop());
      const writer = new WriterThread(cleanups);
      await writer.call("link", { link: cp.linkForActor()! });
      const path = root.fresh(`bound-${synchronous}.db`);
      await writer.call("open", { path, synchronous });
      await writer.call("served", { path });
      const wrote = await writer.call<{ most: number; step: number; autocheckpoint: number }>("write", { path, count: COMMITS });
      const [served] = await cp.stores();
      // The thread checkpointed beside the writer the whole time, at the store's synchronous (1 NORMAL, 0 OFF).
      expect(served).toMatchObject({ path, synchronous: synchronous === "NORMAL" ? 1 : 0 });
      expect(served!.checkpoints).toBeGreaterThan(0);
      expect(wrote.autocheckpoint).toBe(BOUND);
      // The bound's slack (design §3.50): the commit that crossed it, and one more when the thread's checkpoint ended
      // between SQLite's skipped autocheckpoint and the writer's look (SQLite's at the next commit then copies).
      expect(wrote.step).toBeGreaterThan(0);
      expect(wrote.most).toBeLessThanOrEqual(BOUND + 2 * wrote.step);
      expect(reports).toStrictEqual([]);
      expect((await writer.call<{ walLeft: boolean }>("close", { path })).walLeft).toBe(false);
    });
  }
});

/** A store served by the thread, a reader's snapshot at its WAL's `mark` (past the threshold), and the thread's copy up to it. */
async function pinnedStore(name: string, afterMark: number): Promise<{ writer: WriterThread; path: string; reader: Database.Database; mark: number }> {
  const cp = new EngineCheckpointer(ENTRY, () => undefined, () => 0, CHECKPOINT_FRAMES, 0);
  cleanups.push(() => cp.stop());
  const writer = new WriterThread(cleanups);
  await writer.call("link", { link: cp.linkForActor()! });
  const path = root.fresh(name);
  await writer.call("open", { path });
  await writer.call("served", { path });
  // Past the threshold with the thread held, then a reader's snapshot there: the thread copies up to it, and no
  // frame after it while the reader lasts (nor can SQLite restart the WAL).
  cp.hold(true);
  await cp.stores(); // the hold reached the thread
  await writer.call("write", { path, count: 130 }); // ~1,170 frames
  const reader = new Database(path, { readonly: true });
  cleanups.push(() => reader.open && reader.close());
  reader.exec("BEGIN");
  reader.prepare("SELECT count(*) FROM sqlite_master").get();
  const mark = walIndex(path).frames;
  expect(mark).toBeGreaterThan(CHECKPOINT_FRAMES);
  if (afterMark > 0) await writer.call("write", { path, count: afterMark, from: 1000 });
  cp.hold(false);
  await until(() => walIndex(path).backfilled === mark, "the thread's checkpoint up to the reader's snapshot");
  return { writer, path, reader, mark };
}

/** The reader ends: the thread copies what it held back, and the writer's next commit restarts the WAL. */
async function readerEnds(writer: WriterThread, path: string, reader: Database.Database): Promise<void> {
  reader.exec("COMMIT");
  reader.close();
  await until(
    () => {
      const w = walIndex(path);
      return w.backfilled === w.frames;
    },
    "the thread copied what the reader held back once it ended",
    { timeoutMs: 30_000 },
  );
  const again = await writer.call<{ restarts: number }>("trickle", { path, count: 1, gapMs: 0, from: 100 });
  expect(again.restarts).toBe(1);
  expect((await writer.call<{ walLeft: boolean }>("close", { path })).walLeft).toBe(false);
}

describe("checkpoints while a reader's snapshot holds the WAL", () => {
  it("a writer that pauses between commits gets one copy of the tail a reader holds back, not one a commit; once the reader ends, the tail is copied and the WAL restarts (review r356)", { timeout: 60_000 }, async () => {
    const { writer, path, reader, mark } = await pinnedStore("pinned.db", 0);
    const before = (await writer.call<{ checkpoints: number }>("words", { path })).checkpoints;
    // 60 commits of ~1 frame, the writer pausing after each: each pause found frames the reader holds back. Before,
    // the thread tried to copy them at every one (several tries a pause, each of them an fsync when a reader moving
    // on let it copy a little), and the WAL could not restart either way.
    const trickled = await writer.call<{ restarts: number; frames: number }>("trickle", { path, count: 60, gapMs: 10 });
    expect(trickled.restarts).toBe(0);
    expect(trickled.frames).toBeGreaterThan(mark);
    const after = (await writer.call<{ checkpoints: number }>("words", { path })).checkpoints;
    // One copy held short, and a try again only after the writer was idle a while (a stall of this machine at most).
    expect(after - before).toBeGreaterThan(0);
    expect(after - before).toBeLessThanOrEqual(3);
    await readerEnds(writer, path, reader);
  });

  it("a reader holding the threshold's worth of frames or more back gets a few tries, not one a poll; once it ends, the next try copies all and the WAL restarts (task 367)", { timeout: 60_000 }, async () => {
    // ~1,170 frames past the reader's snapshot: more than the threshold wait however far the thread copies.
    const { writer, path, reader, mark } = await pinnedStore("pinned-threshold.db", 130);
    expect(walIndex(path).frames - mark).toBeGreaterThanOrEqual(CHECKPOINT_FRAMES);
    const before = (await writer.call<{ checkpoints: number }>("words", { path })).checkpoints;
    // 50 commits of ~1 frame, 10 ms apart: before, the thread checkpointed at each of its polls (2 ms while the WAL
    // grows), copying nothing (review: 194 checkpoints in 50 commits).
    const trickled = await writer.call<{ restarts: number; frames: number }>("trickle", { path, count: 50, gapMs: 10 });
    expect(trickled.restarts).toBe(0);
    expect(walIndex(path).backfilled).toBe(mark);
    const after = (await writer.call<{ checkpoints: number }>("words", { path })).checkpoints;
    // Tried again only after a delay doubling from 64 ms (64, 192, 448 ms into the commits' ~0.5 s), or once another
    // threshold's worth of frames came (these add ~50): a loaded machine stretching the commits to 8 s adds 4 tries.
    expect(after - before).toBeLessThanOrEqual(8);
    await readerEnds(writer, path, reader);
  });
});
