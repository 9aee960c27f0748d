/**
 * The WAL frame codec (DESIGN §3.14: checksums are a persistence concern). Encoding seals the frame, so in
 * engine mode canonical JSON and SHA-256 run wherever the codec runs (the worker), not where frames are built.
 * Layer 0.
 */
import { parseJsonBytes, utf8Bytes } from "../codec/json.js";
import type { Codec } from "../codec/types.js";
import { CodecError } from "../errors.js";
import { sha256Hex, walFrameChecksum } from "./checksum.js";
import { changeText, sealText, tailText } from "./frame-text.js";
import { findWalFrameProblem, parseWalFrame, WAL_FORMAT_VERSION, type WALFrame, type WALFrameBody } from "./frame.js";

function assertEncodable(frame: unknown): void {
  const found = findWalFrameProblem(frame);
  if (found !== undefined) throw new CodecError("encode-failed", found.message, { field: found.field });
}

/**
 * Stored bytes = jsonCodec bytes of the complete frame. A `checksum` that is `undefined` or `""` is computed
 * and embedded; an existing one is written as is (never recomputed: a torn frame must stay detectable, not be
 * "repaired"). A missing `format_version` becomes `WAL_FORMAT_VERSION`. Decode = jsonCodec + `parseWalFrame`.
 */
export const walFrameCodec: Codec<WALFrame> = Object.freeze({
  name: "wal-frame-json",
  version: 1,
  encode(frame: WALFrame): Uint8Array {
    assertEncodable(frame);
    const format_version = frame.format_version ?? WAL_FORMAT_VERSION;
    // Parts in key order (change, seal, tail), so a bad field is reported as canonicalizing the frame would.
    const change = changeText(frame);
    if (frame.checksum !== undefined && frame.checksum !== "") {
      const seal = sealText(frame.checksum, format_version);
      return utf8Bytes(`{"change":${change},${seal},${tailText(frame)}`);
    }
    const body = `{"change":${change},${tailText(frame)}`;
    const checksum = sha256Hex(body);
    // Hashing flattened `body`; slicing it reuses that flat text instead of walking the pieces again.
    const split = '{"change":'.length + change.length;
    return utf8Bytes(`${body.slice(0, split)},${sealText(checksum, format_version)}${body.slice(split)}`);
  },
  decode(bytes: Uint8Array): WALFrame {
    return parseWalFrame(parseJsonBytes(bytes));
  },
});

/** Adds `checksum` and `format_version` to a frame body (for inline use; engine mode lets the codec do it). */
export function sealWalFrame<T>(body: WALFrameBody<T>, formatVersion: number = WAL_FORMAT_VERSION): WALFrame<T> {
  if (!Number.isSafeInteger(formatVersion) || formatVersion < 0) {
    throw new RangeError(`sealWalFrame: formatVersion must be a non-negative integer, got ${String(formatVersion)}`);
  }
  assertEncodable(body);
  const { t, lifecycle, path, change, frame_seq, frame_t_ns } = body;
  return {
    t,
    lifecycle,
    path,
    change,
    frame_seq,
    frame_t_ns,
    checksum: walFrameChecksum(body),
    format_version: formatVersion,
  };
}
