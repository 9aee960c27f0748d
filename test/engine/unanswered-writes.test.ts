/**
 * A turn's batch of writes alone travels to the store actor as a plain message that is not answered
 * (docs/design.md §3.22): it is applied in mailbox order with the calls before and after it, and what an answer
 * used to carry (a write the actor could not apply) still reaches the main thread, as an error event / onError.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { StoreActor } from "../../src/engine/actor.js";
import type { ActorEvent, Op, TierSpec } from "../../src/engine/protocol.js";
import { deserializeError } from "../../src/errors.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("unanswered");
afterAll(() => root.remove());

const kvSpec: TierSpec = { kind: "kv", name: "kv", debounceMs: undefined, compactEvery: undefined, codec: { kind: "builtin", name: "json" } };
const put = (tier: number, key: string, value: unknown): Op => ({ t: "put", tier, key, value });

async function openActor(events: ActorEvent[]): Promise<StoreActor> {
  const actor = new StoreActor({ store: { kind: "sqlite", path: root.fresh("a.db") }, synchronous: "FULL" });
  actor.setEventSink((e) => events.push(e));
  expect(await actor.ready()).toEqual({ threadId: expect.any(Number), tenure: expect.any(String) });
  return actor;
}

describe("unanswered writes in the actor", () => {
  it("are applied in mailbox order with the answered calls around them", async () => {
    const actor = await openActor([]);
    try {
      const opened = actor.apply([{ t: "open", tier: 1, spec: kvSpec, id: 1 }]);
      actor.applyWrites([put(1, "k", "first")]);
      const first = actor.apply([{ t: "load", tier: 1, id: 2, key: "k" }]);
      actor.applyWrites([put(1, "k", "second"), put(1, "other", 1)]);
      const second = actor.apply([{ t: "load", tier: 1, id: 3, key: "k" }]);
      expect((await opened).results[0]).toMatchObject({ ok: true });
      expect((await first).results[0]).toEqual({ id: 2, ok: true, value: "first" });
      expect((await second).results[0]).toEqual({ id: 3, ok: true, value: "second" });
    } finally {
      await actor.shutdown();
    }
  });

  it("a write the actor cannot apply (its tier is not open) is reported as an error event, once", async () => {
    const events: ActorEvent[] = [];
    const actor = await openActor(events);
    try {
      actor.applyWrites([put(7, "k", 1)]);
      await actor.apply([]); // behind the writes in the mailbox
      expect(events).toHaveLength(1);
      const err = events[0]!.type === "error" ? deserializeError(events[0]!.error) : undefined;
      expect(err).toMatchObject({ name: "StorageError", code: "closed" });
    } finally {
      await actor.shutdown();
    }
  });
});

describe("unanswered writes through the engine", () => {
  let engine: StorageEngine | undefined;
  afterEach(async () => {
    await engine?.close().catch(() => undefined);
    engine = undefined;
  });

  const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

  // The turn ring (the engine's default) and a message per turn (turnRingBytes: 0) alike.
  it.each([
    ["through the turn ring", {}],
    ["through messages", { turnRingBytes: 0 }],
  ])("one save per turn, then reads: every read sees the saves of the turns before it (%s)", async (_, ring: { turnRingBytes?: number }) => {
    engine = openStorageEngine({ threads: 1, ...ring });
    const kv = engine.kv<number>({ kind: "sqlite", path: root.fresh("e.db") }, { name: "kv" });
    for (let i = 0; i < 50; i++) {
      kv.save("k", i);
      await turn(); // this turn's record (or message) carries the save alone
      if (i % 10 === 9) expect(await kv.load("k")).toBe(i);
    }
    await kv.flush();
    expect(await kv.load("k")).toBe(49);
  });
});
