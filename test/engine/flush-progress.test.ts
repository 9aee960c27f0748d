/**
 * A worker busy committing flushes is not taken for a hung one (review s13a F4): each flush op commits its own
 * transaction inside the actor's synchronous loop over a message, and queued messages all run before any timer
 * (§3.28), so the event loop's heartbeat stood still for a whole backlog of flushes and the watchdog terminated a
 * busy, healthy worker: every waiting flush rejected with worker-unresponsive, writes not yet committed were lost.
 * Each message taken and each commit now counts as progress. Explicit flushes keep call order (a flush held to share
 * a commit would take writes made after its call: the guards below; flushes share one now, each batch taken at its
 * call: test/engine/flush-group). Behaviour only, never timed. Real SQLite files, real worker threads.
 */
import { afterAll, afterEach, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { CodecError, StorageError } from "../../src/errors.js";
import { expectCoded, rejectionOf, tempRoot } from "./fixtures/helpers.js";

const REFUSING_RECORDS = new URL("./fixtures/refusing-records.mjs", import.meta.url).href;
const root = tempRoot("flush-progress");
afterAll(() => root.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

it("5000 handlers saving and flushing in one turn: the busy worker is not terminated, every flush resolves", async () => {
  const reported: Error[] = [];
  engine = openStorageEngine({ threads: 1, watchdogMs: 500, onError: (e) => void reported.push(e) });
  const kv = engine.kv<number>({ kind: "sqlite", path: root.fresh("c.db") }, { name: "kv", debounceMs: 60_000 });
  kv.save("warm", 0);
  await kv.flush();
  const n = 5000;
  // One message of 5000 put + flush pairs: 5000 transactions in one synchronous run (before: killed past 500 ms).
  const outcomes = await Promise.allSettled(Array.from({ length: n }, (_, i) => (kv.save(`n${i}`, i), kv.flush())));
  expect(outcomes.filter((o) => o.status === "rejected")).toEqual([]);
  expect(reported).toEqual([]);
  const stored = await Promise.all(Array.from({ length: n }, (_, i) => kv.load(`n${i}`)));
  expect(stored).toEqual(Array.from({ length: n }, (_, i) => i));
}, 60_000);

it("a flush per save under backpressure: the busy worker is not terminated, nothing is lost", async () => {
  const reported: string[] = [];
  engine = openStorageEngine({ threads: 1, watchdogMs: 500, maxPendingBytes: 1024 * 1024, onError: (e) => void reported.push((e as StorageError).code) });
  const kv = engine.kv<number>({ kind: "sqlite", path: root.fresh("f.db") }, { name: "kv", debounceMs: 0 });
  const rejected: unknown[] = [];
  const flushes: Promise<void>[] = [];
  const total = 20_000;
  for (let i = 0; i < total; ) {
    try {
      kv.save(`k${i}`, i);
      flushes.push(kv.flush().catch((e: unknown) => void rejected.push(e)));
      i++;
    } catch (err) {
      expectCoded(err, StorageError, "backpressure");
      await kv.drained!();
    }
    if (i % 5000 === 0) await new Promise((r) => setImmediate(r));
  }
  await Promise.all(flushes);
  // Before: the watchdog terminated the worker mid-backlog; the waiting flushes rejected, their writes lost.
  expect(reported).toEqual([]);
  expect(rejected).toEqual([]);
  for (const i of [0, 1, total / 2, total - 1]) expect(await kv.load(`k${i}`)).toBe(i);
}, 120_000);

it("flushes of different tiers commit in call order: the value of the flush called last is stored", async () => {
  engine = openStorageEngine({ threads: 1 });
  const store = { kind: "sqlite" as const, path: root.fresh("order.db") };
  // Two tiers of one store share its keys.
  const a = engine.kv<string>(store, { name: "a", debounceMs: 60_000 });
  const b = engine.kv<string>(store, { name: "b", debounceMs: 60_000 });
  await Promise.all([a.flush(), b.flush()]);
  // One turn: a's write is applied first, b's flush is called first.
  a.save("k", "from a");
  b.save("k", "from b");
  await Promise.all([b.flush(), a.flush()]);
  expect(await a.load("k")).toBe("from a");
});

it("a rollback after a flush in the same turn discards only the writes after the flush's call", async () => {
  engine = openStorageEngine({ threads: 1 });
  const kv = engine.kv<number>({ kind: "sqlite", path: root.fresh("rb.db") }, { name: "kv", debounceMs: 60_000 });
  await kv.flush();
  kv.save("k", 1);
  const flushed = kv.flush();
  kv.save("k", 2);
  kv.rollback();
  await flushed;
  await kv.flush();
  expect(await kv.load("k")).toBe(1);
});

it("a refusal of a write made after a flush's call fails only the later flushes", async () => {
  engine = openStorageEngine({ threads: 1, onError: () => undefined });
  const kv = engine.kv<unknown>({ kind: "sqlite", path: root.fresh("r.db") }, {
    name: "kv",
    debounceMs: 60_000,
    codec: { module: REFUSING_RECORDS, export: "codec" },
  });
  await kv.flush();
  kv.save("a", { v: "good" });
  const first = kv.flush();
  kv.save("b", { v: "bad" }); // the worker codec refuses it when encoding
  const second = kv.flush();
  await expect(first).resolves.toBeUndefined();
  expectCoded(await rejectionOf(second), CodecError, "encode-failed");
  expect(await kv.load("a")).toEqual({ v: "good" });
  expect(await kv.load("b")).toBeUndefined();
});
