/**
 * WAL frame checksum (protocol §6.3, DESIGN §3.1): lowercase hex SHA-256 of the RFC 8785 canonical JSON of the
 * six body fields; `checksum` and `format_version` are excluded so a format bump never invalidates a store.
 * Synchronous (node:crypto). Layer 0.
 */
import { createHash } from "node:crypto";
import { canonicalJson } from "../codec/json.js";
import type { WALFrame } from "./frame.js";

/** The six fields the checksum covers. Extra fields on an argument of this type are ignored. */
export type WALChecksumBody<T = unknown> = Pick<
  WALFrame<T>,
  "t" | "lifecycle" | "path" | "change" | "frame_seq" | "frame_t_ns"
>;

/** The two fields a sealed frame adds to its body. */
export interface WALFrameSeal {
  readonly checksum: string;
  readonly format_version: number;
}

/**
 * RFC 8785 text of a frame's top level, given the canonical text of its `change` envelope, so callers that
 * need both the body (to hash) and the full frame (to store) canonicalize the payload once. Top-level keys in
 * UTF-16 order: change, checksum, format_version, frame_seq, frame_t_ns, lifecycle, path, t.
 * Not part of the public surface.
 */
export function frameJsonText(body: WALChecksumBody, changeText: string, seal?: WALFrameSeal): string {
  const sealText =
    seal === undefined
      ? ""
      : `"checksum":${canonicalJson(seal.checksum, "$.checksum")},` +
        `"format_version":${canonicalJson(seal.format_version, "$.format_version")},`;
  return (
    `{"change":${changeText},${sealText}` +
    `"frame_seq":${canonicalJson(body.frame_seq, "$.frame_seq")},` +
    `"frame_t_ns":${canonicalJson(body.frame_t_ns, "$.frame_t_ns")},` +
    `"lifecycle":${canonicalJson(body.lifecycle, "$.lifecycle")},` +
    `"path":${canonicalJson(body.path, "$.path")},` +
    `"t":${canonicalJson(body.t, "$.t")}}`
  );
}

/** The canonical text that is hashed. Throws `CodecError("encode-failed", …, { path })` for unencodable content. */
export function canonicalWalFrameBody(body: WALChecksumBody): string {
  return frameJsonText(body, canonicalJson(body.change, "$.change"));
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** Lowercase hex SHA-256 of the canonical body (64 chars). Throws `CodecError("encode-failed")` like the codec. */
export function walFrameChecksum(body: WALChecksumBody): string {
  return sha256Hex(canonicalWalFrameBody(body));
}

/**
 * True when `frame.checksum` matches its body. Never throws: anything malformed is `false`. Also accepts the
 * TS-reference form (protocol §2.2: integer-like keys first in numeric order), computed only on mismatch.
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
