import { describe, it, expect } from "vitest";
import {
  REPLAY_ORDER,
  WAL_FORMAT_VERSION,
  isLifecycle,
  parseWalFrame,
  verifyWalFrameChecksum,
  walFrameChecksum,
  walFrameCodec,
  type WALFrameBody,
} from "../../src/wal/index.js";
import { CodecError } from "../../src/errors.js";

function validFrameJson(): Record<string, unknown> {
  const body: WALFrameBody = {
    t: "c",
    lifecycle: "data",
    path: "n",
    change: { structure: "graph.value", version: 1, t_ns: 1, lifecycle: "data", change: { kind: "node.set", path: "n", value: 1 } },
    frame_seq: 1,
    frame_t_ns: 1,
  };
  return { ...body, checksum: walFrameChecksum(body), format_version: 1 };
}

function decodeError(value: unknown): CodecError {
  try {
    parseWalFrame(value);
  } catch (err) {
    expect(err).toBeInstanceOf(CodecError);
    return err as CodecError;
  }
  throw new Error("expected parseWalFrame to throw");
}

describe("lifecycles", () => {
  it("REPLAY_ORDER is the frozen spec → data → ownership", () => {
    expect(REPLAY_ORDER).toEqual(["spec", "data", "ownership"]);
    expect(Object.isFrozen(REPLAY_ORDER)).toBe(true);
    expect(() => (REPLAY_ORDER as string[]).push("x")).toThrow(TypeError);
  });

  it("isLifecycle accepts exactly the three lowercase names", () => {
    for (const l of REPLAY_ORDER) expect(isLifecycle(l)).toBe(true);
    for (const l of ["Data", "", "snapshot", null, 1]) expect(isLifecycle(l)).toBe(false);
  });

  it("WAL_FORMAT_VERSION is 1", () => {
    expect(WAL_FORMAT_VERSION).toBe(1);
  });
});

describe("parseWalFrame", () => {
  it("returns exactly the eight fields, keeping the change envelope as stored", () => {
    const json: Record<string, unknown> = { ...validFrameJson(), extra: true };
    const frame = parseWalFrame(json);
    expect(Object.keys(frame).sort()).toEqual(
      ["change", "checksum", "format_version", "frame_seq", "frame_t_ns", "lifecycle", "path", "t"],
    );
    expect(frame.change).toBe(json.change);
    expect(verifyWalFrameChecksum(frame)).toBe(true);
  });

  it("decodes the pre-format_version frame of docs/protocol.md §10.2 with format_version 1", () => {
    const old =
      '{"t":"c","lifecycle":"data","path":"p","change":{"structure":"s","version":0,"t_ns":0,"lifecycle":"data","change":0},"frame_seq":0,"frame_t_ns":0,"checksum":""}';
    const frame = walFrameCodec.decode(new TextEncoder().encode(old));
    expect(frame.format_version).toBe(1);
    expect(frame.checksum).toBe("");
    expect(verifyWalFrameChecksum(frame)).toBe(false);
  });

  it("keeps a present format_version", () => {
    expect(parseWalFrame({ ...validFrameJson(), format_version: 2 }).format_version).toBe(2);
  });

  it("defaults a missing checksum to \"\" so verification, not decoding, catches the torn frame", () => {
    const { checksum: _dropped, ...json } = validFrameJson();
    const frame = parseWalFrame(json);
    expect(frame.checksum).toBe("");
    expect(verifyWalFrameChecksum(frame)).toBe(false);
  });

  it("accepts a string version, a seq, a null payload and a frame_t_ns above 2^53", () => {
    const json = validFrameJson();
    const change = { structure: "s", version: "bafy123", t_ns: 0, seq: 3, lifecycle: "spec", change: null };
    const frame = parseWalFrame({ ...json, lifecycle: "spec", change, frame_t_ns: 1747000000123456800 });
    expect(frame.change).toEqual(change);
    expect(frame.frame_t_ns).toBe(1747000000123456800);
  });

  const base = validFrameJson();
  const env = base.change as Record<string, unknown>;
  it.each<[string, unknown, string]>([
    ["null", null, "frame"],
    ["an array", [], "frame"],
    ["a string", "frame", "frame"],
    ["t missing", { ...base, t: undefined }, "t"],
    ["t not c", { ...base, t: "x" }, "t"],
    ["t null", { ...base, t: null }, "t"],
    ["t a number", { ...base, t: 42 }, "t"],
    ["t an object", { ...base, t: {} }, "t"],
    ["t true", { ...base, t: true }, "t"],
    ["lifecycle unknown", { ...base, lifecycle: "Data" }, "lifecycle"],
    ["path a number", { ...base, path: 1 }, "path"],
    ["path missing", { ...base, path: undefined }, "path"],
    ["frame_seq negative", { ...base, frame_seq: -1 }, "frame_seq"],
    ["frame_seq fractional", { ...base, frame_seq: 1.5 }, "frame_seq"],
    ["frame_seq a string", { ...base, frame_seq: "1" }, "frame_seq"],
    ["frame_seq above 2^53", { ...base, frame_seq: 2 ** 53 }, "frame_seq"],
    ["frame_t_ns missing", { ...base, frame_t_ns: undefined }, "frame_t_ns"],
    ["frame_t_ns negative", { ...base, frame_t_ns: -1 }, "frame_t_ns"],
    ["checksum a number", { ...base, checksum: 1 }, "checksum"],
    ["format_version a string", { ...base, format_version: "1" }, "format_version"],
    ["format_version fractional", { ...base, format_version: 1.5 }, "format_version"],
    ["change missing", { ...base, change: undefined }, "change"],
    ["change an array", { ...base, change: [] }, "change"],
    ["change.structure missing", { ...base, change: { ...env, structure: undefined } }, "change.structure"],
    ["change.version a boolean", { ...base, change: { ...env, version: true } }, "change.version"],
    ["change.t_ns a string", { ...base, change: { ...env, t_ns: "1" } }, "change.t_ns"],
    ["change.seq a string", { ...base, change: { ...env, seq: "0" } }, "change.seq"],
    ["change.lifecycle unknown", { ...base, change: { ...env, lifecycle: "x" } }, "change.lifecycle"],
    ["change.change missing", { ...base, change: { ...env, change: undefined } }, "change.change"],
  ])("rejects %s with decode-failed naming the field", (_name, value, field) => {
    const err = decodeError(value);
    expect(err.code).toBe("decode-failed");
    expect(err.details.field).toBe(field);
    expect(err.message).toContain(field);
  });
});
