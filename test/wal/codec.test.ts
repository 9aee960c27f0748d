import { readFileSync } from "node:fs";
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { canonicalJson, jsonCodec } from "../../src/codec/index.js";
import { CodecError } from "../../src/errors.js";
import { transientEncoder } from "../../src/codec/bytes.js";
import {
  REPLAY_ORDER,
  WAL_FORMAT_VERSION,
  sealWalFrame,
  verifyWalFrameChecksum,
  walFrameChecksum,
  walFrameCodec,
  type WALFrame,
  type WALFrameBody,
} from "../../src/wal/index.js";

const checksumCases = (
  JSON.parse(readFileSync(new URL("../vectors/wal-checksums.json", import.meta.url), "utf8")) as {
    cases: { name: string; body: WALFrameBody; sha256: string }[];
  }
).cases;

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

function body(): WALFrameBody {
  return {
    t: "c",
    lifecycle: "data",
    path: "x",
    change: { structure: "graph.value", version: 1, t_ns: 2000, lifecycle: "data", change: { kind: "node.set", path: "x", value: 2 } },
    frame_seq: 6,
    frame_t_ns: 2000,
  };
}

function codecError(fn: () => unknown): CodecError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CodecError);
    return err as CodecError;
  }
  throw new Error("expected a CodecError");
}

describe("walFrameCodec", () => {
  it("is named wal-frame-json, version 1", () => {
    expect(walFrameCodec.name).toBe("wal-frame-json");
    expect(walFrameCodec.version).toBe(1);
  });

  it.each(checksumCases.map((c) => [c.name, c] as const))(
    "%s: stored bytes are the jsonCodec bytes of the sealed frame",
    (_name, c) => {
      const bytes = walFrameCodec.encode({ ...c.body, checksum: "", format_version: 1 });
      const sealed = { ...c.body, checksum: c.sha256, format_version: 1 };
      expect(bytes).toEqual(jsonCodec.encode(sealed));
      expect(text(bytes)).toContain(`"checksum":"${c.sha256}","format_version":1,"frame_seq":`);
      const decoded = walFrameCodec.decode(bytes);
      expect(decoded).toEqual(sealed);
      expect(verifyWalFrameChecksum(decoded)).toBe(true);
    },
  );

  it("computes the checksum when it is undefined or empty, and defaults format_version", () => {
    const expected = walFrameChecksum(body());
    const fromEmpty = walFrameCodec.decode(walFrameCodec.encode({ ...body(), checksum: "", format_version: 1 }));
    const fromMissing = walFrameCodec.decode(walFrameCodec.encode(body() as WALFrame));
    expect(fromEmpty.checksum).toBe(expected);
    expect(fromMissing.checksum).toBe(expected);
    expect(fromMissing.format_version).toBe(WAL_FORMAT_VERSION);
  });

  it("never recomputes an existing checksum, so a torn frame stays detectable", () => {
    const sealed = sealWalFrame(body());
    const torn: WALFrame = { ...sealed, frame_seq: 7 };
    const decoded = walFrameCodec.decode(walFrameCodec.encode(torn));
    expect(decoded.checksum).toBe(sealed.checksum);
    expect(verifyWalFrameChecksum(decoded)).toBe(false);
  });

  it("keeps a given format_version and drops unknown top-level fields", () => {
    const frame = { ...sealWalFrame(body(), 2), extra: "dropped" };
    const decoded = walFrameCodec.decode(walFrameCodec.encode(frame));
    expect(decoded.format_version).toBe(2);
    expect(decoded).not.toHaveProperty("extra");
    expect(verifyWalFrameChecksum(decoded)).toBe(true);
  });

  it("rejects a malformed frame with encode-failed naming the field", () => {
    const err = codecError(() => walFrameCodec.encode({ ...sealWalFrame(body()), lifecycle: "later" as "data" }));
    expect(err.code).toBe("encode-failed");
    expect(err.details.field).toBe("lifecycle");
  });

  it("rejects unencodable payloads with encode-failed and a JSON path", () => {
    const bad = body();
    bad.change.change = { kind: "node.set", value: new Map() };
    const err = codecError(() => walFrameCodec.encode({ ...bad, checksum: "", format_version: 1 }));
    expect(err.code).toBe("encode-failed");
    expect(err.details.path).toBe("$.change.change.value");
  });

  it("decode rejects invalid bytes and invalid frames with decode-failed", () => {
    expect(codecError(() => walFrameCodec.decode(Uint8Array.from([0xff]))).code).toBe("decode-failed");
    expect(codecError(() => walFrameCodec.decode(new Uint8Array(0))).code).toBe("decode-failed");
    const notAFrame = codecError(() => walFrameCodec.decode(new TextEncoder().encode('{"t":"c"}')));
    expect(notAFrame.code).toBe("decode-failed");
    expect(notAFrame.details.field).toBe("lifecycle");
  });

  const frameArb = fc.record({
    t: fc.constant("c" as const),
    lifecycle: fc.constantFrom(...REPLAY_ORDER),
    path: fc.string(),
    change: fc.record(
      {
        structure: fc.string(),
        version: fc.oneof(fc.nat(), fc.string()),
        t_ns: fc.nat(),
        seq: fc.nat(),
        lifecycle: fc.constantFrom(...REPLAY_ORDER),
        change: fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown),
      },
      { requiredKeys: ["structure", "version", "t_ns", "lifecycle", "change"] },
    ),
    frame_seq: fc.nat(),
    frame_t_ns: fc.nat(),
  });

  it("property: encode equals canonical JSON of the sealed frame, and round-trips verified", () => {
    fc.assert(
      fc.property(frameArb, fc.integer({ min: 0, max: 5 }), (b, formatVersion) => {
        const sealed = sealWalFrame(b, formatVersion);
        const bytes = walFrameCodec.encode({ ...b, checksum: "", format_version: formatVersion });
        expect(text(bytes)).toBe(canonicalJson(sealed));
        const decoded = walFrameCodec.decode(bytes);
        expect(decoded).toEqual(sealed);
        expect(verifyWalFrameChecksum(decoded)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("property: the pooled twin a tier flush uses writes the same bytes, sealed or given a checksum", () => {
    const pooled = transientEncoder(walFrameCodec);
    fc.assert(
      fc.property(frameArb, fc.boolean(), (b, given) => {
        const frame = given ? sealWalFrame(b) : { ...b, checksum: "", format_version: 1 };
        expect([...pooled(frame)]).toEqual([...walFrameCodec.encode(frame)]);
      }),
      { numRuns: 300 },
    );
    const owned = walFrameCodec.encode(sealWalFrame(body())); // what callers get still owns its buffer
    expect(owned.buffer.byteLength).toBe(owned.byteLength);
  });
});

describe("sealWalFrame", () => {
  it("adds the checksum and format_version 1 by default", () => {
    const sealed = sealWalFrame(body());
    expect(sealed).toEqual({ ...body(), checksum: walFrameChecksum(body()), format_version: 1 });
    expect(verifyWalFrameChecksum(sealed)).toBe(true);
  });

  it("copies only the six body fields", () => {
    const sealed = sealWalFrame({ ...body(), checksum: "deadbeef", junk: 1 } as WALFrameBody);
    expect(sealed.checksum).toBe(walFrameChecksum(body()));
    expect(sealed).not.toHaveProperty("junk");
  });

  it.each([-1, 1.5, NaN])("rejects formatVersion %d with RangeError", (v) => {
    expect(() => sealWalFrame(body(), v)).toThrow(RangeError);
  });

  it("rejects a malformed body with encode-failed", () => {
    const err = codecError(() => sealWalFrame({ ...body(), frame_seq: -1 }));
    expect(err.code).toBe("encode-failed");
    expect(err.details.field).toBe("frame_seq");
  });
});
