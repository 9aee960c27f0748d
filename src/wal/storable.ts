/**
 * The value rule for WAL frames, checked without encoding: what `walFrameCodec.encode` would refuse (a frame
 * of the wrong shape, or a field canonical JSON cannot carry), refused with the same CodecError("encode-failed").
 * Layer 0.
 */
import { CodecError } from "../errors.js";
import { assertStorableJson } from "../codec/strict.js";
import { findWalFrameProblem, type WALFrame } from "./frame.js";

/** Throws CodecError("encode-failed", …, { path }) for a frame the frame codec could not store. */
export function assertStorableWalFrame(frame: unknown): void {
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
  assertStorableJson(f.change, "reject", "$.change");
  assertStorableJson(f.path, "reject", "$.path");
  if (f.checksum !== undefined && f.checksum !== "") assertStorableJson(f.checksum, "reject", "$.checksum");
}
