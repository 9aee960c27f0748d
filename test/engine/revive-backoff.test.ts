/**
 * A store whose actors keep dying young is revived with backoff (review s13a F5): the next actor starts 100 ms after
 * the death, doubling with each young death in a row up to 10 s. Before, every retry started a new worker at once
 * (17 thread starts and 1.8 s of main-thread CPU in 3 s of `save; await flush`). Calls made during the delay wait
 * for the new actor (writes within maxPendingBytes), so what a flush acknowledges stays true; close() does not wait
 * for the delay. The one timing figure asserted is a lower bound the delay itself guarantees (it cannot flake by
 * being slow). Real worker threads and SQLite files; the crash is the fixture's process.exit in the worker.
 */
import { afterAll, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { openStorageEngine } from "../../src/engine/index.js";
import { openStorageEngineForTests } from "../../src/engine/engine.js";
import { StorageError } from "../../src/errors.js";
import { expectCoded, rejectionOf, tempRoot } from "./fixtures/helpers.js";

const CRASH_WORKER = fileURLToPath(new URL("./fixtures/crash-on-write-worker.mjs", import.meta.url));
const root = tempRoot("revive-backoff");
afterAll(() => root.remove());

it("a store whose worker dies at every write is revived later each time; close() drains without waiting", async () => {
  const crashes: string[] = [];
  const path = root.fresh("poison.db");
  const { engine } = openStorageEngineForTests({ threads: 1, onError: (e) => void crashes.push((e as StorageError).code) }, CRASH_WORKER);
  const kv = engine.kv<string>({ kind: "sqlite", path }, { name: "kv", debounceMs: 60_000 });
  kv.save("before", "ok");
  await kv.flush();
  const attempts = 6;
  const deaths: number[] = [];
  for (let i = 0; i < attempts; i++) {
    kv.save(`k${i}`, "poison-value");
    expectCoded(await rejectionOf(kv.flush()), StorageError, "worker-crashed");
    deaths.push(Date.now()); // the rejection runs in the turn of the death: no timer fires in between
  }
  // Death k (k = 1..5) delayed the next actor's start, hence its death, by at least 100 · 2^(k-1) ms (a few ms
  // spared for clock rounding). Before: no delay, each gap one thread start (~0.2-0.4 s).
  const gaps = deaths.slice(1).map((t, k) => t - deaths[k]!);
  expect(gaps.map((gap, k) => gap >= 100 * 2 ** k - 5)).toEqual([true, true, true, true, true]);
  expect(crashes.filter((c) => c === "worker-crashed").length).toBe(attempts);
  // The sixth death's delay (3.2 s) runs now: a write made meanwhile waits for the next actor, and close() starts it
  // at once and drains the write.
  kv.save("during-delay", "fine");
  await engine.close();
  const check = openStorageEngine({ threads: 1 });
  try {
    const reread = check.kv<string>({ kind: "sqlite", path }, { name: "kv" });
    expect(await reread.load("during-delay")).toBe("fine");
    expect(await reread.load("before")).toBe("ok");
  } finally {
    await check.close();
  }
}, 60_000);
