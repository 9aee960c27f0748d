/**
 * A burst's writes posted before their turn ends (connection.ts postEarly, design §3.46): each part carries MORE
 * (protocol.ts), and the actor's group commit holds the parts until the turn's own send, so a turn commits as its one
 * message would have (one transaction, past the bound), a flush after the parts answers only once every part is
 * committed, and a unit of writes is never split. Proven by counting flushes and reading the store, never by timing.
 */
import { MessagePort, type Transferable } from "node:worker_threads";
import Database from "better-sqlite3";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { StoreActor } from "../../src/engine/actor.js";
import { ActorCounters } from "../../src/engine/actor-counters.js";
import { EARLY_PUTS } from "../../src/engine/connection.js";
import { MAX_HELD_PUTS } from "../../src/engine/group-commit.js";
import { isWritesMessage, packWrites, REQUESTS_MESSAGE, unpackWrites, type Op, type TierSpec } from "../../src/engine/protocol.js";
import { walFrameCodec, walFrameKey, type WALFrame } from "../../src/wal/index.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("early-post");
afterAll(() => root.remove());
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("parts of a turn in the actor's group commit", () => {
  const kvSpec: TierSpec = { kind: "kv", name: "a", debounceMs: undefined, compactEvery: undefined, codec: { kind: "builtin", name: "json" } };
  const saves = (from: number, n: number): Op => ({
    t: "puts",
    tier: 1,
    keys: Array.from({ length: n }, (_, i) => `k${from + i}`),
    values: Array.from({ length: n }, (_, i) => from + i),
    w: n,
    n,
  });
  /** A batch as the connection posts it early, and the turn's own send (as the port delivers them). */
  const part = (ops: Op[]): Op[] => unpackWrites(packWrites(ops, true));
  const rest = (ops: Op[] = []): Op[] => unpackWrites(packWrites(ops));
  let counters = new ActorCounters();
  const flushes = (): number => counters.get("flushes");

  async function openActor(): Promise<StoreActor> {
    counters = new ActorCounters();
    const actor = new StoreActor({ store: { kind: "sqlite", path: root.fresh("parts.db") }, synchronous: "FULL", counters: counters.buffer });
    await actor.ready();
    const opened = await actor.apply([{ t: "open", tier: 1, spec: kvSpec, id: 1 }]);
    expect(opened.results.every((r) => r.ok)).toBe(true);
    await nextTurn();
    return actor;
  }

  async function listed(actor: StoreActor): Promise<string[]> {
    const { results } = await actor.apply([{ t: "list", tier: 1, id: 2, prefix: "k" }]);
    return (results[0] as { value: string[] }).value;
  }

  it("parts held across the actor's turns, past the bound, commit once when the empty batch ends them", async () => {
    const actor = await openActor();
    try {
      const before = flushes();
      const half = MAX_HELD_PUTS / 2;
      for (let m = 0; m < 5; m++) {
        actor.applyWrites(part([saves(m * half, half)]));
        await nextTurn();
        await nextTurn(); // the actor's turn ended with nothing else on its port
        expect(flushes() - before, `nothing committed after part ${m + 1}`).toBe(0);
      }
      expect(counters.get("settledEntries"), "nothing acknowledged before it is committed").toBe(0);
      actor.applyWrites(rest());
      await nextTurn();
      await nextTurn();
      expect(flushes() - before, "the turn's one transaction").toBe(1);
      expect(counters.get("settledEntries")).toBe(5 * half);
      expect(await listed(actor)).toHaveLength(5 * half);
    } finally {
      await actor.shutdown();
    }
  });

  it("a read after a part sees its writes (committed first, as a barrier); the rest commits at its turn's end", async () => {
    const actor = await openActor();
    try {
      const before = flushes();
      actor.applyWrites(part([saves(0, 300)]));
      await nextTurn();
      await nextTurn();
      expect(flushes() - before).toBe(0);
      expect(await listed(actor)).toHaveLength(300);
      expect(flushes() - before, "the read committed the part").toBe(1);
      actor.applyWrites(part([saves(300, 300)]));
      await nextTurn();
      actor.applyWrites(rest([saves(600, 10)]));
      await nextTurn();
      await nextTurn();
      expect(flushes() - before, "the second turn's parts and rest in one transaction").toBe(2);
      expect(counters.get("settledEntries")).toBe(610);
      expect(await listed(actor)).toHaveLength(610);
    } finally {
      await actor.shutdown();
    }
  });

  it("a backlog of turns each ended by an empty batch still commits every MAX_HELD_PUTS puts, between turns", async () => {
    const actor = await openActor();
    try {
      const before = flushes();
      const half = MAX_HELD_PUTS / 2;
      // Five turns' messages delivered back to back, as the port hands over a backlog while the actor was busy.
      for (let m = 0; m < 5; m++) {
        actor.applyWrites(part([saves(m * half, half)]));
        actor.applyWrites(rest());
      }
      await nextTurn();
      expect(flushes() - before, "committed after 2 and 4 turns").toBe(2);
      await nextTurn();
      expect(flushes() - before, "the last turn at the run's end").toBe(3);
      expect(counters.get("settledEntries")).toBe(5 * half);
    } finally {
      await actor.shutdown();
    }
  });
});

describe("a burst posted in parts through the engine", () => {
  let engine: StorageEngine | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await engine?.close();
    engine = undefined;
  });

  /**
   * Records the batches posted from this thread: `parts()` the puts of each marked MORE, `ends()` the others (writes
   * or requests).
   */
  function watchPosts(): { parts: () => number[]; ends: () => number } {
    const posted: unknown[] = [];
    const post = MessagePort.prototype.postMessage;
    vi.spyOn(MessagePort.prototype, "postMessage").mockImplementation(function (this: MessagePort, m: unknown, t?: readonly Transferable[]) {
      posted.push(m);
      return post.call(this, m, t);
    });
    const writes = () => posted.filter(isWritesMessage).map((m) => unpackWrites(m));
    const puts = (ops: Op[]) => ops.reduce((n, op) => n + ("keys" in op ? op.keys.length : 0), 0);
    return {
      parts: () => writes().filter((ops) => ops.more === true).map(puts),
      ends: () =>
        writes().filter((ops) => ops.more !== true).length + posted.filter((m) => (m as { type?: unknown } | undefined)?.type === REQUESTS_MESSAGE).length,
    };
  }

  it("saveMany units of 300 in one tick: parts end only between units, and the tick commits in ONE flush", async () => {
    engine = openStorageEngine({ threads: 1 });
    const kv = engine.kv<number>({ kind: "sqlite", path: root.fresh("units.db") }, { debounceMs: 0 });
    kv.save("warm-up", 0);
    await kv.flush();
    const [s0] = await engine.stats();
    const posts = watchPosts();
    const units = 10;
    for (let u = 0; u < units; u++) kv.saveMany!(Array.from({ length: 300 }, (_, i) => [`k${u * 300 + i}`, u * 300 + i] as const));
    const parts = posts.parts();
    expect(parts.length, "posted before the tick ended").toBeGreaterThan(0);
    for (const n of parts) expect(n % 300, "a part holds whole units").toBe(0);
    expect(await kv.list("k")).toHaveLength(units * 300);
    const [s1] = await engine.stats();
    expect(s1!.flushes - s0!.flushes, "the tick's one transaction").toBe(1);
    expect(await kv.load(`k${units * 300 - 1}`)).toBe(units * 300 - 1);
  });

  function frame(seq: number): WALFrame {
    const path = `n${seq % 50}`;
    const value = { v: seq, s: "é", ratio: seq / 7, big: seq === 7 ? 2n ** 70n : 1 };
    return {
      t: "c",
      lifecycle: "data",
      path,
      change: { structure: "graph.value", version: 1, t_ns: 1000 + seq, lifecycle: "data", change: { kind: "node.set", path, value } },
      frame_seq: seq,
      frame_t_ns: 1000 + seq,
    } as WALFrame;
  }

  it("a flush after a burst's parts resolves only once every part is committed: the store holds each frame's bytes", async () => {
    engine = openStorageEngine({ threads: 1 });
    const path = root.fresh("frames.db");
    // Debounced: nothing commits but the flush (the group commit's turn end runs no triggered flush of this tier).
    const wal = engine.kv<WALFrame>({ kind: "sqlite", path }, { name: "wal", codec: walFrameCodec, debounceMs: 3_600_000 });
    await wal.flush();
    const posts = watchPosts();
    const count = 2 * EARLY_PUTS + 200;
    const frames = Array.from({ length: count }, (_, i) => frame(i + 1));
    const key = (seq: number): string => walFrameKey("g/wal", seq);
    for (const f of frames) wal.save(key(f.frame_seq), f);
    const flushed = wal.flush();
    expect(posts.parts(), "two parts posted while the turn ran").toEqual([EARLY_PUTS, EARLY_PUTS]);
    await flushed;
    expect(posts.ends(), "the turn's own send").toBe(1);
    const db = new Database(path, { readonly: true });
    try {
      const get = db.prepare<[string], Buffer>("SELECT v FROM graphrefly_storage WHERE k = ?").pluck();
      for (const f of frames) expect(Buffer.from(get.get(key(f.frame_seq))!).equals(Buffer.from(walFrameCodec.encode(f)))).toBe(true);
    } finally {
      db.close();
    }
  });
});
