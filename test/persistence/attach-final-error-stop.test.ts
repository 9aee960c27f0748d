/**
 * A backend's finalError whose code the pair did not stop on (a custom backend's backend-error; an engine file store
 * removed and made again: backend-error store-moved) stopped nothing (task 285): attach's cannotSucceed judged it by
 * its code, "may pass", so the pair kept retrying a store that takes no write again (the own baseline's timer for
 * good) and told onError again at every wave. Now the pair stops on it, as on a lost lease: flush(), drained() and
 * rebaseline() reject with that very error (not a write-refused: no rebaseline gets past a dead store) and onError
 * hears it once. Inline tiers over a hand-written backend (a real memory store behind test/support/test-backend.ts
 * whose writes throw its finalError once ended) and an engine file store.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { GraphCheckpointRecord, StorageHandle } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { writesEndedBy } from "../../src/tier/write-verdict.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { wrapBackend, type TestBackend } from "../support/test-backend.js";

const root = mkdtempSync(join(tmpdir(), "grf-final-stop-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const RETRY = { retry: { initialMs: 5, maxMs: 20 } };

/** What `p` settled to: "resolved" or its rejection (the error itself). */
const settled = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => "resolved",
    (e: unknown) => e,
  );

/** A memory store whose writes, once `end(err)` ran, throw `err`, also its finalError from then on. */
function endableBackend(): { b: TestBackend; end: (err: Error) => void } {
  const b = wrapBackend(memoryBackend(), { async: true });
  let ended: Error | undefined;
  const guard =
    <A extends unknown[], R>(fn: (...a: A) => R) =>
    (...a: A): R =>
      ended !== undefined ? (Promise.reject(ended) as R) : fn(...a);
  b.write = guard(b.write.bind(b));
  b.writeBatch = guard(b.writeBatch!.bind(b));
  b.delete = guard(b.delete!.bind(b));
  Object.defineProperty(b, "finalError", { get: () => ended });
  return { b, end: (err) => void (ended = err) };
}

/** What a writer learns from three flushes over new waves and drained(). */
async function verdicts(g: ReturnType<typeof createGraph>, h: StorageHandle): Promise<unknown[]> {
  const seen: unknown[] = [];
  for (let v = 1; v <= 3; v++) {
    g.set("a", `wave ${v}`);
    seen.push(await settled(h.flush()));
  }
  seen.push(await settled(h.drained()));
  return seen;
}

it.each(["waves after the end", "behind a full WAL tier", "an own baseline", "no WAL tier"] as const)(
  "a custom backend's finalError with code backend-error (%s): the pair stops, every wait rejects with it, onError hears it once",
  async (mode) => {
    const { b, end } = endableBackend();
    const g = createGraph("g");
    g.state("a", "");
    const told: unknown[] = [];
    const wal =
      mode === "no WAL tier"
        ? undefined
        : kvStorage<WALFrame>(b, { codec: walFrameCodec, ...RETRY, ...(mode === "behind a full WAL tier" ? { maxPendingBytes: 2_000 } : {}) });
    const h = attachSnapshotStorage(g, [{ snapshot: snapshotStorage<GraphCheckpointRecord>(b, RETRY), ...(wal && { wal }) }], {
      // The full tier's backpressure is told once too (a wait, not a failure): not what this counts.
      onError: (e) => void ((e as StorageError).code !== "backpressure" && told.push(e)),
    });
    const final = new StorageError("backend-error", "this store takes no writes for good (test)");
    try {
      await h.flush();
      if (mode === "behind a full WAL tier") {
        for (let v = 1; v <= 50; v++) g.set("a", "x".repeat(200) + v);
        end(final);
      } else if (mode === "an own baseline") {
        end(final);
        expect(await settled(h.rebaseline())).toBe(final);
      } else end(final);
      const seen = await verdicts(g, h);
      // Before the fix the final error was retried as one that may pass: onError heard it again at each wave (and
      // an own baseline's timer retried it for good), and the waits rejected with it only while a save was blocked.
      for (const s of seen) expect(s).toBe(final);
      expect(told).toHaveLength(1);
      expect(told[0]).toBe(final);
      // No rebaseline gets past a dead store: it rejects with the same error, and so does the flush after it.
      expect(await settled(h.rebaseline())).toBe(final);
      g.set("a", "after the rebaseline");
      expect(await settled(h.flush())).toBe(final);
    } finally {
      expect(await settled(h.dispose())).toBe(final);
    }
  },
  20_000,
);

it("an engine file store removed and made again (store-moved, final): the pair stops on it, every later wait rejects with it", async () => {
  const dir = join(root, "engine-file");
  const spec: StoreSpec = { kind: "file", dir };
  let heard!: (err: Error) => void;
  const engineHeard = new Promise<Error>((resolve) => (heard = resolve));
  const engine = openStorageEngine({ onError: (err) => writesEndedBy(err) && heard(err) });
  const g = createGraph("g");
  g.state("a", "");
  const told: unknown[] = [];
  const h = attachSnapshotStorage(g, [{ snapshot: engine.snapshot<GraphCheckpointRecord>(spec), wal: engine.kv<WALFrame>(spec, { codec: walFrameCodec }) }], {
    onError: (e) => void told.push(e),
  });
  try {
    await h.flush();
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    g.set("a", "wave 0");
    // The first flush meets the store's end in the worker: it rejects with a copy of the error (a new object
    // across the thread; src/engine/connection.ts onResults), which onError hears as a passing failure.
    const first = await settled(h.flush());
    expect(first).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "lock" } });
    // The worker's final error, noted on this thread (the object later writes throw).
    const final = await engineHeard;
    const seen = await verdicts(g, h);
    // Before the fix each wave was retried and told again, and flush() rejected with a new copy each time.
    for (const s of seen) expect(s).toBe(final);
    expect(told).toEqual([first, final]);
    expect(told[1]).toBe(final);
    expect(readdirSync(dir)).toEqual([]); // nothing of this writer's lands there
  } finally {
    await h.dispose().catch(() => {});
    await engine.close().catch(() => {});
  }
}, 30_000);
