/**
 * An attach pair over an engine store whose close could not drain (task 307 item 2): engine.close()'s drain failed
 * (every write of the file store fails EIO), nothing of the pair's last waves was stored, and the pair's next flush
 * met its tier closed with that failure. The pair's error said the write "was refused for good" (a refusal: a value
 * or key the store will never take) and pointed at handle.rebaseline(), which an engine closed under it cannot run.
 * It now says what happened: the engine's close could not store the write, with the drain's failure as its cause.
 * Real parts: an engine worker over a file store, its EIO from the test-only marker file beside the store's
 * directory (src/backend/file-faults.ts).
 */
import { writeFileSync } from "node:fs";
import { afterAll, expect, it } from "vitest";
import { WRITE_FAULT_ENV } from "../../src/backend/file-faults.js";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { settledTo } from "../support/settled.js";
import { tempRoot } from "./fixtures/helpers.js";

const SUFFIX = ".t307-fault";
// Read by each engine worker as it starts (a worker copies process.env): set before any engine opens.
process.env[WRITE_FAULT_ENV] = SUFFIX;

const root = tempRoot("drain-failed-pair");
afterAll(() => root.remove());


it("after engine.close()'s drain failed (EIO), the pair's flush says the close could not store the write, with the failure as cause", async () => {
  const dir = root.fresh("store");
  const spec: StoreSpec = { kind: "file", dir };
  const engine = openStorageEngine({ threads: 1, onError: () => undefined });
  const g = createGraph("g");
  g.state("c", 0);
  const heard: unknown[] = [];
  const h = attachSnapshotStorage(g, [{ snapshot: engine.snapshot<GraphCheckpointRecord>(spec), wal: engine.kv<WALFrame>(spec, { codec: walFrameCodec, debounceMs: 60_000 }) }], {
    onError: (e) => void heard.push(e),
  });
  await h.flush(); // the store exists, its first baseline stored
  writeFileSync(`${dir}${SUFFIX}`, ""); // every write fails EIO from now on
  g.set("c", 1);
  const closed = await settledTo(engine.close());
  expect(closed).toMatchObject({ code: "backend-error" });
  const flushed = await settledTo(h.flush());
  expect(flushed).toBeInstanceOf(StorageError);
  const err = flushed as StorageError;
  expect(err.code).toBe("write-refused");
  expect(err.details).toMatchObject({ graph: "g", seq: 2, reason: "drain-failed" });
  // What happened: the close's drain failed, and why (the EIO), not "refused for good" nor "rebaseline()".
  expect(err.message).toMatch(/the write at seq 2 was not stored: the storage engine closed and its final drain of the store failed \(StorageError backend-error: .*EIO/);
  expect(err.message).not.toMatch(/refused|rebaseline/);
  // The tier's own answer is the cause: closed, carrying the drain's failure.
  expect(err.cause).toMatchObject({ code: "closed", details: { reason: "drain-failed" }, cause: { code: "backend-error", details: { osCode: "EIO" } } });
  // onError hears the stop once, and nothing else: no frame "left to delete" (every delete met the closed tier).
  expect(heard).toEqual([err]);
  expect(await settledTo(h.dispose())).toBe(err);
}, 30_000);
