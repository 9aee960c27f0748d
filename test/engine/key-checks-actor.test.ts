/**
 * One key check per thread (issue 12 item 1), the worker's side: a store actor applies writes its main-thread proxy
 * already checked against the shared key rule (src/tier/arguments.ts), so the rule does not run again in the worker;
 * only the backend's own rule (`checkKey`, none for memory) does. Counted with a pass-through spy on
 * `assertValidKey` (the real function runs); the inline side is test/tier/key-checks.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("../../src/backend/keys.js", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../src/backend/keys.js")>();
  return { ...real, assertValidKey: vi.fn(real.assertValidKey) };
});

import { assertValidKey } from "../../src/backend/keys.js";
import { StoreActor } from "../../src/engine/actor.js";
import { ActorCounters } from "../../src/engine/actor-counters.js";

const sharedRule = vi.mocked(assertValidKey);
const HELD = 3_600_000;

// A braced body: mockClear returns the mock, which vitest would take for a cleanup hook and call.
beforeEach(() => {
  sharedRule.mockClear();
});

describe("key checks per write, store actor", () => {
  let actor: StoreActor | undefined;
  afterEach(async () => {
    await actor?.shutdown();
    actor = undefined;
  });

  it("a put the main thread's proxy already checked is not checked again by the shared rule in the worker", async () => {
    actor = new StoreActor({ store: { kind: "memory", name: `key-checks-${process.pid}` }, synchronous: "FULL", counters: new ActorCounters().buffer });
    await actor.ready();
    const spec = { kind: "kv" as const, name: "kv", debounceMs: HELD, compactEvery: undefined, codec: { kind: "builtin" as const, name: "json" } };
    const opened = await actor.apply([{ t: "open", tier: 1, spec, id: 1 }]);
    expect(opened.results.every((r) => r.ok)).toBe(true);
    sharedRule.mockClear();
    await actor.apply([{ t: "puts", tier: 1, keys: ["a", "b", "c"], values: [1, 2, 3], w: 3, n: 3 }]);
    expect(sharedRule).toHaveBeenCalledTimes(0);
  });
});
