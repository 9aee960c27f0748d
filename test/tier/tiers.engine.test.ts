/**
 * The tier conformance suite over every backend, tiers proxied to store actors in worker threads
 * (needs `npm run build`: workers load dist/). One engine per backend block, renewed only when a case
 * reopens a persistent store as a fresh process would.
 */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { tierSuite } from "../conformance/tier/index.js";
import { workerFactory, type BackendKind } from "../support/tier-harness.js";
import { errorOf, syncErrorOf } from "../support/wait.js";

for (const kind of ["memory", "file", "sqlite"] as const satisfies readonly BackendKind[]) {
  const factory = workerFactory(kind);
  tierSuite({
    name: factory.name,
    mode: factory.mode,
    faults: factory.faults,
    sharedStores: factory.sharedStores,
    open: () => factory.open(),
    cleanup: () => factory.cleanup(),
  });
}

function expectClosed(err: unknown): void {
  expect(err).toBeInstanceOf(StorageError);
  expect((err as StorageError).code).toBe("closed");
}

describe("storage engine after close", () => {
  it("refuses new tiers and stats, and its existing tier proxies fail with closed (a flush settles as the drain did)", async () => {
    const engine = openStorageEngine({ threads: 1 });
    const store = { kind: "memory", name: `after-close-${process.pid}` } as const;
    const kv = engine.kv<number>(store, { name: "kv" });
    kv.save("a", 1);
    await kv.flush();
    expect(await kv.load("a")).toBe(1);
    await engine.close();
    expect(engine.closed).toBe(true);

    expectClosed(syncErrorOf(() => engine.kv(store)));
    expectClosed(syncErrorOf(() => engine.snapshot(store)));
    expectClosed(syncErrorOf(() => engine.appendLog(store)));
    expectClosed(await errorOf(() => engine.stats()));
    expectClosed(syncErrorOf(() => kv.save("b", 2)));
    expectClosed(await errorOf(() => kv.load("a")));
    // A flush after close settles as the close's drain did (design §3.18): every write was stored, so it resolves.
    await expect(kv.flush()).resolves.toBeUndefined();
    await engine.close(); // idempotent
  });
});
