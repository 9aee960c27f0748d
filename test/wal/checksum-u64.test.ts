/**
 * Frames whose integers a double cannot hold (docs/protocol.md §2.6), as the Rust implementation writes them:
 * exact u64 nanosecond counts and payload integers beyond 2^53. The expected SHA-256 is computed here with
 * node:crypto over the hand-written canonical text of test/vectors/wal-checksums-u64.json, not by our code.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CodecError } from "../../src/errors.js";
import {
  canonicalWalFrameBody,
  parseWalFrame,
  sealWalFrame,
  verifyWalFrameChecksum,
  walFrameChecksum,
  walFrameCodec,
  type WALFrame,
} from "../../src/wal/index.js";

interface Expectation {
  path: (string | number)[];
  bigint?: string;
  number?: string;
  string?: string;
}
interface U64Case {
  name: string;
  canonical: string;
  sha256: string;
  stored: string;
  expect: Expectation[];
}
const cases = (
  JSON.parse(readFileSync(new URL("../vectors/wal-checksums-u64.json", import.meta.url), "utf8")) as { cases: U64Case[] }
).cases;

const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex");
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const textOf = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

function at(value: unknown, path: readonly (string | number)[]): unknown {
  let v = value;
  for (const seg of path) v = (v as Record<string | number, unknown>)[seg];
  return v;
}

function expectExact(frame: unknown, e: Expectation): void {
  const v = at(frame, e.path);
  if (e.bigint !== undefined) expect(v).toBe(BigInt(e.bigint));
  if (e.number !== undefined) expect(v).toBe(Number(e.number));
  if (e.string !== undefined) expect(v).toBe(e.string);
}

describe.each(cases.map((c) => [c.name, c] as const))("u64 vector %s", (_name, c) => {
  it("its sha256 is the SHA-256 of its canonical text, and its stored text is that body sealed", () => {
    expect(sha256(c.canonical)).toBe(c.sha256);
    expect(c.stored).toBe(c.canonical.replace(',"frame_seq":', `,"checksum":"${c.sha256}","format_version":1,"frame_seq":`));
  });

  it("decodes with every integer exact, verifies, and writes back byte for byte", () => {
    const frame = walFrameCodec.decode(utf8(c.stored));
    for (const e of c.expect) expectExact(frame, e);
    expect(frame.checksum).toBe(c.sha256);
    expect(verifyWalFrameChecksum(frame)).toBe(true);
    expect(canonicalWalFrameBody(frame)).toBe(c.canonical);
    expect(walFrameChecksum(frame)).toBe(c.sha256);
    expect(textOf(walFrameCodec.encode(frame))).toBe(c.stored);
    // Sealing the decoded body again computes the same checksum; encoding it unsealed embeds that checksum.
    const { checksum: _c, format_version: _f, ...body } = frame;
    expect(sealWalFrame(body).checksum).toBe(c.sha256);
    expect(textOf(walFrameCodec.encode({ ...frame, checksum: "" }))).toBe(c.stored);
  });
});

describe("exact integers keep torn frames detectable", () => {
  const rs = cases.find((c) => c.name === "rs-u64-frame-t-ns")!;

  it("a frame_t_ns one nanosecond off (the same double) fails its checksum", () => {
    const off = rs.stored.replace('"frame_t_ns":1747000000123456789', '"frame_t_ns":1747000000123456788');
    expect(off).not.toBe(rs.stored);
    const frame = walFrameCodec.decode(utf8(off));
    expect(frame.frame_t_ns).toBe(1747000000123456788n);
    expect(verifyWalFrameChecksum(frame)).toBe(false);
  });

  it("JSON.parse of the same bytes rounds the u64 and the checksum no longer matches (why decoding is lossless)", () => {
    const rounded = parseWalFrame(JSON.parse(rs.stored));
    expect(rounded.frame_t_ns).toBe(1747000000123456768);
    expect(verifyWalFrameChecksum(rounded)).toBe(false);
  });
});

describe("frame validation of bigint fields", () => {
  const rs = cases.find((c) => c.name === "rs-u64-frame-t-ns")!;
  const base = (): WALFrame => walFrameCodec.decode(utf8(rs.stored));

  it("accepts a wide bigint frame_t_ns and change.t_ns, and our writer still writes numbers as numbers", () => {
    expect(parseWalFrame(base()).frame_t_ns).toBe(1747000000123456789n);
    const ours = sealWalFrame({ ...base(), frame_t_ns: 1_700_000_001_000, change: { ...base().change, t_ns: 1_700_000_000_000 } });
    expect(canonicalWalFrameBody(ours)).toContain('"frame_t_ns":1700000001000');
    expect(canonicalWalFrameBody(ours)).toContain('"t_ns":1700000000000');
  });

  it.each([
    ["a negative bigint", -18446744073709551615n],
    ["a bigint a number holds exactly (it would be read back as a number)", 5n],
    ["2^53 as a bigint (exactly a double)", 9007199254740992n],
  ])("refuses %s as frame_t_ns, on decode and on encode, naming the field", (_what, bad) => {
    const frame = { ...base(), frame_t_ns: bad };
    expect(() => parseWalFrame(frame)).toThrow(CodecError);
    expect(() => parseWalFrame(frame)).toThrow(/frame_t_ns/);
    expect(() => walFrameCodec.encode(frame)).toThrow(/frame_t_ns/);
  });

  it("refuses a bigint payload integer a number holds exactly, with its JSON path", () => {
    const frame = { ...base(), checksum: "", change: { ...base().change, change: { n: [7n] } } };
    let err: unknown;
    try {
      walFrameCodec.encode(frame);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CodecError);
    expect(err).toMatchObject({ code: "encode-failed", details: { path: "$.change.change.n[0]" } });
  });
});
