/**
 * Canonical (RFC 8785) text of a WAL frame, built from parts so the payload is canonicalized once and the body
 * that is hashed shares its text with the frame that is stored. Top-level keys in UTF-16 order: change,
 * checksum, format_version, frame_seq, frame_t_ns, lifecycle, path, t; the body lacks the two seal fields:
 *   body  = {"change":<change>,<tail>
 *   frame = {"change":<change>,<seal>,<tail>
 * Callers build the parts in that key order, so the first bad field is the one canonicalizing the whole frame
 * would report. Not part of the public surface. Layer 0.
 */
import { fastCanonicalJson } from "../codec/fast-canonical.js";
import { canonicalJson } from "../codec/json.js";
import type { WALChecksumBody } from "./checksum.js";

/** Canonical text of the `change` envelope. */
export function changeText(body: WALChecksumBody): string {
  const env: unknown = body.change;
  let fast: string | undefined;
  try {
    fast = envelopeText(env);
  } catch {
    // A getter or proxy trap threw: the generic path reads it again and reports where.
  }
  return fast ?? canonicalJson(env, "$.change");
}

/** `"checksum":…,"format_version":…` */
export function sealText(checksum: string, formatVersion: number): string {
  return (
    `"checksum":${canonicalJson(checksum, "$.checksum")},` +
    `"format_version":${canonicalJson(formatVersion, "$.format_version")}`
  );
}

/** `"frame_seq":…,"t":…}`: the body fields after `change`, with the closing brace. */
export function tailText(body: WALChecksumBody): string {
  return (
    `"frame_seq":${canonicalJson(body.frame_seq, "$.frame_seq")},` +
    `"frame_t_ns":${canonicalJson(body.frame_t_ns, "$.frame_t_ns")},` +
    `"lifecycle":${canonicalJson(body.lifecycle, "$.lifecycle")},` +
    `"path":${canonicalJson(body.path, "$.path")},` +
    `"t":${canonicalJson(body.t, "$.t")}}`
  );
}

/**
 * Fast path for the usual BaseChange envelope (protocol §6.5): a plain object holding the five required keys,
 * an optional `seq`, and nothing else, so its keys can be written in their fixed canonical order without
 * listing or sorting them. Anything else is `undefined` and goes the generic way.
 */
function envelopeText(env: unknown): string | undefined {
  if (typeof env !== "object" || env === null) return undefined;
  const proto: unknown = Object.getPrototypeOf(env);
  if (proto !== Object.prototype && proto !== null) return undefined;
  const e = env as Record<string, unknown>;
  if (typeof e.toJSON === "function" || !onlyEnvelopeKeys(e)) return undefined;
  const change = fastCanonicalJson(e.change, "reject");
  const lifecycle = fastCanonicalJson(e.lifecycle, "reject");
  const structure = fastCanonicalJson(e.structure, "reject");
  const tNs = fastCanonicalJson(e.t_ns, "reject");
  const version = fastCanonicalJson(e.version, "reject");
  if (change === undefined || lifecycle === undefined || structure === undefined) return undefined;
  if (tNs === undefined || version === undefined) return undefined;
  let seq = "";
  if (e.seq !== undefined) {
    const text = fastCanonicalJson(e.seq, "reject");
    if (text === undefined) return undefined;
    seq = `,"seq":${text}`;
  }
  return `{"change":${change},"lifecycle":${lifecycle}${seq},"structure":${structure},"t_ns":${tNs},"version":${version}}`;
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
