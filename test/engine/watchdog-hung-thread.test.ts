/**
 * A worker thread hung while none of its stores has an answer due is replaced once a store placed on it waits
 * (review s13a F1): piscina hands a new store's task to the blocked thread too, where it never starts; its thread is
 * unknown, so the watchdog used to give it up after the startup grace (30 s) and terminate nothing, and every retry
 * met the same hung thread. Now a store whose task has not begun after a bound, while a thread's every store stood
 * still as long, gets that thread terminated: the queued task fails (worker-crashed) and the store's next operation
 * opens on a fresh thread. Real worker threads; the hang is the fixture's endless synchronous loop.
 */
import { afterAll, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { openStorageEngineForTests } from "../../src/engine/engine.js";
import { StorageError } from "../../src/errors.js";
import { expectCoded, tempRoot } from "./fixtures/helpers.js";
import { HANG_MESSAGE } from "./fixtures/probe-messages.mjs";

const HANG_WORKER = fileURLToPath(new URL("./fixtures/hang-forever-worker.mjs", import.meta.url));
const root = tempRoot("watchdog-hung-thread");
afterAll(() => root.remove());

/** The outcome of `p`, or a note that it did not settle within `ms` (the failure before the fix). */
function within(p: Promise<unknown>, ms: number): Promise<unknown> {
  return Promise.race([p.then(() => "resolved", (e: unknown) => e), new Promise((r) => setTimeout(() => r(`not settled after ${ms} ms`), ms).unref())]);
}

it.each([
  ["nothing pending on the hung store", 0],
  ["writes pending on the hung store, nothing awaited", 10],
])("a store opened on a thread hung with %s: the thread is replaced", async (_, pending) => {
  const access = openStorageEngineForTests({ threads: 1, watchdogMs: 500, closeTimeoutMs: 3_000, onError: () => undefined }, HANG_WORKER);
  const engine = access.engine;
  try {
    const a = { kind: "sqlite" as const, path: root.fresh("a.db") };
    const kvA = engine.kv<string>(a, { name: "kv", debounceMs: 60_000 });
    kvA.save("warm", "x");
    await kvA.flush();
    await access.post(a, { type: HANG_MESSAGE });
    for (let i = 0; i < pending; i++) kvA.save(`k${i}`, "v");
    const kvB = engine.kv<string>({ kind: "memory", name: "b" }, { name: "kv" });
    kvB.save("x", "1");
    // B's first flush may fail (its task was queued on the hung thread); the hung thread is gone then. Before the
    // fix it failed after the 30 s startup grace, and so did every retry.
    const first = await within(kvB.flush(), 45_000);
    expect(first === "resolved" || first instanceof StorageError).toBe(true);
    kvB.save("y", "2");
    expect(await within(kvB.flush(), 20_000)).toBe("resolved");
    expect(await kvB.load("y")).toBe("2");
    // A was lost with its thread and reopens too; the writes pending there are reported lost.
    const stats = await engine.stats();
    expect(stats.find((s) => s.store.kind === "sqlite")?.alive).toBe(false);
    if (pending > 0) expectCoded(await kvA.flush().then(() => "resolved", (e: unknown) => e), StorageError, "worker-crashed");
    kvA.save("after", "z");
    await kvA.flush();
    expect(await kvA.load("after")).toBe("z");
  } finally {
    await engine.close().catch(() => undefined);
  }
}, 120_000);
