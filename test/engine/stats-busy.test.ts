/**
 * Issue 11 item 2: engine.stats() answers while the store's actor is busy. The figures come from counters the actor
 * shares with the main thread (and from what the main thread posted), so no message waits behind the actor's
 * backlog: here the actor is blocked outright (the "hang" fault: a synchronous loop) with writes queued behind it.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { StoreStats } from "../../src/engine/index.js";
import { openFaultEngine, type FaultEngine } from "../support/faults.js";
import { tempRoot } from "./fixtures/helpers.js";
import { recordWeight } from "../../src/tier/weights.js";
import { textCodec } from "../support/text-codec.js";

const root = tempRoot("stats-busy");
afterAll(() => root.remove());

let engine: FaultEngine | undefined;
afterEach(async () => {
  // The test kills the worker: close() may report the writes lost with it (not what this test is about).
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

describe("engine.stats() while the actor is busy", () => {
  it("answers at once (not after the backlog) with the writes still pending", async () => {
    engine = openFaultEngine({ threads: 1 });
    const store = { kind: "sqlite" as const, path: root.fresh("busy.db") };
    const kv = engine.kv<string>(store, { name: "kv", codec: textCodec });
    kv.save("a", "x");
    await kv.flush();
    await engine.injectFault(store, "hang"); // the actor's thread loops for 60 s; the saves below queue behind it
    kv.save("b", "12345");
    kv.save("c", "678");
    const answer = await Promise.race([engine.stats(), sleep(5_000).then(() => "no answer within 5 s" as const)]);
    expect(answer).not.toBe("no answer within 5 s");
    const [s] = answer as StoreStats[];
    // Two records: 64 B each, 2 B per key unit, and their 5 + 3 encoded bytes (docs/design.md §3.19).
    const pendingBytes = recordWeight("b", 5) + recordWeight("c", 3);
    expect(pendingBytes).toBe(140);
    expect(s).toMatchObject({ alive: true, pendingEntries: 2, pendingBytes, flushes: 1, frames: 1, bytesWritten: 1 });
    await engine.injectFault(store, "terminate");
  });
});
