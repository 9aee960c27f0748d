/**
 * engine.close() ends within closeTimeoutMs although a store's hosting task never returns after its actor answered
 * shutdown() (its thread blocked right after the answer). shutdownOnce awaited the task without racing anything
 * abandon() settles, so close() awaited its drains for ever and never reached the pool's destroy, the one thing that
 * ends that task (review s13a F3). Real worker threads; the block comes from the fixture's worker entry.
 */
import { expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { openStorageEngineForTests } from "../../src/engine/engine.js";

const STUCK_WORKER = fileURLToPath(new URL("./fixtures/stuck-after-shutdown-worker.mjs", import.meta.url));

it("close() settles when a store's task never returns after its shutdown answer", async () => {
  const { engine } = openStorageEngineForTests({ threads: 1, watchdogMs: 500, closeTimeoutMs: 1_000 }, STUCK_WORKER);
  const kv = engine.kv<string>({ kind: "memory", name: "stuck" }, { name: "kv" });
  kv.save("a", "1");
  await kv.flush();
  // Before the fix close() never settled; the test's own timeout (30 closeTimeoutMs) is the failure then.
  const outcome = await engine.close().then(
    () => "resolved",
    (err: unknown) => err,
  );
  // The actor drained and answered shutdown: only its thread is stuck, so close() has nothing to report.
  expect(outcome).toBe("resolved");
  expect(engine.closed).toBe(true);
}, 30_000);
