/**
 * A store that kept writes and never comes back (task 307 item 4; tasks 296/303 made the engine keep the writes a
 * failed reopen left and revive the store by itself at the restart backoff until it opens or the engine closes).
 * The store's directory is moved away for good after its worker was lost: every reopen fails store-moved, a failure
 * that may pass. Checked: the kept writes are kept once (the backlog does not grow with the attempts), every flush
 * still rejects with why, onError hears the repeated identical failure once (it heard it at every attempt: one report
 * per ≤ 10 s until close), and engine.close() settles: it rejects with the failure, the tier's flush after it rejects
 * `closed` carrying it, and nothing is written anywhere. Real parts: a file store, engine worker threads (the fault
 * worker's "terminate" ends the store's thread from this one).
 * The once-per-10-s limit is for failed opens that keep their writes (review r314 F5): a store whose first open ever
 * fails (its directory's path is a regular file) loses the writes queued for each open, and onError, the only word
 * a writer that does not flush gets of them, hears every such failed open.
 */
import { renameSync, writeFileSync } from "node:fs";
import { afterAll, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { StorageError } from "../../src/errors.js";
import { kvStorage } from "../../src/tier/kv.js";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { openFaultEngine } from "../support/faults.js";
import { settledTo } from "../support/settled.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("kept-store-gone");
afterAll(() => root.remove());


const storeMoved = { code: "backend-error", details: { reason: "store-moved" } };

it("kept writes over a store gone for good: kept once, each flush told why, onError told once, close settles reporting them", async () => {
  const dir = root.fresh("store");
  const spec: StoreSpec = { kind: "file", dir };
  const heard: Error[] = [];
  const engine = openFaultEngine({ threads: 1, onError: (err) => void heard.push(err) });
  let closed = false;
  try {
    const kv = engine.kv<string>(spec, { name: "t", retry: { initialMs: 5, maxMs: 20 } });
    kv.save("first", "stored");
    await kv.flush();
    renameSync(dir, `${dir}.gone`); // never comes back
    await engine.injectFault(spec, "terminate");
    kv.save("kept-1", "never stored");
    kv.save("kept-2", "never stored");
    // Each flush starts a reopen (after the backoff), which fails: the flush hears why, the writes stay kept.
    expect(await settledTo(kv.flush())).toMatchObject(storeMoved);
    const weight = (await engine.stats()).find((s) => s.store.kind === "file")!;
    expect(weight.pendingEntries).toBe(2);
    for (let attempt = 2; attempt <= 4; attempt++) expect(await settledTo(kv.flush())).toMatchObject(storeMoved);
    // Four failed opens (and any the backoff started meanwhile): the kept writes are held once, not per attempt.
    const after = (await engine.stats()).find((s) => s.store.kind === "file")!;
    expect({ entries: after.pendingEntries, bytes: after.pendingBytes }).toEqual({ entries: 2, bytes: weight.pendingBytes });
    // onError: the worker's loss, then the failed open once (it heard one per attempt before).
    const opens = heard.filter((e) => (e as StorageError).code === "backend-error");
    expect(opens).toHaveLength(1);
    expect(opens[0]).toMatchObject(storeMoved);
    // close() settles: a last reopen fails alike; the close rejects with it and the kept writes are reported.
    const closing = await settledTo(engine.close());
    closed = true;
    expect(closing).toMatchObject(storeMoved);
    const flushed = await settledTo(kv.flush());
    expect(flushed).toMatchObject({ code: "closed", cause: storeMoved });
    expect(() => kv.save("after", "x")).toThrow(StorageError);
  } finally {
    if (!closed) await engine.close().catch(() => undefined);
  }
  // Nothing written anywhere: the store moved away holds what it held before.
  const b = fileBackend(`${dir}.gone`);
  try {
    const t = kvStorage<string>(b, { name: "t" });
    expect(await t.load("first")).toBe("stored");
    expect(await t.load("kept-1")).toBeUndefined();
  } finally {
    await b.close?.();
  }
}, 60_000);

it("a store whose opens fail and lose the writes queued for them: onError hears each failed open, however soon after the last", async () => {
  const path = root.fresh("not-a-dir");
  writeFileSync(path, "a regular file where the store's directory would be"); // every open fails alike
  const heard: Error[] = [];
  const engine = openStorageEngine({ threads: 1, onError: (err) => void heard.push(err) });
  try {
    const kv = engine.kv<string>({ kind: "file", dir: path }, { name: "t" });
    for (let batch = 1; batch <= 3; batch++) {
      kv.save(`k${batch}`, "lost"); // no earlier hold of the store: the failed open loses it (nothing is kept)
      expect(await settledTo(kv.flush())).toMatchObject({ code: "backend-error" });
      // Each batch's failed open is told (the second and third were not: told once per 10 s, as a kept write's).
      const opens = heard.filter((e) => (e as StorageError).code === "backend-error");
      expect(opens).toHaveLength(batch);
    }
    expect((await engine.stats()).find((s) => s.store.kind === "file")?.pendingEntries ?? 0).toBe(0); // nothing kept
  } finally {
    await engine.close().catch(() => undefined);
  }
}, 30_000);
