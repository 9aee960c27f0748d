/**
 * The store actor encodes a batch's WAL frames when the batch arrives (src/wal/frame-columns-encoder.ts) and the kv
 * tier holds the bytes until its flush. Those bytes live in one buffer of the batch's own: the encoder writes
 * into pooled slabs (256 KiB, shared with unrelated bytes, meant to live only until one write returns), and a value
 * that waits (a debounce, a failing store's retries) must not pin a slab. A frame the codec refuses is refused
 * alone; the others are stored and read back as saved.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { Encoded } from "../../src/codec/bytes.js";
import { StoreActor } from "../../src/engine/actor.js";
import { ActorCounters } from "../../src/engine/actor-counters.js";
import { KvCore } from "../../src/tier/kv.js";
import { frameColumns } from "../../src/wal/frame-columns.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";

const HELD = 3_600_000;

function frame(seq: number, over: Record<string, unknown> = {}): WALFrame {
  return {
    t: "c",
    lifecycle: "data",
    path: `n${seq}`,
    change: { structure: "graph.value", version: 1, t_ns: 1000 + seq, lifecycle: "data", change: { kind: "node.set", path: `n${seq}`, value: { v: seq } } },
    frame_seq: seq,
    frame_t_ns: 1000 + seq,
    checksum: "",
    format_version: 1,
    ...over,
  } as WALFrame;
}

describe("WAL frames encoded by the store actor", () => {
  let actor: StoreActor | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await actor?.shutdown();
    actor = undefined;
  });

  it("wait in the tier in one buffer of their batch's own, a refused frame alone refused, the rest stored as saved", async () => {
    actor = new StoreActor({ store: { kind: "memory", name: `encoded-frames-${process.pid}` }, synchronous: "FULL", counters: new ActorCounters().buffer });
    await actor.ready();
    const spec = { kind: "kv" as const, name: "wal", debounceMs: HELD, compactEvery: undefined, codec: { kind: "builtin" as const, name: walFrameCodec.name } };
    expect((await actor.apply([{ t: "open", tier: 1, spec, id: 1 }])).results.every((r) => r.ok)).toBe(true);

    const frames = Array.from({ length: 8 }, (_, i) => frame(i + 1));
    frames[5] = frame(6, { frame_seq: -1 }); // the codec refuses it
    const cols = frameColumns.empty();
    for (const f of frames) expect(frameColumns.push(cols, f)).toBe(true);
    const keys = frames.map((_, i) => `g/wal/${String(i + 1).padStart(20, "0")}`);
    const held: unknown[] = [];
    const put = KvCore.prototype.put;
    vi.spyOn(KvCore.prototype, "put").mockImplementation(function (this: KvCore<unknown>, key: string, value: unknown) {
      held.push(value);
      put.call(this, key, value);
    });
    await actor.apply([{ t: "columns", tier: 1, keys, cols: structuredClone(cols), w: 8 * 300, n: 8 }]);

    expect(held).toHaveLength(7);
    const bytes = held.map((v) => {
      expect(v).toBeInstanceOf(Encoded);
      return (v as Encoded).bytes;
    });
    const total = bytes.reduce((a, b) => a + b.byteLength, 0);
    for (const b of bytes) {
      expect(b.buffer).toBe(bytes[0]!.buffer);
      expect(b.buffer.byteLength).toBe(total);
    }

    const flushed = await actor.apply([{ t: "flush", tier: 1, id: 2 }]);
    expect(flushed.results[0]).toMatchObject({ ok: false, error: { code: "encode-failed" } });
    for (const [i, f] of frames.entries()) {
      const loaded = await actor.apply([{ t: "load", tier: 1, id: 10 + i, key: keys[i]! }]);
      const r = loaded.results[0]!;
      expect(r.ok).toBe(true);
      const value = (r as { value?: WALFrame }).value;
      if (i === 5) expect(value).toBeUndefined();
      else expect(value).toStrictEqual(walFrameCodec.decode(walFrameCodec.encode(f)));
    }
  });
});
