/**
 * The actor encodes a batch's frames straight from their columns (src/wal/frame-columns-encoder.ts): for every
 * frame the bytes, or the error, are exactly those of walFrameCodec.encode on the frame rebuilt from the columns,
 * whatever the batch holds (shared or varied fields, a frame's own checksum, payloads JSON cannot carry, fields
 * of the wrong type), before and after the columns cross structured clone.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { frameColumns, type FrameColumns } from "../../src/wal/frame-columns.js";
import { CodecError } from "../../src/errors.js";
import { jsonData, jsonNumber, jsonString, withUnencodable } from "../codec/json-arbitraries.js";

const lifecycle = fc.constantFrom("spec", "data", "ownership");
const nanoseconds = fc.oneof(
  { arbitrary: fc.nat(), weight: 4 },
  { arbitrary: fc.constant(1.7962868938450002e18), weight: 2 },
  { arbitrary: jsonNumber, weight: 1 },
  { arbitrary: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), weight: 1 },
);
const oddField = fc.constantFrom<unknown>(-1, 1.5, NaN, "7", null, "graph.value", "data");
/** Mostly `usual`, now and then a field of the wrong type (so most batches take the template, some do not). */
const mostly = <T>(usual: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ arbitrary: usual, weight: 12 }, { arbitrary: oddField, weight: 1 });

/** One attach batch: envelope constants shared, timestamps shared or per frame, now and then a field that is off. */
const batchOf = (minLength: number, maxLength: number) => fc
  .record({
    lifecycle: mostly(lifecycle),
    envelopeLifecycle: mostly(lifecycle),
    structure: mostly(jsonString),
    version: mostly(fc.oneof(fc.integer(), jsonString)),
    seq: fc.option(mostly(fc.nat()), { nil: undefined }),
    kind: fc.option(fc.oneof(jsonString, fc.constant("node.set")), { nil: undefined }),
    checksum: fc.constantFrom(undefined, undefined, "", "0".repeat(64), null),
    formatVersion: fc.constantFrom(undefined, undefined, 1, 1, 2, -1, null),
    tNs: fc.option(nanoseconds, { nil: undefined }),
    frameTNs: fc.option(mostly(nanoseconds), { nil: undefined }),
    frames: fc.array(
      fc.record({
        path: mostly(jsonString),
        value: fc.oneof({ arbitrary: jsonData, weight: 8 }, { arbitrary: withUnencodable, weight: 1 }),
        frameSeq: mostly(fc.nat()),
        t: nanoseconds,
        // Now and then one field of this frame differs from the batch's (it then varies within the batch).
        differs: fc.option(
          fc.tuple(
            fc.constantFrom("lifecycle", "envelopeLifecycle", "structure", "version", "seq", "kind", "checksum", "formatVersion"),
            fc.oneof(lifecycle, jsonString, fc.nat(), oddField, fc.constant(undefined)),
          ),
          { freq: 6 },
        ),
      }),
      { minLength, maxLength },
    ),
  })
  .map((batch) =>
    batch.frames.map((f) => {
      const b: Record<string, unknown> = { ...batch };
      if (f.differs !== null) b[f.differs[0]] = f.differs[1];
      const change: Record<string, unknown> = {
        structure: b.structure,
        version: b.version,
        t_ns: b.tNs ?? f.t,
        lifecycle: b.envelopeLifecycle,
        change: b.kind === undefined ? f.value : { kind: b.kind, path: f.path, value: f.value },
      };
      if (b.seq !== undefined) change.seq = b.seq;
      const frame: Record<string, unknown> = {
        t: "c",
        lifecycle: b.lifecycle,
        path: f.path,
        change,
        frame_seq: f.frameSeq,
        frame_t_ns: b.frameTNs ?? f.t,
      };
      if (b.checksum !== undefined) frame.checksum = b.checksum;
      if (b.formatVersion !== undefined) frame.format_version = b.formatVersion;
      return frame as unknown as WALFrame;
    }),
  );

const batch = batchOf(0, 12);

type Outcome = { bytes: string } | { code: string; message: string; details: unknown };

function outcome(encode: () => Uint8Array): Outcome {
  try {
    return { bytes: Buffer.from(encode()).toString("hex") };
  } catch (err) {
    expect(err).toBeInstanceOf(CodecError);
    const e = err as CodecError;
    return { code: e.code, message: e.message, details: e.details };
  }
}

function sameAsCodec(cols: FrameColumns): void {
  const encoder = walFrameCodec.columns!.encoder!(cols);
  const n = cols[0] as number;
  for (let i = 0; i < n; i++) {
    expect(outcome(() => encoder(i))).toStrictEqual(outcome(() => walFrameCodec.encode(frameColumns.at(cols, i))));
  }
}

function cloneable(cols: FrameColumns): FrameColumns | undefined {
  try {
    return structuredClone(cols);
  } catch {
    return undefined;
  }
}

describe("frames encoded from their columns", () => {
  it("every frame: the codec's bytes or its error, before and after the columns cross structured clone", () => {
    fc.assert(
      fc.property(batch, (frames) => {
        const cols = frameColumns.empty() as FrameColumns;
        for (const f of frames) frameColumns.push(cols, f);
        sameAsCodec(cols);
        const crossed = cloneable(cols);
        if (crossed !== undefined) sameAsCodec(crossed);
      }),
      { numRuns: 500 },
    );
  });

  it("after encodeAhead (payloads crossing as canonical text): every frame the codec's bytes or error for the frame pushed", () => {
    fc.assert(
      fc.property(batchOf(0, 40), (frames) => {
        const cols = frameColumns.empty() as FrameColumns;
        const pushed = frames.filter((f) => frameColumns.push(cols, f));
        frameColumns.encodeAhead!(cols);
        // Across the hop a value that stayed a value is the clone's copy (a class instance's fields, say), as ever.
        const crossed = cloneable(cols);
        for (const [c, hop] of [[cols, (f: WALFrame) => f], [crossed, structuredClone]] as const) {
          if (c === undefined) continue;
          const encoder = walFrameCodec.columns!.encoder!(c);
          pushed.forEach((f, i) => expect(outcome(() => encoder(i))).toStrictEqual(outcome(() => walFrameCodec.encode(hop(f)))));
        }
      }),
      { numRuns: 150 },
    );
  });

  it("a batch sharing format_version null is refused frame by frame as the codec refuses it, never sealed with the default", () => {
    const frames = Array.from({ length: 6 }, (_, i) => ({
      t: "c",
      lifecycle: "data",
      path: `n${i}`,
      change: { structure: "graph.value", version: 1, t_ns: 5, lifecycle: "data", change: { kind: "node.set", path: `n${i}`, value: i } },
      frame_seq: i + 1,
      frame_t_ns: 5,
      format_version: null,
    })) as unknown as WALFrame[];
    const cols = frameColumns.empty() as FrameColumns;
    for (const f of frames) expect(frameColumns.push(cols, f)).toBe(true);
    const encoder = walFrameCodec.columns!.encoder!(cols);
    for (let i = 0; i < frames.length; i++) expect(() => encoder(i)).toThrow(/format_version/);
  });

  it("a wave mixing payload kinds (sets, invalidations, whole payloads) encodes to the codec's bytes", () => {
    const payloads: unknown[] = [
      { kind: "node.set", path: "n0", value: 1 },
      { kind: "node.invalidate", path: "n1" },
      { kind: "node.reset", path: "n2", value: { a: [1, "é"] } },
      { kind: "node.set", path: "elsewhere", value: 2 },
      { kind: "node.set", path: "n4", value: null },
      [1, 2],
    ];
    const frames = payloads.map(
      (change, i): WALFrame =>
        ({
          t: "c",
          lifecycle: "data",
          path: `n${i}`,
          change: { structure: "graph.value", version: 1, t_ns: 9, lifecycle: "data", change },
          frame_seq: i + 1,
          frame_t_ns: 9,
          checksum: "",
          format_version: 1,
        }) as WALFrame,
    );
    const cols = frameColumns.empty() as FrameColumns;
    for (const f of frames) expect(frameColumns.push(cols, f)).toBe(true);
    const encoder = walFrameCodec.columns!.encoder!(structuredClone(cols));
    frames.forEach((f, i) => expect(Buffer.from(encoder(i)).equals(Buffer.from(walFrameCodec.encode(f)))).toBe(true));
  });

  it("a wave of graph sets (the attach workload) encodes to the codec's sealed frames, each verifiable", () => {
    const frames = Array.from({ length: 50 }, (_, i): WALFrame => {
      const t = 1796286893845000000 + i * 1000;
      return {
        t: "c",
        lifecycle: "data",
        path: `n${i}`,
        change: { structure: "graph.value", version: 1, t_ns: t, lifecycle: "data", change: { kind: "node.set", path: `n${i}`, value: { v: i, s: "é\n" } } },
        frame_seq: 100 + i,
        frame_t_ns: t,
      } as WALFrame;
    });
    const cols = frameColumns.empty() as FrameColumns;
    for (const f of frames) expect(frameColumns.push(cols, f)).toBe(true);
    const encoder = walFrameCodec.columns!.encoder!(structuredClone(cols));
    frames.forEach((f, i) => {
      const bytes = Buffer.from(encoder(i)); // the encoder's scratch bytes: copied before anything else encodes
      expect(bytes.equals(Buffer.from(walFrameCodec.encode(f)))).toBe(true);
      const decoded = walFrameCodec.decode(bytes);
      expect(decoded.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(decoded.change).toStrictEqual(f.change);
    });
  });
  it("timestamps repeated, alternating and changing within a wave each encode to the codec's bytes", () => {
    // The encoder repeats the bytes of a timestamp equal to the last one written: runs, returns to an older value,
    // and values that print alike in other forms (-0 and 0, 1e21) must still give the codec's bytes.
    const times = [5, 5, 7, 5, 5, 2 ** 53 + 2, 2 ** 53 + 2, 0, -0, 0, 1e21, 1e21, 7];
    const frames = times.map(
      (t, i): WALFrame =>
        ({
          t: "c",
          lifecycle: "data",
          path: `n${i}`,
          change: { structure: "graph.value", version: 1, t_ns: t, lifecycle: "data", change: { kind: "node.set", path: `n${i}`, value: i } },
          frame_seq: i + 1,
          frame_t_ns: times[times.length - 1 - i]!,
        }) as WALFrame,
    );
    const cols = frameColumns.empty() as FrameColumns;
    for (const f of frames) expect(frameColumns.push(cols, f)).toBe(true);
    sameAsCodec(cols);
    sameAsCodec(structuredClone(cols));
  });
});

describe("a frame's two timestamps", () => {
  // The encoder repeats the text of the timestamp written last, across a frame's t_ns and frame_t_ns: attach stamps
  // both with one value per wave. frame_t_ns must be a non-negative integer and t_ns any number, so a value the
  // first field took may still be one the second refuses: that frame must fail as the codec fails it.
  const stamps = [1.7962868938450002e18, 1.7962868938450012e18, 1.7962868938450012e18, -5, 2.5, 2 ** 53 + 2, 7, -0, 1e21, 9007199254740991];
  const wave = (frameT: (t: number, i: number) => number): WALFrame[] =>
    stamps.map(
      (t, i): WALFrame =>
        ({
          t: "c",
          lifecycle: "data",
          path: `n${i}`,
          change: { structure: "graph.value", version: 1, t_ns: t, lifecycle: "data", change: { kind: "node.set", path: `n${i}`, value: { v: i } } },
          frame_seq: i + 1,
          frame_t_ns: frameT(t, i),
          checksum: "",
          format_version: 1,
        }) as WALFrame,
    );

  it("equal per frame, varied across the wave (a negative or fractional one refused as the codec refuses it)", () => {
    const frames = wave((t) => t);
    const cols = frameColumns.empty() as FrameColumns;
    for (const f of frames) expect(frameColumns.push(cols, f)).toBe(true);
    sameAsCodec(cols);
    sameAsCodec(structuredClone(cols));
    // Not vacuous: the codec refuses exactly the frames whose frame_t_ns is no non-negative integer.
    const refused = frames.map((f) => outcome(() => walFrameCodec.encode(f))).filter((o) => "code" in o).length;
    expect(refused).toBe(2);
  });

  it("equal to the previous frame's, or to the other field of the previous frame", () => {
    for (const frameT of [(_t: number, i: number) => stamps[Math.max(0, i - 1)]!, (_t: number, i: number) => stamps[(i + 1) % stamps.length]!]) {
      const cols = frameColumns.empty() as FrameColumns;
      for (const f of wave(frameT)) expect(frameColumns.push(cols, f)).toBe(true);
      sameAsCodec(cols);
      sameAsCodec(structuredClone(cols));
    }
  });
});
