/**
 * The writer's bound holds while the checkpointer thread checkpoints (docs/design.md §3.50, task 357): with
 * `synchronous` NORMAL or OFF a writer commits back to back far faster than the thread's checkpoint copies and fsyncs,
 * and SQLite skips the writer's own autocheckpoint (PASSIVE) while the thread's holds the checkpoint lock; before the
 * fix the WAL went on to 4,456–21,386 frames past a 4,000-frame bound. Now a writer past the bound while the thread
 * checkpoints waits for that checkpoint's end and copies the rest itself.
 *
 * Real parts: the checkpointer thread (dist/workers/checkpointer.js) at the engine's threshold, a SQLite file, and the
 * store's writer on a worker thread of its own (fixtures/checkpoint-writer.mjs: a SqliteBackend handed over by
 * side-checkpoint, as an actor's), which reads mxFrame from the -shm after each commit. Ordering is by events: the
 * writer's commits, back to back, and the threads' messages.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { EngineCheckpointer } from "../../src/engine/checkpointer.js";
import { BOUND_FACTOR, CHECKPOINT_FRAMES } from "../../src/engine/checkpoint-link.js";
import { WriterThread } from "./fixtures/checkpoint-writer-thread.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("checkpoint-bound");
afterAll(() => root.remove());

const ENTRY = fileURLToPath(new URL("../../dist/workers/checkpointer.js", import.meta.url));
/** The writer's autocheckpoint while the thread serves its store. */
const BOUND = BOUND_FACTOR * CHECKPOINT_FRAMES;
/** ~9 WAL frames a commit: ~72,000 frames written, the thread's threshold passed ~70 times. */
const COMMITS = 8000;

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
