import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { describe, it, expect } from "vitest";
import { canonicalJson } from "../../src/codec/index.js";
import {
  canonicalWalFrameBody,
  sealWalFrame,
  verifyWalFrameChecksum,
  walFrameChecksum,
  type WALFrame,
  type WALFrameBody,
} from "../../src/wal/index.js";

const vectorsDir = new URL("../vectors/", import.meta.url);

interface ChecksumCase {
  name: string;
  body: WALFrameBody;
  canonical: string;
  sha256: string;
}
const checksumCases = (
  JSON.parse(readFileSync(new URL("wal-checksums.json", vectorsDir), "utf8")) as { cases: ChecksumCase[] }
).cases;

const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex");

/** The TS reference's stableJsonString: keys .sort()ed, re-inserted into fresh objects, JSON.stringify. */
function legacyText(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (v === null || typeof v !== "object") return v;
    if (Array.isArray(v)) return v.map(sort);
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sort((v as Record<string, unknown>)[k]);
    return out;
  };
  return JSON.stringify(sort(value));
}

function dataBody(overrides: Partial<WALFrameBody> = {}): WALFrameBody {
  return {
    t: "c",
    lifecycle: "data",
    path: "root/state",
    change: { structure: "graphValue", version: 1, t_ns: 1700000000000, seq: 0, lifecycle: "data", change: 42 },
    frame_seq: 17,
    frame_t_ns: 1700000001000,
    ...overrides,
  };
}

describe("checksum vectors (wal-checksums.json)", () => {
  it("has cases", () => {
    expect(checksumCases.length).toBeGreaterThanOrEqual(14);
  });

  it.each(checksumCases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    expect(canonicalWalFrameBody(c.body)).toBe(c.canonical);
    expect(canonicalJson(c.body)).toBe(c.canonical);
    expect(sha256(c.canonical)).toBe(c.sha256);
    expect(walFrameChecksum(c.body)).toBe(c.sha256);
    expect(verifyWalFrameChecksum({ ...c.body, checksum: c.sha256, format_version: 1 })).toBe(true);
  });
});

describe("walFrameChecksum", () => {
  it("is synchronous: returns a string, not a Promise", () => {
    const result: unknown = walFrameChecksum(dataBody());
    expect(typeof result).toBe("string");
    expect(result).not.toBeInstanceOf(Promise);
  });

  it("is 64 lowercase hex characters", () => {
    expect(walFrameChecksum(dataBody())).toMatch(/^[0-9a-f]{64}$/);
  });

  it("ignores an existing checksum and format_version on its argument", () => {
    const plain = walFrameChecksum(dataBody());
    const a = { ...dataBody(), checksum: "deadbeef".repeat(8), format_version: 1 };
    const b = { ...dataBody(), checksum: "00".repeat(32), format_version: 7 };
    expect(walFrameChecksum(a)).toBe(plain);
    expect(walFrameChecksum(b)).toBe(plain);
  });

  it.each<[string, Partial<WALFrameBody>]>([
    ["payload 42 → 43", { change: { ...dataBody().change, change: 43 } }],
    ["path", { path: "root/other" }],
    ["frame_seq 17 → 18", { frame_seq: 18 }],
    ["frame_t_ns", { frame_t_ns: 1700000001001 }],
    ["lifecycle", { lifecycle: "spec" }],
    ["seq absent vs 0", { change: { ...dataBody().change, seq: undefined } }],
  ])("changes when %s is tampered", (_name, overrides) => {
    expect(walFrameChecksum(dataBody(overrides))).not.toBe(walFrameChecksum(dataBody()));
  });

  it("throws encode-failed with a path for content JSON cannot carry", () => {
    const body = dataBody({ change: { ...dataBody().change, change: { value: NaN } } });
    expect(() => walFrameChecksum(body)).toThrowError(expect.objectContaining({
      code: "encode-failed",
      details: { path: "$.change.change.value" },
    }) as Error);
  });
});

describe("verifyWalFrameChecksum", () => {
  it("verifies a sealed frame, and still verifies after a format_version bump", () => {
    const frame = sealWalFrame(dataBody());
    expect(verifyWalFrameChecksum(frame)).toBe(true);
    expect(verifyWalFrameChecksum({ ...frame, format_version: 7 })).toBe(true);
  });

  it.each<[string, (f: WALFrame) => WALFrame]>([
    ["frame_seq → 999", (f) => ({ ...f, frame_seq: 999 })],
    ["path", (f) => ({ ...f, path: "x" })],
    ["payload", (f) => ({ ...f, change: { ...f.change, change: 43 } })],
    ["checksum uppercased", (f) => ({ ...f, checksum: f.checksum.toUpperCase() })],
    ["checksum emptied", (f) => ({ ...f, checksum: "" })],
  ])("rejects a frame whose %s was tampered", (_name, tamper) => {
    expect(verifyWalFrameChecksum(tamper(sealWalFrame(dataBody())))).toBe(false);
  });

  it("never throws on malformed input", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const good = sealWalFrame(dataBody());
    const malformed: unknown[] = [
      null,
      undefined,
      42,
      "frame",
      {},
      { ...good, checksum: 42 },
      { ...good, change: { ...good.change, change: cyclic } },
      { ...good, frame_t_ns: NaN },
      { ...good, change: { ...good.change, change: 1n } },
    ];
    for (const frame of malformed) {
      expect(verifyWalFrameChecksum(frame as WALFrame)).toBe(false);
    }
  });

  it("accepts the TS-reference legacy form (integer-like keys first, numerically)", () => {
    const body = dataBody({ change: { ...dataBody().change, change: { "10": 1, "9": 2, a: 3 } } });
    const legacy = sha256(legacyText(body));
    expect(legacyText(body)).toContain('{"9":2,"10":1,"a":3}');
    expect(legacy).not.toBe(walFrameChecksum(body));
    expect(verifyWalFrameChecksum({ ...body, checksum: legacy, format_version: 1 })).toBe(true);
    expect(verifyWalFrameChecksum({ ...body, frame_seq: 18, checksum: legacy, format_version: 1 })).toBe(false);
  });

  it("accepts a legacy frame holding a lone surrogate (which RFC 8785 cannot encode)", () => {
    const body = dataBody({ path: "bad\ud800" });
    expect(() => walFrameChecksum(body)).toThrow();
    expect(verifyWalFrameChecksum({ ...body, checksum: sha256(legacyText(body)), format_version: 1 })).toBe(true);
  });
});
