/**
 * Through the engine a saved value is read at the end of the event-loop turn of its save (the hand-off copies it
 * then, docs/api.md "Conventions"): a caller that changes one object in place or reuses one array in later turns
 * stores each turn's value. Guards any change to when or how writes travel (e.g. holding them for a busy actor,
 * tried in issue 13: held values must be copied as their turn ends).
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { sealWalFrame, walFrameCodec, walFrameKey, type WALFrame } from "../../src/wal/index.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("saved-values");
afterAll(() => root.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close();
  engine = undefined;
});

/** The hand-off under test: the turn ring (the engine's default) or a message per turn (`turnRingBytes: 0`). */
let ring: { turnRingBytes?: number } = {};

function open() {
  engine = openStorageEngine({ threads: 1, ...ring });
  return { e: engine, store: { kind: "sqlite" as const, path: root.fresh("s.db") } };
}

describe.each([
  ["through the turn ring (the default)", {}],
  ["through a message per turn (turnRingBytes: 0)", { turnRingBytes: 0 }],
])("%s", (_, opts: { turnRingBytes?: number }) => {
  beforeEach(() => {
    ring = opts;
  });

  it("one object changed in place and saved each turn: every key keeps its turn's value", async () => {
    const { e, store } = open();
    const kv = e.kv<{ n: number }>(store, { name: "kv" });
    const shared = { n: -1 };
    for (let i = 0; i < 30; i++) {
      shared.n = i;
      kv.save(`k${i % 10}`, shared);
      await nextTurn();
    }
    await kv.flush();
    for (let k = 0; k < 10; k++) expect(await kv.load(`k${k}`)).toEqual({ n: 20 + k });
  });

  it("one array reused for each turn's appendEntries: every turn's entries are kept", async () => {
    const { e, store } = open();
    const log = e.appendLog<number>(store, { name: "log" });
    const buffer: number[] = [];
    for (let i = 0; i < 6; i++) {
      buffer.length = 0;
      buffer.push(i, i * 10);
      log.appendEntries(buffer);
      await nextTurn();
    }
    await log.flush();
    expect((await log.loadEntries()).entries).toEqual([0, 0, 1, 10, 2, 20, 3, 30, 4, 40, 5, 50]);
  });

  it("a WAL frame the caller built, its payload's value object changed in later turns: each frame is stored as saved", async () => {
    const { e, store } = open();
    const wal = e.kv<WALFrame>(store, { name: "wal", codec: walFrameCodec });
    // The columns hold the payload's value by reference (the frame's own path: it crosses as its value alone).
    const value = { n: 0 };
    const payload = { kind: "node.set", path: "x", value };
    for (let seq = 1; seq <= 4; seq++) {
      value.n = seq;
      const change = { structure: "graph.value", version: 1, t_ns: 1000 + seq, lifecycle: "data" as const, change: payload };
      wal.save(walFrameKey("g/wal", seq), sealWalFrame({ t: "c", lifecycle: "data", path: "x", change, frame_seq: seq, frame_t_ns: 1000 + seq }));
      await nextTurn();
    }
    await wal.flush();
    for (let seq = 1; seq <= 4; seq++) {
      const frame = await wal.load(walFrameKey("g/wal", seq));
      expect((frame!.change.change as { value: { n: number } }).value).toEqual({ n: seq });
    }
  });

  it("saved before the actor is ready, beside a value that cannot be copied: the others keep their turn's value", async () => {
    const { e, store } = open();
    const kv = e.kv<unknown>(store, { name: "kv" });
    const a = { n: 1 };
    const b = { n: 10 };
    kv.save("a", a);
    kv.save("bad", { f: () => 1 });
    kv.save("b", b);
    await nextTurn(); // the turn ended while the actor was still starting: its values were copied then
    a.n = 2;
    b.n = 20;
    const flushed = await kv.flush().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(flushed).toMatchObject({ code: "encode-failed" });
    expect(await kv.load("a")).toEqual({ n: 1 });
    expect(await kv.load("b")).toEqual({ n: 10 });
    expect(await kv.load("bad")).toBeUndefined();
  });
});
