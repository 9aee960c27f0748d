/**
 * The WAL frame codec (docs/design.md §3.14: checksums are a persistence concern). Encoding seals the frame, so in
 * engine mode canonical JSON and SHA-256 run wherever the codec runs (the worker), not where frames are built.
 * Layer 0.
 */
import { registerTransientEncoder } from "../codec/bytes.js";
import { withCanonicalWriter } from "../codec/canonical-writer.js";
import { parseJsonBytes } from "../codec/json.js";
import type { Codec } from "../codec/types.js";
import { CodecError } from "../errors.js";
import { walFrameChecksum } from "./checksum.js";
import { frameColumns, type FrameColumns } from "./frame-columns.js";
import { frameColumnsEncoder } from "./frame-columns-encoder.js";
import { writeComputedSeal, writeFrameHead, writeFrameSeal, writeFrameTail } from "./frame-text.js";
import { findWalFrameProblem, parseWalFrame, WAL_FORMAT_VERSION, type WALFrame, type WALFrameBody } from "./frame.js";

function assertEncodable(frame: unknown): void {
  const found = findWalFrameProblem(frame);
  if (found !== undefined) throw new CodecError("encode-failed", found.message, { field: found.field });
}

/**
 * Stored bytes = jsonCodec bytes of the complete frame. A `checksum` that is `undefined` or `""` is computed
 * and embedded; an existing one is written as is (never recomputed: a torn frame must stay detectable, not be
 * "repaired"). A missing `format_version` becomes `WAL_FORMAT_VERSION`. Decode = jsonCodec + `parseWalFrame`.
 * Frames cross to an engine worker as columns (frame-columns.ts).
 */
export const walFrameCodec: Codec<WALFrame> = Object.freeze({
  name: "wal-frame-json",
  version: 1,
  encode: (frame: WALFrame): Uint8Array => encodeFrame(frame, false),
  decode(bytes: Uint8Array): WALFrame {
    return parseWalFrame(parseJsonBytes(bytes));
  },
  // The actor encodes a batch's frames straight from their columns (frame-columns-encoder.ts).
  columns: Object.freeze({ ...frameColumns, encoder: (cols: FrameColumns) => frameColumnsEncoder(cols, (frame) => encodeFrame(frame, true)) }),
});
registerTransientEncoder(walFrameCodec, (frame) => encodeFrame(frame, true));

/** The frame's stored bytes, in pooled bytes (a tier flush) or in bytes that own their buffer (callers). */
function encodeFrame(frame: WALFrame, pooled: boolean): Uint8Array {
  assertEncodable(frame);
  const formatVersion = frame.format_version ?? WAL_FORMAT_VERSION;
  const given = frame.checksum !== undefined && frame.checksum !== "" ? frame.checksum : undefined;
  return withCanonicalWriter((w) => {
    // Parts in key order (head, seal, tail), so a bad field is reported as canonicalizing the frame would.
    writeFrameHead(w, frame);
    if (given !== undefined) {
      writeFrameSeal(w, given, formatVersion);
      writeFrameTail(w, frame);
      return pooled ? w.pooledCopy() : w.copy();
    }
    const headEnd = w.length;
    writeFrameTail(w, frame);
    const bodyEnd = w.length;
    // The body is exactly what was written so far; the seal goes after it, then moves into place before the tail.
    writeComputedSeal(w, formatVersion);
    w.moveBack(headEnd, bodyEnd);
    return pooled ? w.pooledCopy() : w.copy();
  });
}

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
