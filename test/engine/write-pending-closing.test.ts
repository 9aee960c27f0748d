/**
 * writePending rejects only when writing failed. While a tier (or its engine) closed and the close reported a refusal
 * (a worker codec's plain Error), writePending rejected with that refusal (review): the close's report was not
 * known as one (not marked across the thread boundary, nor kept by the inline core). Every accepted write was
 * written; the refusal is the close's caller's. Real parts: SQLite files, real worker threads, a module codec.
 */
import { afterAll, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import type { Codec } from "../../src/codec/types.js";
import { tempRoot } from "./fixtures/helpers.js";
import { kvStorage } from "../../src/tier/index.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";

const MODULE = new URL("./fixtures/refusing-frames.mjs", import.meta.url).href;
const root = tempRoot("write-pending-closing");
afterAll(() => root.remove());

const outcome = (p: Promise<unknown>) => p.then(() => "resolved", (e: Error) => `rejected: ${e.message}`);

it("engine tier: writePending during the tier's close that reports a refusal", async () => {
  const engine = openStorageEngine({ threads: 1, onError: () => {} });
  try {
    const kv = engine.kv<unknown>({ kind: "sqlite", path: root.fresh("a.db") }, {
      name: "kv", debounceMs: 60_000, codec: { module: MODULE, export: "codec" } as unknown as Codec<unknown>,
    });
    kv.save("good", 1);
    kv.save("k1", "bad");
    const closing = outcome(kv.close());
    const pending = outcome(kv.writePending!());
    expect(await closing).toBe("rejected: cannot encode bad"); // the close's caller hears the refusal
    expect(await pending).toBe("resolved");
  } finally {
    await engine.close().catch(() => undefined);
  }
});

it("engine tier: writePending during engine.close() with a refused value", async () => {
  const engine = openStorageEngine({ threads: 1, onError: () => {} });
  const kv = engine.kv<unknown>({ kind: "sqlite", path: root.fresh("b.db") }, {
    name: "kv", debounceMs: 60_000, codec: { module: MODULE, export: "codec" } as unknown as Codec<unknown>,
  });
  kv.save("good", 1);
  kv.save("k1", "bad");
  const closing = outcome(engine.close());
  const pending = outcome(kv.writePending!());
  expect(await pending).toBe("resolved");
  await closing;
});

it("inline tier: writePending during the tier's close that reports a refusal", async () => {
  const codec = (await import(MODULE)).codec as Codec<unknown>;
  const kv = kvStorage<unknown>(sqliteBackend(root.fresh("c.db")), { name: "kv", debounceMs: 60_000, codec });
  kv.save("good", 1);
  kv.save("k1", "bad");
  const closing = outcome(kv.close());
  const pending = outcome(kv.writePending!());
  expect(await closing).toBe("rejected: cannot encode bad");
  expect(await pending).toBe("resolved");
});
