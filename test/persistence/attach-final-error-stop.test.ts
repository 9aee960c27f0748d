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
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import type { StorageHandle } from "../../src/persistence/storage-types.js";
import { writesEndedBy } from "../../src/tier/write-verdict.js";
import { endableBackend } from "../support/endable-backend.js";
import { attachA, backendPair, enginePair, type GraphA } from "../support/graph-a-pair.js";
import { settledTo as settled } from "../support/settled.js";

const root = mkdtempSync(join(tmpdir(), "grf-final-stop-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** What a writer learns from three flushes over new waves and drained(). */
async function verdicts(g: GraphA["g"], h: StorageHandle): Promise<unknown[]> {
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
    const told: unknown[] = [];
    const pair = backendPair(b, mode === "no WAL tier" ? { wal: false } : mode === "behind a full WAL tier" ? { maxPendingBytes: 2_000 } : {});
    const { g, h, fill } = attachA(pair, {
      // The full tier's backpressure is told once too (a wait, not a failure): not what this counts.
      onError: (e) => void ((e as StorageError).code !== "backpressure" && told.push(e)),
    });
    const final = new StorageError("backend-error", "this store takes no writes for good (test)");
    try {
      await h.flush();
      if (mode === "behind a full WAL tier") {
        fill();
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
  const told: unknown[] = [];
  const { g, h } = attachA(enginePair(engine, spec), { onError: (e) => void told.push(e) });
  try {
    await h.flush();
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    g.set("a", "wave 0");
    // The first flush meets the store's end in the worker: it rejects with the worker's final error as noted on
    // this thread (the object later writes throw), and the pair stops on it there. Before task 307 it rejected with a
    // copy (a new object: src/engine/connection.ts onResults), which onError heard as a passing failure, and the pair
    // stopped one save later.
    const first = await settled(h.flush());
    expect(first).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "lock" } });
    const final = await engineHeard;
    expect(first).toBe(final);
    const seen = await verdicts(g, h);
    // Before task 285 each wave was retried and told again, and flush() rejected with a new copy each time.
    for (const s of seen) expect(s).toBe(final);
    expect(told).toEqual([final]);
    expect(told[0]).toBe(final);
    expect(readdirSync(dir)).toEqual([]); // nothing of this writer's lands there
  } finally {
    await h.dispose().catch(() => {});
    await engine.close().catch(() => {});
  }
}, 30_000);
