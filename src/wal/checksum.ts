/**
 * WAL frame checksum (docs/protocol.md §6.3, docs/design.md §3.1): lowercase hex SHA-256 of the RFC 8785 canonical JSON of the
 * six body fields; `checksum` and `format_version` are excluded so a format bump never invalidates a store.
 * Synchronous (node:crypto). Layer 0.
 */
import { hash } from "node:crypto";
import { CodecError } from "../errors.js";
import { withCanonicalWriter } from "../codec/canonical-writer.js";
import type { WALFrame } from "./frame.js";
import { writeFrameHead, writeFrameTail } from "./frame-text.js";

/** The six fields the checksum covers. Extra fields on an argument of this type are ignored. */
export type WALChecksumBody<T = unknown> = Pick<
  WALFrame<T>,
  "t" | "lifecycle" | "path" | "change" | "frame_seq" | "frame_t_ns"
>;

/** The canonical text that is hashed. Throws `CodecError("encode-failed", …, { path })` for unencodable content. */
export function canonicalWalFrameBody(body: WALChecksumBody): string {
  return withCanonicalWriter((w) => {
    writeFrameHead(w, body);
    writeFrameTail(w, body);
    return w.text();
  });
}

/** One-shot lowercase hex SHA-256 (no Hash object); a string is hashed as its UTF-8. */
export function sha256Hex(data: string | Uint8Array): string {
  return hash("sha256", data, "hex");
}

/** Lowercase hex SHA-256 of the canonical body (64 chars). Throws `CodecError("encode-failed")` like the codec. */
export function walFrameChecksum(body: WALChecksumBody): string {
  return withCanonicalWriter((w) => {
    writeFrameHead(w, body);
    writeFrameTail(w, body);
    // The bytes as written: no text is built, flattened or encoded again.
    return sha256Hex(w.view());
  });
}

/**
 * True when `frame.checksum` matches its body. Never throws: anything malformed is `false`. Also accepts the
 * TS-reference form (docs/protocol.md §2.2: integer-like keys first in numeric order), computed only on mismatch.
 */
export function verifyWalFrameChecksum(frame: WALFrame): boolean {
  try {
    if (typeof frame !== "object" || frame === null) return false;
    const expected: unknown = frame.checksum;
    if (typeof expected !== "string" || expected.length !== 64) return false;
    if (canonicalMatches(frame, expected)) return true;
    return sha256Hex(legacyBodyText(frame)) === expected;
  } catch {
    return false;
  }
}

/**
 * A stored frame's check for readers of a store (docs/design.md §3.16): `verifyWalFrameChecksum`'s verdict, except
 * that a frame holding what canonical JSON cannot carry (a lone surrogate, nesting past MAX_JSON_DEPTH) is its
 * CodecError("encode-failed"), whatever its checksum says: the TS reference's legacy checksum may match such a
 * frame, but restore cannot replay it and export or compaction cannot write it again. No extra walk: the canonical
 * checksum is computed anyway, and it fails exactly for such frames.
 */
export function checkStoredWalFrame(frame: WALFrame): boolean | CodecError {
  let canonical: string;
  try {
    canonical = walFrameChecksum(frame);
  } catch (err) {
    if (err instanceof CodecError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new CodecError("encode-failed", `canonical JSON of the frame failed: ${message}`, { path: "$" }, err);
  }
  const expected: unknown = frame.checksum;
  if (typeof expected !== "string" || expected.length !== 64) return false;
  if (canonical === expected) return true;
  try {
    return sha256Hex(legacyBodyText(frame)) === expected;
  } catch {
    return false; // e.g. too deep for JSON.stringify: no form matches
  }
}

function canonicalMatches(frame: WALChecksumBody, expected: string): boolean {
  try {
    return walFrameChecksum(frame) === expected;
  } catch {
    // e.g. a lone surrogate, which the TS reference wrote escaped; the legacy form may still match.
    return false;
  }
}

/** The TS reference's `stableJsonString` of the body: keys `.sort()`ed, re-inserted, then `JSON.stringify`. */
function legacyBodyText(frame: WALChecksumBody): string {
  const { t, lifecycle, path, change, frame_seq, frame_t_ns } = frame;
  return JSON.stringify(legacySorted({ t, lifecycle, path, change, frame_seq, frame_t_ns }));
}

function legacySorted(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(legacySorted);
  const source = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(source).sort()) out[key] = legacySorted(source[key]);
  return out;
}
