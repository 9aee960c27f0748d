/**
 * A store whose writes ended (a backend's finalError: here a file store whose directory was removed and made again,
 * backend-error store-moved) is known as ended at the first flush that meets the end (task 307 item 1). The worker
 * reports the end (an "error" event marked final, on its event port) before it answers the flush, but the answer
 * crossed as a new copy of the error: no caller could tell it from a failure that may pass (isFinalError false), so
 * an attach pair held its frames and stopped only at its next save, and every later flush rejected with yet another
 * copy. Now the flush rejects with the very object onError heard and later saves throw, whichever of the two ports
 * this thread reads first: "answers read first" blocks this thread while the worker posts both, so both are pending
 * in one turn (the answers' port is read before the event port then).
 *
 * Real parts: a file store in a temp directory, the engine's worker thread.
 */
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { afterAll, expect, it } from "vitest";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { isFinalError } from "../../src/tier/write-verdict.js";
import { settledTo } from "../support/settled.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("final-first-answer");
afterAll(() => root.remove());


/** Blocks this thread for `ms` (no event is read meanwhile: the worker's messages wait in their ports). */
const blockThread = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

it.each(["as they come", "answers read first"] as const)(
  "the first flush that meets a file store's end rejects with the final error itself (%s); later saves and flushes too",
  async (order) => {
    const dir = root.fresh("store");
    const spec: StoreSpec = { kind: "file", dir };
    const heard: Error[] = [];
    const engine = openStorageEngine({ threads: 1, onError: (err) => void heard.push(err) });
    try {
      const kv = engine.kv<string>(spec, { name: "t", retry: { initialMs: 5, maxMs: 20 } });
      kv.save("before", "1");
      await kv.flush();
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir);
      kv.save("after", "2");
      const flushed = settledTo(kv.flush());
      if (order === "answers read first") {
        await new Promise((resolve) => setImmediate(resolve)); // the turn's message is posted
        blockThread(1_000);
      }
      const first = await flushed;
      expect(first).toMatchObject({ code: "backend-error", details: { reason: "store-moved" } });
      // Before: a copy (isFinalError false), which the caller took for a failure that may pass.
      expect(isFinalError(first)).toBe(true);
      // onError heard the end once, as that very object.
      expect(heard.filter((e) => isFinalError(e))).toEqual([first]);
      expect(heard.filter((e) => isFinalError(e))[0]).toBe(first);
      let thrown: unknown;
      try {
        kv.save("later", "3");
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBe(first);
      // A later flush, answered by the worker again: the same object, not another copy.
      expect(await settledTo(kv.flush())).toBe(first);
      expect(readdirSync(dir)).toEqual([]); // nothing landed in the directory made again
    } finally {
      await engine.close().catch(() => undefined);
    }
  },
  30_000,
);
