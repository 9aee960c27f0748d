/**
 * The value rule for WAL frames, checked without encoding: what `walFrameCodec.encode` would refuse (a frame
 * of the wrong shape, or a field canonical JSON cannot carry), refused with the same CodecError("encode-failed").
 * Layer 0.
 */
import { CodecError } from "../errors.js";
import { storableJsonSize } from "../codec/strict.js";
import { findWalFrameProblem, type WALFrame } from "./frame.js";

/** About the bytes of a sealed frame beyond its path and change: the envelope's names, numbers and the checksum. */
const FRAME_OVERHEAD_BYTES = 256;

/**
 * Throws CodecError("encode-failed", …, { path }) for a frame the frame codec could not store; else returns about
 * how many bytes it encodes to (a backpressure weight: `storableJsonSize`).
 */
export function assertStorableWalFrame(frame: unknown): number {
  let found: ReturnType<typeof findWalFrameProblem>;
  try {
    found = findWalFrameProblem(frame);
  } catch (err) {
    // A getter or proxy trap threw: the frame cannot be read, so it cannot be stored.
    const message = err instanceof Error ? err.message : String(err);
    throw new CodecError("encode-failed", `reading the frame threw: ${message}`, { path: "$" }, err);
  }
  if (found !== undefined) {
    throw new CodecError("encode-failed", found.message, { field: found.field, path: `$.${found.field}` });
  }
  // The shape check leaves these to canonical JSON (every other stored field is a number or a fixed string).
  const f = frame as WALFrame;
  let bytes = FRAME_OVERHEAD_BYTES + storableJsonSize(f.change, "reject", "$.change") + storableJsonSize(f.path, "reject", "$.path");
  if (f.checksum !== undefined && f.checksum !== "") bytes += storableJsonSize(f.checksum, "reject", "$.checksum");
  return bytes;
}
