/**
 * `jsonCodec`: UTF-8 of RFC 8785 canonical JSON after the strict walk (docs/design.md §3.1, §3.2). Plain data takes the
 * one-pass fast path (`CanonicalWriter`); everything else (and every error) goes through the reference path, the
 * strict walk plus `canonicalize`. Also the shared helpers the bigint codec and the WAL frame text build on.
 * Layer 0.
 */
import canonicalize from "canonicalize";
import { parse as parseLossless } from "lossless-json";
import { tooWideToken } from "./integer-limit.js";
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
 * True when some integer token of the JSON does not read back as the same digits, so JSON.parse would lose it.
 * Such a token has 16+ digits (Number.MAX_SAFE_INTEGER has 16), and any run of 16 digits covers one index
 * ≡ 15 (mod 16): only those are probed. Bytes, not text: digits are ASCII, no byte of a multi-byte UTF-8
 * character is one, and a typed array reads faster. The scan costs ~5% of JSON.parse on a frame (bench suite 5).
 */
function holdsWideInteger(bytes: Uint8Array): boolean {
  const n = bytes.length;
  // Literal bounds ('0', '9'): module constants cost a context load in this loop.
  for (let i = 15; i < n; i += 16) {
    let c = bytes[i] as number;
    if (c < 0x30 || c > 0x39) continue;
    let start = i;
    while (start > 0) {
      c = bytes[start - 1] as number;
      if (c < 0x30 || c > 0x39) break;
      start--;
    }
    let end = i + 1;
    while (end < n) {
      c = bytes[end] as number;
      if (c < 0x30 || c > 0x39) break;
      end++;
    }
    if (end - start >= 16 && isWideToken(bytes, start, end)) return true;
    while (i + 16 < end) i += 16;
  }
  return false;
}

/**
 * Whether the digit run `bytes[start, end)` is a whole integer token that no double writes as the same digits.
 * An integer of at most 15 significant digits below 10^21 always reads back as itself (no other number of so
 * few digits lies within a double's spacing of it): our own timestamps, Date.now() x 10^6, end here. A run that
 * is not a token (in a hex digest, a zero-padded key, a fraction) is skipped; one inside a string may count,
 * which only costs the slower parser.
 */
function isWideToken(bytes: Uint8Array, start: number, end: number): boolean {
  let last = end - 1;
  while (bytes[last] === ZERO) last--;
  if (last - start < 15 && end - start < 22) return false;
  const next = bytes[end];
  if (next === DOT || next === LOWER_E || next === UPPER_E) return false;
  if (bytes[start - 1] === MINUS) start--;
  if (start > 0 && !TOKEN_BEFORE.has(bytes[start - 1] as number)) return false;
  let token = "";
  for (let k = start; k < end; k++) token += String.fromCharCode(bytes[k] as number);
  return String(Number(token)) !== token;
}

const ZERO = 0x30;
const NINE = 0x39;
const DOT = 0x2e;
const MINUS = 0x2d;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
/** What may precede a number token: JSON whitespace, `[`, `:`, `,`. */
const TOKEN_BEFORE: ReadonlySet<number> = new Set([0x20, 0x09, 0x0a, 0x0d, 0x5b, 0x3a, 0x2c]);

const INTEGER_TOKEN = /^-?\d+$/;

/**
 * A number token as JSON.parse reads it, except an integer no double writes back as the same digits, which is
 * its exact bigint (the inverse of the writer's rule, `isWideInteger`).
 */
function exactNumber(token: string): number | bigint {
  const n = Number(token);
  if (Number.isSafeInteger(n) || !INTEGER_TOKEN.test(token) || String(n) === token) return n;
  // BigInt(text) costs superlinear time in the digits: a stored value cannot make every read take minutes.
  const tooWide = tooWideToken(token.startsWith("-") ? token.length - 1 : token.length);
  if (tooWide !== undefined) throw tooWide;
  return BigInt(token);
}

/**
 * Fatal UTF-8 decode + JSON.parse, lossless for integers (docs/protocol.md §2.6): JSON that may hold a wide
 * integer goes to lossless-json (wide integers become bigints; JSON.parse's rules otherwise, the last duplicate
 * key wins); all other JSON to JSON.parse itself. Every failure (incl. 0 bytes) is `CodecError("decode-failed")`
 * with the cause.
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
    if (!holdsWideInteger(bytes)) return JSON.parse(text, reviver) as unknown;
    return parseLossless(text, reviver, { parseNumber: exactNumber, onDuplicateKey: ({ newValue }) => newValue });
  } catch (err) {
    if (err instanceof CodecError) throw err; // a refusal of ours (MAX_INTEGER_DIGITS), with its details
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
