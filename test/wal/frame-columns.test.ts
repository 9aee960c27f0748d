/**
 * The columnar transport walFrameCodec declares: any frame pushed comes back from `at` exactly, also after the
 * columns crossed structured clone as they do to a worker (an optional field absent stays absent, never an own undefined);
 * a value not of the frame shape does not fit and leaves the columns as they were.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { frameColumns } from "../../src/wal/frame-columns.js";
import { withCanonicalWriter } from "../../src/codec/canonical-writer.js";
import { parseJsonBytes } from "../../src/codec/json.js";
import type { CodecError } from "../../src/errors.js";
import { jsonData, jsonNumber, jsonString } from "../codec/json-arbitraries.js";

const lifecycle = fc.constantFrom("spec", "data", "ownership");

/** The payload a frame's columns carry: the value alone when it is `{ kind, path: <the frame's>, value }`. */
function payloadOf(f: WALFrame): unknown {
  const p = f.change.change as Record<string, unknown> | null;
  const split = p !== null && typeof p === "object" && Object.getPrototypeOf(p) === Object.prototype && Object.keys(p).length === 3;
  return split && typeof p.kind === "string" && p.path === f.path && p.value !== undefined ? p.value : p;
}

/** `f` with the payload its columns carry replaced by `v`. */
function withPayload(f: WALFrame, v: unknown): WALFrame {
  const p = f.change.change as Record<string, unknown>;
  const change = payloadOf(f) === p ? v : { ...p, value: v };
  return { ...f, change: { ...f.change, change } } as WALFrame;
}

/**
 * The payload as it comes back from its canonical text (parsed as the codec decodes); undefined when it has none
 * (the canonical writer's fast path does not answer: the reference path then decides, on the actor).
 */
function throughText(v: unknown): { v: unknown } | undefined {
  const text = withCanonicalWriter((w) => (w.value(v, "reject") ? w.text() : undefined));
  return text === undefined ? undefined : { v: parseJsonBytes(Buffer.from(text)) };
}

function outcome(encode: () => Uint8Array): string {
  try {
    return Buffer.from(encode()).toString("hex");
  } catch (err) {
    return (err as CodecError).code;
  }
}

/** Frame `seq` of a graph wave (path n<seq>) carrying payload `change`. */
const wave = (seq: number, change: unknown, over: Record<string, unknown> = {}): WALFrame =>
  ({
    t: "c",
    lifecycle: "data",
    path: `n${seq}`,
    change: { structure: "graph.value", version: 1, t_ns: 7, lifecycle: "data", change },
    frame_seq: seq,
    frame_t_ns: 7,
    checksum: "",
    format_version: 1,
    ...over,
  }) as WALFrame;
const nanoseconds = fc.oneof(jsonNumber, fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));

const envelope = fc.record(
  {
    structure: jsonString,
    version: fc.oneof(fc.integer(), jsonString),
    t_ns: nanoseconds,
    seq: fc.nat(),
    lifecycle,
    change: jsonData,
  },
  { requiredKeys: ["structure", "version", "t_ns", "lifecycle", "change"], noNullPrototype: true },
);

const frame: fc.Arbitrary<WALFrame> = fc.record(
  {
    t: fc.constant("c" as const),
    lifecycle,
    path: jsonString,
    change: envelope,
    frame_seq: fc.nat(),
    frame_t_ns: nanoseconds,
    checksum: fc.oneof(fc.constant(""), fc.stringMatching(/^[0-9a-f]{64}$/)),
    format_version: fc.nat({ max: 3 }),
  },
  { requiredKeys: ["t", "lifecycle", "path", "change", "frame_seq", "frame_t_ns"], noNullPrototype: true },
) as fc.Arbitrary<WALFrame>;

describe("frame columns", () => {
  it("is the transport walFrameCodec declares", () => {
    const { encoder, ...transport } = walFrameCodec.columns!;
    expect(transport).toStrictEqual({ ...frameColumns });
    expect(typeof encoder).toBe("function");
  });

  it("at(i) rebuilds the i-th frame pushed exactly; across structured clone, as the frame cloned whole", () => {
    fc.assert(
      fc.property(fc.array(frame, { minLength: 1, maxLength: 8 }), (frames) => {
        const cols = frameColumns.empty();
        for (const f of frames) expect(frameColumns.push(cols, f)).toBe(true);
        frames.forEach((f, i) => assert.deepStrictEqual(frameColumns.at(cols, i), f));
        // The hop itself changes only what it changes in any value (a payload's null prototype, say). node:assert,
        // not toStrictEqual: a payload may hold an own "constructor" key, which vitest's equality compares as a class.
        const crossed = structuredClone(cols);
        frames.forEach((f, i) => assert.deepStrictEqual(frameColumns.at(crossed, i), structuredClone(f)));
      }),
    );
  });

  it("fields a whole batch shares cross once, a payload naming the frame's path as its value; any mix reads back exactly", () => {
    const same = Array.from({ length: 5 }, (_, i) => wave(i + 1, { kind: "node.set", path: `n${i + 1}`, value: { v: i } }));
    const cols = frameColumns.empty();
    for (const f of same) expect(frameColumns.push(cols, f)).toBe(true);
    // One flat array: the count, no varied field, no payload text, the 11 shared fields once (10 of the frame's, and
    // whether payloads crossed as text), then path, payload, frame_seq per frame.
    expect(cols).toHaveLength(3 + 11 + 3 * 5);
    expect(cols[1]).toBeNull();
    expect(cols.filter((x) => x === "graph.value")).toHaveLength(1);
    expect(cols.filter((x) => typeof x === "object" && x !== null)).toStrictEqual([0, 1, 2, 3, 4].map((v) => ({ v })));
    const mixed = [
      ...same,
      wave(6, { kind: "node.set", path: "elsewhere", value: 1 }), // another path: the payload crosses whole
      wave(7, { kind: "node.invalidate", path: "n7" }), // no value
      wave(8, { kind: "node.set", path: "n8", value: 2, extra: true }),
      wave(9, { kind: 3, path: "n9", value: 2 }),
      wave(10, Object.assign(Object.create(null) as object, { kind: "node.set", path: "n10", value: 2 })),
      wave(11, { kind: "graph.add", path: "n11", value: null }, { lifecycle: "spec", frame_t_ns: 8 }),
      (({ checksum: _c, format_version: _f, ...rest }) => rest as WALFrame)(wave(12, { kind: "node.set", path: "n12", value: 3 })),
      wave(13, null),
    ];
    const all = frameColumns.empty();
    for (const f of mixed) expect(frameColumns.push(all, f)).toBe(true);
    const crossed = structuredClone(all);
    mixed.forEach((f, i) => {
      assert.deepStrictEqual(frameColumns.at(all, i), f);
      assert.deepStrictEqual(frameColumns.at(crossed, i), structuredClone(f));
    });
  });

  it("encodeAhead turns each payload to its canonical text: at(i) then gives the frame with its payload parsed back", () => {
    // The engine calls it for a burst while the store's actor trails (design §3.33). The frame read back is the one
    // pushed with its payload parsed from that text as the codec decodes (JSON's own -0, key order and prototype; a
    // wide integer its bigint), so it encodes to the same bytes; a payload the canonical writer's fast path does not
    // answer (here a small bigint, which plain JSON refuses) stays a value.
    fc.assert(
      fc.property(fc.array(frame, { minLength: 1, maxLength: 40 }), fc.option(fc.nat({ max: 39 }), { nil: undefined }), (frames, odd) => {
        const pushed = frames.map((f, i) => (i === odd ? withPayload(f, 5n) : f));
        const cols = frameColumns.empty();
        for (const f of pushed) expect(frameColumns.push(cols, f)).toBe(true);
        frameColumns.encodeAhead!(cols);
        for (const [c, hop] of [[cols, (f: WALFrame) => f], [structuredClone(cols), structuredClone]] as const) {
          pushed.forEach((f, i) => {
            const text = throughText(payloadOf(f));
            assert.deepStrictEqual(frameColumns.at(c, i), text !== undefined ? withPayload(f, text.v) : hop(f));
            expect(outcome(() => walFrameCodec.encode(frameColumns.at(c, i)))).toStrictEqual(outcome(() => walFrameCodec.encode(f)));
          });
        }
      }),
      { numRuns: 100 },
    );
  });

  it("push keeps payloads as values; encodeAhead makes them text once", () => {
    const frames = Array.from({ length: 40 }, (_, i) => wave(i, { kind: "node.set", path: `n${i}`, value: { v: i } }));
    const cols = frameColumns.empty();
    for (const f of frames) expect(frameColumns.push(cols, f)).toBe(true);
    expect(cols.filter((x) => typeof x === "object" && x !== null)).toStrictEqual(frames.map((_, i) => ({ v: i })));
    frameColumns.encodeAhead!(cols);
    // The payloads' texts, one after another in one run of bytes; no payload object crosses.
    const texts = cols.filter((x) => x instanceof Uint8Array);
    expect(texts.map((b) => Buffer.from(b).toString())).toStrictEqual([frames.map((_, i) => `{"v":${i}}`).join("")]);
    expect(cols.filter((x) => typeof x === "object" && x !== null && !(x instanceof Uint8Array))).toStrictEqual([]);
    const once = structuredClone(cols);
    frameColumns.encodeAhead!(cols); // text stays text
    expect(cols).toStrictEqual(once);
    frames.forEach((f, i) => assert.deepStrictEqual(frameColumns.at(cols, i), f));
  });

  it("a burst's wave stamps cross as a Float64Array while every one is a number, any value read back exactly", () => {
    // Attach stamps each wave: in a burst both timestamps vary per frame. A number column crosses as a Float64Array
    // (structured clone reads an array's doubles as one heap number each); past 16 frames it grows; a value that is
    // no number (a bigint stamp) turns it into a plain array. -0, NaN and stamps above 2^53 read back as pushed.
    const stamps = (i: number): number => [1.7962868938450002e18 + i * 1024, -0, 0, NaN, 2 ** 53 + 2, 5][i % 6]!;
    const burst = (n: number, odd?: { at: number; v: unknown }): WALFrame[] =>
      Array.from({ length: n }, (_, i) => {
        const t = odd?.at === i ? odd.v : stamps(i);
        return { ...wave(i, { kind: "node.set", path: `n${i}`, value: i }), frame_t_ns: t, change: { ...wave(i, null).change, t_ns: t, change: { kind: "node.set", path: `n${i}`, value: i } } } as WALFrame;
      });
    for (const [frames, numeric] of [[burst(100), true], [burst(100, { at: 70, v: 5n }), false], [burst(3), true]] as const) {
      const cols = frameColumns.empty();
      for (const f of frames) expect(frameColumns.push(cols, f)).toBe(true);
      const crossed = structuredClone(cols);
      const stampColumns = (crossed[1] as unknown[]).filter((c) => c !== null);
      expect(stampColumns).toHaveLength(2);
      for (const c of stampColumns) expect(c instanceof Float64Array).toBe(numeric);
      frames.forEach((f, i) => {
        assert.deepStrictEqual(frameColumns.at(cols, i), f);
        assert.deepStrictEqual(frameColumns.at(crossed, i), structuredClone(f));
        expect(outcome(() => walFrameCodec.columns!.encoder!(crossed)(i))).toStrictEqual(outcome(() => walFrameCodec.encode(f)));
      });
    }
  });

  it("a value not of the frame shape does not fit and leaves the columns untouched", () => {
    const base = (): Record<string, unknown> => ({
      t: "c",
      lifecycle: "data",
      path: "a",
      change: { structure: "s", version: 1, t_ns: 1, lifecycle: "data", change: { v: 1 } },
      frame_seq: 1,
      frame_t_ns: 1,
    });
    const misfits: unknown[] = [
      { ...base(), extra: 1 },
      { ...base(), t: "x" },
      { ...base(), change: { ...(base().change as object), more: true } },
      { ...base(), change: null },
      Object.assign(Object.create(null) as object, base()),
      Object.assign(new (class Frame {})(), base()),
      [base()],
      null,
      "frame",
      // What `at` would not rebuild as given: an optional field present but undefined, a required one missing.
      { ...base(), checksum: undefined },
      { ...base(), format_version: undefined },
      { ...base(), change: { ...(base().change as object), seq: undefined } },
      (({ lifecycle: _l, ...rest }) => rest)(base()),
      { ...base(), change: (({ t_ns: _t, ...rest }) => rest)(base().change as Record<string, unknown>) },
    ];
    // Empty columns hold the first frame's slots unfilled: a misfit leaves them as they were.
    const fresh = frameColumns.empty();
    for (const v of misfits) expect(frameColumns.push(fresh, v as WALFrame)).toBe(false);
    expect(fresh).toStrictEqual(frameColumns.empty());
    const cols = frameColumns.empty();
    expect(frameColumns.push(cols, base() as unknown as WALFrame)).toBe(true);
    expect(cols).toHaveLength(3 + 11 + 3); // the first frame filled its slots in place, nothing pushed
    assert.deepStrictEqual(frameColumns.at(cols, 0), base());
    const before = structuredClone(cols);
    for (const v of misfits) expect(frameColumns.push(cols, v as WALFrame)).toBe(false);
    expect(cols).toStrictEqual(before);
  });
});
