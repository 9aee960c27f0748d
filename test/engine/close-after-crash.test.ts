/**
 * A tier's close that reports a refusal closed the tier, through the engine as inline: writes then throw `closed`
 * at the call and a second close resolves. After a worker crash lost a write, the close reporting the loss
 * (`worker-crashed`) closed the tier in the actor, but the proxy kept it open: a save was taken and then dropped by
 * the actor, and every later flush and close rejected with "tier is not open" (review).
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openFaultEngine, type FaultEngine } from "../support/faults.js";
import type { StoreSpec } from "../../src/engine/index.js";
import { tempRoot, turn } from "./fixtures/helpers.js";
import { syncErrorOf } from "../support/wait.js";

const root = tempRoot("close-after-crash");
afterAll(() => root.remove());
let engine: FaultEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

describe("close of a tier whose writes a crash lost", () => {
  it("rejects with worker-crashed and closes the tier: writes throw closed, a second close resolves", async () => {
    const e = openFaultEngine({ threads: 1, onError: () => undefined });
    engine = e;
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("a.db") };
    const kv = e.kv<number>(store, { name: "kv", debounceMs: 60_000 });
    kv.save("a", 1);
    await kv.flush();
    kv.save("b", 2); // reaches the actor, never flushed
    await turn();
    await turn();
    await e.injectFault(store, "terminate");
    for (let i = 0; i < 2000 && (await e.stats()).every((s) => s.alive); i++) await new Promise((r) => setTimeout(r, 5));
    await expect(kv.close()).rejects.toMatchObject({ code: "worker-crashed" });
    expect(syncErrorOf(() => kv.save("c", 3))).toMatchObject({ code: "closed" });
    await expect(kv.close()).resolves.toBeUndefined();
    const again = e.kv<number>(store, { name: "kv" });
    expect(await again.load("a")).toBe(1);
    expect(await again.load("c")).toBeUndefined();
  });

  it("a close reporting a value's refusal closes the tier too", async () => {
    const e = openFaultEngine({ threads: 1, onError: () => undefined });
    engine = e;
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("b.db") };
    const kv = e.kv<unknown>(store, { name: "kv", debounceMs: 60_000 });
    kv.save("a", 1);
    kv.save("bad", { n: Number.NaN });
    await expect(kv.close()).rejects.toMatchObject({ code: "encode-failed" });
    expect(syncErrorOf(() => kv.save("c", 3))).toMatchObject({ code: "closed" });
    await expect(kv.close()).resolves.toBeUndefined();
  });
});
