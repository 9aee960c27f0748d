/**
 * Explicit flush() calls are group-committed in the store's actor (review s13a F4): N handlers that each save and
 * flush in one turn share one transaction, and a long backlog of real work counts as progress for the watchdog.
 * Before, each flush op committed its own fsync'd transaction inside the actor's synchronous loop over the message
 * (and a backlog of queued messages runs before any timer, §3.28), so the heartbeat stood still for the whole
 * backlog and the watchdog terminated a busy, healthy worker: every waiting flush rejected with
 * worker-unresponsive, writes not yet committed were lost. Behaviour only (transactions counted, never timed).
 * Real SQLite files, real worker threads.
 */
import { afterAll, afterEach, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { CodecError, StorageError } from "../../src/errors.js";
import { expectCoded, rejectionOf, tempRoot } from "./fixtures/helpers.js";

const REFUSING_RECORDS = new URL("./fixtures/refusing-records.mjs", import.meta.url).href;
const root = tempRoot("flush-group-commit");
afterAll(() => root.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

it("1000 handlers saving and flushing in one turn share a transaction; every flush resolves", async () => {
  const reported: Error[] = [];
  engine = openStorageEngine({ threads: 1, watchdogMs: 500, onError: (e) => void reported.push(e) });
  const store = { kind: "sqlite" as const, path: root.fresh("c.db") };
  const kv = engine.kv<number>(store, { name: "kv", debounceMs: 60_000 });
  kv.save("warm", 0);
  await kv.flush();
  const before = (await engine.stats())[0]!.flushes;
  const n = 1000;
  const outcomes = await Promise.allSettled(Array.from({ length: n }, (_, i) => (kv.save(`n${i}`, i), kv.flush())));
  expect(outcomes.filter((o) => o.status === "rejected")).toEqual([]);
  // One message, one turn of the actor: one transaction (before: 1000, and the worker was taken for a hung one).
  expect((await engine.stats())[0]!.flushes - before).toBe(1);
  expect(reported).toEqual([]);
  const stored = await Promise.all(Array.from({ length: n }, (_, i) => kv.load(`n${i}`)));
  expect(stored).toEqual(Array.from({ length: n }, (_, i) => i));
});

it("flushes sharing a commit keep their own accounts: a refusal after a flush's call fails only the later flushes", async () => {
  engine = openStorageEngine({ threads: 1, onError: () => undefined });
  const kv = engine.kv<unknown>({ kind: "sqlite", path: root.fresh("r.db") }, {
    name: "kv",
    debounceMs: 60_000,
    codec: { module: REFUSING_RECORDS, export: "codec" },
  });
  await kv.flush();
  // One turn: both flushes are held to one commit.
  kv.save("a", { v: "good" });
  const first = kv.flush();
  kv.save("b", { v: "bad" }); // the worker codec refuses it when the shared flush encodes it
  const second = kv.flush();
  await expect(first).resolves.toBeUndefined();
  expectCoded(await rejectionOf(second), CodecError, "encode-failed");
  expect(await kv.load("a")).toEqual({ v: "good" });
  expect(await kv.load("b")).toBeUndefined();
});

it("a flush per save under backpressure (default bounds): the busy worker is not taken for a hung one", async () => {
  const reported: string[] = [];
  engine = openStorageEngine({ threads: 1, onError: (e) => void reported.push((e as StorageError).code) });
  const kv = engine.kv<number>({ kind: "sqlite", path: root.fresh("f.db") }, { name: "kv", debounceMs: 0 });
  const rejected: unknown[] = [];
  const flushes: Promise<void>[] = [];
  const total = 300_000;
  for (let i = 0; i < total; ) {
    try {
      kv.save(`k${i}`, i);
      const f = kv.flush().catch((e: unknown) => void rejected.push(e));
      if (i % 100 === 0) flushes.push(f);
      i++;
    } catch (err) {
      expectCoded(err, StorageError, "backpressure");
      await kv.drained!();
    }
    if (i % 5000 === 0) await new Promise((r) => setImmediate(r));
  }
  await Promise.all(flushes);
  await kv.flush();
  // Before: the watchdog (30 s) terminated the worker mid-backlog: ~220,000 flushes rejected, their writes lost.
  expect(reported).toEqual([]);
  expect(rejected).toEqual([]);
  for (const i of [0, 1, total / 2, total - 1]) expect(await kv.load(`k${i}`)).toBe(i);
}, 300_000);
