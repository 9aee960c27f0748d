/**
 * `jsonCodec`: UTF-8 of RFC 8785 canonical JSON after the strict walk (docs/design.md §3.1, §3.2). Plain data takes the
 * one-pass fast path (`CanonicalWriter`); everything else (and every error) goes through the reference path, the
 * strict walk plus `canonicalize`. Also the shared helpers the bigint codec and the WAL frame text build on.
 * Layer 0.
 */
import canonicalize from "canonicalize";
import { CodecError } from "../errors.js";
import { registerTransientEncoder } from "./bytes.js";
import { withCanonicalWriter, type CanonicalWriter } from "./canonical-writer.js";
import { prepareJsonValue, type BigintMode } from "./strict.js";
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
  const prepared = prepareJsonValue(value, bigints, root);
  try {
    const text = canonicalize(prepared);
    // Unreachable after the walk (it rejects top-level undefined); kept because the library's type allows it.
    if (text === undefined) throw new Error("canonicalize produced no text");
    return text;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new CodecError("encode-failed", `canonical JSON failed: ${message}`, { path: root }, err);
  }
}

/** Fatal UTF-8 decode + JSON.parse; every failure (incl. 0 bytes) is `CodecError("decode-failed")` with the cause. */
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
    return JSON.parse(text, reviver) as unknown;
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
