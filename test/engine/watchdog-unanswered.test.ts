/**
 * The watchdog sees a hung worker while nothing is awaited from it (review s13a F1): writes are posted without an
 * answer, so a store whose worker hung with writes pending, or a producer waiting in drained() for room, had no
 * call outstanding and the watchdog never looked: drained() waited for ever and the hung thread stayed. Posted
 * writes not yet settled and drained() waiters now count as answers due. Real SQLite files, real worker threads;
 * the hang is the fault worker's synchronous loop.
 */
import { afterAll, afterEach, expect, it } from "vitest";
import { openFaultEngine, type FaultEngine } from "../support/faults.js";
import { StorageError } from "../../src/errors.js";
import { expectCoded, tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("watchdog-unanswered");
afterAll(() => root.remove());
let engine: FaultEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

it("drained() on a store whose worker hangs rejects with worker-unresponsive", async () => {
  const errors: Error[] = [];
  engine = openFaultEngine({ threads: 1, watchdogMs: 500, closeTimeoutMs: 2_000, maxPendingBytes: 64 * 1024, onError: (e) => void errors.push(e) });
  const store = { kind: "sqlite" as const, path: root.fresh("hung.db") };
  const kv = engine.kv<string>(store, { name: "kv", debounceMs: 60_000 });
  kv.save("warm", "x");
  await kv.flush();
  await engine.injectFault(store, "hang"); // the worker busy-loops for 60 s
  let refused: unknown;
  for (let i = 0; i < 10_000 && refused === undefined; i++) {
    try {
      kv.save(`k${i}`, "v".repeat(1000));
    } catch (err) {
      refused = err;
    }
  }
  expectCoded(refused, StorageError, "backpressure");
  // Before the fix this never settled (the test timed out); the hang lasts 60 s, longer than the test may run.
  const err = await kv.drained!().then(
    () => "resolved",
    (e: unknown) => e,
  );
  expectCoded(err, StorageError, "worker-unresponsive");
  expect(errors.map((e) => (e as StorageError).code)).toContain("worker-unresponsive");
  // The store reopens on a fresh thread: its first flush reports the writes lost with the hung one, then writes are stored.
  expectCoded(await kv.flush().then(() => "resolved", (e: unknown) => e), StorageError, "worker-crashed");
  kv.save("after", "y");
  await kv.flush();
  expect(await kv.load("after")).toBe("y");
}, 40_000);

it("a store whose worker hangs with writes pending and nothing awaited is taken over by the watchdog", async () => {
  const errors: Error[] = [];
  engine = openFaultEngine({ threads: 1, watchdogMs: 500, closeTimeoutMs: 2_000, onError: (e) => void errors.push(e) });
  const store = { kind: "sqlite" as const, path: root.fresh("pending.db") };
  const kv = engine.kv<string>(store, { name: "kv", debounceMs: 60_000 });
  kv.save("warm", "x");
  await kv.flush();
  await engine.injectFault(store, "hang");
  for (let i = 0; i < 10; i++) kv.save(`k${i}`, "v"); // accepted, nothing awaited
  // Polls the report (no timing asserted): before the fix it never came, and the test timed out.
  while (!errors.some((e) => (e as StorageError).code === "worker-unresponsive")) await new Promise((r) => setTimeout(r, 50));
  // The 10 writes were never acknowledged: the tier's next flush reports them lost.
  expectCoded(await kv.flush().then(() => "resolved", (e: unknown) => e), StorageError, "worker-crashed");
  kv.save("after", "y");
  await kv.flush();
  expect(await kv.load("after")).toBe("y");
}, 40_000);
