import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { createHash } from "node:crypto";
import { referenceCanonicalText } from "../../src/codec/json.js";
import { CodecError } from "../../src/errors.js";
import {
  REPLAY_ORDER,
  canonicalWalFrameBody,
  verifyWalFrameChecksum,
  walFrameChecksum,
  walFrameCodec,
  type WALFrame,
  type WALFrameBody,
} from "../../src/wal/index.js";
import { define, jsonData, jsonKey, jsonString, withUnencodable } from "../codec/json-arbitraries.js";

const RUNS = { numRuns: 400 };
const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex");
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

/** The reference for a frame: the strict walk + canonicalize over a plain object of exactly these fields. */
function referenceText(fields: Record<string, unknown>): string {
  return referenceCanonicalText(fields, "reject", "$");
}

function bodyFields(b: WALFrameBody): Record<string, unknown> {
  return { t: b.t, lifecycle: b.lifecycle, path: b.path, change: b.change, frame_seq: b.frame_seq, frame_t_ns: b.frame_t_ns };
}

function thrown(fn: () => unknown): CodecError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CodecError);
    return err as CodecError;
  }
  throw new Error("expected a CodecError, nothing was thrown");
}

const lifecycle = fc.constantFrom(...REPLAY_ORDER);
const ENVELOPE_KEYS: readonly string[] = ["change", "lifecycle", "seq", "structure", "t_ns", "version"];

/**
 * BaseChange envelopes as the graph layer builds them and as a decoded frame holds them, plus the shapes that
 * must leave the envelope fast path: extra keys, `seq: undefined`, null prototype, keys in any order.
 */
const envelope = fc
  .record({
    structure: fc.oneof(fc.constantFrom("graph.value", "graph.spec"), jsonString),
    version: fc.oneof(fc.nat(), jsonString),
    t_ns: fc.oneof(fc.nat(), fc.constant(1.7e18)),
    lifecycle,
    change: jsonData.filter((v) => v !== undefined),
    seq: fc.option(fc.nat(), { nil: undefined }),
    extra: fc.option(fc.tuple(jsonKey.filter((k) => !ENVELOPE_KEYS.includes(k)), jsonData), { nil: undefined }),
    shape: fc.constantFrom("literal", "sorted", "null-proto", "reversed"),
  })
  .map(({ extra, shape, seq, ...known }) => {
    const entries: [string, unknown][] = Object.entries(known);
    if (seq !== undefined || shape === "literal") entries.push(["seq", seq]);
    if (extra !== undefined) entries.push(extra);
    if (shape === "sorted") entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (shape === "reversed") entries.reverse();
    const env = (shape === "null-proto" ? Object.create(null) : {}) as Record<string, unknown>;
    for (const [k, v] of entries) define(env, k, v);
    return env as unknown as WALFrameBody["change"];
  });

const frameBody: fc.Arbitrary<WALFrameBody> = fc.record({
  t: fc.constant("c" as const),
  lifecycle,
  path: jsonString,
  change: envelope,
  frame_seq: fc.nat(),
  frame_t_ns: fc.oneof(fc.nat(), fc.constant(1.7e18)),
});

describe("WAL frame text equals the reference canonical JSON", () => {
  it("canonicalWalFrameBody and walFrameChecksum match canonicalize over the six body fields", () => {
    fc.assert(
      fc.property(frameBody, (body) => {
        const expected = referenceText(bodyFields(body));
        expect(canonicalWalFrameBody(body)).toBe(expected);
        expect(walFrameChecksum(body)).toBe(sha256(expected));
      }),
      RUNS,
    );
  });

  it("walFrameCodec.encode writes the reference text of the sealed frame, which verifies after decode", () => {
    fc.assert(
      fc.property(frameBody, fc.nat({ max: 5 }), (body, formatVersion) => {
        const checksum = sha256(referenceText(bodyFields(body)));
        const bytes = walFrameCodec.encode({ ...body, checksum: "", format_version: formatVersion });
        expect(text(bytes)).toBe(referenceText({ ...bodyFields(body), checksum, format_version: formatVersion }));
        expect(verifyWalFrameChecksum(walFrameCodec.decode(bytes))).toBe(true);
      }),
      RUNS,
    );
  });

  it("an existing checksum is written as given (and a tampered body then fails verification)", () => {
    fc.assert(
      fc.property(frameBody, (body) => {
        const stale = sha256(referenceText(bodyFields({ ...body, frame_seq: body.frame_seq + 1 })));
        const frame: WALFrame = { ...body, checksum: stale, format_version: 1 };
        const bytes = walFrameCodec.encode(frame);
        expect(text(bytes)).toBe(referenceText({ ...bodyFields(body), checksum: stale, format_version: 1 }));
        expect(verifyWalFrameChecksum(walFrameCodec.decode(bytes))).toBe(false);
      }),
      RUNS,
    );
  });

  it("verifies frames whose envelope is not the usual BaseChange (missing fields, arrays, extra keys)", () => {
    const usual = { structure: "s", version: 1, t_ns: 0, lifecycle: "data", change: 1 };
    const odd: unknown[] = [
      [1, 2],
      { change: 1 },
      { structure: "s", extra: true },
      { ...usual, extra: true },
      { ...usual, seq: 3, a: null },
      { ...usual, "": 0, zz: [] },
      Object.create(null) as unknown,
      "text",
    ];
    for (const change of odd) {
      const body = { t: "c", lifecycle: "data", path: "p", change, frame_seq: 1, frame_t_ns: 2 } as unknown as WALFrameBody;
      const expected = referenceText(bodyFields(body));
      expect(canonicalWalFrameBody(body)).toBe(expected);
      expect(verifyWalFrameChecksum({ ...body, checksum: sha256(expected), format_version: 1 })).toBe(true);
    }
  });
});

describe("WAL frame parts the fast path leaves to the reference path", () => {
  it("writes a payload nested deeper than the fast path goes exactly once, with nothing left over", () => {
    let deep: unknown = { leaf: "é" };
    for (let i = 0; i < 100; i++) deep = i % 2 === 0 ? [deep, i] : { d: deep, n: i };
    const body: WALFrameBody = {
      t: "c",
      lifecycle: "data",
      path: "p",
      change: { structure: "s", version: 1, t_ns: 0, lifecycle: "data", change: { kind: "node.set", path: "p", value: deep } },
      frame_seq: 3,
      frame_t_ns: 4,
    };
    const expected = referenceText(bodyFields(body));
    expect(canonicalWalFrameBody(body)).toBe(expected);
    expect(walFrameChecksum(body)).toBe(sha256(expected));
    const bytes = walFrameCodec.encode({ ...body, checksum: "", format_version: 1 });
    expect(text(bytes)).toBe(referenceText({ ...bodyFields(body), checksum: sha256(expected), format_version: 1 }));
  });
});

describe("WAL frame text errors", () => {
  const fields = ["change", "frame_seq", "frame_t_ns", "lifecycle", "path", "t"] as const;

  it("a bad value in one body field fails with the error the reference gives for that field", () => {
    fc.assert(
      fc.property(frameBody, fc.constantFrom(...fields), withUnencodable, (body, field, bad) => {
        const broken = { ...body, [field]: bad } as WALFrameBody;
        const err = thrown(() => canonicalWalFrameBody(broken));
        const ref = thrown(() => referenceCanonicalText(bad, "reject", `$.${field}`));
        expect(err.message).toBe(ref.message);
        expect(err.details).toEqual(ref.details);
        expect(verifyWalFrameChecksum({ ...broken, checksum: "0".repeat(64), format_version: 1 })).toBe(false);
      }),
      RUNS,
    );
  });

  it("a bad payload inside the envelope is reported at its path under $.change", () => {
    fc.assert(
      fc.property(frameBody, withUnencodable, (body, bad) => {
        const broken: WALFrameBody = { ...body, change: { ...body.change, change: bad } };
        const err = thrown(() => walFrameCodec.encode({ ...broken, checksum: "", format_version: 1 }));
        const ref = thrown(() => referenceCanonicalText(bad, "reject", "$.change.change"));
        expect(err.details).toEqual(ref.details);
      }),
      RUNS,
    );
  });

  it("refuses an envelope that is not plain data, as the reference does", () => {
    class Envelope {
      structure = "s";
      version = 1;
      t_ns = 0;
      lifecycle = "data" as const;
      change = 1;
    }
    const inherited = Object.assign(Object.create({ inherited: 1 }) as object, new Envelope());
    const withToJSON = Object.defineProperty({ ...new Envelope() }, "toJSON", { value: () => ({}) });
    for (const env of [new Envelope(), inherited, withToJSON]) {
      const body = { t: "c", lifecycle: "data", path: "p", change: env, frame_seq: 1, frame_t_ns: 2 } as WALFrameBody;
      const err = thrown(() => canonicalWalFrameBody(body));
      expect(err.message).toBe(thrown(() => referenceCanonicalText(env, "reject", "$.change")).message);
      expect(verifyWalFrameChecksum({ ...body, checksum: sha256(JSON.stringify({})), format_version: 1 })).toBe(false);
    }
  });

  it("reports a throwing getter in the envelope at its path with the original cause", () => {
    const boom = new Error("boom");
    const env = {
      structure: "s",
      version: 1,
      t_ns: 0,
      lifecycle: "data",
      get change(): never {
        throw boom;
      },
    };
    const body = { t: "c", lifecycle: "data", path: "p", change: env, frame_seq: 1, frame_t_ns: 2 } as unknown as WALFrameBody;
    const err = thrown(() => canonicalWalFrameBody(body));
    expect(err.details.path).toBe("$.change.change");
    expect(err.cause).toBe(boom);
    expect(verifyWalFrameChecksum({ ...body, checksum: "0".repeat(64), format_version: 1 })).toBe(false);
  });

  it("a bad value in one envelope field is reported at $.change.<field>", () => {
    fc.assert(
      fc.property(frameBody, fc.constantFrom(...ENVELOPE_KEYS), withUnencodable, (body, field, bad) => {
        const env: Record<string, unknown> = { ...body.change };
        define(env, field, bad);
        const broken = { ...body, change: env } as unknown as WALFrameBody;
        const err = thrown(() => canonicalWalFrameBody(broken));
        const ref = thrown(() => referenceCanonicalText(bad, "reject", `$.change.${field}`));
        expect(err.message).toBe(ref.message);
        expect(err.details).toEqual(ref.details);
      }),
      RUNS,
    );
  });

  it("reports the first bad field in canonical key order, as encoding the whole frame would", () => {
    const body: WALFrameBody = {
      t: "c",
      lifecycle: "data",
      path: "bad\ud800",
      change: { structure: "s", version: 1, t_ns: 0, lifecycle: "data", change: 1 },
      frame_seq: 1,
      frame_t_ns: 2,
    };
    expect(thrown(() => walFrameCodec.encode({ ...body, checksum: "x\udc00", format_version: 1 })).details.path).toBe(
      "$.checksum",
    );
    expect(thrown(() => walFrameCodec.encode({ ...body, checksum: "", format_version: 1 })).details.path).toBe("$.path");
  });
});
