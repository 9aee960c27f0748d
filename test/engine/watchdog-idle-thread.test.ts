/**
 * A worker thread hosting no open store that blocks (its last store's task ended, something blocked the thread
 * after) is replaced once a store placed on it waits. Piscina hands the new store's task to that thread, where it
 * never starts; no store's heartbeat spoke for the thread, so the watchdog left it alone: the store was given up
 * after the 30 s startup grace (worker-unresponsive) with nothing terminated, and every retry met the same blocked
 * thread (design §3.30). Now a thread with no open store whose event loop has not idled for watchdogMs counts as
 * blocked: it is terminated, the queued task fails (worker-crashed) and the store's next operation opens on a fresh
 * thread. Real worker threads; the block is the fixture's Atomics.wait after a store's task returned.
 */
import { afterAll, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { openStorageEngineForTests } from "../../src/engine/engine.js";
import { StorageError } from "../../src/errors.js";
import { expectCoded, tempRoot } from "./fixtures/helpers.js";
import { until } from "../support/wait.js";

const BLOCK_WORKER = fileURLToPath(new URL("./fixtures/block-after-task-worker.mjs", import.meta.url));
const root = tempRoot("watchdog-idle-thread");
afterAll(() => root.remove());

/** The outcome of `p`, or a note that it did not settle within `ms` (the failure before the fix, with retries). */
function within(p: Promise<unknown>, ms: number): Promise<unknown> {
  return Promise.race([p.then(() => "resolved", (e: unknown) => e), new Promise((r) => setTimeout(() => r(`not settled after ${ms} ms`), ms).unref())]);
}

it("a store placed on a blocked thread hosting no open store: the thread is replaced", async () => {
  const access = openStorageEngineForTests({ threads: 1, watchdogMs: 500, closeTimeoutMs: 3_000, onError: () => undefined }, BLOCK_WORKER);
  const engine = access.engine;
  try {
    // A read-only store at a missing path fails to open: its task ends, and the fixture then blocks the thread.
    const a = { kind: "sqlite" as const, path: root.fresh("then-block.db"), readOnly: true };
    const kvA = engine.kv<string>(a, { name: "kv" });
    const openFailure = await kvA.load("x").then(() => "resolved", (e: unknown) => e);
    expect(openFailure).toBeInstanceOf(StorageError);
    await until(() => existsSync(`${a.path}.blocking`), "the fixture blocked the only thread", { timeoutMs: 20_000, intervalMs: 20 });
    expect((await engine.stats()).filter((s) => s.alive)).toEqual([]); // the blocked thread hosts no open store

    const kvB = engine.kv<string>({ kind: "memory", name: "b" }, { name: "kv" });
    kvB.save("x", "1");
    // B's task is queued on the blocked thread: the thread is terminated, which fails the task. Before the fix B
    // was given up after the startup grace with "worker-unresponsive" and the thread kept (the guard's 25 s is a
    // net for a run that never settles, not a timing asserted).
    const first = await within(kvB.flush(), 25_000);
    expectCoded(first, StorageError, "worker-crashed");
    // The next operation opens B on a fresh thread. Before the fix it met the same blocked thread.
    kvB.save("y", "2");
    expect(await within(kvB.flush(), 25_000)).toBe("resolved");
    expect(await kvB.load("y")).toBe("2");
    const stats = await engine.stats();
    expect(stats.find((s) => s.store.kind === "memory")?.alive).toBe(true);
  } finally {
    await engine.close().catch(() => undefined);
  }
}, 90_000);
