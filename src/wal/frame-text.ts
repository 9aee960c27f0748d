/**
 * Canonical (RFC 8785) UTF-8 of a WAL frame, written in parts so the body that is hashed and the frame that is
 * stored share one pass over the payload. Top-level keys in UTF-16 order: change, checksum, format_version,
 * frame_seq, frame_t_ns, lifecycle, path, t; the body lacks the two seal fields:
 *   body  = {"change":<envelope>           ,"frame_seq":…,"t":…}
 *   frame = {"change":<envelope>,<seal>    ,"frame_seq":…,"t":…}
 * Callers write the parts in that key order, so the first bad field is the one canonicalizing the whole frame
 * would report. Not part of the public surface. Layer 0.
 */
import { hash } from "node:crypto";
import type { CanonicalWriter } from "../codec/canonical-writer.js";
import { writeCanonicalJson } from "../codec/json.js";
import type { WALChecksumBody } from "./checksum.js";

/** `{"change":<envelope>`. Throws `CodecError("encode-failed", …, { path })` like `canonicalJson`. */
export function writeFrameHead(w: CanonicalWriter, body: WALChecksumBody): void {
  w.ascii('{"change":');
  const env: unknown = body.change;
  const mark = w.length;
  let written = false;
  try {
    written = writeEnvelope(w, env);
  } catch {
    // A getter or proxy trap threw: the generic path reads it again and reports where.
  }
  if (!written) {
    w.truncate(mark);
    writeCanonicalJson(w, env, "$.change");
  }
}

/** `,"checksum":…,"format_version":…` */
export function writeFrameSeal(w: CanonicalWriter, checksum: string, formatVersion: number): void {
  w.ascii(',"checksum":');
  writeCanonicalJson(w, checksum, "$.checksum");
  w.ascii(',"format_version":');
  writeCanonicalJson(w, formatVersion, "$.format_version");
}

const SEAL_OPEN = new TextEncoder().encode(',"checksum":"');
const SEAL_FORMAT = new TextEncoder().encode('","format_version":');

/**
 * Seals the body written so far (everything in `w`): appends `,"checksum":"<SHA-256 hex of the body>","format_version":…`.
 * The digest comes from Node as "binary" (latin1: one char per byte) and is written as hex bytes straight away, cheaper
 * than a hex string copied in (~0.15 µs a frame, measured on the store actor's encoder). `formatVersion` is a
 * checked non-negative safe integer, so its digits are its canonical text.
 */
export function writeComputedSeal(w: CanonicalWriter, formatVersion: number): void {
  const digest = hash("sha256", w.view(), "binary"); // "binary" is Node's "latin1"
  w.raw(SEAL_OPEN);
  w.hexOfLatin1(digest);
  w.raw(SEAL_FORMAT);
  w.ascii(String(formatVersion));
}

/** `,"frame_seq":…,"t":…}`: the body fields after `change`, and the closing brace. */
export function writeFrameTail(w: CanonicalWriter, body: WALChecksumBody): void {
  w.ascii(',"frame_seq":');
  writeCanonicalJson(w, body.frame_seq, "$.frame_seq");
  w.ascii(',"frame_t_ns":');
  writeCanonicalJson(w, body.frame_t_ns, "$.frame_t_ns");
  w.ascii(',"lifecycle":');
  writeCanonicalJson(w, body.lifecycle, "$.lifecycle");
  w.ascii(',"path":');
  writeCanonicalJson(w, body.path, "$.path");
  w.ascii(',"t":');
  writeCanonicalJson(w, body.t, "$.t");
  w.ascii("}");
}

/**
 * Fast path for the usual BaseChange envelope (docs/protocol.md §6.5): a plain object holding the five required keys,
 * an optional `seq`, and nothing else, so its keys can be written in their fixed canonical order without
 * listing or sorting them. Anything else returns false (possibly after writing part of it) and goes the
 * generic way.
 */
function writeEnvelope(w: CanonicalWriter, env: unknown): boolean {
  if (typeof env !== "object" || env === null) return false;
  const proto: unknown = Object.getPrototypeOf(env);
  if (proto !== Object.prototype && proto !== null) return false;
  const e = env as Record<string, unknown>;
  if (typeof e.toJSON === "function" || !onlyEnvelopeKeys(e)) return false;
  w.ascii('{"change":');
  if (!w.value(e.change, "reject")) return false;
  w.ascii(',"lifecycle":');
  if (!w.value(e.lifecycle, "reject")) return false;
  const seq = e.seq;
  if (seq !== undefined) {
    w.ascii(',"seq":');
    if (!w.value(seq, "reject")) return false;
  }
  w.ascii(',"structure":');
  if (!w.value(e.structure, "reject")) return false;
  w.ascii(',"t_ns":');
  if (!w.value(e.t_ns, "reject")) return false;
  w.ascii(',"version":');
  if (!w.value(e.version, "reject")) return false;
  w.ascii("}");
  return true;
}

/** True when every own enumerable key is an envelope key (arrays fail: their keys are indices). */
function onlyEnvelopeKeys(env: Record<string, unknown>): boolean {
  const keys = Object.keys(env);
  for (let i = 0; i < keys.length; i++) {
    switch (keys[i]) {
      case "change":
      case "lifecycle":
      case "seq":
      case "structure":
      case "t_ns":
      case "version":
        continue;
      default:
        return false;
    }
  }
  return true;
}
