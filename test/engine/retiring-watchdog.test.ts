// A tier opened while its store shuts down (idle shutdown after the last tier's close) gets a new connection; the
// old one retires. The watchdog must still watch the retiring actor, and the new actor must start only once the old
// one's thread is gone, not once the old actor was declared lost (review r338 F1).
import { existsSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";
import { openStorageEngineForTests } from "../../src/engine/engine.js";
import { settledTo } from "../support/settled.js";
import { tempRoot } from "./fixtures/helpers.js";

const WORKER = fileURLToPath(new URL("./fixtures/stuck-shutdown-worker.mjs", import.meta.url));
const root = tempRoot("retiring-watchdog");
afterAll(() => root.remove());

it("a tier opened while its store's shutdown is stuck in a native call flushes once the watchdog ended the old thread", async () => {
  const heard: string[] = [];
  const { engine } = openStorageEngineForTests(
    { threads: 2, watchdogMs: 500, idleStoreCloseMs: 0, closeTimeoutMs: 10_000, onError: (e) => void heard.push(e.message) },
    WORKER,
  );
  try {
    const store = { kind: "sqlite" as const, path: root.fresh("store.db") };
    writeFileSync(`${store.path}.stuck-shutdown`, "");
    const first = engine.kv<string>(store, { name: "t" });
    first.save("k", "1");
    await first.flush();
    const closing = settledTo(first.close()); // the idle shutdown follows; its actor gets stuck in it
    for (let i = 0; i < 2_000 && existsSync(`${store.path}.stuck-shutdown`); i++) await new Promise((r) => setTimeout(r, 5));
    expect(existsSync(`${store.path}.stuck-shutdown`)).toBe(false); // the old actor is inside its shutdown
    const again = engine.kv<string>(store, { name: "t" }); // a new connection; the old one retires
    again.save("k", "2");
    // Unfixed: pending for good (nothing watches the retiring actor), or "database is locked" (the new actor
    // started while the old thread still held the store). The bound only keeps a failure from hanging the suite.
    const flushed = await Promise.race([settledTo(again.flush()), new Promise((r) => setTimeout(() => r("pending after 15 s"), 15_000))]);
    expect(flushed).toBe("resolved");
    expect(await again.load("k")).toBe("2");
    await closing;
    await again.close();
  } finally {
    await engine.close().catch(() => undefined);
  }
}, 40_000);
