/**
 * Write holding (docs/design.md §3.24): a writer that writes once per event-loop turn, as request handlers do, posts
 * one message per turn only while the store's actor keeps up. While the actor is busy, the writes wait on the main
 * thread and travel together; a request, a turn without writes, the caps, close or the actor's loss end the wait,
 * and a held value is the value as its turn ended, as if it had been posted then.
 * The actor is made busy deterministically with the tests' "busy" fault (a 2 s synchronous loop in its thread).
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { StoreStats } from "../../src/engine/index.js";
import { sealWalFrame, walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { openFaultEngine, type FaultEngine } from "../support/faults.js";
import { rejectionOf, tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("write-holding");
afterAll(() => root.remove());

let engine: FaultEngine | undefined;
afterEach(async () => {
  // Some cases terminate the worker: close() may report the writes lost with it (checked there, not here).
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

async function statsOf(e: FaultEngine): Promise<StoreStats> {
  const [s] = await e.stats();
  return s!;
}

/**
 * The messages the actor took, once it published them: the actor publishes a moment after it took them, so wait
 * (bounded) until the count has held still over several readings with nothing queued.
 */
async function settledMessages(e: FaultEngine): Promise<number> {
  let last = -1;
  let still = 0;
  for (let i = 0; i < 500; i++) {
    const { messages, queueDepth } = await statsOf(e);
    still = messages === last && queueDepth === 0 ? still + 1 : 0;
    if (still >= 3) return messages;
    last = messages;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("the actor's message count did not settle");
}

async function openBusyStore(name: string) {
  engine = openFaultEngine({ threads: 1 });
  const store = { kind: "sqlite" as const, path: root.fresh(name) };
  const kv = engine.kv<unknown>(store, { name: "kv" });
  kv.save("warm", 0);
  await kv.flush();
  const before = await settledMessages(engine);
  await engine.injectFault(store, "busy"); // its thread loops for 2 s from this message on, then carries on
  return { e: engine, store, kv, before };
}

describe("writes held for a busy actor", () => {
  it("one write per turn reaches a busy actor in a few messages, and every value as it was when its turn ended", async () => {
    const { e, kv, before } = await openBusyStore("paced.db");
    const shared = { n: -1 }; // one object, changed in place after each save: each turn's value must be kept
    for (let i = 0; i < 50; i++) {
      shared.n = i;
      kv.save(`k${i % 10}`, shared);
      await nextTurn();
    }
    await kv.flush();
    const taken = (await settledMessages(e)) - before;
    // Before holding: 50 write messages and the flush. Now: the first write, then the held ones with the flush.
    expect(taken).toBeGreaterThanOrEqual(1);
    expect(taken).toBeLessThanOrEqual(6);
    for (let k = 0; k < 10; k++) expect(await kv.load(`k${k}`)).toEqual({ n: 40 + k });
  });

  it("appended entries are kept as they were when their turn ended, the array reused after", async () => {
    const { e, store } = await openBusyStore("append.db");
    const log = e.appendLog<number>(store, { name: "log" });
    const buffer: number[] = [];
    for (let i = 0; i < 6; i++) {
      buffer.length = 0;
      buffer.push(i, i * 10);
      log.appendEntries(buffer);
      await nextTurn();
    }
    await log.flush();
    const { entries } = await log.loadEntries();
    expect(entries).toEqual([0, 0, 1, 10, 2, 20, 3, 30, 4, 40, 5, 50]);
  });

  it("a WAL frame the caller built (not attach's frozen one) is kept as it was saved", async () => {
    const { e, store } = await openBusyStore("frames.db");
    const wal = e.kv<WALFrame>(store, { name: "wal", codec: walFrameCodec });
    const payload = { kind: "node.set", path: "x", value: 0 };
    for (let seq = 1; seq <= 4; seq++) {
      payload.value = seq;
      const frame = sealWalFrame({
        t: "c",
        lifecycle: "data",
        path: "x",
        change: { structure: "graph.value", version: 1, t_ns: 1000 + seq, lifecycle: "data", change: payload },
        frame_seq: seq,
        frame_t_ns: 1000 + seq,
      });
      wal.save(`g/wal/${String(seq).padStart(20, "0")}`, frame);
      await nextTurn();
    }
    await wal.flush();
    for (let seq = 1; seq <= 4; seq++) {
      const frame = await wal.load(`g/wal/${String(seq).padStart(20, "0")}`);
      expect((frame!.change.change as { value: number }).value).toBe(seq);
    }
  });

  it("a read behind held writes sees them", async () => {
    const { e, kv } = await openBusyStore("read.db");
    kv.save("a", 1);
    await nextTurn();
    kv.save("a", 2);
    await nextTurn();
    expect((await statsOf(e)).queueDepth).toBe(1); // held: the actor has not taken the first write yet
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
    expect((await statsOf(e)).queueDepth).toBe(1);
    await nextTurn(); // a turn without a write: "b" is posted although the actor is still busy
    const s = await statsOf(e);
    expect(s.queueDepth).toBe(0);
    expect(s.pendingEntries).toBe(2);
    await kv.flush();
    expect(await kv.load("b")).toBe(2);
  });

  it("4096 writes in one turn are posted at once, held or not", async () => {
    const { e, kv } = await openBusyStore("cap.db");
    kv.save("a", 1);
    await nextTurn();
    for (let i = 0; i < 4096; i++) kv.save(`many${i}`, i);
    await nextTurn();
    expect((await statsOf(e)).queueDepth).toBe(0);
    await kv.flush();
    expect(await kv.load("many4095")).toBe(4095);
  });

  it("close sends held writes and makes them durable", async () => {
    const { e, store, kv } = await openBusyStore("close.db");
    for (let i = 0; i < 5; i++) {
      kv.save(`c${i}`, i);
      await nextTurn();
    }
    expect((await statsOf(e)).queueDepth).toBeGreaterThan(0);
    await e.close();
    engine = openFaultEngine({ threads: 1 });
    const again = engine.kv<number>(store, { name: "kv" });
    for (let i = 0; i < 5; i++) expect(await again.load(`c${i}`)).toBe(i);
  });

  it("writes held when the actor is lost fail the next flush with worker-crashed; the store then works again", async () => {
    const { e, store, kv } = await openBusyStore("lost.db");
    kv.save("a", 1);
    await nextTurn();
    kv.save("b", 2);
    await nextTurn();
    expect((await statsOf(e)).queueDepth).toBe(1);
    await e.injectFault(store, "terminate");
    const err = await rejectionOf(kv.flush());
    expect(err).toMatchObject({ code: "worker-crashed" });
    kv.save("c", 3);
    await kv.flush();
    expect(await kv.load("c")).toBe(3);
    expect(await kv.load("warm")).toBe(0);
  });
});
