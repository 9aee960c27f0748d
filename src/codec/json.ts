/**
 * `jsonCodec`: UTF-8 of RFC 8785 canonical JSON after the strict walk (docs/design.md §3.1, §3.2). Plain data takes the
 * one-pass fast path (`CanonicalWriter`); everything else (and every error) goes through the reference path, the
 * strict walk plus `canonicalize`. Also the shared helpers the bigint codec and the WAL frame text build on.
 * Layer 0.
 */
import canonicalize from "canonicalize";
import { parse as parseLossless } from "lossless-json";
import { CodecError } from "../errors.js";
import { registerTransientEncoder } from "./bytes.js";
import { withCanonicalWriter, type CanonicalWriter } from "./canonical-writer.js";
import { BigintDigits, prepareJsonValue, type BigintMode } from "./strict.js";
import type { Codec } from "./types.js";

const utf8Encoder = new TextEncoder();
// fatal: invalid UTF-8 must be an error, not U+FFFD substitutions that would then parse "successfully".
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * RFC 8785 canonical JSON text of `value`. Throws `CodecError("encode-failed", …, { path })`;
 * `root` names the root in that path (e.g. `$.change` when canonicalizing part of a larger document).
 */
export function canonicalJson(value: unknown, root = "$"): string {
  return withCanonicalWriter((w) => (w.value(value, "reject") ? w.text() : referenceCanonicalText(value, "reject", root)));
}

/**
 * UTF-8 of the canonical text, with an explicit bigint policy (shared with the bigint codec); `pooled` gives
 * pooled bytes (the tiers' flush path, see `pooledBytes`) instead of bytes that own their buffer.
 */
export function canonicalBytes(value: unknown, bigints: BigintMode, pooled = false): Uint8Array {
  return withCanonicalWriter((w) => {
    if (w.value(value, bigints)) return pooled ? w.pooledCopy() : w.copy();
    return utf8Encoder.encode(referenceCanonicalText(value, bigints, "$"));
  });
}

/** Appends the canonical text of `value` to `writer`; throws like `canonicalJson(value, root)`. */
export function writeCanonicalJson(writer: CanonicalWriter, value: unknown, root: string): void {
  if (!writer.value(value, "reject")) writer.utf8(referenceCanonicalText(value, "reject", root));
}

/** The reference path: strict walk (which locates errors), then `canonicalize`. */
export function referenceCanonicalText(value: unknown, bigints: BigintMode, root: string): string {
  const digits = bigints === "reject" ? new BigintDigits() : undefined;
  const prepared = prepareJsonValue(value, digits ?? bigints, root);
  try {
    const text = canonicalize(prepared);
    // Unreachable after the walk (it rejects top-level undefined); kept because the library's type allows it.
    if (text === undefined) throw new Error("canonicalize produced no text");
    return digits === undefined ? text : digits.restore(text);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new CodecError("encode-failed", `canonical JSON failed: ${message}`, { path: root }, err);
  }
}

/**
 * A number token of 16 or more digits (Number.MAX_SAFE_INTEGER has 16) may be an integer JSON.parse would round.
 * Only runs that can start a number count (after whitespace, `[`, `:`, `,` or `-`), so hex digests and other
 * digit-heavy strings rarely leave the JSON.parse path; a false alarm only costs the slower parser.
 */
const MAYBE_UNSAFE_INTEGER = /(?:^|[\s[:,-])\d{16}/;
const INTEGER_TOKEN = /^-?\d+$/;

/**
 * A number token as JSON.parse reads it, except an integer no double writes back as the same digits, which is
 * its exact bigint (the inverse of the writer's rule, `isWideInteger`).
 */
function exactNumber(token: string): number | bigint {
  const n = Number(token);
  if (Number.isSafeInteger(n) || !INTEGER_TOKEN.test(token) || String(n) === token) return n;
  return BigInt(token);
}

/**
 * JSON.parse, lossless for integers (docs/protocol.md §2.5): texts that may hold a wide integer go to lossless-json
 * with JSON.parse's duplicate-key rule (the last value wins); all others to JSON.parse itself.
 */
function parseJsonText(text: string, reviver?: (key: string, value: unknown) => unknown): unknown {
  if (!MAYBE_UNSAFE_INTEGER.test(text)) return JSON.parse(text, reviver) as unknown;
  return parseLossless(text, reviver, { parseNumber: exactNumber, onDuplicateKey: ({ newValue }) => newValue });
}

/**
 * Fatal UTF-8 decode + `parseJsonText` (wide integers become bigints); every failure (incl. 0 bytes) is
 * `CodecError("decode-failed")` with the cause.
 */
export function parseJsonBytes(bytes: Uint8Array, reviver?: (key: string, value: unknown) => unknown): unknown {
  // Optional chaining: callers outside the type system may hand us anything; the error must still be typed.
  const byteLength: unknown = bytes?.byteLength;
  let text: string;
  try {
    text = utf8Decoder.decode(bytes);
  } catch (err) {
    throw new CodecError("decode-failed", "bytes are not valid UTF-8", { byteLength }, err);
  }
  try {
    return parseJsonText(text, reviver);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new CodecError("decode-failed", `bytes are not valid JSON: ${message}`, { byteLength }, err);
  }
}

export const jsonCodec: Codec<unknown> = Object.freeze({
  name: "json",
  version: 1,
  encode: (value: unknown): Uint8Array => canonicalBytes(value, "reject"),
  decode: (bytes: Uint8Array): unknown => parseJsonBytes(bytes),
});
registerTransientEncoder(jsonCodec, (value) => canonicalBytes(value, "reject", true));

/** The same `jsonCodec` object, typed for `T` (no runtime cost, no runtime check of `T`). */
export function jsonCodecFor<T>(): Codec<T> {
  return jsonCodec as Codec<T>;
}
