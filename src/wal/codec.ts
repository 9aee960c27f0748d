/**
 * The WAL frame codec (DESIGN §3.14: checksums are a persistence concern). Encoding seals the frame, so in
 * engine mode canonical JSON and SHA-256 run wherever the codec runs (the worker), not where frames are built.
 * Layer 0.
 */
import { canonicalJson, parseJsonBytes, utf8Bytes } from "../codec/json.js";
import type { Codec } from "../codec/types.js";
import { CodecError } from "../errors.js";
import { frameJsonText, sha256Hex, walFrameChecksum } from "./checksum.js";
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
    // The payload is canonicalized once and reused for both the hashed body and the stored frame.
    const changeText = canonicalJson(frame.change, "$.change");
    const checksum =
      frame.checksum === undefined || frame.checksum === "" ? sha256Hex(frameJsonText(frame, changeText)) : frame.checksum;
    const format_version = frame.format_version ?? WAL_FORMAT_VERSION;
    return utf8Bytes(frameJsonText(frame, changeText, { checksum, format_version }));
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
