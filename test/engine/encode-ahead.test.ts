/**
 * While the store's actor trails the writes posted to it, a burst of WAL frames crosses with each payload as its
 * canonical text (ColumnarTransport.encodeAhead, design §3.33); otherwise as values. Either way every frame is
 * stored as the codec's bytes and reads back as saved. The trail is made certain here by a debounced tier, whose
 * writes the actor holds unsettled: the first turn's burst meets no trail but for its own first part (posted early,
 * EARLY_PUTS), the second meets 400 writes.
 */
import { MessagePort, type Transferable } from "node:worker_threads";
import { setImmediate as nextTurn } from "node:timers/promises";
import Database from "better-sqlite3";
import { afterAll, afterEach, expect, it, vi } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { walFrameCodec, walFrameKey, type WALFrame } from "../../src/wal/index.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("encode-ahead");
afterAll(() => root.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await engine?.close();
  engine = undefined;
});

function frame(seq: number): WALFrame {
  const path = `n${seq % 50}`;
  const value = { v: seq, s: "é", ratio: seq / 7, big: seq === 7 ? 2n ** 70n : 1, neg: -0 };
  return {
    t: "c",
    lifecycle: "data",
    path,
    change: { structure: "graph.value", version: 1, t_ns: 1000, lifecycle: "data", change: { kind: "node.set", path, value } },
    frame_seq: seq,
    frame_t_ns: 1000,
  } as WALFrame;
}

/** The payloads of the posted messages' frame columns: texts (in a run of bytes, each starting `{"big"`) and values. */
function payloadKinds(messages: unknown[]): { texts: number; values: number } {
  let texts = 0;
  let values = 0;
  const walk = (x: unknown): void => {
    if (x instanceof Uint8Array) texts += Buffer.from(x).toString().split('{"big"').length - 1;
    else if (Array.isArray(x)) x.forEach(walk);
    else if (typeof x === "object" && x !== null && "neg" in x) values++;
    else if (typeof x === "object" && x !== null) Object.values(x).forEach(walk);
  };
  messages.forEach(walk);
  return { texts, values };
}

it("a burst meeting a trailing actor crosses as text, one meeting none as values; both stored as the codec's bytes", async () => {
  engine = openStorageEngine({ threads: 1 });
  const path = root.fresh("s.db");
  const wal = engine.kv<WALFrame>({ kind: "sqlite", path }, { name: "wal", codec: walFrameCodec, debounceMs: 3_600_000 });
  await wal.flush();
  const posted: unknown[] = [];
  const post = MessagePort.prototype.postMessage;
  vi.spyOn(MessagePort.prototype, "postMessage").mockImplementation(function (this: MessagePort, m: unknown, t?: readonly Transferable[]) {
    posted.push(m);
    return post.call(this, m, t);
  });
  const key = (seq: number) => walFrameKey("g/wal", seq);
  const frames: WALFrame[] = [];
  for (let seq = 1; seq <= 400; seq++) frames.push(frame(seq));
  for (const f of frames) wal.save(key(f.frame_seq), f);
  await nextTurn();
  // The first 250 went early as values; the turn's last 150 trail them (design §3.51).
  expect(payloadKinds(posted)).toStrictEqual({ texts: 150, values: 250 });
  posted.length = 0;

  for (let seq = 401; seq <= 500; seq++) frames.push(frame(seq));
  for (const f of frames.slice(400)) wal.save(key(f.frame_seq), f);
  await nextTurn();
  expect(payloadKinds(posted)).toStrictEqual({ texts: 100, values: 0 });

  await wal.flush();
  await wal.close();
  await engine.close();
  engine = undefined;
  const db = new Database(path, { readonly: true });
  try {
    const get = db.prepare<[string], Buffer>("SELECT v FROM graphrefly_storage WHERE k = ?").pluck();
    for (const f of frames) expect(Buffer.from(get.get(key(f.frame_seq))!).equals(Buffer.from(walFrameCodec.encode(f)))).toBe(true);
  } finally {
    db.close();
  }
});

it("a lone burst of 1000 frames (a sample's first tick) sends only its first part as values, the second part on as text (task 320)", async () => {
  engine = openStorageEngine({ threads: 1 });
  const path = root.fresh("first-tick.db");
  const wal = engine.kv<WALFrame>({ kind: "sqlite", path }, { name: "wal", codec: walFrameCodec });
  await wal.flush();
  const posted: unknown[] = [];
  const post = MessagePort.prototype.postMessage;
  vi.spyOn(MessagePort.prototype, "postMessage").mockImplementation(function (this: MessagePort, m: unknown, t?: readonly Transferable[]) {
    posted.push(m);
    return post.call(this, m, t);
  });
  const key = (seq: number) => walFrameKey("g/wal", seq);
  const frames: WALFrame[] = [];
  for (let seq = 1; seq <= 1000; seq++) frames.push(frame(seq));
  for (const f of frames) wal.save(key(f.frame_seq), f);
  // Posted in parts of EARLY_PUTS while the turn ran: the first meets an idle actor, each later one the parts before
  // it (unsettled until the turn commits). At a trail of 256 the second part (250 behind it) crossed as values too.
  expect(payloadKinds(posted)).toStrictEqual({ texts: 750, values: 250 });
  await wal.flush();
  await wal.close();
  await engine.close();
  engine = undefined;
  const db = new Database(path, { readonly: true });
  try {
    const get = db.prepare<[string], Buffer>("SELECT v FROM graphrefly_storage WHERE k = ?").pluck();
    for (const f of frames) expect(Buffer.from(get.get(key(f.frame_seq))!).equals(Buffer.from(walFrameCodec.encode(f)))).toBe(true);
  } finally {
    db.close();
  }
});
