/**
 * Write holding (docs/design.md §3.24): a writer that writes once per event-loop turn, as request handlers do, posts
 * one message per turn only while the store's actor keeps up. While the actor is busy, the writes wait on the main
 * thread and travel together; a request, a pause of the writer or close sends them at once, in order.
 * The actor is made busy deterministically with the tests' "busy" fault (a 2 s synchronous loop in its thread).
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { StoreStats } from "../../src/engine/index.js";
import { openFaultEngine, type FaultEngine } from "../support/faults.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("write-holding");
afterAll(() => root.remove());

let engine: FaultEngine | undefined;
afterEach(async () => {
  await engine?.close();
  engine = undefined;
});

async function statsOf(e: FaultEngine): Promise<StoreStats> {
  const [s] = await e.stats();
  return s!;
}

/** Waits (bounded) until the actor published what it took: its count then stops moving. */
async function settledMessages(e: FaultEngine): Promise<number> {
  let last = -1;
  for (let i = 0; i < 200; i++) {
    const { messages, queueDepth } = await statsOf(e);
    if (messages === last && queueDepth === 0) return messages;
    last = messages;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("the actor's message count did not settle");
}

async function openBusyStore(name: string) {
  engine = openFaultEngine({ threads: 1 });
  const store = { kind: "sqlite" as const, path: root.fresh(name) };
  const kv = engine.kv<number>(store, { name: "kv" });
  kv.save("warm", 0);
  await kv.flush();
  const before = await settledMessages(engine);
  await engine.injectFault(store, "busy");
  return { e: engine, store, kv, before };
}

describe("writes held for a busy actor", () => {
  it("one write per turn reaches a busy actor in a few messages, in order, all durable at the flush", async () => {
    const { e, kv, before } = await openBusyStore("paced.db");
    for (let i = 0; i < 50; i++) {
      kv.save(`k${i % 10}`, i); // rewrites too: the last value of each key must win
      await nextTurn();
    }
    await kv.flush();
    const taken = (await settledMessages(e)) - before;
    // Before holding: 50 write messages and the flush. Now: the first write, the held ones with the flush.
    expect(taken).toBeGreaterThanOrEqual(2);
    expect(taken).toBeLessThanOrEqual(3);
    for (let k = 0; k < 10; k++) expect(await kv.load(`k${k}`)).toBe(40 + k);
  });

  it("a read behind held writes sees them", async () => {
    const { kv } = await openBusyStore("read.db");
    kv.save("a", 1);
    await nextTurn();
    kv.save("a", 2);
    await nextTurn();
    kv.save("b", 3);
    expect(await kv.load("a")).toBe(2);
    expect(await kv.load("b")).toBe(3);
    expect(await kv.list()).toEqual(["a", "b", "warm"]);
  });

  it("a writer that pauses does not leave its writes on the main thread while the actor is busy", async () => {
    const { e, kv } = await openBusyStore("pause.db");
    kv.save("a", 1); // posted: the actor had taken everything before
    await nextTurn();
    kv.save("b", 2); // held: the actor has not taken "a" yet
    await nextTurn();
    await nextTurn(); // a turn without a write: "b" is posted although the actor is still busy
    const s = await statsOf(e);
    expect(s.queueDepth).toBe(0);
    expect(s.pendingEntries).toBe(2);
    await kv.flush();
    expect(await kv.load("b")).toBe(2);
  });

  it("close sends held writes and makes them durable", async () => {
    const { e, store, kv } = await openBusyStore("close.db");
    for (let i = 0; i < 5; i++) {
      kv.save(`c${i}`, i);
      await nextTurn();
    }
    await e.close();
    engine = openFaultEngine({ threads: 1 });
    const again = engine.kv<number>(store, { name: "kv" });
    for (let i = 0; i < 5; i++) expect(await again.load(`c${i}`)).toBe(i);
  });
});
